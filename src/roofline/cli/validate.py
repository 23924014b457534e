"""`roofline validate`: predict every row of a published-measurements file and report the errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.table import Table

from roofline import __version__
from roofline.cli.common import Output, OutputFormat
from roofline.errors import RooflineError
from roofline.reports.formats import to_csv, to_json
from roofline.reports.xlsx_views import write_validation
from roofline.validation import ValidationReport, validate_file

# src/roofline/cli/validate.py -> parents[3] is the repository root; its sibling shared/ holds the data
DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "validation" / "published.csv"


def _data_path(data: Path | None) -> Path:
    if data is not None:
        return data
    if not DEFAULT_DATA.is_file():
        raise RooflineError(f"no --data given and the default file '{DEFAULT_DATA}' does not exist; pass --data FILE")
    return DEFAULT_DATA


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"


def _rows_table(report: ValidationReport) -> Table:
    table = Table(title="Predicted vs measured (error = predicted / measured - 1)", title_justify="left")
    columns = ("case", "scenario", "model", "hardware", "gpus", "isl/osl", "load", "metric", "measured",
               "predicted", "error")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right" if column in ("gpus", "measured", "predicted", "error") else "left")
    for row in report.rows:
        c = row.case
        lengths = f"{c.isl}/{c.osl}" if c.isl is not None else ""
        table.add_row(c.case_id, c.scenario, c.model, c.hardware, str(c.num_gpus), lengths, c.load, c.metric,
                      _number(row.measured), _number(row.predicted), f"{row.error:+.1%}")  # fmt: skip
    return table


def _summary_table(report: ValidationReport) -> Table:
    table = Table(title="Error per scenario and metric (APE = |error|)", title_justify="left")
    for column in ("scenario", "metric", "rows", "MAPE", "median APE", "max APE"):
        table.add_column(column, justify="left" if column in ("scenario", "metric") else "right")
    for s in report.summary:
        table.add_row(s.scenario, s.metric, str(s.count), f"{s.mape:.1%}", f"{s.median_ape:.1%}", f"{s.max_ape:.1%}")
    return table


def _skipped_table(report: ValidationReport) -> Table:
    table = Table(title=f"Skipped rows ({len(report.skipped)}): not predicted", title_justify="left")
    table.add_column("case")
    table.add_column("scenario")
    table.add_column("reason")
    for s in report.skipped:
        table.add_row(s.case.case_id, s.case.scenario, s.reason)
    return table


def _csv_rows(report: ValidationReport) -> list[dict[str, Any]]:
    """Predicted and skipped rows in file order; a skipped row has no prediction and says why."""
    rows = [(r.case.line, {**r.to_dict(), "skipped": ""}) for r in report.rows]
    for s in report.skipped:
        c = s.case
        rows.append((c.line, {"case_id": c.case_id, "scenario": c.scenario, "model": c.model, "hardware": c.hardware,
                              "num_gpus": c.num_gpus, "isl": c.isl, "osl": c.osl, "load": c.load, "metric": c.metric,
                              "measured": c.value, "predicted": None, "error": None, "skipped": s.reason}))  # fmt: skip
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def _progress(done: int, total: int) -> None:
    sys.stderr.write(f"\rpredicting row {done}/{total}" + ("\n" if done == total else ""))
    sys.stderr.flush()


def validate_command(
    data: Path | None = typer.Option(
        None, "--data", help="measurements CSV in the schema of shared/validation/README.md "
        "(default: ../shared/validation/published.csv next to the repository)"),
    scenarios: list[str] = typer.Option(
        [], "--scenario", help="only rows of this scenario (repeatable): max_throughput, request_rate, "
        "concurrency, gemm, memory_copy, allreduce"),
    max_requests: int | None = typer.Option(
        None, "--max-requests", help="cap the simulated requests of each serving run (quicker, less steady)"),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", metavar="<format>",
                                     help="table, json, csv, or xlsx (needs -o FILE.xlsx)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write to FILE instead of stdout (FILE.xlsx)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing -o file"),
    diffusion: bool = typer.Option(
        False, "--diffusion", help="the diffusion models' published latencies instead (packaged YAML, or --data "
        "FILE.yaml in its schema)"),
) -> None:  # fmt: skip
    """Predict each row of a measurements file; print prediction, measurement and error, then MAPE per metric."""
    out = Output.check(fmt, output, force)
    if diffusion:
        if scenarios or max_requests is not None:
            raise RooflineError("--scenario and --max-requests are for the LLM measurements, not --diffusion")
        _validate_diffusion(data, out)
        return
    progress = _progress if sys.stderr.isatty() else None
    path = _data_path(data)
    report = validate_file(path, scenarios, max_requests, progress)
    if out.fmt is OutputFormat.json:
        out.text(to_json(report.to_dict()))
    elif out.fmt is OutputFormat.csv:
        out.text(to_csv(_csv_rows(report)))
    elif out.fmt is OutputFormat.xlsx:
        inputs = _inputs(path, scenarios, max_requests, report)
        out.workbook(lambda file: write_validation(file, report, inputs))
    else:
        parts: list[Table] = [_rows_table(report), _summary_table(report)]
        if report.skipped:
            parts.append(_skipped_table(report))
        out.table(Group(*parts))


def _inputs(path: Path, scenarios: list[str], max_requests: int | None,
            report: ValidationReport) -> list[tuple[str, Any]]:  # fmt: skip
    return [
        ("Tool", f"roofline {__version__}"),
        ("Measurements file", str(path)),
        ("Scenarios", ", ".join(scenarios) or "all"),
        ("Simulated requests per serving run", max_requests or "as the benchmark ran them"),
        ("Rows predicted / skipped", f"{len(report.rows)} / {len(report.skipped)}"),
        ("Error", "predicted / measured - 1 (> 0: over-prediction); APE = |error|; MAPE = mean APE"),
        ("Serving rows", "replayed as benchmarked (validation/benchmark_setups.yaml)"),
    ]


def _validate_diffusion(data: Path | None, out: Output) -> None:
    from roofline.validation.diffusion import DATA_FILE, validate_diffusion

    if out.fmt is OutputFormat.xlsx:
        raise RooflineError("--diffusion writes table, json or csv; drop --format xlsx")
    path = data or DATA_FILE
    if not path.is_file():
        raise RooflineError(f"--data '{path}' does not exist")
    rows, summary = validate_diffusion(path)
    if out.fmt is OutputFormat.json:
        out.text(to_json({"rows": [r.to_dict() for r in rows], "summary": [s.to_dict() for s in summary]}))
    elif out.fmt is OutputFormat.csv:
        out.text(to_csv([r.to_dict() for r in rows]))
    else:
        table = Table(title="Diffusion models: predicted vs published latency (error = predicted / measured - 1; "
                      "* = shown, not in the summary)", title_justify="left")  # fmt: skip
        for column in ("id", "hardware", "gpus", "setting", "runtime", "measured", "predicted", "error"):
            table.add_column(
                column, justify="right" if column in ("gpus", "measured", "predicted", "error") else "left"
            )
        for r in rows:
            c = r.case
            table.add_row(c.id + ("" if c.in_summary else " *"), c.hardware, str(c.gpus), c.setting(),
                          c.runtime.describe(), f"{c.measured_latency_s:,.4g} s", f"{r.predicted_s:,.4g} s",
                          f"{r.error:+.1%}")  # fmt: skip
        totals = Table(title="Error per group (APE = |error|; mean error signed)", title_justify="left")
        for column in ("group", "rows", "MAPE", "median APE", "max APE", "mean error"):
            totals.add_column(column, justify="left" if column == "group" else "right")
        for g in summary:
            totals.add_row(g.group, str(g.count), f"{g.mape:.1%}", f"{g.median_ape:.1%}", f"{g.max_ape:.1%}",
                           f"{g.mean_error:+.1%}")  # fmt: skip
        out.table(Group(table, totals))
