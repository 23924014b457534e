"""One cost model (issue 16): each formula of cost.py is written once for Python numbers and numpy
arrays, the fast path (simulator/fast.py) calls the same functions, and its TPOT / TTFT mean what
engine.estimate's mean. Expected numbers are worked by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from roofline.hardware_specs import resolve_cluster
from roofline.planner import grid
from roofline.simulator import ParallelPlan, Scenario, estimate, fast
from roofline.simulator.cost import MIN_SPLIT_K, kernel_time_s, wave_utilization
from roofline.simulator.engine import decode_contexts
from roofline.simulator.fast import FastModel, Layout
from roofline.workloads import get_workload

# ---- wave utilisation ------------------------------------------------------------------------------

# (m, n, k, batch, SMs, tiles, by hand)
WAVE_CASES = [
    # decode GEMM, 16 tokens x 8192 -> 8192 on an H100 (132 SMs), 128x128 tiles: ceil(16/128) x
    # ceil(8192/128) = 64 tiles < 132 SMs, so K splits into min(132 // 64, 8192 // 256) = 2 chunks:
    # 128 tile slots in ceil(128 / 132) = 1 wave; useful 16 x 8192 x 2 over 132 x 128 x 128 = 4/33
    (16, 8192, 8192, 1, 132, [(128, 128)], 4 / 33),
    # the same GEMM with K = 200 < MIN_SPLIT_K cannot split: 64 tiles, one wave,
    # 16 x 8192 / (132 x 128 x 128) = 2/33
    (16, 8192, 200, 1, 132, [(128, 128)], 2 / 33),
    # 3 batched 200 x 1000 GEMMs on 108 SMs, best of two tiles, K = 100 (no split):
    # 128x128: 2 x 8 x 3 = 48 tiles, one wave: 600000 / (108 x 128 x 128) = 0.339;
    # 64x128:  4 x 8 x 3 = 96 tiles, one wave: 600000 / (108 x 64 x 128) = 0.678  <- best
    (200, 1000, 100, 3, 108, [(128, 128), (64, 128)], 600000 / (108 * 64 * 128)),
    # 133 tiles of 128x256 on 132 SMs: two waves, 133 / 264 of the slots do work
    (128 * 133, 256, 4096, 1, 132, [(128, 256)], 133 / 264),
]


@pytest.mark.parametrize("case", WAVE_CASES, ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}b{c[3]}sm{c[4]}")
def test_wave_utilization_by_hand(case: tuple) -> None:
    m, n, k, batch, sm, tiles, expected = case
    assert wave_utilization(m, n, k, batch, sm, tiles) == pytest.approx(expected, rel=1e-12)


def test_min_split_k_is_the_one_constant() -> None:
    """K = 511 gives one 256-chunk split of a 64-tile GEMM (no split: 2/33 above), K = 512 two."""
    assert MIN_SPLIT_K == 256
    assert wave_utilization(16, 8192, 511, 1, 132, [(128, 128)]) == pytest.approx(2 / 33, rel=1e-12)
    assert wave_utilization(16, 8192, 512, 1, 132, [(128, 128)]) == pytest.approx(4 / 33, rel=1e-12)


def test_wave_utilization_scalar_and_array_agree() -> None:
    rng = np.random.default_rng(3)
    m, n, k = (rng.integers(1, 30000, 400) for _ in range(3))
    batch = rng.integers(1, 9, 400)
    tiles = [(128, 256), (256, 128), (64, 64)]
    for sm in (78, 132, 304):
        arrays = wave_utilization(m.astype(float), n.astype(float), k.astype(float), batch.astype(float), float(sm),
                                  tiles)  # fmt: skip
        shapes = zip(m.tolist(), n.tolist(), k.tolist(), batch.tolist(), strict=True)
        scalars = [wave_utilization(a, b, c, d, sm, tiles) for a, b, c, d in shapes]
        np.testing.assert_array_equal(arrays, scalars)


# ---- compute / memory overlap ----------------------------------------------------------------------


def test_kernel_time_by_hand() -> None:
    assert kernel_time_s(3.0, 4.0, 2.0) == pytest.approx(5.0, rel=1e-15)  # (9 + 16)^(1/2)
    assert kernel_time_s(1.0, 1.0, 2.0) == pytest.approx(math.sqrt(2.0), rel=1e-15)  # at the ridge point
    assert kernel_time_s(0.0, 2.5, 2.0) == 2.5  # one side idle: exactly the other
    assert kernel_time_s(0.0, 0.0, 2.0) == 0.0
    assert kernel_time_s(3.0, 4.0, math.inf) == 4.0  # the textbook max()


def test_kernel_time_scalar_and_array_agree() -> None:
    rng = np.random.default_rng(5)
    c, m = rng.exponential(1e-4, 300), rng.exponential(1e-4, 300)
    c[::7], m[::11] = 0.0, 0.0
    for p in (1.0, 2.0, 3.5, math.inf):
        arrays = kernel_time_s(c, m, p)
        scalars = [kernel_time_s(float(a), float(b), p) for a, b in zip(c, m, strict=True)]
        np.testing.assert_allclose(arrays, scalars, rtol=1e-15, atol=0.0)  # numpy's vector pow: last bit


def test_fast_path_has_no_copy_of_the_formulas() -> None:
    assert fast.wave_utilization is wave_utilization and fast.kernel_time_s is kernel_time_s
    assert not hasattr(fast, "MIN_SPLIT_K") and not hasattr(fast, "overlap")


# ---- TPOT and TTFT: the estimator's definitions ----------------------------------------------------

# model, hardware, tp, ep, attn_dp, batch, isl, osl: no quantity the fast path interpolates falls off
# its grid (batch on the u grid, collectives inside one alpha-beta segment), so it must match to rounding
EXACT = [
    ("llama-3.1-8b", "h100-sxm", 1, 1, 1, 16, 1024, 256),  # dense
    ("mistral-7b", "h100-sxm", 1, 1, 1, 4, 4000, 300),  # dense, the 4096 window reached mid-generation
    ("llama-4-scout", "h200-sxm", 1, 1, 1, 2, 8000, 500),  # MoE, 8192-token attention chunks crossed
    ("kimi-k2", "b200", 1, 8, 8, 256, 1024, 256),  # MLA MoE, attention-DP and expert-parallel all-to-all
    ("deepseek-v4-flash", "b200", 1, 1, 1, 1, 1000, 300),  # compressed, sparse attention with an indexer
]


@pytest.mark.parametrize("case", EXACT, ids=lambda c: f"{c[0]}-b{c[5]}-{c[6]}-{c[7]}")
def test_fast_tpot_and_ttft_equal_the_estimate(case: tuple) -> None:
    """Before the two paths shared the definition (TPOT = one step at the mean context) these
    differed by 1.7% (llama-4-scout), 4e-4 (mistral-7b), 6e-8 (kimi-k2), 6e-7 (deepseek-v4-flash)."""
    model_id, hardware, tp, ep, adp, batch, isl, osl = case
    w = get_workload(model_id)
    plan = ParallelPlan(tp=tp, ep=ep, attn_dp=adp)
    cluster = resolve_cluster(hardware, num_gpus=plan.num_gpus)
    full = estimate(w, cluster, Scenario(batch, isl, osl, w.shipped_precision, plan))
    model = FastModel(w, [cluster])
    layout, one = Layout(tp, ep, adp, w.shipped_precision), (np.array([0]), np.array([batch]), np.array([1]))
    assert model.tpot_s(layout, isl, osl, *one)[0] == pytest.approx(full.tpot_s, rel=1e-9)
    assert model.ttft_batch_s(layout, isl, *one)[0] == pytest.approx(full.ttft_batch_s, rel=1e-9)


def test_fast_decode_periods_are_the_sampled_steps() -> None:
    """Pipeline of 2 stages, batch 3: micro-batches of 2; each sampled context's period is
    max(time through both stages, 2 x slowest stage) as engine.estimate times it, TPOT their mean.
    Mistral's 4096-token window is reached mid-generation (contexts 4001..4299), so the step time
    bends there: one step at the mean context was 2.2e-4 off."""
    w = get_workload("mistral-7b")
    isl, osl, batch = 4000, 300, 3
    cluster = resolve_cluster("h100-sxm", num_gpus=2)
    precision = grid.precision_for(w, None)
    full = estimate(w, cluster, Scenario(batch, isl, osl, precision, ParallelPlan(pp=2)))
    model = FastModel(w, [cluster])
    args = (np.array([0]), np.array([batch]), np.array([2]))
    periods = model.decode_periods_s(Layout(1, 1, 1, precision), decode_contexts(isl, osl), *args)[:, 0]
    assert len(periods) == len(decode_contexts(isl, osl)) == 32
    assert periods[0] < periods[15] == pytest.approx(periods[-1], rel=1e-12)  # grows, then the window caps it
    assert periods.mean() == pytest.approx(full.tpot_s, rel=1e-9)


# ---- matrix-vector products on a host BLAS (EfficiencySpec.gemv_below_m) ------------------------------


def _host_like(cluster: object, below_m: int = 4, per_output_s: float = 1e-7) -> object:
    """The H100 cluster with a host BLAS's matrix-vector rule switched on (the only change)."""
    from dataclasses import replace

    acc = cluster.accelerator  # type: ignore[attr-defined]
    eff = acc.efficiency.model_copy(update={"gemv_below_m": below_m, "gemv_output_overhead": per_output_s})
    return replace(cluster, accelerator=acc.model_copy(update={"efficiency": eff}))  # type: ignore[type-var]


def test_gemv_rows_read_the_weights_once_each_and_fill_no_tile() -> None:
    """M = 2, N = 1024, K = 1024 fp32 below the threshold 4: the weights (4 MiB) are read twice, so
    8 MiB + the activations (2 x 1024 x 4 in, 2 x 1024 x 4 out = 16 KiB) move; 2 x 1024 outputs at
    100 ns add 204.8 us; the math is not divided by a row tile's utilisation. M = 4 is a GEMM again."""
    from roofline.calibration.cases import matmul_case
    from roofline.dtypes import DType
    from roofline.simulator.cost import RooflineCostModel

    cluster = _host_like(resolve_cluster("h100-sxm"))
    model, plain = RooflineCostModel(cluster), RooflineCostModel(resolve_cluster("h100-sxm"))  # type: ignore[arg-type]
    op = matmul_case(2, 1024, 1024, DType.FP32).op
    cost, before = model.cost(op), plain.cost(op)
    assert model.memory_bytes(op) == 2 * 4 * 2**20 + 16 * 1024
    assert cost.memory_s == pytest.approx(before.memory_s * (8 * 2**20 + 16384) / (4 * 2**20 + 16384), rel=1e-12)
    assert cost.overhead_s == pytest.approx(before.overhead_s + 2 * 1024 * 1e-7, rel=1e-12)
    assert cost.compute_s < before.compute_s  # 2 rows at the full fraction, not 2 of a 64-row tile
    wide = matmul_case(4, 1024, 1024, DType.FP32).op
    assert model.cost(wide).memory_s == pytest.approx(plain.cost(wide).memory_s, rel=1e-12)


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "qwen3-30b-a3b"])
def test_fast_path_prices_gemv_rows_as_the_estimate(model_id: str) -> None:
    """Decode of batch 2 (matrix-vector products in every projection and the LM head) on the
    host-like H100: the fast path's TPOT and TTFT are the estimate's."""
    w = get_workload(model_id)
    cluster = _host_like(resolve_cluster("h100-sxm"))
    full = estimate(w, cluster, Scenario(2, 512, 64, w.shipped_precision))  # type: ignore[arg-type]
    plain = estimate(w, resolve_cluster("h100-sxm"), Scenario(2, 512, 64, w.shipped_precision))
    assert full.tpot_s > plain.tpot_s  # the rule is on
    model = FastModel(w, [cluster])  # type: ignore[list-item]
    layout = Layout(1, 1, 1, w.shipped_precision)
    one = (np.array([0]), np.array([2]), np.array([1]))
    assert model.tpot_s(layout, 512, 64, *one)[0] == pytest.approx(full.tpot_s, rel=1e-9)
    assert model.ttft_batch_s(layout, 512, *one)[0] == pytest.approx(full.ttft_batch_s, rel=1e-9)
