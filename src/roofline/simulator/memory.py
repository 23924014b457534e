"""Memory per GPU: weights, KV cache, activations and the runtime reserve; fit, max batch, max
context. Reported for the most loaded GPU (the heaviest pipeline stage)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roofline.hardware_specs.cluster import Cluster
from roofline.ir import Placement
from roofline.simulator.plan import Scenario, prefill_chunks, stage_placements
from roofline.simulator.results import MemoryResult
from roofline.workloads.base import Workload

_MAX_SEARCH = 1 << 26  # upper end of the batch / context searches (67M)


@dataclass(frozen=True)
class _StageMemory:
    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes


def _stage_memory(
    workload: Workload, scenario: Scenario, placement: Placement, batch: int, context_tokens: int
) -> _StageMemory:
    precision = scenario.precision
    prompt = min(scenario.isl, context_tokens)
    cp = scenario.plan.cp
    largest_step = prefill_chunks(batch, prompt, scenario.max_num_tokens * cp, scenario.plan.attn_dp)[0][0]
    mtp = workload.mtp_weight_bytes(precision, placement) if scenario.mtp_drafts and placement.has_lm_head else 0.0
    return _StageMemory(
        weights_bytes=workload.weight_bytes(precision, placement) + mtp,
        kv_cache_bytes=placement.local_batch(batch)
        * workload.kv_cache_bytes(context_tokens, precision, placement)
        / cp,
        activation_bytes=workload.activation_bytes(largest_step, precision, placement) / cp,
    )


def worst_stage(workload: Workload, scenario: Scenario, batch: int, context_tokens: int) -> _StageMemory:
    stages = [
        _stage_memory(workload, scenario, p, batch, context_tokens) for p in stage_placements(workload, scenario.plan)
    ]
    return max(stages, key=lambda s: s.total_bytes)


def _largest(fits: Callable[[int], bool], low: int = 1) -> int:
    """Largest n >= low with fits(n), assuming fits is monotone (0 when even `low` does not fit)."""
    if not fits(low):
        return 0
    high = low
    while high < _MAX_SEARCH and fits(high * 2):
        high *= 2
    if high >= _MAX_SEARCH:
        return _MAX_SEARCH
    lo, hi = high, high * 2  # fits(lo) and not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def memory_result(workload: Workload, cluster: Cluster, scenario: Scenario) -> MemoryResult:
    acc = cluster.accelerator
    reserve = acc.runtime_reserve if scenario.reserve_bytes is None else scenario.reserve_bytes
    capacity = acc.memory.capacity
    context = scenario.isl + scenario.osl

    def fits(batch: int, tokens: int) -> bool:
        return worst_stage(workload, scenario, batch, tokens).total_bytes + reserve <= capacity

    worst = worst_stage(workload, scenario, scenario.batch, context)
    return MemoryResult(
        weights_bytes=worst.weights_bytes,
        kv_cache_bytes=worst.kv_cache_bytes,
        activation_bytes=worst.activation_bytes,
        reserve_bytes=reserve,
        capacity_bytes=capacity,
        kv_cache_bytes_per_token=workload.kv_cache_bytes_per_token(scenario.precision),
        max_batch=_largest(lambda b: fits(b, context)),
        max_context_tokens=_largest(lambda c: fits(scenario.batch, c)),
    )
