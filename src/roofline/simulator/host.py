"""Host time of a step: what the runtime's CPU side adds to the kernels' device time.

A step is launched one of two ways (the runtime profile's `host`, simulator/data/engines):

- **eager**: Python dispatches every framework call of the step, one after another; each costs
  `dispatch_per_call` plus `launch_per_kernel` per kernel it launches. The GPU runs kernel i once
  the host has issued it and the GPU has finished kernel i-1, so a step of small kernels is
  host-bound (the GPU waits on Python) and a step of large kernels device-bound (Python runs ahead).
  With lag x = (GPU finish time) - (host issue time), one operator instance (host h, device d) maps
  x -> max(x - h, 0) + d. Maps of the form x -> max(x + a, b) compose in closed form, so a layer
  repeated n times costs O(1): the step ends at (total host time) + (final lag).
  When the host does not overlap the device (the "device" is the CPU itself) the two add.
- **cuda_graph**: the step is one graph launch; the kernels then run back to back on the GPU.

Both add the runtime's per-step scheduler / sampling time (`step_overhead` + `per_sequence_overhead`
per sequence) as the serving simulator does: serially, or for an overlap scheduler (`scheduler_overlap`)
its overlapped share under the step (EngineConfig.overlapped_s). Host costs are given at the profile's
reference CPU and divide by the host CPU's relative single-thread speed (hardware_specs host_cpus).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from roofline.hardware_specs.catalog import load_catalog
from roofline.hardware_specs.cluster import Cluster
from roofline.ir import OpKind, Phase
from roofline.simulator.cost import OpCost

if TYPE_CHECKING:
    from roofline.simulator.serving.engine_config import EngineConfig


def speed_ratio(runtime: EngineConfig, cluster: Cluster) -> float:
    """How much faster the cluster's host CPU is than the CPU the profile's costs hold for."""
    reference = runtime.host.reference_cpu
    if reference is None:  # measured on the host it runs on (a calibrated profile)
        return 1.0
    return cluster.host_speed / load_catalog().host_cpu(reference).single_thread_speed


def on_cluster_host(runtime: EngineConfig, cluster: Cluster) -> EngineConfig:
    """The profile on the cluster: the limits it picks on the cluster's GPU, its host costs on the
    cluster's host CPU."""
    acc = cluster.accelerator
    return runtime.on_device(acc.id, acc.memory.capacity).on_host(speed_ratio(runtime, cluster))


@dataclass(frozen=True)
class LagMap:
    """x -> max(x + a, b): the GPU's lag behind the host after a run of operator instances."""

    a: float = 0.0
    b: float = 0.0

    def then(self, other: LagMap) -> LagMap:
        return LagMap(self.a + other.a, max(self.b + other.a, other.b))

    def repeated(self, n: int) -> LagMap:
        if n <= 0:
            return LagMap(0.0, -float("inf"))
        return LagMap(n * self.a, self.b + max(0.0, (n - 1) * self.a))

    def __call__(self, x: float) -> float:
        return max(x + self.a, self.b)


def _segments(costs: Sequence[OpCost]) -> list[tuple[int, list[OpCost]]]:
    """Consecutive operators with the same instance count: a block repeated that many times
    (the layers of a stage), in step order."""
    out: list[tuple[int, list[OpCost]]] = []
    for c in costs:
        if out and out[-1][0] == c.op.count:
            out[-1][1].append(c)
        else:
            out.append((c.op.count, [c]))
    return out


def unfused_extra_s(cost: OpCost, runtime: EngineConfig) -> float:
    """Device time one instance of an operator adds when eager PyTorch runs it as several unfused
    kernels, each re-reading and re-writing the tensor (RoPE as slices, neg, cat, two multiplies and
    an add): its memory time again, `bytes_factor - 1` times over."""
    factor = runtime.host.calls_of(cost.op.name, cost.op.kind.value).bytes_factor
    return (factor - 1.0) * cost.memory_s if factor > 1.0 else 0.0


def eager_step_s(costs: Sequence[OpCost], runtime: EngineConfig) -> tuple[float, float]:
    """(step time, host dispatch time) of a step dispatched op by op from Python (LagMap algebra,
    inlined: a, b of the block's map)."""
    host = runtime.host
    lag, host_s, device_s = 0.0, 0.0, 0.0
    for count, block in _segments(costs):
        a, b, block_host = 0.0, 0.0, 0.0
        for c in block:
            h = host.dispatch_s(c.op.name, c.op.kind.value)
            d = c.time_s + unfused_extra_s(c, runtime)
            a, b = a + d - h, max(b + d - h, d)  # this map, then x -> max(x + d - h, d)
            block_host += h
            device_s += d * count
        lag = max(lag + count * a, b + max(0.0, (count - 1) * a))  # LagMap(a, b).repeated(count)(lag)
        host_s += block_host * count
    if not host.overlaps_device:
        return host_s + device_s, host_s
    return host_s + lag, host_s


@dataclass(frozen=True)
class HostStep:
    """A step's time with the host side: `step_s` in all, of which `host_s` the host adds and
    `unfused_s` the eager runtime's unfused kernels add on the device."""

    step_s: float
    host_s: float
    unfused_s: float = 0.0  # device time the eager runtime's unfused kernels add (in step_s, not in host_s)


def step_with_host(
    runtime: EngineConfig, phase: Phase, costs: Sequence[OpCost], device_s: float, sequences: int
) -> HostStep:
    """A step of `sequences` sequences whose kernels take `device_s` on the GPU."""
    scheduler_s = runtime.scheduler_s(sequences)
    launch = runtime.host.prefill_launch if phase is Phase.PREFILL else runtime.host.decode_launch
    if launch == "cuda_graph":
        step_s = runtime.overlapped_s(device_s, scheduler_s) + runtime.graph_launch_s(phase is Phase.PREFILL)
        return HostStep(step_s, step_s - device_s)
    pipelined_s, _ = eager_step_s(costs, runtime)
    unfused_s = sum(unfused_extra_s(c, runtime) * c.op.count for c in costs)
    device_s += unfused_s
    step_s = runtime.overlapped_s(max(pipelined_s, device_s), scheduler_s)
    return HostStep(step_s, step_s - device_s, unfused_s)


def graph_batch(runtime: EngineConfig | None, sequences: int) -> int:
    """The batch a decode step of `sequences` really runs: a runtime that replays captured CUDA
    graphs pads it to the smallest captured size that holds it (vLLM `cudagraph_capture_sizes`);
    above the largest, or without a capture list, the step runs unpadded."""
    if runtime is None or runtime.host.decode_launch != "cuda_graph":
        return sequences
    return min((size for size in runtime.host.cuda_graph_batch_sizes if size >= sequences), default=sequences)


def padding_s(step: Sequence[OpCost], padded: Sequence[OpCost]) -> float:
    """Device time the padded rows add: every operator but attention runs on the padded batch (the
    dummy rows hold no KV, so attention does no work for them)."""
    return sum(c.total_s for c in padded if c.op.kind is not OpKind.ATTENTION) - sum(
        c.total_s for c in step if c.op.kind is not OpKind.ATTENTION
    )
