"""Capacity planning on the vectorised fast path (simulator/fast.py): grids of configurations,
SLO checks at a request rate, the cheapest configurations and the throughput/latency frontier."""
