"""How a kernel row was timed, where that adds to the kernel's own time.

A kernel timed in isolation from eager PyTorch (one call between two CUDA events, the stream idle
before it) includes the host-side launch of that call; a kernel replayed from a CUDA graph
(AIConfigurator's tables) or timed back to back does not. `timing_overhead_s` is what the row's
timing method adds to the kernel time the cost model gives (0 until modelled).
"""

from __future__ import annotations

from roofline.validation.cases import Case


def timing_overhead_s(case: Case) -> float:
    """Seconds the row's timing method adds to one kernel call (0: none modelled)."""
    return 0.0
