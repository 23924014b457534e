"""GEMM efficiency by shape (simulator.gemm_efficiency), its fit (calibration.kernel_table), the
GEMM predictor's FP8 scaling and timing-harness overhead (validation.predict_gemm, harness)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from roofline.calibration.kernel_table import expand_ids, fit_curve, id_ranges, read_table
from roofline.dtypes import DType
from roofline.hardware_specs import get_accelerator, resolve_cluster
from roofline.ir import MatmulShape, Op, OpClass, OpKind
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.gemm_efficiency import curve_for, curves_for, packaged_curves
from roofline.validation.cases import parse_cases
from roofline.validation.harness import timing_harness, timing_overhead_s
from roofline.validation.predict_gemm import gemm

FIT_ROWS = Path(__file__).parent / "fixtures" / "gemm_fit_rows.csv"  # the rows the packaged curves list in fitted_on


def _matmul(dtype: DType, m: int, n: int, k: int, scaling: str | None = None) -> Op:
    element = dtype.bytes_per_element
    return Op(name="gemm", kind=OpKind.MATMUL, op_class=OpClass.MLP, dtype=dtype, flops=2.0 * m * n * k,
              weight_bytes=k * n * element, activation_bytes=m * k * element + 2.0 * m * n,
              shape=MatmulShape(m, n, k, scaling=scaling))  # fmt: skip


def _model(hardware: str) -> RooflineCostModel:
    return RooflineCostModel(resolve_cluster(hardware))


def test_refitting_the_listed_rows_reproduces_the_packaged_curves() -> None:
    rows = read_table(FIT_ROWS)
    for family in packaged_curves():
        for key, curve in family.formats.items():
            chosen = expand_ids(curve.fitted_on)
            fitted = [r for r in rows if r.case_id in chosen]
            assert len(fitted) == len(chosen), (family.family, key)
            (fraction, k_half, k_step_s, latency_s), rms = fit_curve(fitted)
            assert fraction == pytest.approx(curve.fraction, rel=0.01), (family.family, key)
            assert k_half == pytest.approx(curve.k_half, rel=0.05, abs=2.0)
            assert k_step_s == pytest.approx(curve.k_step_s, rel=0.05)
            assert latency_s == pytest.approx(curve.latency_s, rel=0.05, abs=5e-8)
            assert rms == pytest.approx(curve.rms_log_error, abs=2e-3)


def test_fitted_and_held_out_rows_are_disjoint_shapes() -> None:
    for family in packaged_curves():
        for curve in family.formats.values():
            assert not expand_ids(curve.fitted_on) & expand_ids(curve.held_out)


def test_id_ranges_round_trip() -> None:
    ids = ["ka00001", "ka00002", "ka00003", "ka00007", "k0010", "kg0001", "kg0002"]
    assert id_ranges(ids) == ["k0010", "ka00001..ka00003", "ka00007", "kg0001..kg0002"]
    assert expand_ids(id_ranges(ids)) == set(ids)


def _achieved_fraction(hardware: str, dtype: DType, m: int, n: int, k: int, scaling: str | None = None) -> float:
    model = _model(hardware)
    op = _matmul(dtype, m, n, k, scaling)
    return op.flops / model.cost(op).total_s / model.peak_flops_per_s(dtype)


def test_fp4_reaches_a_smaller_share_of_its_peak_than_fp8_on_b200() -> None:
    fp4 = _achieved_fraction("b200", DType.FP4, 8192, 8192, 8192)
    fp8 = _achieved_fraction("b200", DType.FP8, 8192, 8192, 8192, "block")
    assert fp4 < fp8 < 0.7
    assert 0.3 < fp4 < 0.5  # AIC B200 NVFP4 at M = 8192: 0.30-0.43 of the 9 PFLOP/s dense peak


def test_short_k_gemm_is_less_efficient_than_long_k() -> None:
    """The per-tile prologue/epilogue is amortised over the K loop."""
    assert _achieved_fraction("h100-sxm", DType.FP8, 8192, 4096, 1024) < _achieved_fraction(
        "h100-sxm", DType.FP8, 8192, 4096, 16384
    )


def test_small_m_bf16_gemm_is_memory_bound_not_a_compute_fraction() -> None:
    """M = 1 on Hopper bf16: the time is the weight stream (plus overhead), not 2MNK / any fraction."""
    model = _model("h200-sxm")
    cost = model.cost(_matmul(DType.BF16, 1, 8192, 8192))
    assert cost.memory_s > 2 * cost.compute_s
    assert cost.total_s == pytest.approx(cost.memory_s + cost.overhead_s, rel=0.15)


def test_fp8_block_and_per_tensor_use_their_own_curves() -> None:
    arch = get_accelerator("h100-sxm").architecture
    assert curve_for(arch, DType.FP8, "block") is not curve_for(arch, DType.FP8, "tensor")
    assert curve_for(arch, DType.FP8, None) is curve_for(arch, DType.FP8, "tensor")


def test_curves_transfer_by_architecture_and_others_keep_their_fractions() -> None:
    assert curves_for(get_accelerator("h800").architecture).family == "hopper"
    assert curves_for(get_accelerator("gh200-96gb").architecture).family == "hopper"
    assert curves_for(get_accelerator("b300").architecture).family == "blackwell"
    assert curves_for(get_accelerator("rubin").architecture).family == "blackwell"
    assert curves_for(get_accelerator("a100-sxm-80gb").architecture) is None
    a100 = _model("a100-sxm-80gb")
    assert a100.flops_rate(OpKind.MATMUL, DType.BF16)[1] == a100.cluster.accelerator.efficiency.matmul_fraction_for(
        DType.BF16
    )


def test_mxfp4_runs_on_the_fp4_curve_and_hopper_fp4_weights_on_bf16() -> None:
    arch = get_accelerator("b200").architecture
    assert curve_for(arch, DType.MXFP4, None) is curve_for(arch, DType.FP4, None)
    hopper = _model("h100-sxm")
    assert hopper.gemm_curve(_matmul(DType.FP4, 16, 4096, 4096)) is hopper.gemm_curve(
        _matmul(DType.BF16, 16, 4096, 4096)
    )


def test_ideal_ignores_the_curves() -> None:
    ideal = RooflineCostModel(resolve_cluster("b200"), ideal=True)
    op = _matmul(DType.FP4, 16384, 16384, 16384)
    assert ideal.gemm_curve(op) is None
    assert ideal.cost(op).compute_s == pytest.approx(op.flops / ideal.peak_flops_per_s(DType.FP4))


HEADER = (
    "case_id,source,model,hardware,num_gpus,tp,pp,ep,weight_dtype,kv_dtype,isl,osl,scenario,load,metric,value,notes"
)
AIC = "aiconfigurator 0.12.0 (Apache-2.0): systems/data/h200_sxm/gemm/trtllm/1.3.0rc20/gemm_perf.parquet"
EAGER = "calibration/h200-2026-12-04/kernels.csv (one H200 SXM 141GB, torch 2.11, CUDA events, median of 10 after 3 warm-ups)"  # noqa: E501


def _cases(*lines: str) -> list:
    return parse_cases(Path("rows.csv"), [HEADER, *lines])


def test_fp8_scaling_mode_is_read_from_the_notes() -> None:
    tensor, block = _cases(
        f"a1,{AIC},,h200-sxm,1,,,,fp8,,,,gemm,2048x7168x4096,latency_us,100,quant=fp8; kernel_source=torch_flow",
        f"a2,{AIC},,h200-sxm,1,,,,fp8,,,,gemm,2048x7168x4096,latency_us,100,quant=fp8_block; kernel_source=torch_flow",
    )
    assert tensor.run_key() != block.run_key()
    cluster = resolve_cluster("h200-sxm")
    assert gemm(tensor, cluster).values["latency_us"] != gemm(block, cluster).values["latency_us"]
    assert "fp8_block" in gemm(block, cluster).note


def test_isolated_eager_rows_pay_the_paired_dispatch_overhead() -> None:
    eager, graph = _cases(
        f'k1,"{EAGER}",,h200-sxm,1,,,,bf16,,,,gemm,1x4096x4096,tflops,1.2,',
        f"k2,{AIC},,h200-sxm,1,,,,bf16,,,,gemm,1x4096x4096,latency_us,13.3,quant=bfloat16",
    )
    method = timing_harness().methods["eager_isolated_call"]
    assert method.overhead_s == pytest.approx(method.paired_overhead_s(), rel=1e-3)
    assert 8e-6 < timing_overhead_s(eager) < 16e-6
    assert timing_overhead_s(graph) == 0.0
    cluster = resolve_cluster("h200-sxm")
    added_us = gemm(eager, cluster).values["latency_us"] - gemm(graph, cluster).values["latency_us"]
    assert added_us == pytest.approx(timing_overhead_s(eager) * 1e6)
    assert math.isclose(len(method.pairs), len(expand_ids(method.fitted_on)))


def _estimate_ops(model: str, hardware: str, weight_dtype: str | None = None) -> tuple[dict, list[dict]]:
    import roofline as rl

    result = rl.estimate(model=model, hardware=hardware, tp=8, batch=8, isl=512, osl=16, weight_dtype=weight_dtype)
    data = result.to_dict()
    return data, [op for op in data["ops"] if op["phase"] == "decode"]


def test_block_fp8_models_quantise_their_activations_and_read_block_scales() -> None:
    _, ops = _estimate_ops("deepseek-v3", "h200-sxm")
    names = {op["name"] for op in ops}
    assert "o_proj.quantize" in names and "o_proj" in names
    quantize = next(op for op in ops if op["name"] == "o_proj.quantize")
    assert quantize["time_s"] > 0


def test_per_tensor_fp8_fuses_the_cast_and_fp4_on_hopper_runs_weight_only() -> None:
    _, llama_fp8 = _estimate_ops("llama-3.1-70b", "h100-sxm", "fp8")
    assert not any(op["name"].endswith(".quantize") for op in llama_fp8)
    data, llama_fp4 = _estimate_ops("llama-3.1-70b", "h100-sxm", "fp4")
    quantize = [op for op in llama_fp4 if op["name"].endswith(".quantize")]
    assert quantize and all(op["time_s"] == 0.0 for op in quantize)
    assert any("weight-only" in w for w in data["warnings"])
    _, blackwell_fp4 = _estimate_ops("llama-3.1-70b", "b200", "fp4")
    assert all(op["time_s"] > 0 for op in blackwell_fp4 if op["name"].endswith(".quantize"))


def test_block_scale_bytes_are_one_fp32_per_128x128_weight_block() -> None:
    from roofline.ir import Precision
    from roofline.workloads.layers import matmul_op

    tensor = matmul_op("w", OpClass.MLP, 1, 7168, 2048, Precision(weight=DType.FP8), 1)
    block = matmul_op("w", OpClass.MLP, 1, 7168, 2048, Precision(weight=DType.FP8, fp8_scaling="block"), 1)
    assert block.shape is not None and block.shape.scaling == "block"
    assert block.weight_bytes - tensor.weight_bytes == 4 * (2048 // 128) * (7168 // 128)


def _h100_bf16_table(tmp_path: Path) -> Path:
    """The H100 bf16 rows of the fit fixture, with every time 1.25x: a 'slower H100' of the user's."""
    import csv

    with FIT_ROWS.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["hardware"] == "h100-sxm" and r["weight_dtype"] == "bf16"]
    for row in rows:
        row["value"] = str(float(row["value"]) * 1.25)
    path = tmp_path / "mine.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_calibrate_kernel_table_writes_a_profile_whose_own_curves_the_estimate_uses(tmp_path: Path) -> None:
    from roofline.api.calibration import calibrate_kernel_table

    report = calibrate_kernel_table(_h100_bf16_table(tmp_path), tmp_path / "out")
    profile = report.paths["h100-sxm profile"]
    mine, catalog = _model(str(profile)), _model("h100-sxm")
    assert set(mine.cluster.accelerator.efficiency.gemm_curves) == {"bf16"}
    op = _matmul(DType.BF16, 4096, 8192, 8192)
    assert mine.cost(op).total_s == pytest.approx(1.25 * catalog.cost(op).total_s, rel=0.06)
    fp8 = _matmul(DType.FP8, 4096, 8192, 8192)  # no fp8 rows in the table: the family curve
    assert mine.gemm_curve(fp8) is catalog.gemm_curve(fp8)


def test_calibrate_cli_bad_kernel_table_is_one_error_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from roofline.cli.app import app

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(app, ["calibrate", "--device", "none", "--kernel-table", str(bad), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "missing column" in result.stderr
    good = CliRunner().invoke(app, ["calibrate", "--device", "none", "--kernel-table", str(_h100_bf16_table(tmp_path)),
                                    "-o", str(tmp_path / "o"), "--format", "json"])  # fmt: skip
    assert good.exit_code == 0, good.output
    assert "h100-sxm" in good.stdout


def test_an_isolated_sdpa_call_pays_the_dispatch_scaled_by_its_host_work() -> None:
    eager, graph = _cases(
        f'k1,"{EAGER}",,h200-sxm,1,,,,bf16,,,,gemm,1x4096x4096,tflops,1.2,',
        f"k2,{AIC},,h200-sxm,1,,,,bf16,,,,gemm,1x4096x4096,latency_us,13.3,quant=bfloat16",
    )
    matmul_s = timing_overhead_s(eager)
    # torch-eager.yaml's CPU-timed call weights: SDPA (GQA) 2.95, F.linear 1.15 per tiny add
    assert timing_overhead_s(eager, "sdpa") == pytest.approx(matmul_s * 2.95 / 1.15)
    assert timing_overhead_s(eager, "matmul") == matmul_s == timing_overhead_s(eager, "unweighted kind")
    assert timing_overhead_s(graph, "sdpa") == 0.0
