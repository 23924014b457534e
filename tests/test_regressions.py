"""Regression tests for modelling bugs found in review (each would mislead a capacity planner)."""

from __future__ import annotations

import pytest

from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Op, OpClass, OpKind, Phase, Placement, Precision, StepShape
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.cost import OpCost, RooflineCostModel
from roofline.simulator.engine import time_step
from roofline.simulator.plan import stage_placements
from roofline.workloads import get_workload

H200x8 = resolve_cluster(hardware="h200-sxm", num_gpus=8)


def _deepseek(plan: ParallelPlan, batch: int, isl: int = 4096, osl: int = 1024, **kw: object) -> object:
    w = get_workload("deepseek-v3")
    return estimate(w, H200x8, Scenario(batch, isl, osl, w.shipped_precision, plan, **kw))  # type: ignore[arg-type]


def test_attention_dp_holds_only_its_own_sequences_kv() -> None:
    """MLA latents are replicated over TP ranks, so tp 8 keeps all 256 sequences on each GPU; with
    attention DP 8 each GPU keeps its 32: one eighth."""
    tp8 = _deepseek(ParallelPlan(tp=8, ep=8), 256)
    dp8 = _deepseek(ParallelPlan(attn_dp=8, ep=8), 256)
    assert dp8.memory.kv_cache_bytes == pytest.approx(tp8.memory.kv_cache_bytes / 8)  # type: ignore[attr-defined]


def test_dsa_stores_every_token_but_attends_top_k() -> None:
    """V3.2 keeps the whole latent cache (plus indexer keys); only the attention is top-2048."""
    v32, v3 = get_workload("deepseek-v3.2"), get_workload("deepseek-v3")
    full = Placement(layer_end=61)
    assert v32.kv_cache_bytes(131_072, Precision(), full) == 131_072 * 61 * (576 * 2 + 132)
    assert v32.kv_cache_bytes(131_072, Precision(), full) > v3.kv_cache_bytes(131_072, Precision(), full)


def test_pipeline_decode_period_is_bounded_by_the_slowest_stage() -> None:
    """Llama-3.1-8B over 7 stages (uneven: the LM-head stage is heaviest), 7 micro-batches in flight:
    a decode step lasts max(sum of stages, 7 x slowest stage)."""
    w = get_workload("llama-3.1-8b")
    plan = ParallelPlan(pp=7)
    cluster = resolve_cluster(hardware="h100-sxm", num_gpus=7)
    scenario = Scenario(7, 128, 2, plan=plan)
    result = estimate(w, cluster, scenario)
    timing = time_step(w, StepShape(Phase.DECODE, 1, 1, 129), scenario, RooflineCostModel(cluster, plan),
                       stage_placements(w, plan))  # fmt: skip
    assert result.tpot_s == pytest.approx(max(timing.time_s, 7 * timing.slowest_stage_s))
    assert result.tpot_s > timing.time_s  # the unbalanced case


def test_mtp_verification_computes_logits_for_every_verified_token() -> None:
    """--mtp 2, batch 64: the main model's LM head scores 64 x 3 rows (2 x 7168 x 129280 FLOP each)."""
    result = _deepseek(ParallelPlan(tp=8, ep=8), 64, 1024, 16, mtp_drafts=2)
    head = next(r for r in result.decode.ops if r.name == "lm_head")  # type: ignore[attr-defined]
    assert head.flops == pytest.approx(64 * 3 * 2 * 7168 * 129_280 / 8)


def test_moe_routes_the_real_tokens_under_attention_dp() -> None:
    """Batch 1 with 8 attention replicas: one token, top-8 of 256 experts over 8 GPUs = 1 routed row
    per GPU on average, not 8."""
    w = get_workload("deepseek-v3")
    step = StepShape(Phase.DECODE, 1, 1, 100)
    placement = Placement(tp=1, layer_start=3, layer_end=4, ep=8, attn_dp=8)
    up = next(o for o in w.build_ops(step, w.shipped_precision, placement) if o.name == "expert_up")
    assert up.flops == pytest.approx(2 * 1 * 8 / 8 * 2 * 2048 * 7168)


def test_point_to_point_mesh_pairs_share_one_link() -> None:
    """MI300X xGMI: a 2-GPU group talks over the one 64 GB/s link between them, not all 7."""
    cluster = resolve_cluster(hardware="mi300x", num_gpus=8)
    w = get_workload("llama-3.1-8b")
    ops = w.build_ops(StepShape(Phase.PREFILL, 1, 4096, 4096), Precision(), Placement(tp=2, layer_end=32))
    op = next(o for o in ops if o.name == "attn_all_reduce")
    link = cluster.scale_up.link
    comm_s = RooflineCostModel(cluster, ParallelPlan(tp=2)).cost(op).comm_s
    assert op.collective is not None
    bandwidth_s = op.collective.message_bytes / (link.bandwidth_per_port * link.achievable_fraction)  # 2(n-1)/n = 1
    latency_s = 8.4e-6 + 2 * 3.4e-6  # NCCL ring Simple base + 2(n-1) NVLink-class hops (data/comm/nccl.yaml)
    pipeline_s = (bandwidth_s * latency_s) ** 0.5  # 2 x 0.5 x sqrt(latency x transfer), nccl.yaml
    assert comm_s == pytest.approx(bandwidth_s + latency_s + pipeline_s, rel=1e-6)


def test_logits_all_gather_moves_the_whole_vocabulary() -> None:
    w = get_workload("llama-3.1-70b")
    ops = w.build_ops(StepShape(Phase.DECODE, 32, 1, 500), Precision(), Placement(tp=8, layer_end=80))
    gather = next(o for o in ops if o.name == "logits_all_gather")
    assert gather.collective is not None and gather.collective.message_bytes == 32 * 128_256 * 4


def test_chunked_attention_decode_reads_only_the_current_chunk() -> None:
    """Llama 4 Scout at context 10,000 with 8192-token chunks: a chunked layer reads the 1,808
    entries of its chunk, a global layer all 10,000 (2 x 8 KV heads x 128 x 2 B per entry)."""
    w = get_workload("llama-4-scout")
    ops = w.build_ops(StepShape(Phase.DECODE, 1, 1, 10_000), Precision(), Placement(layer_end=48))
    by_name = {o.name: o for o in ops}
    assert by_name["attention[chunk=8192]"].kv_read_bytes == 1808 * 2 * 8 * 128 * 2
    assert by_name["attention"].kv_read_bytes == 10_000 * 2 * 8 * 128 * 2


def test_shipped_fp8_checkpoints_keep_a_16_bit_cache_by_default() -> None:
    w = get_workload("deepseek-v3")
    assert w.shipped_precision.weight is DType.FP8 and w.shipped_precision.kv_cache is DType.BF16


def test_kernel_time_is_the_p_norm_of_compute_and_memory() -> None:
    """p = 2 by default: compute 3 ms and memory 4 ms give 5 ms (3-4-5); one side zero gives the
    other; ideal (p infinite) gives max(); communication overlaps the kernel."""
    op = Op(name="x", kind=OpKind.ELEMENTWISE, op_class=OpClass.MLP, dtype=DType.BF16)
    assert OpCost(op, 3e-3, 4e-3, 0.0, 0.0, overlap_exponent=2.0).time_s == pytest.approx(5e-3)
    assert OpCost(op, 0.0, 4e-3, 0.0, 1e-6, overlap_exponent=2.0).time_s == pytest.approx(4e-3 + 1e-6)
    assert OpCost(op, 3e-3, 4e-3, 0.0, 0.0).time_s == pytest.approx(4e-3)
    assert OpCost(op, 3e-3, 4e-3, 6e-3, 0.0, overlap_exponent=2.0).time_s == pytest.approx(6e-3)
    assert resolve_cluster(hardware="h100-sxm").accelerator.efficiency.overlap_exponent == 2.0
