"""`roofline validate`: predictions against a measurements file, the error summary, bad files.

The small fixture (tests/fixtures/validation_small.csv) holds hand-made rows of every predicted
scenario, including rows that cannot be predicted; validation_kernels.csv holds kernel rows with only
the columns they need plus extra ones, and rows of scenarios and metrics that are not predicted;
validation_training.csv is in the training schema. The kernel scenarios of the real files
(../shared/validation/*.csv, skipped when absent) are held to error bounds set a little above the
errors measured when this test was written, so a regression fails.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from roofline.cli.app import app
from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.reports.formats import to_json
from roofline.validation import (
    PREDICTORS,
    SCENARIO_METRICS,
    DiffusionValidation,
    ValidationReport,
    report_inputs,
    run_validation,
    validate_file,
)
from roofline.validation import predict as predict_module
from roofline.validation import run as run_module
from roofline.validation.report import SummaryRow

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "validation_small.csv"
KERNELS = FIXTURES / "validation_kernels.csv"
TRAINING = FIXTURES / "validation_training.csv"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "validation"
PUBLISHED = SHARED / "published.csv"
HEADER = "case_id,source,model,hardware,num_gpus,tp,pp,ep,weight_dtype,kv_dtype,isl,osl,scenario,load,metric,value"
GEMM_ROW = "g1,s,,h100-sxm,1,,,,bf16,,,,gemm,4096x4096x4096,tflops,700"

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_user_catalog_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)


def _json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["validate", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    return _json("--data", str(FIXTURE), "--max-requests", "200")


# ---- the small fixture ------------------------------------------------------------------------


def test_every_schema_scenario_has_a_predictor() -> None:
    assert set(PREDICTORS) == {*SCENARIO_METRICS, "training"}  # training: the scenario of a training file


def test_json_structure(small: dict[str, Any]) -> None:
    assert set(small) == {"rows", "summary", "by_runtime", "breakdown", "skipped", "per_scenario"}
    with FIXTURE.open() as handle:
        ids = [r["case_id"] for r in csv.DictReader(handle)]
    listed = [r["case_id"] for r in small["rows"]] + [s["case_id"] for s in small["skipped"]]
    assert sorted(listed) == sorted(ids)  # every row is predicted or skipped, none dropped
    for row in small["rows"]:
        assert {"case_id", "scenario", "model", "hardware", "num_gpus", "isl", "osl", "load", "metric",
                "measured", "predicted", "error", "note"} <= set(row)  # fmt: skip
        assert row["predicted"] > 0
        assert row["error"] == pytest.approx(row["predicted"] / row["measured"] - 1)
    for entry in small["summary"]:
        assert set(entry) == {"scenario", "metric", "count", "mape", "median_ape", "max_ape", "held_out_count",
                              "held_out_mape"}  # fmt: skip
        scenario, _, regime = entry["scenario"].partition(" (")  # sub-groups: "request_rate (finite)"
        apes = [abs(r["error"]) for r in small["rows"] if (r["scenario"], r["metric"]) == (scenario, entry["metric"])
                and (not regime or (r["load"].strip().lower() == "inf") == (regime == "rate inf)"))]  # fmt: skip
        assert entry["count"] == len(apes)
        assert entry["mape"] == pytest.approx(sum(apes) / len(apes))
        assert entry["max_ape"] == pytest.approx(max(apes))
        assert entry["median_ape"] <= entry["max_ape"]
    pairs = {(s["scenario"], s["metric"]) for s in small["summary"]}
    with FIXTURE.open() as handle:
        in_fixture = {r["scenario"] for r in csv.DictReader(handle)}
    for scenario in in_fixture & set(SCENARIO_METRICS):  # the kernel scenarios have fixtures of their own
        assert any(p[0] == scenario for p in pairs), scenario
    counts = {c["scenario"]: (c["predicted"], c["skipped"]) for c in small["per_scenario"]}
    for scenario, (predicted, _) in counts.items():
        assert predicted == sum(r["scenario"] == scenario for r in small["rows"])
    assert sum(skipped for _, skipped in counts.values()) == len(small["skipped"])
    assert counts == {"max_throughput": (2, 2), "request_rate": (3, 0), "concurrency": (2, 0), "gemm": (1, 1),
                      "memory_copy": (1, 0), "allreduce": (1, 1)}  # fmt: skip


def test_rows_that_cannot_be_predicted_are_skipped_with_the_reason(small: dict[str, Any]) -> None:
    reasons = {s["case_id"]: s["reason"] for s in small["skipped"]}
    assert set(reasons) == {"t08", "t09", "t11", "t14"}
    assert "no-such-model" in reasons["t08"] and "unknown model" in reasons["t08"]
    assert "no-such-gpu" in reasons["t09"]
    assert "fp8" in reasons["t11"]  # A100 has no fp8 tensor cores
    assert "2 GPUs" in reasons["t14"]


def test_notes_state_the_assumptions(small: dict[str, Any]) -> None:
    notes = {r["case_id"]: r["note"] for r in small["rows"]}
    assert "tp not published: num_gpus / pp = 1" in notes["t02"] and "pp not published" in notes["t02"]
    assert "ep not published" in notes["t07"]  # Mixtral: experts split tensor-parallel
    assert "ep not published" not in notes["t05"]  # a dense model has no experts to place
    assert "simulated 3000 of the benchmark's 30000 requests" in notes["t01"]  # 128/128 dataset, capped
    assert "capped at 200 requests" in notes["t01"]


def test_memory_copy_is_the_achievable_hbm_bandwidth(small: dict[str, Any]) -> None:
    """H100 SXM: 3.35 TB/s x the catalog's STREAM fraction, in GB/s."""
    acc = resolve_cluster(hardware="h100-sxm").accelerator
    row = next(r for r in small["rows"] if r["case_id"] == "t12")
    assert row["predicted"] == pytest.approx(acc.memory.bandwidth * acc.efficiency.memory_bandwidth_fraction / 1e9)


def test_metrics_of_one_run_share_one_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = predict_module.serve

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0].id)
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_module, "serve", counting)
    report = validate_file(FIXTURE, ["request_rate"], max_requests=50)
    assert [r.case.case_id for r in report.rows] == ["t02", "t03", "t04"]
    assert len(calls) == 1


def test_scenario_filter() -> None:
    data = _json("--data", str(FIXTURE), "--scenario", "gemm", "--scenario", "memory_copy")
    assert {r["scenario"] for r in data["rows"]} == {"gemm", "memory_copy"}
    assert [s["case_id"] for s in data["skipped"]] == ["t11"]


def test_table_and_csv_outputs() -> None:
    table = runner.invoke(app, ["validate", "--data", str(FIXTURE), "--scenario", "gemm"])
    assert table.exit_code == 0, table.output
    for text in ("t10", "8192x8192x8192", "MAPE", "Skipped rows (1)", "t11"):
        assert text in table.stdout
    result = runner.invoke(app, ["validate", "--data", str(FIXTURE), "--scenario", "gemm", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["case_id"] for r in rows] == ["t10", "t11"]  # file order, the skipped row included
    assert rows[0]["skipped"] == "" and float(rows[0]["predicted"]) > 0
    assert rows[1]["predicted"] == "" and "fp8" in rows[1]["skipped"]


# ---- bad input: one line, exit code 2 ---------------------------------------------------------


def _bad(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    result = runner.invoke(app, ["validate", "--data", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("g2,s,,h100-sxm,1,,,,bf16,,,,,4096x4096x4096,tflops,700", ["line 3", "'scenario'", "is empty"]),
        ("g2,s,,h100-sxm,1,,,,bf16,,,,gemm,4096x4096x4096,,700", ["line 3", "'metric'", "is empty"]),
        (
            "g2,s,,h100-sxm,1,,,,bf16,,,,gemm,4096x4096x4096,tflops,fast",
            ["line 3", "'value'", "'fast' is not a number"],
        ),
        ("g2,s,,h100-sxm,one,,,,bf16,,,,gemm,4096x4096x4096,tflops,700", ["line 3", "'num_gpus'", "not an integer"]),
        ("g2,s,,h100-sxm,1,,,,bf16,,,,gemm,4096x4096,tflops,700", ["line 3", "'load'", "MxNxK"]),
        ("g2,s,,h100-sxm,1,,,,bf17,,,,gemm,4096x4096x4096,tflops,700", ["line 3", "'weight_dtype'", "bf17"]),
        ("g2,s,llama-3.1-8b,h100-sxm,1,1,1,,bf16,,,64,max_throughput,,output_tokens_per_s,1", ["line 3", "'isl'"]),
        ("g2,s,llama-3.1-8b,h100-sxm,1,1,1,,bf16,,64,64,request_rate,often,ttft_ms,1", ["line 3", "'load'"]),
        ("g1,s,,h100-sxm,1,,,,bf16,,,,gemm,2048x2048x2048,tflops,700", ["line 3", "repeats the id of line 2"]),
        # rows that are not predicted are still checked as they are read
        ("g2,s,,h100-sxm,1,,,,bf16,,,,attention_kernel,phase=decode,latency_us,fast", ["line 3", "'value'", "fast"]),
        ("g2,s,,h100-sxm,1,,,,fp9,,,,grouped_gemm,groups=2,tflops,50", ["line 3", "'weight_dtype'", "fp9"]),
        ("g2,s,,h100-sxm,0,,,,bf16,,,,ep_dispatch,tokens=1,gbps,50", ["line 3", "'num_gpus'", "at least 1"]),
        ("g2,s,,h100-sxm,1,,,,bf16,,,,gemm,4096x4096x4096,latency_us,-3", ["line 3", "'value'", "positive"]),
    ],
)
def test_bad_rows_name_the_line_and_column(tmp_path: Path, row: str, expected: list[str]) -> None:
    message = _bad(tmp_path, f"{HEADER}\n{GEMM_ROW}\n{row}\n")
    for text in expected:
        assert text in message


def test_missing_column(tmp_path: Path) -> None:
    header = HEADER.replace(",metric", "")
    row = GEMM_ROW.replace(",tflops", "")
    message = _bad(tmp_path, f"{header}\n{row}\n")
    assert "line 1" in message and "missing column(s) metric" in message


def test_empty_or_missing_file(tmp_path: Path) -> None:
    assert "is empty" in _bad(tmp_path, "")
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "absent.csv")])
    assert result.exit_code == 2 and "cannot read" in result.stderr


def test_unknown_scenario_option() -> None:
    result = runner.invoke(app, ["validate", "--data", str(FIXTURE), "--scenario", "training"])
    assert result.exit_code == 2 and "unknown scenario 'training'" in result.stderr


def test_missing_default_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(run_module, "DEFAULT_DATA", tmp_path / "published.csv")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert "no --data given" in result.stderr and "pass --data" in result.stderr


# ---- columns a file may leave out, carry, or lack -----------------------------------------------


@pytest.fixture(scope="module")
def kernels() -> ValidationReport:
    report = validate_file(KERNELS)
    assert isinstance(report, ValidationReport)
    return report


def _predicted(report: ValidationReport) -> dict[str, float]:
    return {r.case.case_id: r.predicted for r in report.rows}


def test_kernel_rows_need_only_their_columns(kernels: ValidationReport, tmp_path: Path) -> None:
    """validation_kernels.csv has no source, model, tp/pp/ep, kv_dtype, isl/osl columns and carries notes
    and runtime; its rows predict what the same rows with every column (left empty) predict."""
    full = tmp_path / "full.csv"
    full.write_text(f"{HEADER}\nk01,s,,h100-sxm,1,,,,fp8,,,,gemm,4096x4096x4096,tflops,1200\n"
                    "k06,s,,h100-sxm,1,,,,,,,,memory_copy,copy,gbps,2900\n")  # fmt: skip
    expected = _predicted(validate_file(full))
    predicted = _predicted(kernels)
    kernel_rows = {"k07", "k08", "k11"}  # attention_kernel, grouped_gemm, moe_experts: predicted once modelled
    assert {"k01", "k02", "k03", "k04", "k05", "k06"} <= set(predicted) <= {"k01", "k02", "k03", "k04", "k05", "k06",
                                                                           *kernel_rows}  # fmt: skip
    assert predicted["k01"] == expected["k01"] and predicted["k06"] == expected["k06"]


def test_gemm_latency_and_bandwidth_come_from_the_tflops_time(kernels: ValidationReport) -> None:
    """One 4096^3 FP8 GEMM: 2MNK = 2 x 4096^3 = 137,438,953,472 FLOP; FP8 in, BF16 out moves
    MK + KN + 2MN = 4 x 4096^2 = 67,108,864 bytes. latency_us = 2MNK / (tflops x 1e12) x 1e6 and
    gbps = bytes / latency / 1e9."""
    p = _predicted(kernels)
    time_s = 137_438_953_472 / (p["k01"] * 1e12)
    assert p["k03"] == pytest.approx(time_s * 1e6, rel=1e-12)
    assert p["k02"] == pytest.approx(67_108_864 / time_s / 1e9, rel=1e-12)
    assert 10 < p["k03"] < 1000  # microseconds, not seconds or milliseconds


def test_allreduce_latency_matches_its_bus_bandwidth(kernels: ValidationReport) -> None:
    """nccl-tests: busbw = size / time x 2(n-1)/n; 1 GiB over 8 GPUs: time = 2^30 x 1.75 / busbw."""
    p = _predicted(kernels)
    time_s = 2**30 * 2 * 7 / 8 / (p["k04"] * 1e9)
    assert p["k05"] == pytest.approx(time_s * 1e6, rel=1e-12)


def test_rows_not_predicted_yet_are_skipped_and_counted(kernels: ValidationReport) -> None:
    reasons = {s.case.case_id: s.reason for s in kernels.skipped}
    assert {"k09", "k10"} <= set(reasons) <= {"k07", "k08", "k09", "k10", "k11"}  # k07/k08/k11: kernel scenarios
    assert reasons["k09"] == "metric 'tflop' is not predicted for scenario gemm (predicted: tflops, gbps, latency_us)"
    assert "fp4" in reasons["k10"]  # a predicted scenario the hardware cannot run
    counts = {c.scenario: (c.predicted, c.skipped) for c in kernels.per_scenario()}
    assert counts["gemm"] == (3, 2) and counts["allreduce"] == (2, 0) and counts["memory_copy"] == (1, 0)
    assert list(counts) == ["gemm", "allreduce", "memory_copy", "attention_kernel", "grouped_gemm", "moe_experts"]
    assert sum(counts["attention_kernel"]) == sum(counts["grouped_gemm"]) == sum(counts["moe_experts"]) == 1


def test_scenario_option_takes_any_scenario_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("case_id,hardware,num_gpus,scenario,load,metric,value\n"
                    "o1,h100-sxm,1,sparse_gemm,2:4,tflops,900\no2,h100-sxm,1,memory_copy,copy,gbps,2900\n")  # fmt: skip
    data = _json("--data", str(path), "--scenario", "sparse_gemm")
    assert data["rows"] == [] and [s["case_id"] for s in data["skipped"]] == ["o1"]
    assert data["per_scenario"] == [{"scenario": "sparse_gemm", "predicted": 0, "skipped": 1}]
    assert "'sparse_gemm' is not predicted yet" in data["skipped"][0]["reason"]
    result = runner.invoke(app, ["validate", "--data", str(path), "--scenario", "attention"])
    assert result.exit_code == 2 and "unknown scenario 'attention'" in result.stderr
    assert "in the file: sparse_gemm" in result.stderr


def test_serving_rows_of_runtimes_without_a_profile_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "runtimes.csv"
    path.write_text(
        f"{HEADER},runtime\nv1,s,llama-3.1-8b,h100-sxm,1,1,1,,bf16,,128,128,max_throughput,,"
        "output_tokens_per_s,9000,llama.cpp\nv2,s,,h100-sxm,1,,,,bf16,,,,gemm,4096x4096x4096,tflops,700,llama.cpp\n"
    )
    report = validate_file(path)
    assert [r.case.case_id for r in report.rows] == ["v2"]  # a kernel row does not depend on the engine
    (skipped,) = report.skipped
    assert skipped.reason.startswith("runtime 'llama.cpp' has no runtime profile")


def test_a_column_a_row_needs_names_the_line(tmp_path: Path) -> None:
    header = "case_id,hardware,num_gpus,weight_dtype,scenario,load,metric,value"
    gemm = "g1,h100-sxm,1,bf16,gemm,4096x4096x4096,tflops,700"
    serving = "s1,h100-sxm,1,bf16,request_rate,4,ttft_ms,20"
    message = _bad(tmp_path, f"{header}\n{gemm}\n{serving}\n")
    assert message.endswith("line 3: scenario request_rate needs column 'model', which the file does not have")
    with_model = f"{header.replace('value', 'value,model')}\n{gemm},\n{serving},llama-3.1-8b\n"
    assert "line 3: scenario request_rate needs column 'isl'" in _bad(tmp_path, with_model)
    no_load = "case_id,hardware,num_gpus,scenario,metric,value\nm1,h100-sxm,1,memory_copy,gbps,2900\n"
    assert "line 2: scenario memory_copy needs column 'load'" in _bad(tmp_path, no_load)
    not_predicted = "case_id,hardware,num_gpus,scenario,metric,value\na1,h800,1,sparse_gemm,tflops,500\n"
    path = tmp_path / "fine.csv"
    path.write_text(not_predicted)
    assert [s.case.case_id for s in validate_file(path).skipped] == ["a1"]


def test_files_without_the_required_columns(tmp_path: Path) -> None:
    assert _bad(tmp_path, "a,b\n1,2\n").endswith(
        "line 1: missing column(s) case_id, hardware, num_gpus, scenario, metric, value"
    )
    training = TRAINING.read_text().replace(",precision,", ",dtype,", 1)
    assert _bad(tmp_path, training).endswith("line 1: missing column(s) precision")


# ---- a training file ---------------------------------------------------------------------------


def test_training_rows_are_read_and_predicted() -> None:
    data = _json("--data", str(TRAINING))
    assert data["skipped"] == [] and [r["case_id"] for r in data["rows"]] == ["tr1", "tr2", "tr3"]
    assert data["per_scenario"] == [{"scenario": "training", "predicted": 3, "skipped": 0}]
    groups = {(s["scenario"], s["metric"]) for s in data["summary"]}
    assert {("training (precision fp8-cs)", "tokens_per_s_per_gpu"), ("training (gen Hopper)", "model_tflops_per_gpu"),
            ("training (task pretrain)", "tokens_per_s_per_gpu")} <= groups  # fmt: skip
    assert len(_json("--data", str(TRAINING), "--scenario", "training")["rows"]) == 3
    result = runner.invoke(app, ["validate", "--data", str(TRAINING), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["case_id"], r["model"], r["num_gpus"], r["metric"], r["measured"]) for r in rows][2] == (
        "tr3",
        "mixtral-8x7b",
        "64",
        "tokens_per_s_per_gpu",
        "8000.0",
    )
    assert rows[2]["load"] == "seq_len=4096;global_batch=256;micro_batch=1;precision=fp8-cs"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (",8192,128,1,bf16,", ",8192,128,1,fp8,", ["line 2", "'precision'", "unknown precision 'fp8'"]),
        (",8192,128,1,bf16,", ",8k,128,1,bf16,", ["line 2", "'seq_len'", "'8k' is not an integer"]),
        (",10000,task", ",many,task", ["line 2", "'value'", "not a number"]),
        ("tr2,", "tr1,", ["line 3", "'case_id'", "repeats the id of line 2"]),
    ],
)
def test_bad_training_rows_name_the_line_and_column(tmp_path: Path, old: str, new: str, expected: list[str]) -> None:
    message = _bad(tmp_path, TRAINING.read_text().replace(old, new, 1))
    for text in expected:
        assert text in message


# ---- the library entry point -------------------------------------------------------------------


def test_run_validation_is_what_the_command_prints() -> None:
    report = run_validation(KERNELS, ["gemm"])
    assert isinstance(report, ValidationReport)
    assert json.loads(to_json(report.to_dict())) == _json("--data", str(KERNELS), "--scenario", "gemm")
    result = runner.invoke(app, ["validate", "--data", str(KERNELS), "--format", "csv"])
    assert result.stdout == _csv_text(run_validation(KERNELS))


def _csv_text(report: ValidationReport | DiffusionValidation) -> str:
    from roofline.reports.formats import to_csv

    return to_csv(report.csv_rows())


def test_csv_rows_are_in_file_order_with_one_set_of_columns(kernels: ValidationReport) -> None:
    rows = kernels.csv_rows()
    assert [r["case_id"] for r in rows] == [f"k{i:02d}" for i in range(1, 12)]
    assert len({tuple(r) for r in rows}) == 1  # skipped rows carry the columns of predicted ones
    assert rows[0]["skipped"] == "" and rows[0]["predicted"] > 0
    assert rows[6]["load"].startswith("phase=decode") and (rows[6]["predicted"] is None) == bool(rows[6]["skipped"])


def test_report_inputs_name_the_file_and_the_skipped_rows(kernels: ValidationReport) -> None:
    inputs = dict(report_inputs(KERNELS, ["gemm"], None, kernels, "9.9"))
    assert inputs["Tool"] == "roofline 9.9" and inputs["Measurements file"] == str(KERNELS)
    predicted = len(_predicted(kernels))  # 6, plus the kernel-scenario rows k07 / k08 / k11 once modelled
    assert inputs["Scenarios"] == "gemm" and inputs["Rows predicted / skipped"] == f"{predicted} / {11 - predicted}"
    assert inputs["Skipped rows per scenario"].startswith("gemm 2")


def test_progress_is_reported_for_every_row() -> None:
    calls: list[tuple[int, int]] = []
    run_validation(KERNELS, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 11) for i in range(1, 12)]


DIFFUSION_ROW = (
    "- {id: a, model: flux.1-dev, hardware: h100-sxm, gpus: 1, steps: 28, request: 1024x1024, "
    "measured_latency_s: 5, scope: unknown, software: x, source: xyz, quote: q, confidence: low}\n"
)


def test_run_validation_of_diffusion_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.yaml"
    path.write_text(DIFFUSION_ROW)
    result = run_validation(path, diffusion=True)
    assert isinstance(result, DiffusionValidation)
    assert [r.case.id for r in result.rows] == ["a"] and result.summary[-1].group == "all rows in the summary"
    cli = runner.invoke(app, ["validate", "--diffusion", "--data", str(path), "--format", "json"])
    assert json.loads(cli.stdout) == json.loads(to_json(result.to_dict()))
    csv_out = runner.invoke(app, ["validate", "--diffusion", "--data", str(path), "--format", "csv"])
    assert csv_out.stdout == _csv_text(result)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"scenarios": ["gemm"]},
            "--scenario, --max-requests and --runtime are for the LLM measurements, not --diffusion",
        ),
        (
            {"max_requests": 10},
            "--scenario, --max-requests and --runtime are for the LLM measurements, not --diffusion",
        ),
        ({"data": Path("absent.yaml")}, "--data 'absent.yaml' does not exist"),
    ],
)
def test_run_validation_checks_its_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RooflineError) as error:
        run_validation(**{"data": None, "diffusion": True, **kwargs})
    assert str(error.value) == message
    with pytest.raises(RooflineError, match="max requests must be at least 1"):
        run_validation(KERNELS, max_requests=0)


def test_the_library_imports_neither_typer_nor_rich() -> None:
    code = "import sys, roofline.validation; print(sorted({'typer', 'rich'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the real published file ------------------------------------------------------------------

needs_published = pytest.mark.skipif(not PUBLISHED.is_file(), reason=f"{PUBLISHED} is absent")

# (scenario, metric, rows, MAPE bound): measured when written: gemm 8.2% (29 rows), STREAM 1.9%
# (6 rows), nccl-tests all-reduce 9.1% (25 rows, the worst the 1 MB B200 row at +47%).
KERNEL_BOUNDS = [
    ("gemm", "tflops", 29, 0.10),
    ("memory_copy", "gbps", 6, 0.03),
    ("allreduce", "busbw_gbps", 25, 0.11),
]


@needs_published
@pytest.mark.parametrize(("scenario", "metric", "rows", "bound"), KERNEL_BOUNDS)
def test_published_kernel_rows_within_bounds(scenario: str, metric: str, rows: int, bound: float) -> None:
    report = validate_file(PUBLISHED, [scenario])
    assert not report.skipped, [s.reason for s in report.skipped]
    summary = report.summary_for(scenario, metric)
    assert summary is not None and summary.count == rows
    assert summary.mape <= bound, f"{scenario} MAPE {summary.mape:.1%} > {bound:.0%}"


@needs_published
def test_default_data_is_the_published_file() -> None:
    assert run_module.DEFAULT_DATA.resolve() == PUBLISHED.resolve() == run_module.default_data_path().resolve()
    data = _json("--scenario", "memory_copy")
    assert len(data["rows"]) == 6


SKIP = SummaryRow("", "", 0, 0.0, 0.0, 0.0)


@needs_published
def test_published_request_rate_rows_within_bounds() -> None:
    """The 54 online-serving rows (TensorRT-LLM perf-overview, v0.14 through Triton, H100 Llama-3.1-8B)
    run in ~15 s. Issue 5's target is MAPE <= 20% at rates below saturation (the finite rates). Measured
    when written (engine trtllm-triton): finite rates TTFT 7.4%, TPOT 11.4%, tokens/s 5.5%; bounds a
    little above, so a regression fails. Rate inf (the queue only grows) is reported, not held."""
    report = validate_file(PUBLISHED, ["request_rate"])
    assert not report.skipped, [s.reason for s in report.skipped]
    bounds = {"ttft_ms": 0.09, "tpot_ms": 0.13, "output_tokens_per_s": 0.07}
    for metric, bound in bounds.items():
        assert (report.summary_for("request_rate", metric) or SKIP).count == 18
        summary = report.summary_for("request_rate (finite)", metric)
        assert summary is not None and summary.count == 15
        assert summary.mape <= bound, f"{metric} MAPE {summary.mape:.1%}"


@needs_published
def test_published_max_throughput_sample_within_bounds(tmp_path: Path) -> None:
    """Every 10th TensorRT-LLM max-throughput row (29 rows: Llama 8B/70B/405B, Mixtral, A100 to GH200),
    replayed with at most 1000 requests so the test takes ~20 s. Issue 5's target is MAPE <= 15% on the
    whole file (11.3% on all 283 rows when written: dense 6-8%, Mixtral 16-18% over). Measured on this
    sample when written: MAPE 8.8%, worst 23.0%; bounds a little above, so a regression fails."""
    with PUBLISHED.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [r for r in reader if r["scenario"] == "max_throughput"][::10]
        fields = list(reader.fieldnames or [])
    sample = tmp_path / "sample.csv"
    with sample.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    report = validate_file(sample, ["max_throughput"], max_requests=1000)
    assert not report.skipped and len(report.rows) == 29
    summary = report.summary_for("max_throughput", "output_tokens_per_s")
    assert summary is not None
    assert summary.mape <= 0.11, f"MAPE {summary.mape:.1%}"
    assert summary.max_ape <= 0.26, f"worst {summary.max_ape:.1%}"


# ---- the other measurement files beside it ----------------------------------------------------

SHARED_FILES = ["kernels.csv", "kernels-h200.csv", "kernels-aic.csv", "runtimes.csv", "training.csv"]


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.mark.parametrize("name", SHARED_FILES)
def test_every_shared_file_is_read_and_every_row_listed(name: str) -> None:
    path = _shared(name)
    report = validate_file(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        ids = [row["case_id"] for row in csv.DictReader(handle)]
    assert [row["case_id"] for row in report.csv_rows()] == ids  # every row once, in file order
    outside = ("scenario '", "metric '", "runtime '", "model '")  # model: HF id or a training model not in the catalog
    for s in report.skipped:  # skipped because no predictor covers the row, never for a model error
        assert s.reason.startswith(outside), (s.case.case_id, s.reason)


# (file, scenario, metric, rows, MAPE bound): measured when written: DeepGEMM FP8 tflops 10.6% and gbps
# 9.9% (H800 at nominal clocks); the H200 calibration GEMMs 118% (small-M shapes timed with torch
# overheads that the model does not see); AIC TensorRT-LLM GEMMs 30.6%; AIC custom all-reduce 123%
# (one-shot kernels, where the model times NCCL ring / LL).
SHARED_BOUNDS = [
    ("kernels.csv", "gemm", "tflops", 18, 0.12),
    ("kernels.csv", "gemm", "gbps", 13, 0.11),
    ("kernels-h200.csv", "gemm", "tflops", 113, 1.25),
    ("kernels-aic.csv", "gemm", "latency_us", 1008, 0.33),
    ("kernels-aic.csv", "allreduce", "latency_us", 220, 1.30),
]


@pytest.mark.parametrize(("name", "scenario", "metric", "rows", "bound"), SHARED_BOUNDS)
def test_shared_kernel_rows_within_bounds(name: str, scenario: str, metric: str, rows: int, bound: float) -> None:
    report = validate_file(_shared(name), [scenario])
    assert not report.skipped, [s.reason for s in report.skipped]
    summary = report.summary_for(scenario, metric)
    assert summary is not None and summary.count == rows
    assert summary.mape <= bound, f"{name} {scenario} {metric} MAPE {summary.mape:.1%} > {bound:.0%}"
