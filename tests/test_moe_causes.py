"""MoE expert kernels by cause (issue 17): the AIC table screen, AIC's power-law busiest rank under
EP, the backend AIC's collector picks for MXFP4 weights, 64-row CUTLASS MoE tiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from roofline.validation.aic_screen import balanced_rank0_rows, suspect_rows, twin_bound
from roofline.validation.cases import Case, read_cases
from roofline.workloads.moe_kernels import busiest_rank, expert_loads, family

HEADER = (
    "case_id,source,model,hardware,num_gpus,tp,pp,ep,weight_dtype,kv_dtype,isl,osl,scenario,load,metric,value,notes"
)
SHAPE = "experts=128;topk=8;hidden=2048;intermediate=768"


def _row(cid: str, quant: str, dtype: str, tokens: int, spread: str, value: float) -> str:
    load = f"tokens={tokens};{SHAPE};spread={spread}"
    notes = f"ms->us; quant={quant}; kernel_source=moe_torch_flow_cutlass"
    return f"{cid},aic,,h100-sxm,1,,,,{dtype},,,,moe_experts,{load},latency_us,{value},{notes}"


def _cases(tmp_path: Path, rows: list[str]) -> list[Case]:
    path = tmp_path / "k.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return read_cases(path)


def _group(prefix: str, quant: str, dtype: str, spread: str, times: list[float]) -> list[str]:
    return [
        _row(f"{prefix}{i}", quant, dtype, t, spread, v)
        for i, (t, v) in enumerate(zip((1, 8, 128, 2048), times, strict=True))
    ]


def test_the_screen_flags_inconsistent_pairs_formats_and_falling_times(tmp_path: Path) -> None:
    good = [10.0, 20.0, 40.0, 200.0]
    rows = (_group("a", "bfloat16", "bf16", "even", good) + _group("b", "bfloat16", "bf16", "power_law_1.01", good)
            + _group("c", "fp8", "fp8", "even", [6.0, 12.0, 25.0, 120.0]))  # fmt: skip
    assert suspect_rows(_cases(tmp_path, rows)) == {}
    # the power-law run 5x the balanced one: both groups suspect
    slow = [5 * x for x in good]
    pair = _group("a", "bfloat16", "bf16", "even", good) + _group("b", "bfloat16", "bf16", "power_law_1.01", slow)
    cases = _cases(tmp_path, pair)
    flagged = suspect_rows(cases)
    assert set(flagged) == {c.case_id for c in cases} and "power-law / balanced x5.00" in flagged["a0"]
    # an fp8 run slower than bf16 (1.5x): both format groups suspect, the pair still fine
    rows = _group("a", "bfloat16", "bf16", "even", good) + _group("c", "fp8", "fp8", "even", [1.5 * x for x in good])
    flagged = suspect_rows(_cases(tmp_path, rows))
    assert {"a0", "c0"} <= set(flagged) and "fp8 / bf16 x1.50" in flagged["c0"]
    # more tokens, half the time: not the same kernel path
    flagged = suspect_rows(_cases(tmp_path, _group("a", "bfloat16", "bf16", "even", [10.0, 40.0, 20.0, 200.0])))
    assert set(flagged) == {"a0", "a1", "a2", "a3"} and "time falls x2.0" in flagged["a1"]


LLAMA4 = "experts={e};topk=1;hidden=5120;intermediate=8192;spread={s}"


def _llama4_group(prefix: str, hardware: str, experts: int, spread: str, ep: int, times: list[float]) -> list[str]:
    """A Llama-4-shaped (top-1) bf16 group at T = 1, 8, 32, 128."""
    par = f";tp=1;ep={ep}" if ep > 1 else ""
    rows = []
    for i, (tokens, value) in enumerate(zip((1, 8, 32, 128), times, strict=True)):
        load = f"tokens={tokens};{LLAMA4.format(e=experts, s=spread)}{par}"
        notes = "ms->us; quant=bfloat16; kernel_source=moe_torch_flow_cutlass"
        rows.append(f"{prefix}{i},aic,,{hardware},1,,,,bf16,,,,moe_experts,{load},latency_us,{value},{notes}")
    return rows


def test_balanced_rank0_rows_follow_aics_balanced_routing() -> None:
    """Checked by hand from s = ceil(E / K) and expert (t + k s) mod E, or floor(t s / T + k s) mod E
    with fewer tokens than s; rank 0 holds experts 0 .. E/ep - 1."""
    assert balanced_rank0_rows(1, 16, 1, 1) == (1,)
    assert balanced_rank0_rows(8, 16, 1, 8) == (1,)  # experts 0, 2, .., 14: only expert 0 is on rank 0
    assert balanced_rank0_rows(32, 16, 1, 8) == (2, 2)  # t mod 16: experts 0 and 1 twice each
    assert balanced_rank0_rows(8, 128, 8, 8) == (1,) * 8  # 2t + 16k: experts 0, 2, .., 14 on rank 0
    assert balanced_rank0_rows(3, 8, 2, 1) == (1,) * 6  # floor(4t / 3) = 0, 1, 2 and + 4


def test_the_screen_flags_a_run_slower_for_the_same_work(tmp_path: Path) -> None:
    """One top-1 token in one expert is the same work at ep 1 and ep 8 and under either routing (T = 1),
    and so is T = 8 at ep 8 with 16 or 128 experts (one row in expert 0)."""
    good = _llama4_group("a", "h200-sxm", 16, "even", 1, [86.0, 490.0, 950.0, 950.0])
    same = _llama4_group("b", "h200-sxm", 16, "even", 8, [88.0, 90.0, 150.0, 150.0])
    same += _llama4_group("c", "h200-sxm", 128, "even", 8, [90.0, 91.0, 260.0, 950.0])
    assert suspect_rows(_cases(tmp_path, good + same)) == {}
    slow = _llama4_group("b", "h200-sxm", 16, "even", 8, [480.0, 455.0, 990.0, 950.0])  # AIC's H200 bf16 run
    flagged = suspect_rows(_cases(tmp_path, good + slow + same[4:]))
    assert set(flagged) == {"b0", "b1", "b2", "b3"}
    assert "x5.29 the time of the same work" in flagged["b0"]  # the median of 480 / 86 and 455 / 91


def test_the_screen_flags_the_slower_twin_beyond_its_bandwidth_and_peaks(tmp_path: Path) -> None:
    from roofline.hardware_specs import get_accelerator

    h100, h200, b200, gb200 = (get_accelerator(x) for x in ("h100-sxm", "h200-sxm", "b200", "gb200"))
    assert twin_bound(h100, h200) == pytest.approx(4.8 / 3.35)  # HBM3 3.35 vs HBM3e 4.8 TB/s
    assert twin_bound(h200, h100) == 1.0 and twin_bound(b200, h200) is None
    assert twin_bound(b200, gb200) == pytest.approx(10 / 9)  # dense NVFP4 9 vs 10 PFLOP/s
    times = [100.0, 300.0, 600.0, 650.0]
    base = _llama4_group("g", "gb200", 16, "even", 1, times)
    assert suspect_rows(_cases(tmp_path, base + _llama4_group("b", "b200", 16, "even", 1, times))) == {}
    flagged = suspect_rows(_cases(tmp_path, base + _llama4_group("b", "b200", 16, "even", 1, [2 * x for x in times])))
    assert set(flagged) == {"b0", "b1", "b2", "b3"} and "x2.00 the time on gb200" in flagged["b0"]
    h200_rows = _llama4_group("n", "h200-sxm", 16, "even", 1, times)
    slower = _llama4_group("o", "h100-sxm", 16, "even", 1, [1.4 * x for x in times])  # memory-bound: 4.8 / 3.35
    assert suspect_rows(_cases(tmp_path, h200_rows + slower)) == {}


def test_power_law_busiest_rank_is_the_heaviest_contiguous_group() -> None:
    """AIC makes rank 0 the expert group with the largest load: above the mean rank's T K / ep rows
    and above the strided deal (the largest expert of each stratum); deterministic."""
    tokens, experts, top_k, ep = 16384, 128, 8, 8
    load = busiest_rank(tokens, experts, top_k, ep, "power_law_1.01", 1.0, 64)
    assert load == busiest_rank(tokens, experts, top_k, ep, "power_law_1.01", 1.0, 64)
    strided = sum(expert_loads(tokens, experts, top_k, "power_law_1.01")[::ep])
    assert load.rows > 1.3 * tokens * top_k / ep and load.rows > 1.2 * strided
    assert load.experts <= experts / ep and load.max_rows <= load.rows
    # T K <= E: the strided deal (AIC's table times it like balanced routing there)
    small = busiest_rank(8, experts, top_k, ep, "power_law_1.01", 1.0, 64)
    assert small.rows == sum(expert_loads(8, experts, top_k, "power_law_1.01")[::ep])


def test_mxfp4_rows_run_the_backend_aic_picks() -> None:
    from roofline.validation.predict_moe import _variant_name

    assert _variant_name("moe_torch_flow", "w4a16_mxfp4", "h200-sxm") == "trtllm_triton"
    assert _variant_name("moe_torch_flow", "w4a16_mxfp4", "b200") == "trtllm_gen"
    assert _variant_name("moe_torch_flow_cutlass", "fp8", "b200") == "trtllm"
    assert _variant_name("deepgemm", "fp8_block", "gb200") == "deepgemm"
    assert family("triton_ogs").tile_m < family("cutlass_moe").tile_m == 64


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "validation"


@pytest.mark.skipif(not (SHARED / "kernels-aic.csv").is_file(), reason="kernel tables not on this machine")
def test_suspect_rows_are_llama4_only_and_left_out_of_the_fit() -> None:
    from roofline.validation.fit_grouped_main import fit_cases

    cases = read_cases(SHARED / "kernels-aic.csv")
    flagged = suspect_rows(cases)
    assert flagged and all("topk=1;hidden=5120;intermediate=8192" in c.load for c in cases if c.case_id in flagged)
    assert not flagged.keys() & {c.case_id for c in fit_cases(SHARED)}


def test_validate_reports_the_rows_that_fail_the_screen_apart(tmp_path: Path) -> None:
    from roofline.validation.report import RowResult, summarize

    good = _llama4_group("a", "h200-sxm", 16, "even", 1, [86.0, 490.0, 950.0, 950.0])
    slow = _llama4_group("b", "h200-sxm", 16, "even", 8, [480.0, 455.0, 990.0, 950.0])
    cases = _cases(tmp_path, good + slow + _llama4_group("c", "h200-sxm", 128, "even", 8, [90, 91, 260, 950]))
    rows = [RowResult(c, 1.1 * c.value if c.case_id.startswith("b") else c.value) for c in cases]
    summary = {s.scenario: s for s in summarize(rows)}
    failed, passed = summary["moe_experts (AIC screen failed)"], summary["moe_experts (AIC screen passed)"]
    assert (failed.count, passed.count, summary["moe_experts"].count) == (4, 8, 12)
    assert failed.mape == pytest.approx(0.1) and passed.mape == pytest.approx(0.0)
    assert summary["moe_experts (AIC screen passed, h200-sxm)"].count == 8


def test_a_per_tensor_fp8_run_slower_than_the_block_scaled_one_is_suspect(tmp_path: Path) -> None:
    """Per-tensor FP8 does a subset of block-scaled FP8's work: a median ratio over 1.25 flags it alone."""
    block = _group("a", "fp8_block", "fp8", "even", [10.0, 20.0, 40.0, 200.0])
    per_tensor = _group("b", "fp8", "fp8", "even", [9.0, 18.0, 40.0, 150.0])
    assert suspect_rows(_cases(tmp_path, block + per_tensor)) == {}
    slow = _group("b", "fp8", "fp8", "even", [12.0, 36.0, 72.0, 380.0])  # x1.2, 1.8, 1.8, 1.9: median 1.8
    flagged = suspect_rows(_cases(tmp_path, block + slow))
    assert set(flagged) == {"b0", "b1", "b2", "b3"} and "fp8 / fp8_block x1.80" in flagged["b0"]


def test_a_grouped_gemm_pays_a_setup_for_every_expert_on_the_gpu() -> None:
    """Empty experts on the GPU cost their per-expert setup (grouped_gemm.yaml expert_setup_us), per launch."""
    from dataclasses import replace

    from roofline.dtypes import DType
    from roofline.hardware_specs import resolve_cluster
    from roofline.ir import Placement, Precision
    from roofline.simulator.cost import RooflineCostModel
    from roofline.workloads.moe_blocks import MoEKernelChoice, MoEShape, grouped_gemm_op, routed_expert_ops

    op = grouped_gemm_op(8, 1, 1536, 2048, "cutlass_moe", DType.FP8, quant="fp8_block")
    assert op.shape is not None and op.shape.resident_groups == 8
    many = replace(op, shape=replace(op.shape, local_groups=128))
    model = RooflineCostModel(resolve_cluster(hardware="h200-sxm"))
    kernel = model.grouped_kernel(op)
    assert kernel is not None and kernel.expert_setup_s > 0
    assert model.cost(many).total_s - model.cost(op).total_s == pytest.approx(120 * kernel.expert_setup_s)
    # the op builder: the experts of the GPU, 128 / ep, whatever the routed rows touch
    shape = MoEShape(hidden=2048, num_experts=128, top_k=8, expert_intermediate=768)
    load = busiest_rank(1, 128, 8, 1, "even", 1.0, 64)
    for ep in (1, 8):
        ops = routed_expert_ops(shape, 1, load, Precision(DType.FP8), Placement(ep=ep, attn_dp=ep), 1,
                                MoEKernelChoice("trtllm"))  # fmt: skip
        gemms = [o.shape for o in ops if o.shape is not None and o.shape.grouped]
        assert [s.resident_groups for s in gemms] == [128 // ep] * 2 and gemms[0].batch == 8


@pytest.mark.skipif(not (SHARED / "kernels-aic.csv").is_file(), reason="kernel tables not on this machine")
def test_more_experts_on_the_gpu_cost_more_for_the_same_routed_rows() -> None:
    """Qwen3-30B in block-scaled FP8: T = 1 at ep 1 and T = 8 at ep 8 route the same 8 x 1 rows to the
    timed GPU (balanced_rank0_rows), which holds 128 or 16 experts; AIC measured the first 33-40 us
    slower on every GPU. The model without the per-expert setup priced both alike; it must now
    explain at least 40% of the gap, and no more than all of it."""
    from roofline.validation.predict import _one_gpu
    from roofline.validation.predict_moe import moe_experts

    shape = "experts=128;topk=8;hidden=2048;intermediate=768;spread=even"
    rows = [c for c in read_cases(SHARED / "kernels-aic.csv") if "quant=fp8_block;" in c.notes]
    for hardware in ("h100-sxm", "h200-sxm", "b200", "gb200"):
        ep1 = next(c for c in rows if c.hardware == hardware and c.load == f"tokens=1;{shape}")
        ep8 = next(c for c in rows if c.hardware == hardware and c.load == f"tokens=8;{shape};tp=1;ep=8")
        assert balanced_rank0_rows(1, 128, 8, 1) == balanced_rank0_rows(8, 128, 8, 8) == (1,) * 8
        measured = ep1.value - ep8.value
        predicted = (moe_experts(ep1, _one_gpu(ep1)).values["latency_us"]
                     - moe_experts(ep8, _one_gpu(ep8)).values["latency_us"])  # fmt: skip
        assert 30 < measured < 45 and 0.4 * measured < predicted < measured, (hardware, measured, predicted)
