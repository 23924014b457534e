"""`roofline calibrate`: the fit, the profiles, catalog matching and the single-device cluster
without torch; with torch (pytest.importorskip), a real quick calibration of this host's CPU.

The CPU acceptance: `calibrate --device cpu --quick` writes the profile, report.md, report.csv and
the plot in under a minute on two cores, the profile loads through the catalog and `estimate`,
and the MEDIAN |error| of the fitted cost model on the HELD-OUT matmul shapes is under 15%. (Not
every held-out shape: on a CPU the skinny shapes (M = 1, 16) run kernels the GPU-shaped cost
model cannot express -- a bf16 GEMV slower than M = 16, weight packing per call -- and are off
by up to 2x; the report prints the mean and the worst beside the median.)
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from roofline.calibration import INSTALL_HINT
from roofline.calibration.cases import (
    CPU_QUICK,
    GPU_QUICK,
    BenchCase,
    Family,
    attention_case,
    elementwise_case,
    matmul_case,
    plan_cases,
    stream_case,
)
from roofline.calibration.device import DeviceInfo, catalog_differences, match_catalog
from roofline.calibration.fit import Predictor, fit_efficiency, levenberg_marquardt, single_tiles
from roofline.calibration.model_run import reduced_workload, spec_for
from roofline.calibration.profile import calibrated_accelerator, host_accelerator, single_fractions, to_yaml
from roofline.calibration.timing import Clock, TimingPolicy, measure
from roofline.cli.app import app
from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import load_catalog, resolve_cluster
from roofline.hardware_specs.catalog import HardwareCatalog
from roofline.hardware_specs.schema import Accelerator, MatmulTile
from roofline.simulator import estimate
from roofline.simulator.cost import RooflineCostModel
from roofline.workloads import get_workload

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_user_catalog_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)


def fake_device(kind: str = "cuda", name: str = "NVIDIA H100 80GB HBM3", memory: float = 85.52e9,
                units: int = 132) -> DeviceInfo:  # fmt: skip
    return DeviceInfo(kind=kind, name=name, memory_bytes=memory, free_memory_bytes=memory * 0.9, compute_units=units,
                      cache_bytes=50e6, unit_cache_bytes=228 * 1024, architecture="sm_90", torch_version="2.13.0",
                      matmul_dtypes=(DType.FP32, DType.BF16), model_dtype=DType.BF16, cuda_version="12.8",
                      driver_version="570.86")  # fmt: skip


def h100_with(**efficiency: Any) -> Accelerator:
    acc = single_fractions(load_catalog().accelerator("h100-sxm"))  # what the fit tunes: single fractions
    return acc.model_copy(update={"efficiency": acc.efficiency.model_copy(update=efficiency)})


def gpu_cases() -> list[BenchCase]:
    cases = plan_cases(GPU_QUICK, (DType.FP32, DType.BF16, DType.FP8), DType.BF16)
    return [c for c in cases if c.family in (Family.MATMUL, Family.COPY, Family.READ, Family.ELEMENTWISE,
                                                Family.ATTENTION)]  # fmt: skip


# ---- the fit, without torch ------------------------------------------------------------------------------


def test_predictor_is_the_cost_model() -> None:
    """The fit's array form of the cost model gives RooflineCostModel's time for every case; attention
    calls are priced by shape where the part has attention curves (Hopper: the calibration's
    attention rows stand for the single fraction), so there every case but attention."""
    acc = h100_with(memory_bandwidth_fraction=0.8, kernel_overhead=4e-6, overlap_exponent=3.0,
                    matmul_fraction={"default": 0.7, "fp32": 0.6, "fp8": 0.65}, attention_fraction=0.5)  # fmt: skip
    cases = [c for c in gpu_cases() if c.family is not Family.ATTENTION]
    cluster = replace(resolve_cluster(hardware="h100-sxm"), accelerator=acc)
    model = RooflineCostModel(cluster)
    expected = np.array([model.cost(c.op).total_s for c in cases])
    np.testing.assert_allclose(Predictor(cases, acc).times(acc.efficiency), expected, rtol=1e-12)


def test_predictor_is_the_cost_model_on_a_host_with_decode_attention_apart() -> None:
    """A host (no attention curves) with every host knob set: matrix-vector rows, a per-output time,
    decode attention as a KV stream at its own fraction; every case of the CPU grid, attention too."""
    device = fake_device("cpu", "Test CPU", 64e9, 4)
    host = host_accelerator(device, "testhost", {DType.FP32: 200e9, DType.BF16: 800e9}, 40e9, "copy", "2026-01-01")
    eff = host.efficiency.model_copy(
        update={"matmul_fraction": {"default": 0.9, "fp32": 0.85, "bf16": 0.9}, "memory_bandwidth_fraction": 0.7,
                "kernel_overhead": 3e-6, "matmul_tiles": [MatmulTile(m=16, n=1)], "overlap_exponent": 2.0,
                "attention_fraction": 0.4, "decode_attention_memory_fraction": 0.2, "gemv_below_m": 4,
                "gemv_output_overhead": 8e-8}
    )  # fmt: skip
    acc = host.model_copy(update={"efficiency": eff})
    cases = plan_cases(CPU_QUICK, (DType.FP32, DType.BF16), DType.FP32)
    model = RooflineCostModel(replace(resolve_cluster(hardware="h100-sxm"), accelerator=acc))
    expected = np.array([model.cost(c.op).total_s for c in cases])
    np.testing.assert_allclose(Predictor(cases, acc).times(eff), expected, rtol=1e-12)
    decode = [c for c in cases if c.variant == "decode"]
    plain = RooflineCostModel(replace(resolve_cluster(hardware="h100-sxm"), accelerator=host))
    assert all(model.cost(c.op).memory_s > plain.cost(c.op).memory_s for c in decode)  # 0.2 of the bandwidth


def test_fit_recovers_known_efficiencies_from_synthetic_times() -> None:
    """Times made by the cost model itself with known fractions, overhead and p: the fit starts from
    the catalog's priors and must find them again; held-out shapes are then predicted exactly."""
    truth = dict(memory_bandwidth_fraction=0.74, kernel_overhead=6e-6, overlap_exponent=2.0, attention_fraction=0.55,
                 matmul_fraction={"default": 0.8, "bf16": 0.68, "fp32": 0.9, "fp8": 0.61})  # fmt: skip
    true_acc = h100_with(**truth)
    cases = gpu_cases()
    measured = Predictor(cases, true_acc).times(true_acc.efficiency)
    prior = load_catalog().accelerator("h100-sxm")
    fit = fit_efficiency(cases, list(measured), prior)
    after = fit.after
    for key in ("bf16", "fp32", "fp8"):
        assert after.matmul_fraction[key] == pytest.approx(truth["matmul_fraction"][key], rel=0.01)  # type: ignore[index]
    assert after.matmul_fraction["default"] == pytest.approx(0.68, rel=0.01)  # follows bf16
    assert after.memory_bandwidth_fraction == pytest.approx(0.74, rel=0.01)
    assert after.attention_fraction == pytest.approx(0.55, rel=0.01)
    assert after.kernel_overhead == pytest.approx(6e-6, rel=0.05)
    assert after.overlap_exponent == 2.0
    assert fit.summary("held_out", True).max_abs < 0.01
    assert fit.summary("held_out", False).mean_abs > 0.05  # the priors were off before the fit
    assert sum(fit.held_out) > 0 and not any(f and h for f, h in zip(fit.fitted, fit.held_out, strict=True))


def test_fit_picks_the_tile_of_a_host_profile() -> None:
    """A host with one 16-row tile: M = 1 runs at 1/16 utilization, M = 16 at full; the fit finds it."""
    device = fake_device("cpu", "Test CPU", 64e9, 4)
    host = host_accelerator(device, "testhost", {DType.FP32: 200e9, DType.BF16: 800e9}, 40e9, "copy", "2026-01-01")
    truth = host.efficiency.model_copy(
        update={"matmul_fraction": {"default": 0.9, "fp32": 0.85, "bf16": 0.9}, "memory_bandwidth_fraction": 0.7,
                "kernel_overhead": 3e-6, "matmul_tiles": [MatmulTile(m=16, n=16)], "overlap_exponent": 2.0}
    )  # fmt: skip
    cases = [c for c in plan_cases(CPU_QUICK, (DType.FP32, DType.BF16), DType.FP32) if c.family is not Family.ATTENTION]
    measured = Predictor(cases, host).times(truth)
    fit = fit_efficiency(cases, list(measured), host, single_tiles(sizes_n=(1, 16)))
    assert [t.m for t in fit.after.matmul_tiles] == [16]  # n = 1 or 16 alike: every N is a multiple of 16
    assert fit.summary("held_out", True).max_abs < 0.01


def test_fit_finds_a_host_blas_matrix_vector_rule() -> None:
    """A host whose BLAS runs M < 4 as matrix-vector products (one weight pass per row, 80 ns per
    output) under an fp32 model, its SDPA decode a KV stream at 0.2 of the bandwidth: the fit, its
    shared knobs from fp32 alone, finds the threshold (M = 1 and 2 are measured, so any of 3..16
    explains them: the candidates give 4), the per-output time, and the prefill and decode
    attention apart; the predictor is the cost model on those rows."""
    from roofline.calibration.fit import HOST_GEMV_CANDIDATES

    device = fake_device("cpu", "Test CPU", 64e9, 4)
    host = host_accelerator(device, "testhost", {DType.FP32: 200e9, DType.BF16: 800e9}, 40e9, "copy", "2026-01-01")
    truth = host.efficiency.model_copy(
        update={"matmul_fraction": {"default": 0.9, "fp32": 0.85, "bf16": 0.9}, "memory_bandwidth_fraction": 0.7,
                "kernel_overhead": 3e-6, "matmul_tiles": [MatmulTile(m=16, n=1)], "overlap_exponent": 2.0,
                "gemv_below_m": 4, "gemv_output_overhead": 8e-8, "attention_fraction": 0.4,
                "decode_attention_memory_fraction": 0.2}
    )  # fmt: skip
    cases = plan_cases(CPU_QUICK, (DType.FP32, DType.BF16), DType.FP32)
    measured = Predictor(cases, host).times(truth)
    fit = fit_efficiency(cases, list(measured), host, single_tiles(sizes_n=(1,)), gemv_candidates=HOST_GEMV_CANDIDATES,
                         shared_from=DType.FP32, split_decode_attention=True)  # fmt: skip
    assert fit.after.gemv_below_m == 4 and fit.after.gemv_output_overhead == pytest.approx(8e-8, rel=0.02)
    assert fit.after.memory_bandwidth_fraction == pytest.approx(0.7, rel=0.02)
    assert fit.after.attention_fraction == pytest.approx(0.4, rel=0.02)
    assert fit.after.decode_attention_memory_fraction == pytest.approx(0.2, rel=0.02)
    assert fit.summary("held_out", True).max_abs < 0.01
    acc = host.model_copy(update={"efficiency": truth})
    cluster = replace(resolve_cluster(hardware="h100-sxm"), accelerator=acc)
    model = RooflineCostModel(cluster)
    expected = np.array([model.cost(c.op).total_s for c in cases])
    np.testing.assert_allclose(measured, expected, rtol=1e-12)


def test_levenberg_marquardt_solves_a_small_least_squares() -> None:
    xs = np.linspace(0.0, 1.0, 20)
    ys = 2.5 * np.exp(-1.3 * xs)
    x = levenberg_marquardt(lambda p: p[0] * np.exp(-p[1] * xs) - ys, np.array([1.0, 0.1]))
    np.testing.assert_allclose(x, [2.5, 1.3], rtol=1e-6)


def test_cases_hold_out_every_third_and_fp8_needs_n_k_multiples_of_16() -> None:
    cases = plan_cases(GPU_QUICK, (DType.BF16, DType.FP8), DType.BF16, num_devices=2)
    for family in (Family.MATMUL, Family.ATTENTION, Family.COPY):
        flags = [c.held_out for c in cases if c.family is family]
        assert flags[2::3] == [True] * len(flags[2::3]) and not any(flags[0::3]) and not any(flags[1::3])
    fp8 = [c for c in cases if c.family is Family.MATMUL and c.dtype is DType.FP8]
    assert fp8 and all(c.dim("n") % 16 == 0 and c.dim("k") % 16 == 0 for c in fp8)
    assert any(c.family is Family.ALL_REDUCE for c in cases) and any(c.family is Family.ALL_TO_ALL for c in cases)
    assert not any(c.family is Family.ALL_REDUCE for c in plan_cases(GPU_QUICK, (DType.BF16,), DType.BF16))


def test_case_operators_count_flops_and_bytes_by_hand() -> None:
    """matmul 16x4096x4096 bf16: 2 m n k FLOP; reads A (16 x 4096) and B (4096 x 4096), writes C.
    fp8: A and B 1 byte, C bf16. silu*mul over n: two kernels, reads 3n, writes 2n elements.
    Decode attention, batch 2, context 1024, 32/8 heads x 128: 2 x 32 x 256 x 1024 FLOP x 2."""
    op = matmul_case(16, 4096, 4096, DType.BF16).op
    assert op.flops == 2 * 16 * 4096 * 4096
    assert op.bytes == 2 * (16 * 4096 + 4096 * 4096 + 16 * 4096)
    assert matmul_case(16, 4096, 4096, DType.FP8).op.bytes == 16 * 4096 + 4096 * 4096 + 2 * 16 * 4096
    silu = elementwise_case("silu_mul", 1000, DType.BF16).op
    assert (silu.kernels, silu.bytes) == (2, 5 * 1000 * 2)
    assert stream_case(Family.COPY, 2**20, DType.FP32).op.bytes == 2 * 2**20
    att = attention_case("decode", 2, 1024, GPU_QUICK.heads, DType.BF16).op
    assert att.flops == 2 * 2.0 * 32 * 256 * 1024
    assert att.kv_read_bytes == 2 * 1024 * 2 * 8 * 128 * 2


# ---- device identity, profiles, the single-device cluster ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "memory", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", 85e9, "h100-sxm"),
        ("NVIDIA H100 PCIe", 85e9, "h100-pcie"),
        ("NVIDIA H200", 150e9, "h200-sxm"),
        ("NVIDIA GH200 480GB", 102e9, "gh200-96gb"),
        ("NVIDIA GH200 144G HBM3e", 155e9, "gh200-144gb"),
        ("NVIDIA A100-SXM4-80GB", 85e9, "a100-sxm-80gb"),
        ("NVIDIA B200", 190e9, "b200"),
        ("NVIDIA GB200", 190e9, "gb200"),
        ("AMD Instinct MI300X", 206e9, "mi300x"),
        ("NVIDIA GeForce RTX 4090", 25e9, None),
    ],
)
def test_device_names_match_catalog_entries(name: str, memory: float, expected: str | None) -> None:
    assert match_catalog(name, memory, load_catalog().accelerators) == expected


def test_catalog_differences_name_memory_and_sms() -> None:
    h100 = load_catalog().accelerator("h100-sxm")
    assert catalog_differences(h100, fake_device(memory=h100.memory.capacity)) == []
    notes = catalog_differences(h100, fake_device(memory=94e9 * 0.93, units=114))
    assert any(n.startswith("memory:") for n in notes) and "SMs: device 114, catalog 132" in notes


def test_accelerator_yaml_round_trips() -> None:
    for acc in load_catalog().accelerators.values():
        again = Accelerator.model_validate(yaml.safe_load(to_yaml(acc)))
        for field in ("memory", "compute", "sram", "efficiency", "power"):
            a, b = getattr(acc, field).model_dump(), getattr(again, field).model_dump()
            for key, value in a.items():
                if isinstance(value, float):
                    assert b[key] == pytest.approx(value, rel=1e-6), (acc.id, field, key)
        assert again.default_system == acc.default_system
        assert again.runtime_reserve == pytest.approx(acc.runtime_reserve)


def test_gpu_profile_keeps_the_node_and_takes_the_device_identity(tmp_path: Path) -> None:
    base = load_catalog().accelerator("h100-sxm")
    device = fake_device(memory=80e9, units=114)
    eff = base.efficiency.model_copy(update={"memory_bandwidth_fraction": 0.9, "kernel_overhead": 3e-6})
    acc = calibrated_accelerator(base, eff, device, "2026-01-01", "test", catalog_differences(base, device))
    assert acc.id == "h100-sxm-calibrated" and acc.default_system == "dgx-h100"
    assert acc.sram.sm_count == 114 and acc.memory.capacity == pytest.approx(80e9, rel=1e-8)
    assert acc.compute.bf16 == base.compute.bf16 and "SMs: device 114" in acc.notes
    assert "roofline calibrate" in acc.efficiency.source and "driver 570.86" in acc.efficiency.source
    path = tmp_path / "h100-sxm-calibrated.yaml"
    path.write_text(to_yaml(acc), encoding="utf-8")
    cluster = resolve_cluster(hardware=str(path), num_gpus=8)
    assert cluster.system.id == "dgx-h100" and cluster.accelerator.efficiency.memory_bandwidth_fraction == 0.9
    assert HardwareCatalog().add_file(path) == acc


def test_host_profile_without_default_system_runs_on_one_device(tmp_path: Path) -> None:
    device = fake_device("cpu", "Test CPU", 64e9, 8)
    host = host_accelerator(device, "myhost", {DType.FP32: 1e12, DType.BF16: 2e12}, 100e9, "copy", "2026-01-01")
    assert host.default_system is None and host.compute.fp16 is None and host.sram.sm_count == 8
    assert "MEASURED" in host.compute.source and "MEASURED" in host.memory.source
    path = tmp_path / "myhost-calibrated.yaml"
    path.write_text(to_yaml(host), encoding="utf-8")
    cluster = resolve_cluster(hardware=str(path))
    assert cluster.system.gpus_per_node == 1 and cluster.system.scale_out is None and cluster.num_gpus == 1
    assert cluster.scale_up.link.id == "pcie5"  # a placeholder: one device never crosses it
    workload = get_workload("llama-3.1-8b")
    result = estimate(workload, cluster, spec_for(workload, "cpu", full=False).scenario)
    assert result.ttft_s > 0 and result.tpot_s > 0 and result.system == "myhost-single"
    with pytest.raises(RooflineError, match="has no default_system; give one with --system ID"):
        resolve_cluster(hardware=str(path), num_gpus=2)


def test_single_device_system_takes_a_catalog_host_link() -> None:
    """An accelerator some catalog system holds (but that names no default system) borrows that
    system's host link for its one-device system."""
    catalog = load_catalog().copy()
    h100 = catalog.accelerator("h100-sxm")
    catalog.add(h100.model_copy(update={"default_system": None}))
    cluster = resolve_cluster(hardware="h100-sxm", catalog=catalog)
    assert cluster.system.id == "h100-sxm-single" and cluster.scale_up.link.id == "pcie5"
    assert cluster.num_nodes == 1 and cluster.domain_size == 1


def test_reduced_workload_is_a_valid_smaller_copy() -> None:
    w = reduced_workload(get_workload("llama-3.1-8b"), layers=2, width_divisor=4, max_vocab=8192)
    assert (w.num_hidden_layers, w.hidden_size, w.num_attention_heads, w.num_key_value_heads) == (2, 1024, 8, 2)
    assert (w.attention.head_dim, w.intermediate_size, w.vocab_size) == (128, 3584, 8192)
    assert w.published_params is None
    gpu = spec_for(get_workload("llama-3.1-8b"), "cuda", full=False)
    assert gpu.workload.hidden_size == 4096 and gpu.workload.num_hidden_layers == 4 and gpu.dtype is DType.BF16
    assert gpu.scenario.max_num_tokens >= gpu.batch * gpu.isl  # the whole batch prefills in one step
    moe = reduced_workload(get_workload("qwen3-30b-a3b"), layers=2, width_divisor=4, max_experts=16)
    assert (moe.num_experts, moe.num_experts_per_tok, moe.moe_intermediate_size, moe.hidden_size) == (16, 8, 192, 512)
    assert moe.id == "qwen3-30b-a3b-2l-w4-e16" and moe.kind == "moe"
    with pytest.raises(RooflineError, match="dense or MoE"):
        reduced_workload(get_workload("deepseek-v3"), layers=2)


def test_measure_sizes_repetitions_to_the_clock() -> None:
    class FakeClock(Clock):
        def time_calls(self, fn: Any, calls: int) -> float:
            return 1e-3 * calls

    timing = measure(lambda: None, FakeClock(), TimingPolicy(warmup=1, repetitions=7, min_repetition_s=5e-3))
    assert timing.calls == 5 and len(timing.per_call_s) == 7 and timing.median_s == pytest.approx(1e-3)
    slow = measure(lambda: None, FakeClock(), TimingPolicy(repetitions=9, min_repetition_s=0.0, max_case_s=4e-3))
    assert slow.calls == 1 and len(slow.per_call_s) == 4  # the case budget cuts repetitions


# ---- without torch ---------------------------------------------------------------------------------------


def test_calibrate_without_torch_says_how_to_install_it(tmp_path: Path) -> None:
    """A fresh interpreter where `import torch` fails: the core imports, calibrate prints one line."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import roofline.calibration.report, roofline.cli.app\n"
            "from roofline.cli.app import main\n"
            f"sys.argv = ['roofline', 'calibrate', '--device', 'cpu', '-o', {str(tmp_path / 'out')!r}]\n"
            "main()\n")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and INSTALL_HINT in lines[0]
    assert "pip install 'roofline[calibrate]'" in lines[0] and "torch==2.13.0" in lines[0]
    assert not (tmp_path / "out").exists()


def test_calibrate_without_torch_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    result = runner.invoke(app, ["calibrate", "--device", "cpu", "-o", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {INSTALL_HINT}"


# ---- with torch: a real quick calibration of this host -------------------------------------------------


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, Any]:
    """`roofline calibrate --device cpu --quick` once for the module, on one thread: kernels are
    then timed in that thread's CPU time, which other processes on a shared box do not inflate."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("calibration")
    with _machine_lock():
        started = time.perf_counter()
        result = runner.invoke(app, ["calibrate", "--device", "cpu", "--quick", "--threads", "1", "-o", str(out)])
        elapsed = time.perf_counter() - started
    return out, elapsed, result


@contextmanager
def _machine_lock() -> Iterator[None]:
    """One calibration test at a time on this machine: test runs started side by side (several
    checkouts, one shared box) would otherwise time their kernels against each other."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with (Path(tempfile.gettempdir()) / "roofline-calibrate-test.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_quick_cpu_calibration_writes_everything_in_under_a_minute(cpu_run: tuple[Path, float, Any]) -> None:
    out, elapsed, result = cpu_run
    assert result.exit_code == 0, result.output
    assert elapsed < 60.0
    for name in ("host-calibrated.yaml", "report.md", "report.csv", "predicted_vs_measured.png", "measurements.csv",
                 "run.json"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    assert (out / "predicted_vs_measured.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    for heading in ("## Device", "## Error before and after fitting", "## Fitted efficiencies", "## Model-level runs"):
        assert heading in report
    assert "torch 2." in report or "| torch |" in report


def test_quick_cpu_profile_loads_and_estimates(cpu_run: tuple[Path, float, Any]) -> None:
    out, _, _ = cpu_run
    path = out / "host-calibrated.yaml"
    acc = HardwareCatalog().add_file(path)
    assert isinstance(acc, Accelerator) and acc.id == "host-calibrated" and acc.default_system is None
    assert "roofline calibrate" in acc.efficiency.source and "MEASURED" in acc.compute.source
    assert acc.compute.fp32 and acc.compute.bf16 and acc.memory.bandwidth > 1e9
    result = runner.invoke(app, ["estimate", "--hardware", str(path), "--model", "llama-3.1-8b", "--isl", "128",
                                 "--osl", "16", "--format", "json", "--no-ops"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"hardware": "host-calibrated"' in result.stdout


def test_quick_cpu_fit_predicts_held_out_matmuls_within_15_percent(cpu_run: tuple[Path, float, Any]) -> None:
    """Median |error| of the fitted model on the held-out matmul shapes < 15% (see the module doc
    for why not every shape); the fit must also beat the unfitted roofline on the fitted shapes."""
    out, _, _ = cpu_run
    rows = _csv_rows(out / "report.csv")
    held = [abs(float(r["error_after"])) for r in rows if r["family"] == "matmul" and r["role"] == "held_out"]
    fitted_before = [abs(float(r["error_before"])) for r in rows if r["family"] == "matmul" and r["role"] == "fitted"]
    fitted_after = [abs(float(r["error_after"])) for r in rows if r["family"] == "matmul" and r["role"] == "fitted"]
    assert len(held) >= 12
    assert float(np.median(held)) < 0.15, sorted(held)
    assert np.median(fitted_after) < np.median(fitted_before)
    model = [r for r in rows if r["family"] == "model"]  # the dense and the MoE run, prefill and decode
    assert len(model) == 4 and all(math.isfinite(float(r["error_after"])) for r in model)


def test_quick_cpu_run_refits_from_its_measurements(cpu_run: tuple[Path, float, Any], tmp_path: Path) -> None:
    """`calibrate --from` on the CPU run (measurements.csv + run.json): no device, the same host
    profile, fit and model-level predictions as the run itself wrote."""
    out, _, _ = cpu_run
    result = runner.invoke(app, ["calibrate", "--from", str(out), "--out", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    written, refit = _csv_rows(out / "report.csv"), _csv_rows(tmp_path / "report.csv")
    assert [r["name"] for r in refit] == [r["name"] for r in written]
    for old, new in zip(written, refit, strict=True):
        assert old["role"] == new["role"]
        assert float(new["predicted_after_s"]) == pytest.approx(float(old["predicted_after_s"]), rel=1e-9, nan_ok=True)
    profile = yaml.safe_load((tmp_path / "host-calibrated.yaml").read_text())
    assert profile["compute"] == yaml.safe_load((out / "host-calibrated.yaml").read_text())["compute"]


def test_quick_cpu_run_writes_a_calibrated_eager_runtime(cpu_run: tuple[Path, float, Any]) -> None:
    """torch-eager-calibrated.yaml: the host's own dispatch cost (reference_cpu null), host time
    adding to the device's on a CPU, loadable as --runtime; no CUDA-graph profile on a CPU. The
    model-level runs are reported per mode with it: the dense eager decode step within 25% (the
    issue's goal is 10%, which the committed runs' refits check, test_calibrate_from.py; live on
    this shared 2-core host, eight runs gave -14% to +29% for this step as the load moved the fit)."""
    from roofline.simulator.serving.engine_config import load_engine

    out, _, _ = cpu_run
    path = out / "torch-eager-calibrated.yaml"
    runtime = load_engine(str(path))
    assert runtime.id == "torch-eager-calibrated" and runtime.host.reference_cpu is None
    assert runtime.host.overlaps_device is False and runtime.host.decode_launch == "eager"
    assert 1e-7 < runtime.host.dispatch_per_call < 1e-4
    assert runtime.host.calls_of("rope", "elementwise").kernels == 10  # neg, cat, 2 mul, add for q and for k
    assert runtime.moe_kernels == "torch_mm_loop" and "roofline calibrate" in runtime.host.source
    assert not (out / "torch-cuda-graph-calibrated.yaml").exists()
    result = runner.invoke(app, ["estimate", "--hardware", str(out / "host-calibrated.yaml"), "--model",
                                 "llama-3.1-8b", "--isl", "128", "--osl", "8", "--runtime", str(path), "--format",
                                 "json", "--no-ops"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {(r["name"]): r for r in _csv_rows(out / "report.csv") if r["family"] == "runtime"}
    decode = rows["llama-3.1-8b-2l-w4 decode step (TPOT) eager"]
    assert abs(float(decode["error_after"])) < 0.25
    assert float(decode["predicted_after_s"]) > float(decode["predicted_before_s"]) * 0.99  # host time adds
    assert all(math.isfinite(float(r["error_after"])) for r in rows.values()) and len(rows) == 4


def test_quick_cpu_run_times_a_training_step_and_refits_it(cpu_run: tuple[Path, float, Any], tmp_path: Path) -> None:
    """The training-step run (forward, backward, AdamW of the dense run's reduced model) is in
    measurements.csv, report.csv and report.md, and `calibrate --from` reads it back unchanged."""
    out, _, _ = cpu_run
    (saved,) = [r for r in _csv_rows(out / "measurements.csv") if r["family"] == "train"]
    assert saved["variant"] == "train_step" and float(saved["measured_s"]) > 0 and "batch=2 seq=128" in saved["dims"]
    (reported,) = [r for r in _csv_rows(out / "report.csv") if r["family"] == "train"]
    assert float(reported["measured_s"]) == float(saved["measured_s"])
    assert "## Training step (estimator vs PyTorch)" in (out / "report.md").read_text()
    result = runner.invoke(app, ["calibrate", "--from", str(out), "--out", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    (train,) = json.loads(result.stdout)["train_runs"]
    assert train["measured_step_s"] == float(saved["measured_s"]) and train["peak_memory_bytes"] is None
    assert train["model"] == "llama-3.1-8b-2l-w4" and (train["batch"], train["seq_len"]) == (2, 128)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_calibrate_refuses_to_overwrite_without_force(cpu_run: tuple[Path, float, Any]) -> None:
    out, _, _ = cpu_run
    result = runner.invoke(app, ["calibrate", "--device", "cpu", "-o", str(out)])
    assert result.exit_code == 2 and "--force" in result.stderr


def test_decoder_kv_cache_decode_matches_a_full_prefill() -> None:
    """The model-level decoder: one decode step over the cache gives the logits a prefill of the
    whole sequence gives at its last position (RoPE positions, GQA, cache writes all agree)."""
    torch = pytest.importorskip("torch")
    from roofline.calibration.model_run import ModelRunSpec, TorchDecoder

    workload = reduced_workload(get_workload("llama-3.1-8b"), layers=2, width_divisor=16, max_vocab=512)
    spec = ModelRunSpec(workload, batch=2, isl=12, osl=4, dtype=DType.FP32, base_id="llama-3.1-8b")
    model = TorchDecoder(torch, spec, "cpu", torch.float32)
    tokens = torch.randint(0, workload.vocab_size, (2, 13))
    with torch.inference_mode():
        model.logits(tokens[:, :12], 0)
        step = model.logits(tokens[:, 12:13], 12)
        full = model.logits(tokens, 0)
    torch.testing.assert_close(step, full, rtol=1e-4, atol=1e-5)


def test_ctrl_c_keeps_what_was_measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Interrupted after 30 kernels: the fit uses them, the outputs are still written."""
    pytest.importorskip("torch")
    from roofline.calibration import bench
    from roofline.calibration import runner as calibration_runner
    from roofline.calibration.report import write_outputs
    from roofline.calibration.timing import Timing

    calls = {"n": 0}

    def fake_run(self: Any, case: BenchCase) -> bench.Measurement:
        calls["n"] += 1
        if calls["n"] > 30:
            raise KeyboardInterrupt
        seconds = case.op.flops / 50e9 + case.op.bytes / 20e9 + 2e-6
        return bench.Measurement(case, Timing((seconds,) * 3, 1))

    monkeypatch.setattr(bench.BenchRunner, "run", fake_run)
    options = calibration_runner.CalibrationOptions(device="cpu", threads=1, model_runs=False, passes=1)
    result = calibration_runner.run_calibration(options)
    assert result.interrupted and len(result.measurements) == 30
    assert any("interrupted" in n for n in result.notes)
    paths = write_outputs(result, tmp_path)
    assert "Interrupted" in paths["report"].read_text() and paths["profile"].exists()


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[float]]:
    """A fake torch that reports an H100 PCIe with 110 SMs (the catalog says 114) and two devices;
    kernels 'measure' the cost model's own times with known efficiencies; collectives are stubbed.
    Returns the fake torch and the memory caps it was given."""
    from types import SimpleNamespace

    from roofline.calibration import bench
    from roofline.calibration import runner as calibration_runner
    from roofline.calibration.timing import Timing

    caps: list[float] = []
    props = SimpleNamespace(name="NVIDIA H100 PCIe", major=9, minor=0, multi_processor_count=110,
                            L2_cache_size=50 * 2**20, shared_memory_per_multiprocessor=228 * 1024)  # fmt: skip
    cuda = SimpleNamespace(
        is_available=lambda: True, get_device_properties=lambda i: props, mem_get_info=lambda i: (80e9, 85.5e9),
        device_count=lambda: 2, set_per_process_memory_fraction=lambda f, i: caps.append(f),
        Event=lambda enable_timing: None, synchronize=lambda: None, empty_cache=lambda: None,
    )  # fmt: skip
    fake_torch = SimpleNamespace(cuda=cuda, __version__="2.13.0+cu128", version=SimpleNamespace(cuda="12.8"),
                                 _C=SimpleNamespace(), _scaled_mm=object(), float8_e4m3fn=object(),
                                 backends=SimpleNamespace(cuda=SimpleNamespace(matmul=SimpleNamespace())),
                                 manual_seed=lambda s: None)  # fmt: skip
    fractions = {"default": 0.7, "bf16": 0.7, "fp16": 0.72, "fp32": 0.85, "fp8": 0.6}
    truth = h100_with(memory_bandwidth_fraction=0.8, kernel_overhead=5e-6, attention_fraction=0.6,
                      matmul_fraction=fractions)  # fmt: skip
    truth = truth.model_copy(update={"id": "h100-pcie", "sram": truth.sram.model_copy(update={"sm_count": 110})})
    pcie = load_catalog().accelerator("h100-pcie")
    truth = truth.model_copy(update={"compute": pcie.compute, "memory": pcie.memory})

    def fake_run(self: Any, case: BenchCase) -> bench.Measurement:
        seconds = float(Predictor([case], truth).times(truth.efficiency)[0])
        return bench.Measurement(case, Timing((seconds,) * 3, 1))

    def fake_collectives(cases: list[BenchCase], world: int, policy: Any) -> list[bench.Measurement]:
        return [bench.Measurement(c, Timing((1e-4 + c.dim("bytes") / 50e9,) * 3, 1)) for c in cases]

    def fake_host(
        torch: Any, target: str, models: Any, repetitions: int, notes: Any, graphs: bool = True
    ) -> list[dict[str, Any]]:
        """Host loops of a GPU host: 6 us per eager dispatch, a graph replay of 3 us + 1.5 us per kernel."""
        from roofline.calibration.host import row

        rows = [row("eager_loop", f"ops={n}", 6e-6 * n + 20e-6, calls=n) for n in (500, 2000)]
        rows += [row("graph_replay", f"kernels={n}", 1.5e-6 * n + 3e-6, calls=n) for n in (100, 1000)]
        return rows + [row("graph_launch", "kernels=100", 3e-6)]

    monkeypatch.setattr(calibration_runner, "require_torch", lambda: fake_torch)
    monkeypatch.setattr(calibration_runner, "measure_host", fake_host)
    monkeypatch.setattr(bench.BenchRunner, "run", fake_run)
    monkeypatch.setattr(calibration_runner, "run_collectives", fake_collectives)
    return fake_torch, caps


def test_cuda_path_end_to_end_with_a_fake_gpu(fake_gpu: tuple[Any, list[float]], tmp_path: Path) -> None:
    """The GPU orchestration without a GPU: a fake torch reports an H100 PCIe with 110 SMs (the
    catalog says 114) and two devices, kernels 'measure' the cost model's own times with known efficiencies, the
    collectives are stubbed. Checks catalog matching, the memory cap, the fit on the catalog's
    tiles, the calibrated profile that keeps the catalog node, and the collective comparison."""
    from roofline.calibration import runner as calibration_runner
    from roofline.calibration.report import write_outputs

    fake_torch, caps = fake_gpu
    result = calibration_runner.run_calibration(calibration_runner.CalibrationOptions(device="auto", model_runs=False))
    assert fake_torch.backends.cuda.matmul.allow_tf32 is False and caps == [pytest.approx(0.5 * 80e9 / 85.5e9)]
    assert result.base.id == "h100-pcie" and result.calibrated.id == "h100-pcie-calibrated"
    assert result.calibrated.default_system == "h100-pcie-8" and result.calibrated.sram.sm_count == 110
    assert result.catalog_differences == ("SMs: device 110, catalog 114",)
    assert "differs from the catalog: SMs: device 110, catalog 114" in result.calibrated.notes
    assert result.device.matmul_dtypes == (DType.FP32, DType.BF16, DType.FP16, DType.FP8)
    after = result.fit.after
    assert after.matmul_fraction["bf16"] == pytest.approx(0.7, rel=0.01)
    assert after.matmul_fraction["fp8"] == pytest.approx(0.6, rel=0.01)
    assert after.memory_bandwidth_fraction == pytest.approx(0.8, rel=0.01)
    assert after.kernel_overhead == pytest.approx(5e-6, rel=0.05)
    assert result.fit.summary("held_out", True).max_abs < 0.01
    assert result.host is not None and result.host.dispatch_per_kernel_s == pytest.approx(6e-6)
    assert result.host.graph_kernel_gap_s == pytest.approx(1.5e-6) and result.host.graph_launch_s == 3e-6
    graph = result.runtime_profiles["torch-cuda-graph-calibrated.yaml"]
    assert graph["host"]["graph_launch"] == "3 us" and graph["host"]["reference_cpu"] is None
    assert result.runtime_profiles["torch-eager-calibrated.yaml"]["host"]["overlaps_device"] is True
    assert len(result.collectives) == 2 * len(GPU_QUICK.collective_bytes)
    assert all(c.predicted_s > 0 and c.detail for c in result.collectives)
    paths = write_outputs(result, tmp_path)
    cluster = resolve_cluster(hardware=str(paths["profile"]), num_gpus=8)
    assert (
        cluster.system.id == "h100-pcie-8"
        and cluster.accelerator.efficiency.memory_bandwidth_fraction == after.memory_bandwidth_fraction
    )
    assert "## Collectives" in paths["report"].read_text()


def test_calibrate_json_is_the_apis_to_dict(fake_gpu: tuple[Any, list[float]], tmp_path: Path) -> None:
    """`roofline calibrate --format json` prints rl.calibrate(...).to_dict() for the same options (the
    fake GPU measures the same times twice); both write the same files."""
    import json

    import roofline as rl

    report = rl.calibrate(tmp_path / "api", device="auto", model_runs=False)
    result = runner.invoke(app, ["calibrate", "-o", str(tmp_path / "cli"), "--no-model-runs", "--format", "json"])
    assert result.exit_code == 0, result.output
    printed, returned = json.loads(result.stdout), json.loads(report.to_json())
    for document in (printed, returned):
        document.pop("elapsed_s")  # the wall time of each run
        assert set(document.pop("files")) == {
            "profile",
            "report",
            "csv",
            "plot",
            "measurements",
            "run",
            "torch-eager-calibrated",
            "torch-cuda-graph-calibrated",
        }
    assert printed == returned
    assert returned["hardware"] == "h100-pcie" and returned["errors"]
    assert report.calibrated.id == "h100-pcie-calibrated" and len(report.to_frame()) == len(report.records())
