"""The runtime's attention kernel (engine YAML `kernels.attention`) picks the attention curves:
the FA3 / cuDNN-class Hopper family (fitted on the FA3 paper's figure), TensorRT-LLM FMHA by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Op, OpKind, Phase, Placement, Precision, StepShape
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.attention_efficiency import AttentionCurves, load_curves
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.fast import FastModel, Layout
from roofline.simulator.serving.engine_config import load_engine
from roofline.validation.attention_fit_fa3 import fit, read_points
from roofline.validation.cases import read_cases
from roofline.validation.predict_attention import kernel_ops, runtime_kernel
from roofline.workloads import get_workload
from roofline.workloads.layers import AttentionShape, attention_block_ops

H200_KERNELS = Path(__file__).resolve().parents[2] / "shared" / "validation" / "kernels-h200.csv"
LLAMA_8B = AttentionShape(4096, 32, 8, 128)


def _core(step: StepShape, kv: DType = DType.BF16) -> Op:
    ops = attention_block_ops(LLAMA_8B, step, Precision(kv_cache=kv), Placement(), 1)
    return next(op for op in ops if op.kind is OpKind.ATTENTION)


def _model(hardware: str, kernel: str | None) -> RooflineCostModel:
    return RooflineCostModel(resolve_cluster(hardware, num_gpus=1), runtime_attention=kernel)


def test_runtime_kernel_maps_to_a_curve_family_per_architecture() -> None:
    prefill = _core(StepShape(Phase.PREFILL, 1, 4096, 4096))
    for kernel in ("sdpa", "fa3", "flashinfer-fa3"):
        assert "(hopper-fa3)" in _model("h100-sxm", kernel).cost(prefill).detail
    for kernel in (None, "trtllm-fmha", "some-other-kernel"):  # the default: TensorRT-LLM FMHA's curves
        assert "(hopper)" in _model("h100-sxm", kernel).cost(prefill).detail
    assert "(blackwell)" in _model("b200", "sdpa").cost(prefill).detail  # no Blackwell FA3 curve: unmapped


def test_fa3_class_call_has_no_rope_floor_and_falls_back_where_it_has_no_curve() -> None:
    decode = _core(StepShape(Phase.DECODE, 8, 1, 4096))
    fa3, fmha = _model("h100-sxm", "sdpa"), _model("h100-sxm", None)
    overhead_s = resolve_cluster("h100-sxm").accelerator.efficiency.kernel_overhead
    assert fa3.cost(decode).overhead_s == overhead_s  # a bare call: the accelerator's kernel overhead
    assert fmha.cost(decode).overhead_s > 4 * overhead_s  # TRT-LLM's op: RoPE + cache write inside
    fp8 = _core(StepShape(Phase.DECODE, 8, 1, 4096), DType.FP8)  # no FP8-cache decode curve of its own
    assert fa3.cost(fp8).total_s == fmha.cost(fp8).total_s


def test_a_mapping_to_an_unknown_family_is_rejected() -> None:
    raw = load_curves().model_dump()
    raw["runtime_kernels"]["sdpa"] = {"hopper": "no-such-family"}
    with pytest.raises(ValueError, match="no-such-family"):
        AttentionCurves.model_validate(raw)


def test_estimate_with_a_runtime_prices_its_kernel_and_the_fast_path_agrees() -> None:
    w, cluster = get_workload("llama-3.1-8b"), resolve_cluster("h100-sxm", num_gpus=1)
    base = Scenario(8, 8192, 128, Precision(), ParallelPlan())
    fmha = estimate(w, cluster, base)
    sdpa = estimate(w, cluster, Scenario(8, 8192, 128, Precision(), ParallelPlan(), attention="sdpa"))
    assert sdpa.ttft_batch_s != pytest.approx(fmha.ttft_batch_s, rel=1e-3)
    vllm = load_engine("vllm")
    assert Scenario(8, 8192, 128, runtime=vllm).attention_kernel == vllm.kernels.attention == "flashinfer-fa3"
    model, one = FastModel(w, [cluster], attention_kernel="sdpa"), (np.array([0]), np.array([8]), np.array([1]))
    layout = Layout(1, 1, 1, Precision())
    assert model.tpot_s(layout, 8192, 128, *one)[0] == pytest.approx(sdpa.tpot_s, rel=1e-9)
    assert model.ttft_batch_s(layout, 8192, *one)[0] == pytest.approx(sdpa.ttft_batch_s, rel=1e-9)


def test_committed_fa3_curve_is_what_the_fit_gives_on_the_figure() -> None:
    committed = load_curves().families["hopper-fa3"].prefill["bf16"]
    fitted = fit()
    assert list(fitted.fitted_on) == committed.fitted_on
    assert (fitted.fraction, fitted.tile_overhead, fitted.score_dims) == pytest.approx(
        (committed.fraction, committed.tile_overhead, committed.score_dims), rel=1e-3, abs=1e-3)  # fmt: skip
    assert fitted.rms_log_error < 0.15
    held = [p.point for p in read_points() if not p.fit]
    assert held and not set(held) & set(committed.fitted_on)


@pytest.mark.skipif(not H200_KERNELS.is_file(), reason="../shared/validation/kernels-h200.csv not present")
def test_torch_sdpa_rows_price_the_attention_call_alone() -> None:
    rows = [c for c in read_cases(H200_KERNELS) if c.scenario == "attention_kernel"]
    assert rows and all(runtime_kernel(c) == "sdpa" for c in rows)
    assert all([op.name for op in kernel_ops(c)] == ["attention"] for c in rows)
    fitted = set(load_curves().families["hopper-fa3"].prefill["bf16"].fitted_on)
    assert not fitted & {c.case_id for c in rows}  # held out
