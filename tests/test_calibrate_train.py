"""The training-step model run of `calibrate` (calibration.train_run): the run's model is the dense
model-level run's, its forward is the decoder's, a step learns and is timed, a saved row reads back,
and the estimate is None where this build has no training step model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from roofline.calibration.device import DeviceInfo
from roofline.calibration.model_run import reduced_workload, spec_for
from roofline.calibration.runner import SavedRun, TrainComparison
from roofline.calibration.saved import read_rows, train_row
from roofline.calibration.train_run import (
    TrainEstimate,
    TrainRunResult,
    TrainRunSpec,
    estimate_train_step,
    train_bytes,
    train_spec_for,
)
from roofline.dtypes import DType
from roofline.hardware_specs import load_catalog
from roofline.workloads import get_workload


def tiny_spec(batch: int = 2, seq_len: int = 16) -> TrainRunSpec:
    workload = reduced_workload(get_workload("llama-3.1-8b"), layers=2, width_divisor=16, max_vocab=512)
    assert workload.kind == "dense"
    return TrainRunSpec(workload, batch, seq_len, DType.FP32, "llama-3.1-8b")  # type: ignore[arg-type]


def test_cpu_training_run_trains_the_dense_model_level_runs_model() -> None:
    llama = get_workload("llama-3.1-8b")
    train, prefill = train_spec_for(llama, "cpu", False), spec_for(llama, "cpu", False)
    assert train.workload == prefill.workload and (train.batch, train.seq_len) == (prefill.batch, prefill.isl)
    assert train.dtype is DType.FP32 and "fp32 throughout" in train.describe()
    gpu = train_spec_for(llama, "cuda", False)
    assert gpu.dtype is DType.BF16 and gpu.workload.hidden_size == 4096 and gpu.workload.vocab_size == 32768
    assert "bf16 autocast" in gpu.describe()


def test_memory_check_counts_16_bytes_a_parameter_and_the_logits() -> None:
    spec = tiny_spec()
    params = spec.workload.parameter_counts().total
    w = spec.workload
    activations = 32 * 2 * (16 * w.hidden_size + 3 * w.intermediate_size) * 4
    assert train_bytes(spec) == pytest.approx(16 * params + activations + 2 * 32 * 512 * 4)


def test_training_forward_is_the_decoders_prefill() -> None:
    """Causal full-sequence attention without a cache gives, at the last position, the logits the
    model-level run's decoder gives for the same prompt (same seed, same weights)."""
    torch = pytest.importorskip("torch")
    from roofline.calibration.model_run import ModelRunSpec, TorchDecoder
    from roofline.calibration.train_run import TorchTrainer

    spec = tiny_spec()
    trainer = TorchTrainer(torch, spec, "cpu")
    decoder = TorchDecoder(torch, ModelRunSpec(spec.workload, 2, 16, 1, DType.FP32, "llama-3.1-8b"), "cpu",
                           torch.float32)  # fmt: skip
    tokens = torch.randint(0, spec.workload.vocab_size, (2, 16))
    with torch.no_grad():
        mine = trainer.logits(tokens)
    with torch.inference_mode():
        theirs = decoder.logits(tokens, 0)
    assert mine.shape == (2, 16, spec.workload.vocab_size)
    torch.testing.assert_close(mine[:, -1], theirs, rtol=1e-4, atol=1e-5)


def test_a_training_step_updates_every_parameter_and_the_loss_falls() -> None:
    torch = pytest.importorskip("torch")
    from roofline.calibration.train_run import TorchTrainer

    trainer = TorchTrainer(torch, tiny_spec(), "cpu")
    before = [p.detach().clone() for p in trainer.parameters]
    tokens = torch.randint(0, 512, (2, 17))
    losses = [trainer.step(tokens[:, :-1], tokens[:, 1:]) for _ in range(4)]
    assert all(not torch.equal(b, p.detach()) for b, p in zip(before, trainer.parameters, strict=True))
    assert losses[-1] < losses[0] and math.log(512) == pytest.approx(losses[0], rel=0.1)  # random init: ~ln(V)
    assert len(trainer.optimizer.state) == len(trainer.parameters)  # AdamW keeps states for every parameter


def test_a_bf16_autocast_step_runs_and_learns() -> None:
    """The GPU recipe (fp32 parameters, bf16 autocast) on the CPU's autocast: the same code path."""
    torch = pytest.importorskip("torch")
    from dataclasses import replace

    from roofline.calibration.train_run import TorchTrainer

    trainer = TorchTrainer(torch, replace(tiny_spec(), dtype=DType.BF16), "cpu")
    assert trainer.autocast_dtype is torch.bfloat16
    tokens = torch.randint(0, 512, (2, 17))
    losses = [trainer.step(tokens[:, :-1], tokens[:, 1:]) for _ in range(3)]
    assert losses[-1] < losses[0] and all(p.dtype is torch.float32 for p in trainer.parameters)


def test_a_moe_model_gets_no_training_run_but_a_note() -> None:
    from roofline.calibration.runner import CalibrationOptions, _train_specs

    notes: list[str] = []
    assert _train_specs(CalibrationOptions(model="qwen3-30b-a3b"), "cpu", notes) == []
    assert notes and "dense transformer" in notes[0]
    assert len(_train_specs(CalibrationOptions(), "cpu", [])) == 1
    assert _train_specs(CalibrationOptions(train_run=False), "cpu", []) == []


def test_run_train_step_times_each_step() -> None:
    torch = pytest.importorskip("torch")
    from roofline.calibration.timing import Clock
    from roofline.calibration.train_run import run_train_step

    result = run_train_step(torch, tiny_spec(), "cpu", 2, Clock())
    assert len(result.step_s) == 2 and all(s > 0 for s in result.step_s)
    assert result.measured_step_s > 0 and result.peak_memory_bytes is None  # a CPU reports no peak


def fake_device() -> DeviceInfo:
    return DeviceInfo(kind="cuda", name="NVIDIA H100 80GB HBM3", memory_bytes=85.52e9, free_memory_bytes=80e9,
                      compute_units=132, cache_bytes=50e6, unit_cache_bytes=228 * 1024, architecture="sm_90",
                      torch_version="2.13.0", matmul_dtypes=(DType.FP32, DType.BF16),
                      model_dtype=DType.BF16)  # fmt: skip


@pytest.mark.parametrize("peak", [None, 12_345_678_912.0])
def test_saved_training_row_reads_back_as_measured(tmp_path: Path, peak: float | None) -> None:
    """measurements.csv's train_step row (what `calibrate --from` reads): the spec, every step and
    the peak memory come back."""
    from roofline.calibration.report import to_csv_text
    from roofline.calibration.saved import measurement_rows

    llama = get_workload("llama-3.1-8b")
    spec = train_spec_for(llama, "cuda", True)
    run = TrainRunResult(spec, (0.25, 0.24, 0.26), peak)
    saved = SavedRun(device=fake_device(), date="2026-12-06", mode="full", clock="CUDA events", measurements=(),
                     model_runs=(), base_id="h100-sxm", train_runs=(run,))  # fmt: skip
    path = tmp_path / "measurements.csv"
    path.write_text(to_csv_text(measurement_rows(saved)))
    row = train_row(run)
    assert row["family"] == "train" and row["variant"] == "train_step" and row["measured_s"] == 0.25
    assert ("peak_bytes=12345678912" in row["dims"]) == (peak is not None)
    _, models, host, train = read_rows(path, legacy=False)
    assert not models and not host and train == [run]


def test_the_report_prints_no_estimate_and_keeps_the_measurement() -> None:
    from roofline.calibration.report import train_case_row

    run = TrainRunResult(tiny_spec(), (0.5, 0.4, 0.6), None)
    none = TrainEstimate(None, note="no estimate: this build has no training step model (roofline.training)")
    row = train_case_row(TrainComparison(run, none, none))
    assert row["measured_s"] == 0.5 and math.isnan(row["predicted_after_s"]) and math.isnan(row["error_after"])
    assert "no estimate" in row["note"]
    both = train_case_row(TrainComparison(run, TrainEstimate(0.4), TrainEstimate(0.55)))
    assert both["error_before"] == pytest.approx(-0.2) and both["error_after"] == pytest.approx(0.1)


def test_with_a_training_step_model_the_gpu_run_has_an_estimate() -> None:
    """Once roofline.training is in the build: the GPU run (bf16 autocast) on an H100 gets a positive
    step time and a memory estimate between the 16 bytes a parameter and the device's memory."""
    pytest.importorskip("roofline.training")
    spec = train_spec_for(get_workload("llama-3.1-8b"), "cuda", False)
    h100 = load_catalog().accelerator("h100-sxm")
    estimate = estimate_train_step(spec, h100)
    assert estimate.step_s is not None and estimate.step_s > 0, estimate.note
    assert estimate.memory_bytes is not None
    assert 16 * spec.workload.parameter_counts().total < estimate.memory_bytes < h100.memory.capacity
