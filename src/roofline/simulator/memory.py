"""Memory per GPU: weights, KV cache, activations and the runtime reserve; fit, max batch, max
context. Reported for the most loaded GPU (the heaviest pipeline stage)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roofline.hardware_specs.cluster import Cluster
from roofline.ir import Placement
from roofline.simulator import capacity as cap
from roofline.simulator.capacity import KvCapacity
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
    def total_bytes(self) -> float:  # without the reserve: the stage's own bytes
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


def _largest(fits: Callable[[int], bool], low: int = 1, high_limit: int = _MAX_SEARCH) -> int:
    """Largest n in [low, high_limit] with fits(n), assuming fits is monotone (0 when even `low` does
    not fit)."""
    if not fits(low):
        return 0
    high = low
    while high < high_limit and fits(min(high * 2, high_limit)):
        high = min(high * 2, high_limit)
    if high >= high_limit:
        return high_limit
    lo, hi = high, min(high * 2, high_limit)  # fits(lo) and not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def kv_capacity(workload: Workload, cluster: Cluster, scenario: Scenario, batch: int, length: int,
                kv_memory_fraction: float = 1.0) -> KvCapacity:  # fmt: skip
    """One rule for every path (estimate's max batch, serve's KV budget): the most loaded stage's
    weights and the activations of the largest prefill step of `batch` sequences, and the reserve,
    come off the GPU's capacity; the KV bytes per token are those of the stage that holds the most."""
    stage = worst_stage(workload, scenario, batch, length)
    acc = cluster.accelerator
    free = cap.free_bytes(acc.memory.capacity, cap.reserve_bytes(acc, scenario.reserve_bytes), stage.weights_bytes,
                          stage.activation_bytes)  # fmt: skip
    placements = stage_placements(workload, scenario.plan)
    worst = max(placements, key=lambda p: workload.kv_cache_bytes(length, scenario.precision, p))
    per_token = workload.kv_cache_bytes(length, scenario.precision, worst) / length / scenario.plan.cp
    return KvCapacity(free, kv_memory_fraction, per_token, scenario.plan.attn_dp)


def memory_result(workload: Workload, cluster: Cluster, scenario: Scenario) -> MemoryResult:
    """Memory of `scenario.batch` sequences of isl + osl tokens, and the largest batch and context
    that fit: the batch from the KV capacity (`kv_capacity`, the rule serve uses too), the context
    capped at the model's own window."""
    reserve = cap.reserve_bytes(cluster.accelerator, scenario.reserve_bytes)
    capacity = cluster.accelerator.memory.capacity
    context = scenario.isl + scenario.osl
    window = workload.max_position_embeddings or _MAX_SEARCH

    def fits(batch: int, tokens: int) -> bool:
        stage = worst_stage(workload, scenario, batch, tokens)
        used = cap.used_bytes(stage.weights_bytes, stage.kv_cache_bytes, stage.activation_bytes, reserve)
        return bool(cap.fits(used, capacity))

    worst = worst_stage(workload, scenario, scenario.batch, context)
    # with a runtime, its share of the memory left for KV (vLLM gpu_memory_utilization, TensorRT-LLM
    # kv_cache_free_gpu_mem_fraction ...): the capacity rule serve uses
    fraction = scenario.runtime.kv_memory_fraction if scenario.runtime is not None else 1.0
    kv = kv_capacity(workload, cluster, scenario, scenario.batch, context, fraction)
    return MemoryResult(
        weights_bytes=worst.weights_bytes,
        kv_cache_bytes=worst.kv_cache_bytes,
        activation_bytes=worst.activation_bytes,
        reserve_bytes=reserve,
        capacity_bytes=capacity,
        kv_cache_bytes_per_token=workload.kv_cache_bytes_per_token(scenario.precision),
        kv_capacity_tokens=kv.tokens,
        max_batch=min(kv.tokens // context, _MAX_SEARCH),
        max_context_tokens=_largest(lambda c: fits(scenario.batch, c), high_limit=window),
        context_window_tokens=workload.max_position_embeddings,
    )
