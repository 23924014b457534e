"""`roofline validate` on the published training measurements (../shared/validation/training.csv):
every row whose model the catalog has is predicted, and the error stays under the bound measured
when the training model was written (no constant is fitted to a training row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roofline.validation import validate_file
from roofline.validation.cases import read_cases
from roofline.validation.predict_training import gpu_generation, note_fields, training_config

TRAINING_CSV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training.csv"


def _file() -> Path:
    if not TRAINING_CSV.is_file():
        pytest.skip(f"{TRAINING_CSV} is absent")
    return TRAINING_CSV


def test_rows_map_to_layouts_as_the_readme_describes() -> None:
    cases = {c.case_id: c for c in read_cases(_file())}
    fsdp = training_config(cases["t0021"])  # fsdp=64: FSDP over the sharding group
    assert (fsdp.zero, fsdp.data_parallel, fsdp.micro_batches) == (3, 64, 2)
    interleaved = training_config(cases["t0037"])  # 405B on 1024 H100: tp 8 pp 8 vpp 8 cp 2
    assert (interleaved.vpp, interleaved.cp, interleaved.data_parallel, interleaved.micro_batches) == (8, 2, 8, 192)
    assert training_config(cases["t0011"]).task == "lora" and note_fields(cases["t0113"])["task"] == "sft"
    assert training_config(cases["t0099"]).flop_convention == "nemo"
    assert [gpu_generation(h) for h in ("h100-sxm", "gb200", "b300")] == ["Hopper", "Blackwell", "Blackwell Ultra"]


# Measured when written (issue 19, causes built one by one): all 122 rows predicted; MAPE over all
# rows 23.9% tokens/s/GPU and 25.5% model TFLOP/s/GPU (was 25.2% / 25.3%); then 26.4% / 27.9% once
# the MoE expert GEMMs came from the refitted grouped-GEMM curves and training ran Megatron's MoE
# kernels (TE GroupedLinear, priced by the dense GEMM curve): the MoE and hybrid models (gpt-oss,
# Nemotron 3) stay too fast by 40-100%; over the dense Llama rows 8.9% / 8.7%. Then 9.8% / 10.9%
# once the unfused Megatron MoE path paid its host-synchronised cost per MoE layer
# (training.yaml moe_unfused_layer_s, from NVIDIA's published 93% GPT-OSS gain of the fused path):
# gpt-oss 84% -> 10%, Nemotron-3 Nano 62% -> 7%, Super 74% -> 10%; DeepSeek-V3 20% either way.
PREDICTED_AT_LEAST = 122
BOUNDS = {"tokens_per_s_per_gpu": 0.11, "model_tflops_per_gpu": 0.12}
DENSE_BOUND = 0.095


def test_training_csv_is_predicted_within_the_measured_bounds() -> None:
    report = validate_file(_file())
    assert len(report.rows) >= PREDICTED_AT_LEAST
    for s in report.skipped:  # only models the catalog lacks
        assert s.reason.startswith("model '") and "not in the catalog" in s.reason, (s.case.case_id, s.reason)
    for metric, bound in BOUNDS.items():
        summary = report.summary_for("training", metric)
        assert summary is not None and summary.mape < bound, (metric, summary)
        dense = [abs(r.error) for r in report.rows if r.case.metric == metric and "llama" in r.case.model]
        assert sum(dense) / len(dense) < DENSE_BOUND, metric


def test_a_row_published_without_mtp_trains_no_mtp_depth() -> None:
    from roofline.validation.predict_training import without_mtp

    assert without_mtp("task=pretrain; published as DeepSeekV3 (w/o MTP): trained without multi-token prediction")
    assert not without_mtp("task=pretrain; release=26.04.01 NeMo container; MTP setting not stated")
