"""TensorRT-LLM's custom all-reduce (one-shot / two-shot over peer memory) as a library profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from roofline.calibration.custom_allreduce import fit_custom_all_reduce, split_rows
from roofline.hardware_specs import resolve_cluster
from roofline.ir import CollectiveKind
from roofline.simulator.collectives import CollectiveModel, group_topology, load_library
from roofline.validation.cases import read_cases
from roofline.validation.fitted import expand_ids

AIC = Path(__file__).resolve().parents[2] / "shared" / "validation" / "kernels-aic.csv"
MIB = 1024**2


def _cost(library: str, size: float, hardware: str = "h100-sxm", n: int = 8):
    cluster = resolve_cluster(hardware=hardware, num_gpus=n)
    return CollectiveModel(load_library(library)).cost(CollectiveKind.ALL_REDUCE, size, group_topology(cluster, n))


def test_small_messages_take_the_one_shot_kernel() -> None:
    spec = load_library("trtllm").custom_all_reduce
    assert spec is not None
    cost = _cost("trtllm", 8192)
    assert cost.algorithm == "oneshot"
    # launch + 7 peers + 7 x 8 KiB read at the one-shot fraction of 450 GB/s (hand formula)
    expected = spec.launch_latency["nvlink4"] + 7 * spec.peer_latency["nvlink4"]
    expected += 7 * 8192 / (450e9 * spec.oneshot_fraction["nvlink4"])
    assert cost.time_s == pytest.approx(expected, rel=1e-9)
    assert cost.time_s < _cost("nccl", 8192).time_s / 2  # NCCL's LL ring pays 2(n-1) hops


def test_past_the_workspace_the_base_library_runs_it() -> None:
    big = 256 * MIB
    assert _cost("trtllm", big).algorithm not in ("oneshot", "twoshot")
    assert _cost("trtllm", big).time_s == pytest.approx(_cost("nccl", big).time_s)
    assert _cost("trtllm", 64 * MIB).time_s <= _cost("nccl", 64 * MIB).time_s


def test_nccl_profile_has_no_custom_kernels() -> None:
    assert load_library("nccl").custom_all_reduce is None
    assert _cost("nccl", 8192).algorithm in ("ring", "nvls")


def test_blackwell_uses_its_own_values() -> None:
    spec = load_library("trtllm").custom_all_reduce
    assert spec is not None
    small = _cost("trtllm", 2048, "b200", 2).time_s
    assert small == pytest.approx(spec.launch_latency["nvlink5"] + spec.peer_latency["nvlink5"] + 2048 / (
        900e9 * spec.oneshot_fraction["nvlink5"]), rel=1e-6)  # fmt: skip


@pytest.mark.skipif(not AIC.is_file(), reason="needs ../shared/validation/kernels-aic.csv")
def test_the_committed_profile_is_what_the_fit_gives() -> None:
    cases = [c for c in read_cases(AIC) if c.scenario == "allreduce"]
    fit_rows, held = split_rows(cases)
    assert len(fit_rows) == len(held) and not {c.case_id for c in fit_rows} & {c.case_id for c in held}
    spec = load_library("trtllm").custom_all_reduce
    assert spec is not None
    committed = {i for entry in spec.fitted_on for i in expand_ids(entry)}  # type: ignore[union-attr]
    assert committed == {c.case_id for c in fit_rows}
    for fit in fit_custom_all_reduce(cases):
        assert spec.launch_latency[fit.link] == pytest.approx(fit.launch_latency_us * 1e-6)
        assert spec.peer_latency[fit.link] == pytest.approx(fit.peer_latency_us * 1e-6)
        assert spec.oneshot_fraction[fit.link] == pytest.approx(fit.oneshot_fraction)
        assert spec.twoshot_fraction[fit.link] == pytest.approx(fit.twoshot_fraction)
        assert fit.mean_abs_log_error < 0.12
