"""Attention by shape: the call shape on the ops, the curves (attention_efficiency.py), the FP8 KV
cache (FlashMLA's 656-byte layout), the attention_kernel predictor and its fit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Op, OpKind, Phase, Placement, Precision, StepShape
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.attention_efficiency import AttentionModel, load_curves
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.fast import FastModel, Layout
from roofline.validation import validate_file
from roofline.validation.attention_fit import fit_curve, fit_rows
from roofline.validation.cases import read_cases
from roofline.validation.predict_attention import attention_kernel, counted_flops
from roofline.workloads import get_workload
from roofline.workloads.layers import AttentionShape, attention_block_ops

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "attention_kernels.csv"
AIC = Path(__file__).resolve().parents[2] / "shared" / "validation" / "kernels-aic.csv"
LLAMA_8B = AttentionShape(4096, 32, 8, 128)


def _core(step: StepShape, kv: DType = DType.BF16, shape: AttentionShape = LLAMA_8B, tp: int = 1) -> Op:
    ops = attention_block_ops(shape, step, Precision(kv_cache=kv), Placement(tp=tp), 1)
    return next(op for op in ops if op.kind is OpKind.ATTENTION)


def _model(hardware: str) -> RooflineCostModel:
    return RooflineCostModel(resolve_cluster(hardware, num_gpus=1))


# ---- the call shape on the ops -----------------------------------------------------------------------


def test_gqa_op_records_its_call_shape_per_gpu() -> None:
    call = _core(StepShape(Phase.DECODE, 8, 1, 4096), DType.FP8, tp=2).attention
    assert call is not None
    assert (call.phase, call.batch, call.q_len, call.kv_len) == (Phase.DECODE, 8, 1, 4096)
    assert (call.heads, call.kv_heads, call.head_dim, call.head_dim_v) == (16, 4, 128, 128)  # TP 2 halves heads
    assert call.variant == "gqa" and call.kv_dtype is DType.FP8


def test_mla_ops_record_expanded_prefill_and_absorbed_sparse_decode() -> None:
    w = get_workload("deepseek-v3.2")
    placement = Placement(tp=8, layer_start=3, layer_end=4)
    prefill = w.build_ops(StepShape(Phase.PREFILL, 1, 4096, 4096), w.shipped_precision, placement)
    decode = w.build_ops(StepShape(Phase.DECODE, 4, 1, 8000), w.shipped_precision, placement)
    mha = next(op.attention for op in prefill if op.name == "attention_mha")
    mqa = next(op.attention for op in decode if op.name == "attention_mqa")
    assert mha is not None and (mha.variant, mha.heads, mha.kv_heads, mha.head_dim, mha.head_dim_v) == (
        "mha_expanded", 16, 16, 192, 128)  # fmt: skip
    assert mqa is not None and (mqa.variant, mqa.heads, mqa.kv_heads, mqa.head_dim, mqa.head_dim_v) == (
        "mla_sparse", 16, 1, 576, 512)  # fmt: skip
    assert mqa.kv_len == 2048  # the top-k entries the newest token attends, not the 8000 cached


# ---- prefill: efficiency by shape ----------------------------------------------------------------------


def test_prefill_efficiency_rises_with_context() -> None:
    model = _model("h100-sxm")
    rates = []
    for n in (512, 2048, 8192):
        op = _core(StepShape(Phase.PREFILL, 1, n, n))
        rates.append(op.flops / model.cost(op).time_s)
    assert rates[0] < rates[1] < rates[2]
    assert rates[2] < 989.4e12 * load_curves().families["hopper"].prefill["bf16"].fraction  # never above the curve


def test_few_ctas_are_bound_by_the_longest_one() -> None:
    """q_len 2048 in 128-row tiles: 16 CTAs per head, the last walks 16 KV tiles. 8 heads: 128 CTAs on
    132 SMs, the longest CTA (16 + overhead tiles) sets the time; 32 heads: 512 CTAs, the total does."""
    model = AttentionModel.for_accelerator(resolve_cluster("h100-sxm").accelerator)
    assert model is not None
    c = load_curves().families["hopper"].prefill["bf16"].tile_overhead
    for heads, longest_binds in ((8, True), (32, False)):
        op = _core(StepShape(Phase.PREFILL, 1, 2048, 2048), shape=AttentionShape(heads * 128, heads, heads // 4, 128))
        t = model.timing(op)
        assert t is not None
        total_units, longest_units = heads * (136 + 16 * c) / 132, 16 + c  # sum of 1..16 tiles + overheads
        assert t.min_compute_s / (op.flops * t.seconds_per_flop) == pytest.approx(longest_units / total_units)
        assert (t.min_compute_s > op.flops * t.seconds_per_flop) is longest_binds


def test_fp8_cache_runs_the_fp8_context_kernel() -> None:
    model = _model("h100-sxm")
    op = _core(StepShape(Phase.PREFILL, 1, 8192, 8192), DType.FP8)
    assert "context FMHA fp8" in model.cost(op).detail


# ---- decode: bandwidth-bound ----------------------------------------------------------------------------


def test_decode_time_scales_with_kv_bytes() -> None:
    model = _model("h200-sxm")
    curve = load_curves().families["hopper"].decode["bf16"]
    spec_bytes_per_s = resolve_cluster("h200-sxm").accelerator.memory.bandwidth
    short, long = (_core(StepShape(Phase.DECODE, 16, 1, n)) for n in (16384, 32768))
    a, b = model.cost(short), model.cost(long)
    assert a.memory_s == pytest.approx(short.bytes / (spec_bytes_per_s * curve.bandwidth_fraction), rel=1e-12)
    assert a.overhead_s == pytest.approx(curve.floor_us * 1e-6)
    extra = (long.kv_read_bytes - short.kv_read_bytes) / (spec_bytes_per_s * curve.bandwidth_fraction)
    assert b.time_s - a.time_s == pytest.approx(extra, rel=1e-3)  # the math is negligible beside the bytes


def test_fp8_kv_halves_the_bytes_read() -> None:
    bf16, fp8 = (_core(StepShape(Phase.DECODE, 4, 1, 8192), kv) for kv in (DType.BF16, DType.FP8))
    assert fp8.kv_read_bytes == bf16.kv_read_bytes / 2 == 4 * 8192 * 2 * 8 * 128


# ---- the FlashMLA FP8 cache ----------------------------------------------------------------------------


def test_flashmla_fp8_cache_is_656_bytes_per_token_and_layer() -> None:
    """512 FP8 latent + 4 fp32 scales (one per 128) + 64 BF16 RoPE values = 656; the V3.2 indexer
    keeps its own 128 FP8 + 4 bytes. Dense MLA (V3) keeps 576 FP8 bytes."""
    fp8 = Precision(weight=DType.FP8, kv_cache=DType.FP8)
    v32, v3 = get_workload("deepseek-v3.2"), get_workload("deepseek-v3")
    assert v32.kv_bytes_per_token_layer(fp8, Placement()) == 656 + 132
    assert v3.kv_bytes_per_token_layer(fp8, Placement()) == 576
    assert v32.kv_bytes_per_token_layer(Precision(), Placement()) == 576 * 2 + 132
    ops = v32.build_ops(StepShape(Phase.DECODE, 2, 1, 10000), fp8, Placement(tp=8, layer_start=3, layer_end=4))
    core = next(op for op in ops if op.name == "attention_mqa")
    assert core.kv_read_bytes == 2 * 2048 * 656  # top-k entries of each sequence, in the FlashMLA layout


def test_flashmla_fp8_dequantisation_is_charged_on_the_vector_units() -> None:
    model = _model("h800")
    w = get_workload("deepseek-v3.2")
    step = StepShape(Phase.DECODE, 128, 2, 2048)
    precisions = (Precision(kv_cache=DType.BF16), Precision(kv_cache=DType.FP8))
    bf16, fp8 = (next(op for op in w.build_ops(step, p, Placement(layer_start=3, layer_end=4))
                      if op.name == "attention_mqa") for p in precisions)  # fmt: skip
    assert "dequantised" in model.cost(fp8).detail and "dequantised" not in model.cost(bf16).detail
    # 128 heads x 2 tokens = 256 rows: 4 CTAs of 64 each convert the 512 FP8 values at 2 ops on 67 TFLOP/s
    extra_s_per_flop = 512 * 4 * 2 / (2 * 128 * 2 * (576 + 512)) / 67e12
    t_bf16, t_fp8 = model.attention_timing(bf16), model.attention_timing(fp8)
    assert t_bf16 is not None and t_fp8 is not None
    assert t_fp8.seconds_per_flop - t_bf16.seconds_per_flop == pytest.approx(extra_s_per_flop, rel=1e-9)


# ---- where the curves apply ----------------------------------------------------------------------------


def test_curves_transfer_by_architecture_and_others_keep_the_single_fraction() -> None:
    op = _core(StepShape(Phase.PREFILL, 1, 4096, 4096))
    assert "(blackwell, transferred)" in _model("rubin").cost(op).detail
    assert "(hopper, transferred)" in _model("h800").cost(op).detail
    assert "(hopper)" in _model("h200-sxm").cost(op).detail
    assert _model("a100-sxm-80gb").attention_timing(op) is None
    assert RooflineCostModel(resolve_cluster("h100-sxm"), attention_kernel="fa2").attention_timing(op) is None
    assert RooflineCostModel(resolve_cluster("h100-sxm"), ideal=True).attention_timing(op) is None


def test_fast_path_prices_attention_like_the_estimator() -> None:
    w = get_workload("llama-3.1-8b")
    precision = Precision(weight=DType.FP8, kv_cache=DType.FP8)
    cluster = resolve_cluster("b200", num_gpus=1)
    full = estimate(w, cluster, Scenario(8, 2048, 128, precision, ParallelPlan()))
    model, one = FastModel(w, [cluster]), (np.array([0]), np.array([8]), np.array([1]))
    layout = Layout(1, 1, 1, precision)
    assert model.tpot_s(layout, 2048, 128, *one)[0] == pytest.approx(full.tpot_s, rel=1e-9)
    assert model.ttft_batch_s(layout, 2048, *one)[0] == pytest.approx(full.ttft_batch_s, rel=1e-9)


# ---- the predictor and the fit -------------------------------------------------------------------------


def test_predictor_on_the_fixture() -> None:
    report = validate_file(FIXTURE)
    assert not report.skipped
    for row in report.rows:
        assert abs(row.error) < 0.15, row.case.case_id
    cases = {c.case_id: c for c in read_cases(FIXTURE)}
    prefill, decode = cases["ka01011"], cases["ka01100"]
    p = attention_kernel(prefill, resolve_cluster("h100-sxm", num_gpus=1)).values
    assert p["tflops"] * 1e12 * p["latency_us"] * 1e-6 == pytest.approx(counted_flops(prefill), rel=1e-12)
    assert counted_flops(prefill) == 2 * 32 * 1024 * 1024 * 256 / 2  # half the causal square
    d = attention_kernel(decode, resolve_cluster("h100-sxm", num_gpus=1)).values
    assert d["gbps"] * d["latency_us"] * 1e3 == pytest.approx(8192 * 2 * 8 * 128 * 2, rel=1e-12)  # KV bytes read


@pytest.mark.skipif(not AIC.is_file(), reason="../shared/validation/kernels-aic.csv not present")
def test_committed_curve_is_what_the_fit_gives_on_its_rows() -> None:
    curves = load_curves()
    key = ("hopper", "decode", "fp8")
    rows = fit_rows(AIC)[key]
    fitted = fit_curve(rows, *key, curves)
    committed = curves.families["hopper"].decode["fp8"]
    assert list(fitted.fitted_on) == committed.fitted_on
    assert all(int(c[2:]) % 2 == 0 for c in committed.fitted_on)  # the held-out rows are the odd ones
    assert fitted.params == pytest.approx((committed.bandwidth_fraction, committed.floor_us), rel=1e-3)
    assert math.isfinite(fitted.fit_error)
