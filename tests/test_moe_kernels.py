"""MoE layer as its kernel sequence: tile padding, routing spread, busiest rank, fused variants,
the moe_experts / grouped_gemm predictors."""

from __future__ import annotations

from pathlib import Path

import pytest

from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Phase, Placement, Precision, StepShape
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.grouped_gemm import load_grouped_gemm, tile_flops
from roofline.validation.cases import parse_cases
from roofline.validation.predict_moe import moe_experts
from roofline.workloads.moe_blocks import MoEKernelChoice, MoEShape, grouped_gemm_op, moe_ops
from roofline.workloads.moe_kernels import busiest_rank, distinct_experts, expert_loads, load_moe_kernels

SHAPE = MoEShape(hidden=2048, num_experts=128, top_k=8, expert_intermediate=768)


def test_a_three_row_expert_pays_a_full_tile_of_math() -> None:
    """H200, 132 SMs: 1 expert x 3 rows x n 256 x k 2048 runs one 128-row tile per column tile; the
    cheapest column tile (of 128, 256) is one 128 x 256 tile: 2 x 2048 x 132 SMs x 128 x 256 FLOP of
    one wave, and 3 rows cost as much as 128."""
    three = tile_flops(3, 256, 2048, 1, 132, 128, (128, 256))
    full = tile_flops(128, 256, 2048, 1, 132, 128, (128, 256))
    assert three == full == pytest.approx(2 * 2048 * 132 * 128 * 128)
    cluster = resolve_cluster(hardware="h200-sxm")
    model = RooflineCostModel(cluster)
    small = model.cost(grouped_gemm_op(8, 3, 4096, 4096, "cutlass_moe", DType.BF16))
    padded = model.cost(grouped_gemm_op(8, 64, 4096, 4096, "cutlass_moe", DType.BF16))  # cutlass_moe: 64-row tiles
    assert small.compute_s == pytest.approx(padded.compute_s)


def test_distinct_experts_and_busiest_rank_by_hand() -> None:
    assert distinct_experts(2, 8, 2) == pytest.approx(3.5)  # 8 (1 - (3/4)^2)
    # one token, top-8 of 256 over 8 ranks, uniform: 8/8 = 1 expert and 1 row on the busiest rank
    load = busiest_rank(1, 256, 8, 8, "uniform", 1.0, 128)
    assert load.experts == pytest.approx(1.0) and load.rows == pytest.approx(1.0)
    # imbalance 2: twice the rows, and the experts two tokens touch: 256 (1 - (248/256)^2) / 8
    load = busiest_rank(1, 256, 8, 8, "uniform", 2.0, 128)
    assert load.rows == pytest.approx(2.0)
    assert load.experts == pytest.approx(256 * (1 - (248 / 256) ** 2) / 8)
    # even spread: 4 tokens x top-2 = 8 picks over 16 experts, ep 2: rank 0 holds 4 of them
    even = busiest_rank(4, 16, 2, 2, "even", 1.0, 128)
    assert (even.experts, even.rows, even.padded_rows) == (4.0, 4.0, 4 * 128.0)


def test_power_law_skew_grows_with_the_exponent() -> None:
    """The largest expert's share grows with the exponent over 0.3-1.5 (AIConfigurator uses 1.01;
    past ~1.5 the generator's draws bunch at its lower bound and the skew falls again: 10005 rows
    at 1.5, 9161 at 2); the loads always sum to T x k."""
    tops = []
    for s in (0.3, 0.5, 0.8, 1.01, 1.2, 1.5):
        loads = expert_loads(4096, 128, 8, f"power_law_{s}")
        assert sum(loads) == 4096 * 8
        tops.append(loads[0])
    assert tops == sorted(tops) and tops[-1] > tops[0]
    ranks = [busiest_rank(4096, 128, 8, 8, f"power_law_{s}", 1.0, 128).rows for s in (0.5, 1.01, 1.5)]
    assert ranks == sorted(ranks) and ranks[0] > 4096 * 8 / 8  # busier than the mean rank


@pytest.mark.parametrize(("variant", "names"), [
    ("trtllm", ["router_topk", "moe_sort", "moe_permute", "expert_up", "expert_activation", "expert_down",
                "expert_combine"]),
    ("torch_grouped_mm", ["router_topk", "moe_sort", "moe_permute", "expert_up", "expert_activation", "expert_down",
                          "expert_combine"]),
    ("triton", ["router_topk", "moe_sort", "expert_up", "expert_activation", "expert_down", "expert_combine"]),
    ("deepgemm", ["router_topk", "moe_sort", "moe_permute", "expert_up", "expert_activation", "expert_down",
                  "expert_combine"]),
])  # fmt: skip
def test_each_variant_launches_its_kernels(variant: str, names: list[str]) -> None:
    placement = Placement(layer_end=1, moe_kernels=variant)
    ops = moe_ops(SHAPE, StepShape(Phase.PREFILL, 1, 512, 512), Precision(), placement, 1)
    assert [o.name for o in ops] == ["mlp_norm", "router", *names]
    up = next(o for o in ops if o.name == "expert_up")
    assert up.shape is not None and up.shape.grouped == load_moe_kernels().variants[variant].family


def test_fitted_tables_name_their_rows() -> None:
    for fam in load_grouped_gemm().families.values():
        for arch in fam.values():
            for entry in arch.values():
                assert entry.fitted_on and 0 < entry.compute_fraction <= 1


_HEADER = ",".join(
    [
        "case_id",
        "source",
        "model",
        "hardware",
        "num_gpus",
        "tp",
        "pp",
        "ep",
        "weight_dtype",
        "kv_dtype",
        "isl",
        "osl",
        "scenario",
        "load",
        "metric",
        "value",
        "notes",
    ]
)
_LOAD = "experts=128;topk=8;hidden=2048;intermediate=768;spread=even"
FIXTURE = [
    _HEADER + "\n",
    f'm1,x,,h200-sxm,1,,,,bf16,,,,moe_experts,tokens=16;{_LOAD},latency_us,470.86,"two torch._grouped_mm calls"\n',
    f"m2,x,,h200-sxm,1,,,,bf16,,,,moe_experts,tokens=32;{_LOAD},latency_us,303.3,"
    '"quant=bfloat16; kernel_source=moe_torch_flow_cutlass"\n',
]


def test_predictor_on_a_small_fixture(tmp_path: Path) -> None:
    """Both rows are weight-bound: 128 experts x 3 x 2048 x 768 x 2 B = 1.21 GB read. The torch row
    streams them at the torch family's fitted memory fraction, the TensorRT-LLM row at CUTLASS's."""
    cases = parse_cases(tmp_path / "f.csv", FIXTURE)
    cluster = resolve_cluster(hardware="h200-sxm")
    weights = 128 * 3 * 2048 * 768 * 2
    torch_row, trt_row = (moe_experts(c, cluster) for c in cases)
    fm = load_grouped_gemm().families["torch_grouped_mm"]["hopper"]["bf16"].memory_fraction
    assert torch_row.values["latency_us"] >= weights / (4.8e12 * fm) * 1e6
    assert torch_row.values["latency_us"] == pytest.approx(470.86, rel=0.2)
    fm_trt = load_grouped_gemm().families["cutlass_moe"]["hopper"]["bf16"].memory_fraction
    assert trt_row.values["latency_us"] >= weights / (4.8e12 * fm_trt) * 1e6
    assert trt_row.values["latency_us"] == pytest.approx(303.3, rel=0.25)  # AIC row ka01923: 21% over today
    assert "trtllm" in trt_row.note and "torch._grouped_mm" in torch_row.note


def test_choice_defaults_to_tensorrt_llm() -> None:
    assert MoEKernelChoice().variant == "trtllm" and Placement().moe_kernels == "trtllm"


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "validation"


@pytest.mark.skipif(not (SHARED / "kernels-aic.csv").is_file(), reason="kernel tables not on this machine")
def test_the_fit_reproduces_the_committed_tables() -> None:
    """Re-running the fit on the kernel tables gives the committed fractions and fitted_on lists."""
    from roofline.validation.fit_grouped import compress, fit_rows
    from roofline.validation.fit_grouped_main import build, fit_cases

    table = load_grouped_gemm().families
    for key, ((fc, fm, p, k0, lat, setup), ids) in fit_rows(fit_cases(SHARED), build).items():
        fam, arch, fmt = key.split("/")
        entry = table[fam][arch][fmt]
        assert (entry.compute_fraction, entry.memory_fraction, entry.overlap_exponent) == (fc, fm, p)
        assert (entry.tile_overhead_k, entry.latency_us, entry.expert_setup_us) == (k0, lat, setup)
        assert entry.fitted_on == compress(ids)
