"""`roofline validate`: predictions against a measurements file, the error summary, bad files.

The small fixture (tests/fixtures/validation_small.csv) holds hand-made rows of every scenario,
including rows that cannot be predicted. The kernel scenarios of the real published file
(../shared/validation/published.csv, skipped when absent) are held to error bounds set a little
above the errors measured when this test was written, so a regression fails.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from roofline.cli import validate as validate_cli
from roofline.cli.app import app
from roofline.hardware_specs import resolve_cluster
from roofline.validation import PREDICTORS, SCENARIO_METRICS, validate_file
from roofline.validation import predict as predict_module
from roofline.validation.report import SummaryRow

FIXTURE = Path(__file__).parent / "fixtures" / "validation_small.csv"
PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "validation" / "published.csv"
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
    assert set(PREDICTORS) == set(SCENARIO_METRICS)


def test_json_structure(small: dict[str, Any]) -> None:
    assert set(small) == {"rows", "summary", "skipped"}
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
        assert set(entry) == {"scenario", "metric", "count", "mape", "median_ape", "max_ape"}
        scenario, _, regime = entry["scenario"].partition(" (")  # sub-groups: "request_rate (finite)"
        apes = [abs(r["error"]) for r in small["rows"] if (r["scenario"], r["metric"]) == (scenario, entry["metric"])
                and (not regime or (r["load"].strip().lower() == "inf") == (regime == "rate inf)"))]  # fmt: skip
        assert entry["count"] == len(apes)
        assert entry["mape"] == pytest.approx(sum(apes) / len(apes))
        assert entry["max_ape"] == pytest.approx(max(apes))
        assert entry["median_ape"] <= entry["max_ape"]
    pairs = {(s["scenario"], s["metric"]) for s in small["summary"]}
    for scenario in SCENARIO_METRICS:
        assert any(p[0] == scenario for p in pairs), scenario


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
        (
            "g2,s,,h100-sxm,1,,,,bf16,,,,gemmm,4096x4096x4096,tflops,700",
            ["line 3", "'scenario'", "unknown scenario 'gemmm'"],
        ),
        ("g2,s,,h100-sxm,1,,,,bf16,,,,gemm,4096x4096x4096,tflop,700", ["line 3", "'metric'", "unknown metric 'tflop'"]),
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
    monkeypatch.setattr(validate_cli, "DEFAULT_DATA", tmp_path / "published.csv")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert "no --data given" in result.stderr and "pass --data" in result.stderr


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
    assert validate_cli.DEFAULT_DATA.resolve() == PUBLISHED.resolve()
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
