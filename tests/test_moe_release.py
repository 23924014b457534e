"""The MoE kernels of the TensorRT-LLM release that measured a row.

The public max-throughput rows (published.csv) were measured with TensorRT-LLM v0.17 (engine flow,
MixtureOfExperts plugin); the grouped-GEMM curves are fitted on AIConfigurator's TensorRT-LLM
1.3.0rc20 kernel tables. The v0.17 rows run their own variant (`trtllm_plugin`: 128-row tiles,
no kernel table), which the dense GEMM curve prices as a prior.
"""

from __future__ import annotations

import numpy as np
import pytest

from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import OpClass, Precision
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.fast import FastModel, Layout
from roofline.simulator.gemm_efficiency import k_efficiency
from roofline.simulator.grouped_gemm import grouped_kernel, load_grouped_gemm
from roofline.validation.predict import load_setups
from roofline.workloads import get_workload, moe_kernels
from roofline.workloads.layers import matmul_op
from roofline.workloads.moe_blocks import grouped_gemm_op
from roofline.workloads.moe_kernels import MoEKernels, family, load_moe_kernels, variant

FP8 = DType("fp8")


def test_the_v017_max_throughput_rows_run_the_plugin_variant_without_a_kernel_table() -> None:
    assert load_setups().max_throughput.engine_overrides["moe_kernels"] == "trtllm_plugin"
    assert variant("trtllm_plugin").family == "cutlass_moe_plugin"
    assert family("cutlass_moe_plugin").tile_m == 128  # sm90 grouped tiles of that release: 128 x N
    assert "cutlass_moe_plugin" not in load_grouped_gemm().families  # no v0.17 kernel table: a prior


def test_a_grouped_gemm_without_a_table_costs_what_the_dense_curve_gives_its_shape() -> None:
    """Mixtral's gate+up at 2048 rows per expert on an H200 in FP8: 8 full 128-row-tile experts are
    one 16384-row GEMM to the dense curve (wave utilisation ~1), so the two times agree; the fitted
    1.3.0rc20 family on the same shape is faster (its fraction was fitted above the dense one)."""
    model = RooflineCostModel(resolve_cluster(hardware="h200-sxm"))
    plugin = model.cost(grouped_gemm_op(8, 2048, 28672, 4096, "cutlass_moe_plugin", FP8))
    fitted = model.cost(grouped_gemm_op(8, 2048, 28672, 4096, "cutlass_moe", FP8))
    dense = model.cost(matmul_op("gemm", OpClass.MLP, 8 * 2048, 28672, 4096, Precision(FP8, FP8), 1))
    assert plugin.total_s == pytest.approx(dense.total_s, rel=0.03)
    assert fitted.total_s < 0.95 * plugin.total_s


def test_the_prior_charges_the_dense_k_loop_share_and_latency() -> None:
    model = RooflineCostModel(resolve_cluster(hardware="h200-sxm"))
    g = grouped_kernel("cutlass_moe_plugin", model.cluster.accelerator.architecture, "fp8")
    curve = model.grouped_prior(g, FP8)
    assert curve is not None and g.compute_fraction is None
    short, long = (model.cost(grouped_gemm_op(8, 2048, 4096, k, "cutlass_moe_plugin", FP8)) for k in (512, 8192))
    # per FLOP the short-K GEMM pays its K-loop share: k_eff(512) / k_eff(8192) slower
    ratio = (short.compute_s / 512) / (long.compute_s / 8192)
    assert ratio == pytest.approx(k_efficiency(8192, curve.k_half) / k_efficiency(512, curve.k_half), rel=1e-9)
    fitted = grouped_kernel("cutlass_moe", model.cluster.accelerator.architecture, "fp8")
    assert model.grouped_prior(fitted, FP8) is None  # a fitted family keeps its own table


def test_fast_path_prices_a_family_without_table_as_the_estimator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default variant pointed at the plugin family (no table on Hopper): the vectorised path and
    the estimator agree as they do with the fitted family (tests/test_planner.py: 1%)."""
    data = load_moe_kernels()
    trtllm = data.variants["trtllm"].model_copy(update={"family": "cutlass_moe_plugin"})
    patched = MoEKernels(families=data.families, variants={**data.variants, "trtllm": trtllm})
    monkeypatch.setattr(moe_kernels, "load_moe_kernels", lambda: patched)
    grouped_kernel.cache_clear()
    try:
        w = get_workload("mixtral-8x7b")
        cluster = resolve_cluster("h200-sxm", num_gpus=1)
        full = estimate(w, cluster, Scenario(64, 1024, 256, w.shipped_precision, ParallelPlan()))
        fast = FastModel(w, [cluster])
        layout, one = Layout(1, 1, 1, w.shipped_precision), (np.array([0]), np.array([64]), np.array([1]))
        assert fast.tpot_s(layout, 1024, 256, *one)[0] == pytest.approx(full.tpot_s, rel=0.01)
        assert fast.ttft_batch_s(layout, 1024, *one)[0] == pytest.approx(full.ttft_batch_s, rel=0.01)
    finally:
        grouped_kernel.cache_clear()
