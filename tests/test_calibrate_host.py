"""Host costs of `calibrate` (calibration.host): the fit of the dispatch / CUDA-graph constants from
the saved rows, the kernels counted per IR operator, and the decoder variants they run (the
static-shape decode step that a CUDA graph captures, the MoE experts)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from roofline.calibration.host import fit_host, row
from roofline.calibration.model_run import ModelRunSpec, reduced_workload
from roofline.dtypes import DType
from roofline.workloads import get_workload


def _line_rows(variant: str, key: str, fixed_s: float, per_s: float, ns: tuple[int, ...]) -> list[dict[str, Any]]:
    return [row(variant, f"{key}={n}", fixed_s + per_s * n, calls=n) for n in ns]


def test_fit_takes_slopes_and_adds_views_per_kernel() -> None:
    rows = _line_rows("eager_loop", "ops", 20e-6, 5e-6, (200, 1000))
    rows += _line_rows("view_loop", "ops", 10e-6, 1e-6, (200, 1000))
    rows += _line_rows("graph_replay", "kernels", 30e-6, 2e-6, (100, 1000))
    rows += [row("graph_launch", "kernels=100", 8e-6), row("graph_launch", "kernels=1000", 9e-6)]
    rows += [row("kernels", "model=m op=rope", math.nan, calls=10), row("views", "model=m op=rope", math.nan, calls=5),
             row("kernels", "model=m op=qkv_proj", math.nan, calls=2), row("views", "model=m op=qkv_proj", math.nan,
             calls=7)]  # fmt: skip
    fit = fit_host(rows)
    assert fit is not None
    assert fit.kernel_dispatch_s == pytest.approx(5e-6) and fit.view_dispatch_s == pytest.approx(1e-6)
    assert fit.views_per_kernel == pytest.approx(12 / 12)
    assert fit.dispatch_per_kernel_s == pytest.approx(5e-6 + 1.0 * 1e-6)
    assert fit.graph_kernel_gap_s == pytest.approx(2e-6) and fit.graph_launch_s == pytest.approx(8e-6)
    assert fit.kernels == {"m": {"rope": 10, "qkv_proj": 2}}
    assert fit_host([]) is None


def test_cpu_fit_has_no_graph_constants() -> None:
    fit = fit_host(_line_rows("eager_loop", "ops", 0.0, 3e-6, (200, 1000)))
    assert fit is not None and math.isnan(fit.graph_launch_s) and math.isnan(fit.graph_kernel_gap_s)
    assert fit.dispatch_per_kernel_s == pytest.approx(3e-6)  # no counts: no views added


def _spec(model: str, **reduce: Any) -> ModelRunSpec:
    workload = reduced_workload(get_workload(model), layers=2, width_divisor=8, max_vocab=512, **reduce)
    return ModelRunSpec(workload, 2, 16, 4, DType.FP32, model)


def test_static_decode_step_matches_the_eager_step() -> None:
    """The CUDA-graph form of a decode step (cache position as a tensor, whole cache under a mask)
    computes what the eager step computes."""
    torch = pytest.importorskip("torch")
    from roofline.calibration.model_run import TorchDecoder

    spec = _spec("llama-3.1-8b")
    eager, static = TorchDecoder(torch, spec, "cpu", torch.float32), TorchDecoder(torch, spec, "cpu", torch.float32)
    prompt = torch.randint(0, 512, (2, 16))
    with torch.inference_mode():
        token = eager.step(prompt, 0)
        static.step(prompt, 0)
        expected = eager.logits(token[:, None], 16)
        got = static.logits(token[:, None], torch.tensor([16]))
    assert torch.allclose(expected, got, rtol=1e-4, atol=1e-5)


def test_moe_experts_grouped_gemm_equals_the_loop_and_counts_kernels() -> None:
    torch = pytest.importorskip("torch")
    from roofline.calibration.host import count_rows
    from roofline.calibration.model_run import TorchDecoder

    spec = _spec("qwen3-30b-a3b", max_experts=8)
    model = TorchDecoder(torch, spec, "cpu", torch.float32)
    prompt = torch.randint(0, 512, (2, 16))
    with torch.inference_mode():
        grouped = model.logits(prompt, 0)
        model.grouped_mm = False
        looped = model.logits(prompt, 0)
    assert torch.allclose(grouped, looped, rtol=1e-4, atol=1e-5)
    counts = {
        r["dims"].split("op=")[1]: r["calls"] for r in count_rows(torch, model, "cpu") if r["variant"] == "kernels"
    }
    # rope by hand: per q and k, neg + cat + x*cos + rotated*sin + add = 5 kernels
    assert counts["rope"] == 10
    assert counts["router"] == 1 and counts["expert_up"] >= 1 and counts["lm_head"] == 1
    assert "gate_up_proj" not in counts  # every layer MoE


def test_a_refused_host_measurement_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    """One host measurement the build refuses (here the kernel count) leaves the others and a note."""
    torch = pytest.importorskip("torch")
    from roofline.calibration import host
    from roofline.calibration.model_run import TorchDecoder
    from roofline.calibration.runner import measure_host

    def refuse(*args: Any) -> list[dict[str, Any]]:
        raise RuntimeError("not on this build\nsecond line")

    monkeypatch.setattr(host, "count_rows", refuse)
    model = TorchDecoder(torch, _spec("llama-3.1-8b"), "cpu", torch.float32)
    notes: list[str] = []
    rows = measure_host(torch, "cpu", [model], 1, notes)
    assert notes == ["host costs: kernel count of llama-3.1-8b-2l-w8 skipped: not on this build"]
    assert {r["variant"] for r in rows} == {"eager_loop", "view_loop", "host_op"}


def test_runtime_choice_filters_the_calibrated_profiles() -> None:
    from types import SimpleNamespace

    from roofline.calibration.runtime_profiles import calibration_runtimes, runtime_profiles

    rows = _line_rows("eager_loop", "ops", 20e-6, 5e-6, (200, 1000))
    rows += _line_rows("graph_replay", "kernels", 30e-6, 2e-6, (100, 1000))
    rows += [row("graph_launch", "kernels=100", 8e-6), row("graph_launch", "kernels=1000", 9e-6)]
    fit = fit_host(rows)
    gpu = SimpleNamespace(kind="cuda", torch_version="2.13.0")
    both = runtime_profiles(fit, gpu, "2026-12-06", "test")
    assert set(both) == {"torch-eager-calibrated.yaml", "torch-cuda-graph-calibrated.yaml"}
    assert both["torch-eager-calibrated.yaml"]["host"]["dispatch_per_call"] == "5 us"  # the loop's slope
    graph = runtime_profiles(fit, gpu, "2026-12-06", "test", runtimes=calibration_runtimes(["gpt-fast"]))
    assert set(graph) == {"torch-cuda-graph-calibrated.yaml"}
    assert calibration_runtimes([]) == ("torch-eager", "torch-cuda-graph")
