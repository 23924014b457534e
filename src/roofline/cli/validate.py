"""`roofline validate`: predict every row of a published-measurements file and report the errors.

Parses the options, calls `roofline.validation.run_validation` and renders what it returns."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Group
from rich.table import Table

from roofline import __version__
from roofline.cli.common import Output, OutputFormat
from roofline.cli.running import EXECUTOR, QUIET, SCHEDULER, jobs_option, progress_bar
from roofline.errors import RooflineError
from roofline.executors import executor_named
from roofline.reports.formats import to_csv, to_json
from roofline.reports.xlsx_views import write_validation
from roofline.validation import (
    SCENARIO_METRICS,
    DiffusionValidation,
    ValidationReport,
    default_data_path,
    report_inputs,
    run_validation,
)
from roofline.validation.predict_runtimes import DEFAULT_RUNTIME
from roofline.validation.report import SummaryRow


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


def _held_out(s: SummaryRow) -> tuple[str, str]:
    """Rows no constant was fitted on and their MAPE ('-' when every row was fitted on)."""
    return str(s.held_out_count), "-" if s.held_out_mape is None else f"{s.held_out_mape:.1%}"


def _summary_table(report: ValidationReport) -> Table:
    table = Table(title="Error per scenario and metric (APE = |error|; held out: rows no constant was fitted on)",
                  title_justify="left")  # fmt: skip
    for column in ("scenario", "metric", "rows", "MAPE", "median APE", "max APE", "held out", "MAPE held out"):
        table.add_column(column, justify="left" if column in ("scenario", "metric") else "right")
    for s in report.summary:
        table.add_row(s.scenario, s.metric, str(s.count), f"{s.mape:.1%}", f"{s.median_ape:.1%}", f"{s.max_ape:.1%}",
                      *_held_out(s))  # fmt: skip
    return table


def _breakdown_table(report: ValidationReport) -> Table:
    table = Table(title="Error per scenario, metric, hardware and dtype", title_justify="left")
    for column in ("scenario", "metric", "hardware", "dtype", "rows", "MAPE", "median APE", "held out",
                   "MAPE held out"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("scenario", "metric", "hardware", "dtype") else "right")
    for s in report.breakdown:
        table.add_row(s.scenario, s.metric, s.hardware, s.dtype, str(s.count), f"{s.mape:.1%}", f"{s.median_ape:.1%}",
                      *_held_out(s))  # fmt: skip
    return table


def _runtime_table(report: ValidationReport, runtime: str | None) -> Table:
    title = f"Error by runtime (empty runtime column: {runtime or DEFAULT_RUNTIME}; '-': kernel rows)"
    table = Table(title=title, title_justify="left")
    for column in ("runtime", "scenario", "metric", "rows", "MAPE", "median APE", "max APE", "held out",
                   "MAPE held out"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("runtime", "scenario", "metric") else "right")
    for s in report.by_runtime:
        table.add_row(s.runtime, s.scenario, s.metric, str(s.count), f"{s.mape:.1%}", f"{s.median_ape:.1%}",
                      f"{s.max_ape:.1%}", *_held_out(s))  # fmt: skip
    return table


def _counts_table(report: ValidationReport) -> Table:
    table = Table(title="Rows per scenario", title_justify="left")
    for column in ("scenario", "predicted", "skipped"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for c in report.per_scenario():
        table.add_row(c.scenario, str(c.predicted), str(c.skipped))
    return table


def _skipped_table(report: ValidationReport) -> Table:
    table = Table(title=f"Skipped rows ({len(report.skipped)}): not predicted", title_justify="left")
    table.add_column("case")
    table.add_column("scenario")
    table.add_column("reason")
    for s in report.skipped:
        table.add_row(s.case.case_id, s.case.scenario, s.reason)
    return table


def validate_command(
    data: Path | None = typer.Option(
        None, "--data", help="measurements CSV in the schema of shared/validation/README.md "
        "(default: ../shared/validation/published.csv next to the repository)"),
    scenarios: list[str] = typer.Option(
        [], "--scenario", help="only rows of this scenario (repeatable): any scenario of the file; predicted: "
        f"{', '.join(SCENARIO_METRICS)}"),
    max_requests: int | None = typer.Option(
        None, "--max-requests", help="cap the simulated requests of each serving run (quicker, less steady)"),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", metavar="<format>",
                                     help="table, json, csv, or xlsx (needs -o FILE.xlsx)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write to FILE instead of stdout (FILE.xlsx)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing -o file"),
    diffusion: bool = typer.Option(
        False, "--diffusion", help="the diffusion models' published latencies instead (packaged YAML, or --data "
        "FILE.yaml in its schema)"),
    runtime: str | None = typer.Option(
        None, "--runtime", help="runtime profile of serving and phase rows whose runtime column is empty "
        "(default: trtllm, the public tables' engine): vllm, sglang, torch-eager, ... (roofline runtime ids)"),
    jobs: int | None = jobs_option(None, "the machine's cores"), executor: str = EXECUTOR,
    scheduler: str | None = SCHEDULER, quiet: bool = QUIET,
) -> None:  # fmt: skip
    """Predict each row of a measurements file; print prediction, measurement and error, then MAPE per metric."""
    out = Output.check(fmt, output, force)
    if diffusion and out.fmt is OutputFormat.xlsx:
        raise RooflineError("--diffusion writes table, json or csv; drop --format xlsx")
    with progress_bar("predicting rows", quiet or diffusion, total=None) as bar:
        result = run_validation(data, scenarios, max_requests, diffusion, bar.update if bar else None,
                                executor=executor_named(executor), jobs=jobs, scheduler=scheduler,
                                runtime=runtime)  # fmt: skip
    if isinstance(result, DiffusionValidation):
        _render_diffusion(result, out)
    else:
        _render(result, out, default_data_path(data), scenarios, max_requests, runtime)


def _render(
    report: ValidationReport,
    out: Output,
    path: Path,
    scenarios: list[str],
    max_requests: int | None,
    runtime: str | None,
) -> None:
    if out.fmt is OutputFormat.json:
        out.text(to_json(report.to_dict()))
    elif out.fmt is OutputFormat.csv:
        out.text(to_csv(report.csv_rows()))
    elif out.fmt is OutputFormat.xlsx:
        inputs = report_inputs(path, scenarios, max_requests, report, __version__)
        out.workbook(lambda file: write_validation(file, report, inputs))
    else:
        parts: list[Table] = [_rows_table(report)]
        if report.skipped:
            parts.append(_skipped_table(report))
        parts += [
            _counts_table(report),
            _breakdown_table(report),
            _runtime_table(report, runtime),
            _summary_table(report),
        ]  # the errors last: what a terminal's tail shows
        out.table(Group(*parts))


def _render_diffusion(result: DiffusionValidation, out: Output) -> None:
    if out.fmt is OutputFormat.json:
        out.text(to_json(result.to_dict()))
    elif out.fmt is OutputFormat.csv:
        out.text(to_csv(result.csv_rows()))
    else:
        out.table(Group(_diffusion_rows_table(result), _diffusion_summary_table(result)))


def _diffusion_rows_table(result: DiffusionValidation) -> Table:
    table = Table(title="Diffusion models: predicted vs published latency (error = predicted / measured - 1; "
                  "* = shown, not in the summary)", title_justify="left")  # fmt: skip
    for column in ("id", "hardware", "gpus", "setting", "runtime", "measured", "predicted", "error"):
        table.add_column(column, justify="right" if column in ("gpus", "measured", "predicted", "error") else "left")
    for r in result.rows:
        c = r.case
        table.add_row(c.id + ("" if c.in_summary else " *"), c.hardware, str(c.gpus), c.setting(),
                      c.runtime.describe(), f"{c.measured_latency_s:,.4g} s", f"{r.predicted_s:,.4g} s",
                      f"{r.error:+.1%}")  # fmt: skip
    return table


def _diffusion_summary_table(result: DiffusionValidation) -> Table:
    totals = Table(title="Error per group (APE = |error|; mean error signed)", title_justify="left")
    for column in ("group", "rows", "MAPE", "median APE", "max APE", "mean error"):
        totals.add_column(column, justify="left" if column == "group" else "right")
    for g in result.summary:
        totals.add_row(g.group, str(g.count), f"{g.mape:.1%}", f"{g.median_ape:.1%}", f"{g.max_ape:.1%}",
                       f"{g.mean_error:+.1%}")  # fmt: skip
    return totals
