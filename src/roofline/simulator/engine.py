"""The estimate: prefill and decode steps timed operator by operator, pipeline stages composed,
TPOT averaged over the generation as the context grows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.ir import Op, Phase, Placement, StepShape
from roofline.parallel.stage import StageParallelism, stage_ops
from roofline.simulator.collectives import load_library
from roofline.simulator.cost import OpCost, RooflineCostModel, shared_cost_model
from roofline.simulator.memory import memory_result
from roofline.simulator.plan import Scenario, prefill_chunks, stage_placements
from roofline.simulator.results import EstimateResult, MemoryResult, OpRow, PhaseResult
from roofline.workloads.base import Workload

if TYPE_CHECKING:
    from roofline.simulator.serving.engine_config import EngineConfig

MAX_DECODE_SAMPLES = 32  # decode steps actually timed; TPOT is their mean


@dataclass(frozen=True)
class StepTiming:
    """One micro-batch through every stage: total time (sum of stages and hops), slowest stage."""

    costs: tuple[OpCost, ...]
    time_s: float
    no_overlap_s: float
    slowest_stage_s: float
    host_s: float = 0.0  # what the runtime's host side adds (simulator/host.py); 0 without a runtime


def per_replica(sequences: int, attn_dp: int) -> int:
    """Sequences the busiest attention-DP replica schedules in a step: each replica runs its own
    executor (TensorRT-LLM / SGLang DP attention), so the per-sequence host work of a step is one
    replica's share, done in parallel with the others'."""
    return -(-sequences // max(1, attn_dp))


def with_host(timing: StepTiming, runtime: EngineConfig | None, phase: Phase, sequences: int) -> StepTiming:
    """The step with its runtime's host time: the scheduler and launches before the GPU can run it,
    or, eager, the GPU waiting on Python's dispatch. Added to every stage's critical path."""
    if runtime is None:
        return timing
    from roofline.simulator.host import step_with_host  # a runtime's host model: loaded when one is given

    step = step_with_host(runtime, phase, timing.costs, timing.time_s, sequences)
    added = step.host_s + step.unfused_s
    return replace(timing, time_s=timing.time_s + added, no_overlap_s=timing.no_overlap_s + added,
                   slowest_stage_s=timing.slowest_stage_s + added, host_s=step.host_s)  # fmt: skip


def decode_step(workload: Workload, step: StepShape, scenario: Scenario, model: RooflineCostModel,
                placements: Sequence[Placement], runtime: EngineConfig | None) -> StepTiming:  # fmt: skip
    """A decode step with its runtime: padded to the CUDA graph it replays (host.graph_batch; every
    operator but attention runs the padded rows), then the runtime's host time."""
    timing = time_step(workload, step, scenario, model, placements)
    if runtime is None:
        return timing
    from roofline.simulator.host import graph_batch, padding_s  # a runtime's host model: loaded when one is given

    padded = graph_batch(runtime, step.batch)
    if padded > step.batch:
        added = padding_s(timing.costs, time_step(workload, replace(step, batch=padded), scenario, model,
                                                  placements).costs)  # fmt: skip
        timing = replace(timing, time_s=timing.time_s + added, no_overlap_s=timing.no_overlap_s + added,
                         slowest_stage_s=timing.slowest_stage_s + added)  # fmt: skip
    return with_host(timing, runtime, Phase.DECODE, per_replica(step.batch, scenario.plan.attn_dp))


def _stage_ops(workload: Workload, step: StepShape, scenario: Scenario, placement: Placement) -> list[Op]:
    plan = scenario.plan
    par = StageParallelism(pp=plan.pp, cp=plan.cp, sequence_parallel=scenario.sequence_parallel,
                           mtp_drafts=scenario.mtp_drafts)  # fmt: skip
    return stage_ops(workload, step, scenario.precision, placement, par)


def time_step(
    workload: Workload, step: StepShape, scenario: Scenario, model: RooflineCostModel, placements: Sequence[Placement]
) -> StepTiming:
    """One micro-batch through every stage, remembered on the cost model (the same step of the same
    workload and scenario is timed once)."""
    key = (id(workload), step, scenario.precision, scenario.plan.pp, scenario.plan.cp, scenario.sequence_parallel,
           scenario.mtp_drafts, scenario.overlap_ep, tuple(placements))  # fmt: skip
    owner, timing = model.steps.get(key, lambda: (workload, _time_step(workload, step, scenario, model, placements)))
    if owner is workload:  # the id was not reused by another workload
        return timing
    return _time_step(workload, step, scenario, model, placements)


def _time_step(
    workload: Workload, step: StepShape, scenario: Scenario, model: RooflineCostModel, placements: Sequence[Placement]
) -> StepTiming:
    costs: list[OpCost] = []
    stage_times: list[float] = []
    no_overlap = 0.0
    for placement in placements:
        stage_costs = [model.cost(op) for op in _stage_ops(workload, step, scenario, placement)]
        costs += stage_costs
        stage_times.append(_stage_time(stage_costs, scenario.overlap_ep))
        no_overlap += sum(c.no_overlap_s for c in stage_costs)
    return StepTiming(tuple(costs), sum(stage_times), no_overlap, max(stage_times))


def _stage_time(costs: Sequence[OpCost], overlap_ep: bool) -> float:
    """Ops run one after another; with two-batch overlap (DeepEP / SGLang TBO) the EP all-to-alls
    of one half-batch run under the other half's compute, so they cost only what they exceed it by."""
    total = sum(c.total_s for c in costs)
    if not overlap_ep:
        return total
    ep = sum(c.total_s for c in costs if c.op.collective is not None and c.op.collective.group == "ep")
    return max(total - ep, ep)


def _phase_result(
    phase: Phase,
    context: int,
    timings: list[tuple[StepTiming, int]],
    time_s: float,
    no_overlap_s: float,
    host_s: float = 0.0,
) -> PhaseResult:
    """Operator rows of a phase: each step's ops times how often the step repeats, the same
    operator merged across pipeline stages and steps."""
    rows: dict[str, OpRow] = {}
    for timing, repeat in timings:
        for c in timing.costs:
            op, n = c.op, c.op.count * repeat
            row = OpRow(
                phase=phase,
                name=op.name,
                op_class=op.op_class.value,
                kind=op.kind.value,
                count=n,
                flops=op.flops * n,
                bytes=op.bytes * n,
                compute_s=c.compute_s * n,
                memory_s=c.memory_s * n,
                communication_s=c.comm_s * n,
                overhead_s=c.overhead_s * n,
                time_s=c.total_s * repeat,
                bound=c.bound,
                detail=c.detail,
            )
            prev = rows.get(op.name)
            rows[op.name] = row if prev is None else prev.plus(row)
    ops = tuple(rows.values())
    return PhaseResult(
        phase=phase,
        context_tokens=context,
        time_s=time_s,
        time_no_overlap_s=no_overlap_s,
        flops=sum(r.flops for r in ops),
        bytes=sum(r.bytes for r in ops),
        compute_s=sum(r.compute_s for r in ops),
        memory_s=sum(r.memory_s for r in ops),
        communication_s=sum(r.communication_s for r in ops),
        overhead_s=sum(r.overhead_s for r in ops),
        ops=ops,
        host_s=host_s,
    )


def time_prefill(
    workload: Workload,
    scenario: Scenario,
    model: RooflineCostModel,
    placements: Sequence[Placement],
    runtime: EngineConfig | None = None,
) -> tuple[float, float, list[tuple[StepTiming, int]]]:
    """TTFT of the whole batch: its prefill steps (chunks) one after another. With pipeline
    stages, consecutive steps overlap: each costs its slowest stage, and the last one also
    needs the rest of the pipeline to drain."""
    budget = scenario.max_num_tokens * scenario.plan.cp  # each context-parallel rank takes its own budget
    chunks = prefill_chunks(scenario.batch, scenario.isl, budget, scenario.plan.attn_dp)
    replicas = scenario.plan.attn_dp
    timings = [(with_host(time_step(workload, step, scenario, model, placements), runtime, Phase.PREFILL,
                          per_replica(step.batch, replicas)), repeat) for step, repeat in chunks]  # fmt: skip
    last = timings[-1][0]
    batch_s = sum(t.slowest_stage_s * r for t, r in timings) + last.time_s - last.slowest_stage_s
    overlap_sum = sum(t.time_s * r for t, r in timings)
    no_overlap_s = batch_s * sum(t.no_overlap_s * r for t, r in timings) / overlap_sum
    return batch_s, no_overlap_s, timings


def mean_request_ttft_s(scenario: Scenario, timings: Sequence[tuple[StepTiming, int]]) -> float:
    """Mean time to first token over the batch's requests when they all arrive at once and the
    engine serves them first come, first served: a request's first token comes with the step that
    finishes its prompt (its slowest stage after the steps before it, then the pipeline's drain).

    Short prompts are packed `step.batch` to a step, so each step finishes that many requests; a
    long prompt's chunks run back to back, so each round of chunks finishes `step.batch` requests
    (the last round the rest). The last request's TTFT is the batch's prefill time."""
    budget = scenario.max_num_tokens * scenario.plan.cp
    chunks = prefill_chunks(scenario.batch, scenario.isl, budget, scenario.plan.attn_dp)
    events: list[tuple[float, float, int]] = []  # (stage time to add, drain, requests finished)
    if scenario.isl < budget:
        for (step, _), (timing, repeat) in zip(chunks, timings, strict=True):
            events += [(timing.slowest_stage_s, timing.time_s - timing.slowest_stage_s, step.batch)] * repeat
    else:
        last = timings[-1][0]
        per_round = sum(t.slowest_stage_s for t, _ in timings)
        events = [(per_round, last.time_s - last.slowest_stage_s, chunks[0][0].batch)] * timings[0][1]
    elapsed, total_s, left = 0.0, 0.0, scenario.batch
    for stage_s, drain_s, finished in events:
        elapsed += stage_s
        done = min(finished, left)
        total_s += done * (elapsed + drain_s)
        left -= done
    return total_s / scenario.batch


def decode_contexts(isl: int, osl: int, samples: int = MAX_DECODE_SAMPLES) -> list[int]:
    """Context lengths of the decode steps to time: every step when there are few, else the
    midpoints of `samples` equal bins. Step j (1..osl-1) attends to isl + j tokens."""
    steps = max(osl - 1, 1)
    if steps <= samples:
        return [isl + j for j in range(1, steps + 1)]
    return [isl + 1 + int((i + 0.5) * steps / samples) for i in range(samples)]


def _on_cluster_host(runtime: EngineConfig, cluster: Cluster) -> EngineConfig:
    from roofline.simulator.host import on_cluster_host

    return on_cluster_host(runtime, cluster)


def estimate(workload: Workload, cluster: Cluster, scenario: Scenario, ideal: bool = False,
             memory: MemoryResult | None = None) -> EstimateResult:  # fmt: skip
    """Prefill and decode timed operator by operator; `memory`: the scenario's memory_result when the
    caller has it already."""
    plan, precision = scenario.plan, scenario.precision
    if scenario.mtp_drafts and not workload.mtp_layers:
        raise RooflineError(f"{workload.id} ships no MTP layers; drop --mtp")
    placements = stage_placements(workload, plan)
    model = shared_cost_model(cluster, plan, ideal=ideal, library=load_library(scenario.comm_library),
                              runtime_attention=scenario.attention_kernel)  # fmt: skip
    runtime = None if scenario.runtime is None or ideal else _on_cluster_host(scenario.runtime, cluster)
    ttft_batch_s, ttft_no_overlap_s, prefill = time_prefill(workload, scenario, model, placements, runtime)
    micro = scenario.micro_batch
    contexts = decode_contexts(scenario.isl, scenario.osl)
    verify = 1 + scenario.mtp_drafts  # the main model checks the drafts and adds one token of its own
    decode_steps = [
        decode_step(workload, StepShape(Phase.DECODE, micro, verify, c + verify - 1), scenario, model, placements,
                    runtime)
        for c in contexts
    ]  # fmt: skip
    per_token = len(decode_steps) * scenario.tokens_per_decode_step
    # with m micro-batches in flight a step ends when one has crossed every stage and every stage
    # has served all m: the slower of the two (equal when stages are balanced and m == pp)
    periods = [max(s.time_s, scenario.micro_batches * s.slowest_stage_s) for s in decode_steps]
    tpot_s = sum(periods) / per_token
    tpot_no_overlap_s = sum(max(s.no_overlap_s, p) for s, p in zip(decode_steps, periods, strict=True)) / per_token
    middle = decode_steps[len(decode_steps) // 2]

    return EstimateResult(
        model=workload.id,
        hardware=cluster.accelerator.id,
        system=cluster.system.id,
        num_gpus=plan.num_gpus,
        tp=plan.tp,
        pp=plan.pp,
        dp=plan.dp,
        ep=plan.ep,
        attn_dp=plan.attn_dp,
        cp=plan.cp,
        batch=scenario.batch,
        isl=scenario.isl,
        osl=scenario.osl,
        weight_dtype=precision.weight.value,
        activation_dtype=precision.activation.value,
        kv_cache_dtype=precision.kv_cache.value,
        ideal=ideal,
        ttft_s=mean_request_ttft_s(scenario, prefill),
        ttft_batch_s=ttft_batch_s,
        tpot_s=tpot_s,
        ttft_batch_no_overlap_s=ttft_no_overlap_s,
        tpot_no_overlap_s=tpot_no_overlap_s,
        prefill=_phase_result(
            Phase.PREFILL, scenario.isl, prefill, ttft_batch_s, ttft_no_overlap_s, sum(t.host_s * r for t, r in prefill)
        ),
        decode=_phase_result(
            Phase.DECODE,
            contexts[len(contexts) // 2],
            [(middle, 1)],
            tpot_s,
            tpot_no_overlap_s,
            sum(s.host_s for s in decode_steps) / per_token,
        ),
        runtime=scenario.runtime.id if scenario.runtime is not None else None,
        memory=memory if memory is not None else memory_result(workload, cluster, scenario),
    )
