"""Engine goldens (arithmetic in the docstrings) and property tests."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Phase, Precision, StepShape
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.cost import RooflineCostModel, wave_utilization
from roofline.simulator.plan import stage_placements
from roofline.workloads import get_workload
from roofline.workloads.layers import causal_kv_sum

from .conftest import run

H100_BW = 3.35e12  # B/s, NVIDIA H100 SXM datasheet
H100_BF16 = 989.4e12  # FLOP/s dense


def test_ideal_decode_of_a_30b_class_model_is_weights_over_bandwidth() -> None:
    """The issue's hand example, on Qwen3-32B (32.76 B params) in bf16 on one H100, batch 1:
    a decode step reads every weight except the embedding table (only one row of it):
    (32,762,123,264 - 151,936 x 5,120) x 2 B = 63.97 GB -> 63.97e9 / 3.35e12 = 19.10 ms;
    its ~64 GFLOP take ~0.065 ms at 989.4 TFLOP/s, so the step is memory-bound."""
    w = get_workload("qwen3-32b")
    read_bytes = (w.parameter_counts().total - 151_936 * 5_120) * 2
    result = run("qwen3-32b", isl=16, osl=2, ideal=True)
    assert result.tpot_s == pytest.approx(read_bytes / H100_BW, rel=0.01)
    assert result.decode.compute_s < result.decode.memory_s / 100
    assert result.decode.bound == "memory"


def test_70b_decode_on_one_h100_is_bounded_by_weight_bytes_and_does_not_fit() -> None:
    """Llama-3.1-70B bf16, batch 1, one H100: weights 70.55e9 x 2 B = 141.1 GB > 79.65 GiB, so
    `fits` is false (an answer, not an error), and TPOT >= (141.1e9 - 2.1e9 table) / 3.35e12 = 41.5 ms."""
    result = run("llama-3.1-70b", isl=128, osl=8)
    assert result.tpot_s >= (70.55e9 - 128_256 * 8192) * 2 / H100_BW
    assert not result.memory.fits
    assert result.memory.margin_bytes < -50 * 2**30


def test_prefill_matmul_and_attention_flops_by_hand() -> None:
    """Llama-3.1-8B, batch 2, isl 512, one GPU. Per token per layer, matmuls 2 x 218,103,808
    (the layer's weights without norms) FLOP; causal attention per sequence per layer
    2 x 32 heads x (128 + 128) x (512 x 513 / 2); LM head on the last token only 2 x 4096 x 128256."""
    result = run("llama-3.1-8b", batch=2, isl=512, osl=2)
    tokens, layers = 2 * 512, 32
    matmul = 2 * 218_103_808 * tokens * layers + 2 * 2 * 4096 * 128_256
    attention = 2 * layers * 2 * 32 * 256 * (512 * 513 / 2)
    rows = {r.name: r for r in result.prefill.ops}
    got_matmul = sum(r.flops for r in result.prefill.ops if r.kind == "matmul")
    assert got_matmul == pytest.approx(matmul, rel=1e-9)
    assert rows["attention"].flops == pytest.approx(attention, rel=1e-9)


def test_causal_kv_sum_with_window() -> None:
    assert causal_kv_sum(0, 4, None) == 1 + 2 + 3 + 4
    assert causal_kv_sum(0, 6, 3) == 1 + 2 + 3 + 3 + 3 + 3
    assert causal_kv_sum(10, 1, None) == 11  # decode step at context 11
    assert causal_kv_sum(10, 1, 4) == 4
    assert causal_kv_sum(2, 3, 4) == 3 + 4 + 4


def test_tp_all_reduce_by_hand() -> None:
    """8 x H100 (NVLink 4, 18 x 25 GB/s = 450 GB/s per direction, NVSwitch with NVLS), 16 MiB:
    time = latency + transfer + 2 x 0.5 x sqrt(latency x transfer) (pipeline fill, nccl.yaml).
    NVLS: 25 us + 16,777,216 / (450e9 x 0.61) = 25 + 61.12 + 39.09 = 125.2 us, which beats the best ring
    protocol (LL128: 14 + 14 x 1.9 = 40.6 us + 2 x 7/8 x 16,777,216 / (450e9 x 0.82 x 0.92) = 86.5 us,
    + 59.3 us = 186.4 us; Simple 202.3 us), as NCCL's tuner would (constants: simulator/data/comm/nccl.yaml)."""
    from roofline.simulator.collectives import CollectiveModel, group_topology

    cluster = resolve_cluster(hardware="h100-sxm", num_gpus=8)
    link = cluster.scale_up.link
    assert cluster.scale_up.bandwidth_per_gpu_bytes_per_s == pytest.approx(450e9)
    step = StepShape(Phase.DECODE, batch=1024, new_tokens=1, context_tokens=100)
    w = get_workload("llama-3.1-70b")
    placement = stage_placements(w, ParallelPlan(tp=8))[0]
    op = next(o for o in w.build_ops(step, Precision(), placement) if o.name == "attn_all_reduce")
    assert op.collective is not None and op.collective.message_bytes == 1024 * 8192 * 2
    transfer = 16_777_216 / (450e9 * 0.61)
    nvls = 25e-6 + transfer + (25e-6 * transfer) ** 0.5
    assert nvls == pytest.approx(125.2e-6, rel=1e-3)
    assert RooflineCostModel(cluster, ParallelPlan(tp=8)).cost(op).comm_s == pytest.approx(nvls, rel=1e-6)
    ring = CollectiveModel().cost(op.collective.kind, 16_777_216, group_topology(cluster, 8), algorithm="ring")
    latency, transfer = 14e-6 + 14 * 1.9e-6, 2 * 7 / 8 * 16_777_216 / (450e9 * link.achievable_fraction * 0.92)
    ll128 = latency + transfer + (latency * transfer) ** 0.5
    assert ll128 == pytest.approx(186.4e-6, rel=1e-3)
    assert (ring.protocol, ring.time_s) == ("LL128", pytest.approx(ll128, rel=1e-6))


def test_ideal_has_no_overheads_and_is_faster() -> None:
    real, ideal = run(isl=256, osl=8), run(isl=256, osl=8, ideal=True)
    assert ideal.decode.overhead_s == 0
    assert ideal.tpot_s < real.tpot_s and ideal.ttft_s < real.ttft_s


def test_fp8_weights_on_a100_run_weight_only() -> None:
    """A100 has no fp8 tensor cores: fp8 weights are read at 1 B and dequantized to bf16 (W8A16)."""
    fp8, bf16 = run(hardware="a100-sxm-80gb", weight="fp8", kv="bf16"), run(hardware="a100-sxm-80gb")
    up8 = next(r for r in fp8.prefill.ops if r.name == "gate_up_proj")
    up16 = next(r for r in bf16.prefill.ops if r.name == "gate_up_proj")
    assert up8.compute_s == pytest.approx(up16.compute_s)
    assert fp8.memory.weights_bytes < 0.6 * bf16.memory.weights_bytes


def test_a_format_with_no_math_path_is_a_clear_error() -> None:
    cluster = resolve_cluster(hardware="h100-sxm")
    acc = cluster.accelerator
    no_16bit = acc.model_copy(update={"compute": acc.compute.model_copy(update={"bf16": None, "fp8": None})})
    model = RooflineCostModel(dataclasses.replace(cluster, accelerator=no_16bit))
    with pytest.raises(RooflineError, match="h100-sxm has no fp8 support"):
        model.math_dtype(DType.FP8)


def test_fp8_weights_halve_decode_weight_traffic() -> None:
    bf16, fp8 = run(isl=64, osl=4), run(isl=64, osl=4, weight="fp8")
    bf16_w = next(r for r in bf16.decode.ops if r.name == "gate_up_proj").bytes
    fp8_w = next(r for r in fp8.decode.ops if r.name == "gate_up_proj").bytes
    assert fp8_w == pytest.approx(bf16_w / 2, rel=0.01)


def test_pipeline_parallel_splits_weights_and_adds_hops() -> None:
    one, two = run("llama-3.1-70b", tp=4, isl=256, osl=8), run("llama-3.1-70b", tp=4, pp=2, isl=256, osl=8)
    assert two.memory.weights_bytes < 0.55 * one.memory.weights_bytes
    assert two.num_gpus == 8
    # batch 1: one micro-batch walks both stages, so decode is not faster, only the hop is added
    assert two.tpot_s >= one.tpot_s * 0.98
    assert any(r.name == "pp_send_recv" for r in two.decode.ops)


def test_wave_quantization() -> None:
    """A 128x256-tile GEMM with exactly 132 tiles fills one H100 wave; 133 tiles need two waves."""
    tiles = [(128, 256)]
    assert wave_utilization(128 * 12, 256 * 11, 4096, 1, 132, tiles) == pytest.approx(1.0)
    assert wave_utilization(128 * 133, 256, 4096, 1, 132, tiles) == pytest.approx(133 / 264)


def test_decode_contexts_sample_the_whole_generation() -> None:
    from roofline.simulator.engine import decode_contexts

    assert decode_contexts(100, 4) == [101, 102, 103]
    sampled = decode_contexts(100, 1001)
    assert len(sampled) == 32 and sampled[0] > 100 and sampled[-1] < 1101


# ---- properties ---------------------------------------------------------------------------------

MODELS = st.sampled_from(["llama-3.1-8b", "mistral-7b", "qwen3-8b"])


@settings(max_examples=20, deadline=None)
@given(
    model=MODELS,
    batch=st.integers(1, 64),
    isl=st.integers(1, 4096),
    osl=st.integers(1, 64),
    factor=st.floats(1.01, 8.0),
)
def test_more_bandwidth_or_flops_never_slows_anything(
    model: str, batch: int, isl: int, osl: int, factor: float
) -> None:
    cluster = resolve_cluster(hardware="h100-sxm")
    acc = cluster.accelerator
    faster_memory = acc.model_copy(
        update={"memory": acc.memory.model_copy(update={"bandwidth": acc.memory.bandwidth * factor})}
    )
    faster_compute = acc.model_copy(
        update={
            "compute": acc.compute.model_copy(
                update={k: getattr(acc.compute, k) * factor for k in ("fp32", "bf16", "fp16", "fp8")}
            )
        }
    )
    scenario = Scenario(batch, isl, osl)
    base = estimate(get_workload(model), cluster, scenario)
    for better in (faster_memory, faster_compute):
        result = estimate(get_workload(model), dataclasses.replace(cluster, accelerator=better), scenario)
        assert result.ttft_s <= base.ttft_s * (1 + 1e-12)
        assert result.tpot_s <= base.tpot_s * (1 + 1e-12)
        for before, after in zip(base.decode.ops, result.decode.ops, strict=True):
            assert after.time_s <= before.time_s * (1 + 1e-12)


@settings(max_examples=20, deadline=None)
@given(model=MODELS, batch=st.integers(1, 128), isl=st.integers(1, 8192), osl=st.integers(2, 64))
def test_time_is_monotone_in_batch_isl_and_context(model: str, batch: int, isl: int, osl: int) -> None:
    """The prefill of the batch and the decode step never get faster with more work. (The mean
    request's TTFT may: once prompts stop packing two to a step, the first finishes sooner.)"""
    base = run(model, batch=batch, isl=isl, osl=osl)
    assert run(model, batch=batch + 1, isl=isl, osl=osl).ttft_batch_s >= base.ttft_batch_s
    assert run(model, batch=batch + 1, isl=isl, osl=osl).tpot_s >= base.tpot_s
    assert run(model, batch=batch, isl=isl + 64, osl=osl).ttft_batch_s >= base.ttft_batch_s
    assert run(model, batch=batch, isl=isl + 64, osl=osl).tpot_s >= base.tpot_s  # longer context
    # a request's first token comes with the step that finishes its prompt, no later than the batch's
    assert base.ttft_batch_s / batch * (1 - 1e-12) <= base.ttft_s <= base.ttft_batch_s * (1 + 1e-12)


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 4096), isl=st.integers(1, 32768), osl=st.integers(1, 4096))
def test_fits_agrees_with_the_memory_total(batch: int, isl: int, osl: int) -> None:
    memory = run("llama-3.1-8b", batch=batch, isl=isl, osl=osl).memory
    assert memory.fits == (memory.total_bytes <= memory.capacity_bytes)
    assert memory.total_bytes == pytest.approx(
        memory.weights_bytes + memory.kv_cache_bytes + memory.activation_bytes + memory.reserve_bytes
    )
    assert (memory.max_batch >= batch) == memory.fits


def test_prefill_chunks_pack_short_prompts_and_split_long_ones() -> None:
    from roofline.simulator.plan import prefill_chunks

    # 16 prompts of 2048 tokens, budget 8192: 4 prompts per step, 4 steps
    (step, repeat), *rest = prefill_chunks(16, 2048, 8192)
    assert (step.batch, step.new_tokens, step.context_tokens, repeat, rest) == (4, 2048, 2048, 4, [])
    # 5 prompts of 3000: 2 per step twice, then 1
    assert [(s.batch, r) for s, r in prefill_chunks(5, 3000, 8192)] == [(2, 2), (1, 1)]
    # one 20,000-token prompt: chunks of 8192, 8192, 3616, each attending to the chunks before it
    chunks = prefill_chunks(1, 20_000, 8192)
    assert [(s.new_tokens, s.context_tokens) for s, _ in chunks] == [(8192, 8192), (8192, 16384), (3616, 20000)]


def test_chunked_prefill_keeps_the_flops_and_bounds_activations() -> None:
    """Chunking changes how a prompt is scheduled, not its attention work: 1 x 20,000 tokens
    attends sum_{s=1}^{20000} s = 200,010,000 KV entries per head per layer either way."""
    whole = run(batch=1, isl=20_000, osl=2)
    chunked_scenario_flops = next(r.flops for r in whole.prefill.ops if r.name == "attention")
    assert chunked_scenario_flops == pytest.approx(32 * 2 * 32 * 256 * 200_010_000, rel=1e-9)
    small_budget = run(batch=64, isl=1024, osl=2)
    assert small_budget.memory.activation_bytes < 2 * 8192 * (2 * 4096 + 3 * 14336) * 2 + 64 * 128_256 * 4


def test_4bit_weights_on_hardware_without_fp4_run_weight_only() -> None:
    """H100 has no fp4 tensor cores: NVFP4/MXFP4 weights are dequantized to bf16 (W4A16 kernels),
    so decode reads 4.5-bit weights but the matmuls run at the bf16 peak and fraction."""
    fp4, bf16 = run(isl=64, osl=4, weight="fp4", kv="bf16"), run(isl=64, osl=4)
    fp4_up = next(r for r in fp4.prefill.ops if r.name == "gate_up_proj")
    bf16_up = next(r for r in bf16.prefill.ops if r.name == "gate_up_proj")
    assert fp4_up.compute_s == pytest.approx(bf16_up.compute_s)
    assert fp4_up.bytes < bf16_up.bytes


def test_prefill_chunks_with_attention_replicas() -> None:
    """Attention data parallelism: each of 8 replicas packs its own 4 x 2048-token prompts per step,
    so 256 prompts take 8 steps of 32; 16 long prompts run 8 at a time."""
    from roofline.simulator.plan import prefill_chunks

    assert [(s.batch, r) for s, r in prefill_chunks(256, 2048, 8192, replicas=8)] == [(32, 8)]
    long = prefill_chunks(16, 20_000, 8192, replicas=8)
    assert [(s.batch, s.new_tokens, r) for s, r in long] == [(8, 8192, 2), (8, 8192, 2), (8, 3616, 2)]
