"""`--format xlsx -o FILE.xlsx` of estimate, serve and validate: sheets, units in the headers, frozen
headers, autofilters, charts, and every value equal to the JSON output of the same command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet
from typer.testing import CliRunner

from roofline import __version__
from roofline.cli.app import app

runner = CliRunner()
FIXTURE = Path(__file__).parent / "fixtures" / "validation_small.csv"
ESTIMATE = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "2", "--batch", "8",
            "--isl", "512", "--osl", "64"]  # fmt: skip
SERVE = ["serve", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--isl", "256", "--osl", "64",
         "--request-rate", "4", "--num-requests", "60"]  # fmt: skip
VALIDATE = ["validate", "--data", str(FIXTURE), "--max-requests", "100"]
PLAN = ["plan", "--model", "llama-3.1-8b", "--isl", "512", "--osl", "64", "--rate", "1", "--ttft-p99", "1s",
        "--tpot-p99", "50ms", "--hardware", "h100-sxm"]  # fmt: skip


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _xlsx(args: list[str], path: Path) -> Workbook:
    result = runner.invoke(app, [*args, "--format", "xlsx", "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert f"wrote {path}" in result.stderr
    return openpyxl.load_workbook(path)


def _records(ws: Worksheet) -> list[dict[str, Any]]:
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _inputs(book: Workbook) -> dict[str, Any]:
    return {key: value for key, value in book["Inputs"].iter_rows(min_row=2, values_only=True)}


def _check_table(ws: Worksheet, rows: int) -> list[str]:
    """Frozen header, autofilter over header + rows; returns the header."""
    header = [c.value for c in ws[1]]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{get_column_letter(len(header))}{rows + 1}"
    assert all(ws.column_dimensions[get_column_letter(j)].width for j in range(1, len(header) + 1))
    return header


# ---- estimate ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def estimate_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Workbook]:
    return _json(ESTIMATE), _xlsx(ESTIMATE, tmp_path_factory.mktemp("estimate") / "estimate.xlsx")


def test_estimate_sheets_and_inputs(estimate_files: tuple[dict[str, Any], Workbook]) -> None:
    data, book = estimate_files
    assert book.sheetnames == ["Inputs", "Results", "Summary"]
    inputs = _inputs(book)
    assert inputs["Tool"] == f"roofline {__version__}"
    assert inputs["Model"].startswith("llama-3.1-8b") and inputs["Hardware"].startswith("h100-sxm")
    assert inputs["System"].startswith(data["system"]) and inputs["GPUs"] == data["num_gpus"] == 2
    assert inputs["Parallelism"].startswith("tp 2, pp 1")
    assert (inputs["Input length (tokens)"], inputs["Output length (tokens)"]) == (512, 64)
    assert inputs["Batch (sequences per replica)"] == 8
    assert inputs["Weight format"] == data["precision"]["weight"]
    assert inputs["KV-cache format"] == data["precision"]["kv_cache"]
    assert "p = 2" in inputs["Kernel-time model"]
    assert inputs["Engine token budget per step (max_num_tokens)"] == 8192


def test_estimate_results_are_the_json_ops(estimate_files: tuple[dict[str, Any], Workbook]) -> None:
    data, book = estimate_files
    ws = book["Results"]
    header = _check_table(ws, len(data["ops"]))
    assert {"Phase", "Class", "Count (kernels)", "FLOPs (GFLOP)", "Bytes (MB)", "Time (ms)", "Bound"} <= set(header)
    assert ws.cell(row=2, column=header.index("Time (ms)") + 1).number_format == "#,##0.0000"
    rows = _records(ws)
    assert len(rows) == len(data["ops"])
    for row, op in zip(rows, data["ops"], strict=True):
        assert (row["Phase"], row["Operator"], row["Class"], row["Bound"]) == (
            op["phase"], op["name"], op["op_class"], op["bound"])  # fmt: skip
        assert row["Count (kernels)"] == op["count"]
        assert row["FLOPs (GFLOP)"] == pytest.approx(op["flops"] / 1e9)
        assert row["Bytes (MB)"] == pytest.approx(op["bytes"] / 1e6)
        assert row["Time (ms)"] == pytest.approx(op["time_s"] * 1e3)
        assert row["Memory (ms)"] == pytest.approx(op["memory_s"] * 1e3)


def test_estimate_summary_and_charts(estimate_files: tuple[dict[str, Any], Workbook]) -> None:
    data, book = estimate_files
    ws = book["Summary"]
    _check_table(ws, ws.max_row - 1)
    summary = {r["Metric"]: r for r in _records(ws)}
    memory = data["memory"]
    expected = {
        "TTFT, mean per request (ms)": data["ttft_s"] * 1e3,
        "Prefill of the batch, last request's TTFT (ms)": data["ttft_batch_s"] * 1e3,
        "TPOT (ms)": data["tpot_s"] * 1e3,
        "End-to-end latency, mean per request (ms)": data["e2e_s"] * 1e3,
        "End-to-end latency of the batch (ms)": data["e2e_batch_s"] * 1e3,
        "Output throughput (tokens/s)": data["output_tokens_per_s"],
        "Output throughput per GPU (tokens/s/GPU)": data["output_tokens_per_s_per_gpu"],
        "Decode throughput, batch / TPOT (tokens/s)": data["decode_tokens_per_s"],
        "Memory per GPU, total (GiB)": memory["total_bytes"] / 2**30,
        "GPU memory (GiB)": memory["capacity_bytes"] / 2**30,
        "Margin (GiB)": memory["margin_bytes"] / 2**30,
        "Max batch at isl + osl (sequences)": memory["max_batch"],
    }
    for label, value in expected.items():
        assert summary[label]["Value"] == pytest.approx(value), label
    assert summary["Prefill of the batch, last request's TTFT (ms)"]["No-overlap bound"] == pytest.approx(
        data["bounds"]["ttft_batch_no_overlap_s"] * 1e3)  # fmt: skip
    assert summary["Fits in memory"]["Value"] == ("yes" if memory["fits"] else "no")
    assert summary["Decode bound"]["Value"] == data["decode"]["bound"]
    # one bar chart of time per operator per phase, over that phase's rows of Results
    charts = ws._charts
    assert len(charts) == 2
    prefill = sum(op["phase"] == "prefill" for op in data["ops"])
    time_column = get_column_letter([c.value for c in book["Results"][1]].index("Time (ms)") + 1)
    refs = [chart.series[0].val.numRef.f for chart in charts]
    assert refs == [f"'Results'!${time_column}$2:${time_column}${prefill + 1}",
                    f"'Results'!${time_column}${prefill + 2}:${time_column}${len(data['ops']) + 1}"]  # fmt: skip


# ---- serve -------------------------------------------------------------------------------------


def test_serve_workbook_matches_json(tmp_path: Path) -> None:
    data, book = _json(SERVE), _xlsx(SERVE, tmp_path / "serve.xlsx")
    assert book.sheetnames == ["Inputs", "Results", "Summary"]
    inputs = _inputs(book)
    assert inputs["Tool"] == f"roofline {__version__}" and inputs["Engine"].startswith("trtllm")
    assert inputs["Load: mode"] == "request_rate" and inputs["Load: value (requests/s or clients)"] == "4"
    assert inputs["Engine KV block size (tokens)"] > 0
    ws = book["Results"]
    assert _check_table(ws, 3) == ["Metric", "Mean (ms)", "p50 (ms)", "p90 (ms)", "p99 (ms)"]
    results = {r["Metric"]: r for r in _records(ws)}
    for key, label in (("ttft", "TTFT per request"), ("tpot", "TPOT"), ("e2e", "End-to-end latency")):
        for stat in ("mean", "p50", "p90", "p99"):
            column = "Mean (ms)" if stat == "mean" else f"{stat} (ms)"
            seconds = data[f"{key}_s" if stat == "mean" else f"{key}_{stat}_s"]  # SI keys: ttft_s, ttft_p50_s ...
            assert results[label][column] == pytest.approx(seconds * 1e3)
    summary = {r["Metric"]: r["Value"] for r in _records(book["Summary"])}
    assert summary["Output throughput (tokens/s)"] == pytest.approx(data["output_tokens_per_s"])
    assert summary["Speed per user (tokens/s/user)"] == pytest.approx(data["output_tokens_per_s_per_user"])
    assert summary["TTFT per request p99 (ms)"] == pytest.approx(data["ttft_p99_s"] * 1e3)
    assert summary["TPOT p50 (ms)"] == pytest.approx(data["tpot_p50_s"] * 1e3)
    assert summary["Requests"] == data["requests"] and summary["KV capacity per replica (tokens)"] == data[
        "kv_capacity_tokens"]  # fmt: skip
    assert book["Summary"].freeze_panes == "A2" and book["Summary"].auto_filter.ref


# ---- validate ----------------------------------------------------------------------------------


def test_validate_workbook_matches_json(tmp_path: Path) -> None:
    data, book = _json(VALIDATE), _xlsx(VALIDATE, tmp_path / "validate.xlsx")
    assert book.sheetnames == ["Inputs", "Results", "Summary", "By runtime", "Skipped"]
    inputs = _inputs(book)
    assert inputs["Tool"] == f"roofline {__version__}" and inputs["Measurements file"] == str(FIXTURE)
    ws = book["Results"]
    header = _check_table(ws, len(data["rows"]))
    assert {"Measured (metric unit)", "Predicted (metric unit)", "Error (%)", "Note"} <= set(header)
    assert ws.cell(row=2, column=header.index("Error (%)") + 1).number_format.startswith("+0.0%")
    for row, case in zip(_records(ws), data["rows"], strict=True):
        assert (row["Case"], row["Scenario"], row["Metric (its unit)"]) == (case["case_id"], case["scenario"],
                                                                           case["metric"])  # fmt: skip
        assert row["Measured (metric unit)"] == pytest.approx(case["measured"])
        assert row["Predicted (metric unit)"] == pytest.approx(case["predicted"])
        assert row["Error (%)"] == pytest.approx(case["error"])
        assert (row["Note"] or "") == case["note"]
    summary_ws = book["Summary"]
    assert _check_table(summary_ws, len(data["summary"]))[4] == "MAPE (%)"
    for row, s in zip(_records(summary_ws), data["summary"], strict=True):
        assert (row["Scenario"], row["Metric"], row["Rows"]) == (s["scenario"], s["metric"], s["count"])
        assert row["MAPE (%)"] == pytest.approx(s["mape"]) and row["Max APE (%)"] == pytest.approx(s["max_ape"])
    (chart,) = summary_ws._charts
    assert chart.series[0].val.numRef.f == f"'Summary'!$E$2:$E${len(data['summary']) + 1}"
    by_runtime = _records(book["By runtime"])
    assert [(r["Runtime"], r["Scenario"], r["Rows"]) for r in by_runtime] == [
        (s["runtime"], s["scenario"], s["count"]) for s in data["by_runtime"]]  # fmt: skip
    skipped = _records(book["Skipped"])
    assert [r["Case"] for r in skipped] == [s["case_id"] for s in data["skipped"]]
    assert [r["Reason not predicted"] for r in skipped] == [s["reason"] for s in data["skipped"]]


# ---- the options -------------------------------------------------------------------------------


def _error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("command", [ESTIMATE, SERVE, VALIDATE], ids=["estimate", "serve", "validate"])
def test_xlsx_needs_an_xlsx_output_file(command: list[str], tmp_path: Path) -> None:
    assert "-o FILE.xlsx" in _error([*command, "--format", "xlsx"])
    assert ".xlsx" in _error([*command, "--format", "xlsx", "-o", str(tmp_path / "out.csv")])
    assert "--format xlsx" in _error([*command, "--format", "json", "-o", str(tmp_path / "out.xlsx")])
    existing = tmp_path / "old.xlsx"
    existing.write_bytes(b"keep me")
    assert "--force" in _error([*command, "--format", "xlsx", "-o", str(existing)])
    assert existing.read_bytes() == b"keep me"


def test_force_overwrites_and_xlsx_suffix_alone_means_xlsx(tmp_path: Path) -> None:
    out = tmp_path / "estimate.xlsx"
    out.write_bytes(b"old")
    assert runner.invoke(app, [*ESTIMATE, "-o", str(out), "--force"]).exit_code == 0
    assert openpyxl.load_workbook(out).sheetnames == ["Inputs", "Results", "Summary"]


def test_text_formats_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "estimate.json"
    result = runner.invoke(app, [*ESTIMATE, "--format", "json", "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads(out.read_text()) == _json(ESTIMATE)
    assert "--force" in _error([*ESTIMATE, "--format", "json", "-o", str(out)])
    table = tmp_path / "estimate.txt"
    assert runner.invoke(app, [*ESTIMATE, "--no-ops", "-o", str(table)]).exit_code == 0
    assert "TTFT" in table.read_text() and "\x1b[" not in table.read_text()


@pytest.mark.parametrize(
    "args",
    [
        ["memory", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"],
        ["comm", "all-reduce", "--system", "dgx-h100", "--gpus", "8", "--bytes", "1MiB"],
        ["comm", "sweep", "all-reduce", "--system", "dgx-h100", "--gpus", "8", "--from", "1KiB", "--to", "1MiB"],
        ["hardware", "list"],
        ["hardware", "show", "h100-sxm"],
        ["model", "list"],
        ["model", "show", "llama-3.1-8b"],
        PLAN,
    ],
    ids=["memory", "comm", "comm-sweep", "hardware-list", "hardware-show", "model-list", "model-show", "plan"],
)
def test_commands_without_a_workbook_refuse_xlsx(args: list[str]) -> None:
    message = _error([*args, "--format", "xlsx"])
    assert "table, json or csv" in message and "estimate, serve, validate and sweep" in message


def test_sweep_xlsx_format_needs_an_xlsx_file(tmp_path: Path) -> None:
    grid = ["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "1,8", "--quiet"]
    assert "-o FILE.xlsx" in _error([*grid, "--format", "xlsx"])
    out = tmp_path / "grid.xlsx"
    assert runner.invoke(app, [*grid, "--format", "xlsx", "-o", str(out)]).exit_code == 0
    assert openpyxl.load_workbook(out).sheetnames == ["Inputs", "Results", "Summary"]
