"""Timing a kernel right: warm-up, repetitions of several back-to-back calls, the median.

- CPU: `time.perf_counter` around the calls of a repetition. With one thread, the calling
  thread's CPU time (`time.thread_time`) instead: every kernel then runs in that thread, and
  on a shared host its CPU time leaves out the slices the OS gave other processes, which wall
  time counts (two calibrations at once on two cores doubled some wall times).
- CUDA: a pair of CUDA events recorded around the calls (GPU time, launch gaps included as a
  well-fed stream pays them); `torch.cuda.synchronize` before each repetition, the end event
  waited on after it. Events are created once, outside the timed region.
- The calls of a repetition are enough to last `min_repetition_s` (one call is timed after the
  warm-up to size it), so short kernels are not lost in the clock's resolution.
- The median over repetitions is the figure; the spread is kept for the report.

The callable must not allocate: `bench.py` preallocates every operand and output (out= variants).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TimingPolicy:
    warmup: int = 2
    repetitions: int = 7
    min_repetition_s: float = 5e-3
    max_calls: int = 2000
    max_case_s: float = 5.0  # past this, fewer repetitions (never under `min_repetitions`)
    min_repetitions: int = 3


QUICK_POLICY = TimingPolicy(warmup=1, repetitions=5, min_repetition_s=5e-3, max_case_s=2.0)
FULL_POLICY = TimingPolicy(warmup=3, repetitions=10, min_repetition_s=20e-3, max_case_s=10.0)


@dataclass(frozen=True)
class Timing:
    per_call_s: tuple[float, ...]  # one figure per repetition: its time over its calls
    calls: int  # calls per repetition

    @property
    def median_s(self) -> float:
        return statistics.median(self.per_call_s)

    @property
    def spread(self) -> float:
        """(slowest - fastest) / median over the repetitions."""
        return (max(self.per_call_s) - min(self.per_call_s)) / self.median_s


class Clock:
    """Wall clock on the host (CPU kernels run synchronously)."""

    name = "wall clock (time.perf_counter)"

    def now(self) -> float:
        return time.perf_counter()

    def sync(self) -> None:
        return None

    def time_calls(self, fn: Callable[[], Any], calls: int) -> float:
        start = self.now()
        for _ in range(calls):
            fn()
        return self.now() - start


class ThreadClock(Clock):
    """CPU time of the calling thread: for single-threaded host runs on a shared machine."""

    name = "CPU time of the calling thread (time.thread_time; one torch thread)"

    def now(self) -> float:
        return time.thread_time()


class CudaClock(Clock):
    """CUDA events on the current stream; the host waits for the end event only."""

    name = "CUDA events"

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def sync(self) -> None:
        self.torch.cuda.synchronize()

    def time_calls(self, fn: Callable[[], Any], calls: int) -> float:
        self.sync()
        self.start.record()
        for _ in range(calls):
            fn()
        self.end.record()
        self.end.synchronize()
        return float(self.start.elapsed_time(self.end)) * 1e-3


def measure(fn: Callable[[], Any], clock: Clock, policy: TimingPolicy) -> Timing:
    for _ in range(policy.warmup):
        fn()
    clock.sync()
    one = max(clock.time_calls(fn, 1), 1e-9)
    calls = max(1, min(policy.max_calls, math.ceil(policy.min_repetition_s / one)))
    repetitions = policy.repetitions
    if one * calls * repetitions > policy.max_case_s:
        repetitions = max(policy.min_repetitions, int(policy.max_case_s / (one * calls)))
    samples = tuple(clock.time_calls(fn, calls) / calls for _ in range(repetitions))
    return Timing(samples, calls)
