"""EP dispatch / combine as collectives of their own (simulator/ep_comm.py), their validate predictor
(validation/predict_ep.py) and fit (validation/fit_ep.py), and `roofline comm ep-dispatch`."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import roofline as rl
from roofline.cli.app import app
from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import CollectiveKind, EpRouting, Phase, Placement, Precision, StepShape
from roofline.simulator.collectives import CollectiveModel, group_topology, load_library
from roofline.simulator.ep_comm import units_hit
from roofline.validation.cases import read_cases
from roofline.validation.predict_ep import ep_all_to_all
from roofline.workloads import get_workload

FIXTURE = Path(__file__).parent / "fixtures" / "validation_ep.csv"
KERNELS = Path(__file__).resolve().parents[2] / "shared" / "validation" / "kernels.csv"
DEEPSEEK = EpRouting(top_k=8, experts=256)
runner = CliRunner()


def _topo(hardware: str, n: int):  # type: ignore[no-untyped-def]
    return group_topology(resolve_cluster(hardware=hardware, num_gpus=n), n)


# ---- expected destinations ---------------------------------------------------------------------


def test_destination_gpus_match_the_issue_and_the_exact_hypergeometric() -> None:
    exact = 8 * (1 - math.comb(224, 8) / math.comb(256, 8))  # 32 experts per GPU, none of 8 picks on it
    assert units_hit(8, 256, 8) == pytest.approx(exact, rel=1e-12)
    assert exact == pytest.approx(5.2947, abs=1e-4)
    # with many experts per GPU the picks are nearly independent: the issue's 8 (1 - (7/8)^8) = 5.25
    assert units_hit(8, 8 * 100_000, 8) == pytest.approx(8 * (1 - (7 / 8) ** 8), abs=1e-3)
    assert units_hit(8, 8 * 100_000, 8) == pytest.approx(5.25, abs=2e-3)
    assert units_hit(256, 256, 8) == pytest.approx(8.0)  # one expert per GPU: every pick a new GPU
    assert units_hit(1, 256, 8) == 1.0


def _brute_force(units: int, experts: int, k: int, groups: int, topk_groups: int) -> float:
    """Every choice of groups, then every k-subset of their experts, equally likely."""
    per_unit, per_group = experts // units, experts // groups
    total, cases = 0.0, 0
    for chosen in itertools.combinations(range(groups), topk_groups):
        pool = [e for g in chosen for e in range(g * per_group, (g + 1) * per_group)]
        for picks in itertools.combinations(pool, k):
            total += len({e // per_unit for e in picks})
            cases += 1
    return total / cases


@pytest.mark.parametrize(("units", "experts", "k", "groups", "topk_groups"),
                         [(2, 8, 2, 4, 2), (4, 8, 3, 2, 1), (4, 16, 3, 4, 2), (2, 12, 3, 6, 3)])  # fmt: skip
def test_group_limited_destinations_by_enumeration(units: int, experts: int, k: int, groups: int,
                                                   topk_groups: int) -> None:  # fmt: skip
    assert units_hit(units, experts, k, groups, topk_groups) == pytest.approx(
        _brute_force(units, experts, k, groups, topk_groups), rel=1e-9)  # fmt: skip


# ---- the collective model ----------------------------------------------------------------------


def test_fp8_dispatch_and_bf16_combine_bytes() -> None:
    """Same tokens, no latency (ideal): combine moves BF16 (2 B), dispatch FP8 + a 4-byte scale per
    128 values (1 + 4/128 B), so combine takes 2 / 1.03125 = 1.94x as long."""
    model, topo = CollectiveModel(load_library("deepep"), ideal=True), _topo("h800", 8)
    size = 4096 * 7168 * 2.0
    dispatch = model.cost(CollectiveKind.EP_DISPATCH, size, topo, "normal", DEEPSEEK)
    combine = model.cost(CollectiveKind.EP_COMBINE, size, topo, "normal", DEEPSEEK)
    assert (dispatch.protocol, combine.protocol) == ("fp8_block", "bf16")
    assert combine.time_s / dispatch.time_s == pytest.approx(2 / (1 + 4 / 128), rel=1e-9)
    # by hand: 4096 tokens x 5.29 GPUs x 7/8 off this GPU x 7392 B over 200 GB/s (H800 NVLink, ideal)
    by_hand = 4096 * units_hit(8, 256, 8) * 7 / 8 * 7168 * (1 + 4 / 128) / 200e9
    assert dispatch.time_s == pytest.approx(by_hand, rel=1e-9)


def test_low_latency_time_grows_with_ep_size() -> None:
    model = CollectiveModel(load_library("deepep"))
    times = [model.cost(CollectiveKind.EP_DISPATCH, 7168 * 2.0, _topo("h800", n), "low_latency", DEEPSEEK).time_s
             for n in (8, 16, 32, 64, 128, 256)]  # fmt: skip
    assert all(b > a for a, b in itertools.pairwise(times)), times


def test_rdma_is_slower_than_nvlink_and_normal_sends_once_per_node() -> None:
    model = CollectiveModel(load_library("deepep"))
    links = model._ep_links(_topo("h800", 16))
    assert links.rdma_bytes_per_s < links.nvlink_bytes_per_s  # 50 GB/s CX7 vs 200 GB/s NVLink (H800)
    size = 4096 * 7168 * 2.0
    inside = model.cost(CollectiveKind.EP_DISPATCH, size, _topo("h800", 8), "normal", DEEPSEEK).time_s
    across = model.cost(CollectiveKind.EP_DISPATCH, size, _topo("h800", 16), "normal", DEEPSEEK).time_s
    assert across > inside
    # node-limited routing (top 4 of 8 node groups) sends fewer RDMA copies than routing over all 8 nodes
    limited = EpRouting(8, 256, groups=8, topk_groups=4)
    t64 = [model.cost(CollectiveKind.EP_DISPATCH, size, _topo("h800", 64), "normal", r).time_s
           for r in (DEEPSEEK, limited)]  # fmt: skip
    assert t64[1] < t64[0]


def test_imbalance_scales_the_busiest_ranks_bytes() -> None:
    model, topo = CollectiveModel(load_library("deepep"), ideal=True), _topo("h800", 8)
    even = model.cost(CollectiveKind.EP_DISPATCH, 1e8, topo, "normal", DEEPSEEK).time_s
    skewed = model.cost(CollectiveKind.EP_DISPATCH, 1e8, topo, "normal", EpRouting(8, 256, imbalance=1.5)).time_s
    assert skewed == pytest.approx(1.5 * even, rel=1e-12)


def test_nccl_sends_each_token_once_per_destination_gpu_through_its_all_to_all() -> None:
    model, topo, size = CollectiveModel(load_library("nccl")), _topo("h800", 16), 1e7
    ep = model.cost(CollectiveKind.EP_DISPATCH, size, topo, routing=DEEPSEEK).time_s
    plain = model.cost(CollectiveKind.ALL_TO_ALL, size * units_hit(16, 256, 8), topo).time_s
    assert ep == pytest.approx(plain, rel=1e-12)


def test_one_sided_kernel_stays_inside_one_nvlink_domain() -> None:
    model = CollectiveModel(load_library("trtllm"))
    assert model.cost(CollectiveKind.EP_DISPATCH, 1e6, _topo("gb200", 64), routing=DEEPSEEK).algorithm == "one_sided"
    with pytest.raises(rl.RooflineError, match="domains"):
        model.cost(CollectiveKind.EP_DISPATCH, 1e6, _topo("h800", 16), routing=DEEPSEEK)


def test_array_times_equal_scalar_costs() -> None:
    import numpy as np

    model, topo = CollectiveModel(load_library("deepep")), _topo("h800", 16)
    sizes = np.array([1e3, 1e5, 1e7, 1e9])
    arrays = model.times(CollectiveKind.EP_COMBINE, sizes, topo, DEEPSEEK)
    scalars = [model.cost(CollectiveKind.EP_COMBINE, float(s), topo, routing=DEEPSEEK).time_s for s in sizes]
    assert arrays == pytest.approx(scalars, rel=1e-12)


# ---- the MoE layer emits them ------------------------------------------------------------------


def test_moe_layer_dispatches_one_copy_per_token_with_its_routing() -> None:
    w = get_workload("deepseek-v3")
    placement = Placement(tp=1, layer_end=61, ep=16, attn_dp=16, moe_imbalance=1.2)
    ops = w.build_ops(StepShape(Phase.DECODE, 128, 1, 1000), Precision(), placement)  # 8 per attention replica
    dispatch = next(o for o in ops if o.name == "moe_dispatch")
    combine = next(o for o in ops if o.name == "moe_combine")
    assert dispatch.collective is not None and combine.collective is not None
    assert (dispatch.collective.kind, combine.collective.kind) == (CollectiveKind.EP_DISPATCH,
                                                                   CollectiveKind.EP_COMBINE)  # fmt: skip
    assert dispatch.collective.message_bytes == 8 * 7168 * 2  # 8 tokens, one BF16 copy each
    assert dispatch.collective.routing == EpRouting(8, 256, 1.2, element_bytes=2.0, cuda_graph=True)
    prefill = w.build_ops(StepShape(Phase.PREFILL, 16, 512, 512), Precision(), placement)
    routing = next(o for o in prefill if o.name == "moe_dispatch").collective.routing  # type: ignore[union-attr]
    assert routing is not None and not routing.cuda_graph


def test_decode_uses_the_low_latency_kernels_and_prefill_the_normal_ones() -> None:
    """DeepEP's normal kernels wait on the host (not in a CUDA graph): a decode step, graphed, runs
    the low-latency kernels even where the normal ones would be faster."""
    model, topo = CollectiveModel(load_library("deepep")), _topo("h800", 64)
    graphed = EpRouting(8, 256, cuda_graph=True)
    size = 128 * 7168 * 2.0
    assert model.cost(CollectiveKind.EP_COMBINE, size, topo, routing=DEEPSEEK).algorithm == "normal"
    assert model.cost(CollectiveKind.EP_COMBINE, size, topo, routing=graphed).algorithm == "low_latency"
    r = rl.estimate("deepseek-v3", "h800", gpus=16, tp=1, attn_dp=16, ep=16, batch=64, isl=1024, osl=8,
                    comm_library="deepep").to_dict()  # fmt: skip
    kernels = {(o["phase"], o["name"]): o["detail"].split("/")[0] for o in r["ops"] if o["name"] == "moe_dispatch"}
    assert kernels == {("prefill", "moe_dispatch"): "normal", ("decode", "moe_dispatch"): "low_latency"}


def test_deepep_estimate_moves_fewer_bytes_than_top_k_copies() -> None:
    """DeepSeek-V3 prefill on 16 H800 (attention DP 16, EP 16): DeepEP's FP8-once-per-node dispatch
    is several times faster than NCCL sending BF16 once per GPU."""
    common = {"gpus": 16, "tp": 1, "attn_dp": 16, "ep": 16, "batch": 16, "isl": 2048, "osl": 2}
    times = {}
    for library in ("nccl", "deepep"):
        r = rl.estimate("deepseek-v3", "h800", comm_library=library, **common).to_dict()
        times[library] = {o["name"]: o["time_s"] for o in r["ops"] if o["phase"] == "prefill"}
    assert times["deepep"]["moe_dispatch"] < times["nccl"]["moe_dispatch"] / 2
    assert times["deepep"]["moe_dispatch"] < times["deepep"]["moe_combine"]


# ---- validate: the predictor and the fit -------------------------------------------------------


def test_predictor_on_fixture_rows_follows_each_sources_bandwidth() -> None:
    """Rows from kernels.csv, one per source and kernel family (k0062 is the worst h800 row, -18%;
    the worst gb200 row, k0117, one token at EP 64, -26%, is left out)."""
    cases = {c.case_id: c for c in read_cases(FIXTURE)}
    for case in cases.values():
        p = ep_all_to_all(case)
        assert p.values[case.metric] == pytest.approx(case.value, rel=0.2), (case.case_id, p.values, p.note)
    trt = ep_all_to_all(cases["k0097"])  # TRT-LLM: tokens x min(ep, topk) x bytes per token / latency
    assert trt.values["gbps"] * 1e9 * trt.values["latency_us"] * 1e-6 == pytest.approx(2048 * 8 * 14336, rel=1e-9)
    assert "min(ep, topk)" in trt.note
    ll = ep_all_to_all(cases["k0045"])  # DeepEP low-latency: top-k copies of FP8 + scales + a 16 B header
    assert ll.values["gbps"] * 1e3 * ll.values["latency_us"] == pytest.approx(128 * 8 * (7392 + 16), rel=1e-9)
    assert "pure RDMA" in ll.note
    rdma = ep_all_to_all(cases["k0043"])  # DeepEP normal across nodes: per destination node, node-limited routing
    assert "destination nodes" in rdma.note and "top 4 of 8" in rdma.note


@pytest.mark.skipif(not KERNELS.is_file(), reason="shared/validation/kernels.csv is not here")
def test_fit_reproduces_the_committed_constants() -> None:
    from roofline.validation.fit_ep import fit

    fitted = fit(KERNELS)
    deepep, trtllm = load_library("deepep").expert_parallel, load_library("trtllm").expert_parallel
    assert deepep is not None and trtllm is not None
    for mode, spec in (*deepep.modes.items(), *trtllm.modes.items()):
        f = fitted[mode]
        assert spec.fitted_on == f["fitted_on"], mode
        assert spec.nvlink_fraction == pytest.approx(f["nvlink_fraction"], abs=0.006), mode
        if "rdma_fraction" in f:
            assert spec.rdma_fraction == pytest.approx(f["rdma_fraction"], abs=0.006), mode
        if "dispatch_s" in f:
            assert spec.latency["dispatch"] == pytest.approx(f["dispatch_s"], rel=0.01), mode
            assert spec.latency["combine"] == pytest.approx(f["combine_s"], rel=0.01), mode
            assert spec.latency_per_peer == pytest.approx(f["latency_per_peer_s"], rel=0.02), mode
        if "sm_half_saturation" in f:
            assert spec.sm_half_saturation == pytest.approx(f["sm_half_saturation"], abs=0.03), mode


# ---- roofline comm ep-dispatch -----------------------------------------------------------------


def test_comm_ep_dispatch_cli_and_api_agree() -> None:
    args = ["--tokens", "4096", "--hidden", "7168", "--topk", "8", "--experts", "256", "--ep", "16",
            "--hardware", "h800", "--mode", "normal"]  # fmt: skip
    result = runner.invoke(app, ["comm", "ep_dispatch", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    api = rl.comm_ep("ep-dispatch", "h800", tokens=4096, hidden=7168, topk=8, experts=256, ep=16, mode="normal")
    assert api.to_json().strip() == result.stdout.strip()
    assert api.cost.algorithm == "normal" and api.cost.protocol == "fp8_block"
    assert api.destination_gpus == pytest.approx(units_hit(16, 256, 8))


@pytest.mark.parametrize("bad", [["--tokens", "0"], ["--mode", "bogus"], ["--ep", "1"], ["--experts", "100"],
                                 ["--library", "trtllm"], ["--topk-groups", "3"]])  # fmt: skip
def test_comm_ep_bad_input_is_one_line_and_exit_2(bad: list[str]) -> None:
    base = {"--tokens": "16", "--hidden": "7168", "--topk": "8", "--experts": "256", "--ep": "16",
            "--hardware": "h800"}  # fmt: skip
    base.update(dict(zip(bad[::2], bad[1::2], strict=True)))
    result = runner.invoke(app, ["comm", "ep-dispatch", *[x for kv in base.items() for x in kv]])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("library", ["deepep", "trtllm", "nccl"])
def test_fast_path_prices_ep_collectives_as_the_estimator(library: str) -> None:
    """The sweep / plan fast path tabulates the EP collectives (routing included) on its size grid."""
    import numpy as np

    from roofline.simulator.engine import Scenario, estimate
    from roofline.simulator.fast import FastModel, Layout
    from roofline.simulator.plan import ParallelPlan

    w = get_workload("deepseek-v3")
    plan = ParallelPlan(tp=1, ep=16, attn_dp=16)
    cluster = resolve_cluster("gb200" if library == "trtllm" else "h800", num_gpus=plan.num_gpus)
    full = estimate(w, cluster, Scenario(64, 1024, 64, w.shipped_precision, plan, comm_library=library))
    model = FastModel(w, [cluster], comm_library=library)
    layout, one = Layout(1, 16, 16, w.shipped_precision), (np.array([0]), np.array([64]), np.array([1]))
    assert model.tpot_s(layout, 1024, 64, *one)[0] == pytest.approx(full.tpot_s, rel=0.01)
    assert model.ttft_batch_s(layout, 1024, *one)[0] == pytest.approx(full.ttft_batch_s, rel=0.01)


def test_post_quantization_dispatch_sends_the_experts_quantized_input() -> None:
    """TensorRT-LLM tech blog 18: NVFP4 dispatch moves 4032 B per 7168-value token (0.5 + 1/16 B per
    value), BF16 14336 B; the combine stays BF16."""
    model, topo = CollectiveModel(load_library("trtllm"), ideal=True), _topo("gb200", 8)
    size = 2048 * 7168 * 2.0
    nvfp4 = EpRouting(8, 256, quantized_element_bytes=0.5 + 1 / 16)
    times = {(k, r.quantized_element_bytes): model.cost(k, size, topo, routing=r).time_s
             for k in (CollectiveKind.EP_DISPATCH, CollectiveKind.EP_COMBINE) for r in (DEEPSEEK, nvfp4)}  # fmt: skip
    ratio = times[CollectiveKind.EP_DISPATCH, 0.5625] / times[CollectiveKind.EP_DISPATCH, 0.0]
    assert ratio == pytest.approx(4032 / 14336)
    assert times[CollectiveKind.EP_COMBINE, 0.5625] == times[CollectiveKind.EP_COMBINE, 0.0]
    placement = Placement(layer_end=61, ep=8, attn_dp=8)
    ops = get_workload("deepseek-v3").build_ops(StepShape(Phase.DECODE, 64, 1, 1000), Precision(weight=DType.FP4),
                                                placement)  # fmt: skip
    routing = next(o for o in ops if o.name == "moe_dispatch").collective.routing  # type: ignore[union-attr]
    assert routing is not None and routing.quantized_element_bytes == 0.5625
