"""`roofline calibrate`: measure this GPU (or the host CPU) with PyTorch, fit the cost model's
efficiencies, write a calibrated hardware profile and a report. PyTorch is an optional extra."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from roofline.api import calibrate
from roofline.api.calibration import CalibrationReport
from roofline.calibration import require_torch
from roofline.cli.common import OutputFormat, emit, text_format_option
from roofline.reports.formats import to_csv, to_json


def _progress_bar() -> Any:
    if not sys.stderr.isatty():
        return nullcontext(None)
    return Progress(TextColumn("calibrate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.description}"), console=Console(stderr=True), transient=True)  # fmt: skip


def _summary_tables(result: Any, paths: dict[str, Path]) -> list[Table]:
    from roofline.calibration.report import abs_pct, efficiency_changes, pct, summary_rows
    from roofline.units import format_time

    errors = Table(title=f"{result.device.name}: |error| of the cost model before -> after fitting",
                   title_justify="left")  # fmt: skip
    for column in ("kernels", "shapes", "n", "median", "mean", "max"):
        errors.add_column(column, justify="left" if column in ("kernels", "shapes") else "right")
    for s in summary_rows(result):
        errors.add_row(s.scope, s.shapes.replace("_", "-"), str(s.after.count),
                       f"{abs_pct(s.before.median_abs)} -> {abs_pct(s.after.median_abs)}",
                       f"{abs_pct(s.before.mean_abs)} -> {abs_pct(s.after.mean_abs)}",
                       f"{abs_pct(s.before.max_abs)} -> {abs_pct(s.after.max_abs)}")  # fmt: skip
    knobs = Table(title="Efficiencies", title_justify="left")
    for column in ("knob", "before", "after"):
        knobs.add_column(column)
    for row in efficiency_changes(result.fit.before, result.fit.after):
        knobs.add_row(*row)
    tables = [errors, knobs]
    if result.model_runs:
        runs = Table(title="Model-level runs: estimator vs PyTorch", title_justify="left")
        for column in ("run", "measured", "before", "after"):
            runs.add_column(column, justify="left" if column == "run" else "right")
        for c in result.model_runs:
            r = c.run
            for phase, measured, before, after in (
                ("prefill (TTFT)", r.measured_ttft_s, c.ttft_before_s, c.ttft_after_s),
                ("decode step (TPOT)", r.measured_tpot_s, c.tpot_before_s, c.tpot_after_s),
            ):
                runs.add_row(f"{r.spec.workload.id} {phase}", format_time(measured), pct(before / measured - 1),
                             pct(after / measured - 1))  # fmt: skip
        tables.append(runs)
    if result.train_runs:
        tables.append(_train_table(result))
    if result.modes:
        modes = Table(title="Model-level runs with host time: packaged -> calibrated runtime profile",
                      title_justify="left")  # fmt: skip
        for column in ("run", "mode", "phase", "measured", "device only", "packaged", "calibrated"):
            modes.add_column(column, justify="left" if column in ("run", "mode", "phase") else "right")
        for m in result.modes:
            modes.add_row(m.model, m.mode, m.phase, format_time(m.measured_s), pct(m.error(m.device_only_s)),
                          pct(m.error(m.before_s)), pct(m.error(m.after_s)))  # fmt: skip
        tables.append(modes)
    files = Table(title="Written", title_justify="left", show_header=False)
    files.add_column("what")
    files.add_column("path")
    for key, path in paths.items():
        files.add_row(key, str(path))
    tables.append(files)
    return tables


def _train_table(result: Any) -> Table:
    from roofline.calibration.report import pct
    from roofline.units import format_bytes, format_time

    table = Table(title="Training step (forward, backward, AdamW): estimator vs PyTorch", title_justify="left")
    for column in ("run", "measured", "before", "after", "peak memory"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for c in result.train_runs:
        run = c.run
        errors = [pct(e.step_s / run.measured_step_s - 1) if e.step_s is not None else "no estimate"
                  for e in (c.before, c.after)]  # fmt: skip
        peak = format_bytes(run.peak_memory_bytes) if run.peak_memory_bytes is not None else "n/a"
        table.add_row(f"{run.spec.workload.id} batch {run.spec.batch} x seq {run.spec.seq_len}",
                      format_time(run.measured_step_s), *errors, peak)  # fmt: skip
    return table


def _print_table_report(report: Any, fmt: OutputFormat) -> None:
    """The GEMM curves fitted from a kernel table, and the files written."""
    if fmt is OutputFormat.json:
        emit(to_json(report.to_dict()))
        return
    if fmt is OutputFormat.csv:
        emit(to_csv(report.records()))
        return
    curves = Table(title=f"GEMM curves fitted from {report.table}", title_justify="left")
    for column in ("hardware", "format", "fraction", "k_half", "k_step", "latency", "rms log error"):
        curves.add_column(column, justify="left" if column in ("hardware", "format") else "right")
    for r in report.records():
        curves.add_row(r["hardware"], r["format"], f"{r['fraction']:.3f}", f"{r['k_half']:.0f}",
                       f"{r['k_step_s'] * 1e9:.2f} ns", f"{r['latency_s'] * 1e6:.2f} us",
                       f"{r['rms_log_error']:.3f}")  # fmt: skip
    console = Console(width=140)
    console.print(curves)
    for key, path in report.paths.items():
        console.print(f"wrote {key}: {path}")


def calibrate_command(
    output: Path = typer.Option(
        ..., "--output", "--out", "-o", help="directory for the profile YAML, reports, raw measurements and plot"
    ),
    device: str = typer.Option(
        "auto", "--device", help="cuda, cpu, auto (a GPU when torch sees one), or none (only --kernel-table)"
    ),
    quick: bool = typer.Option(True, "--quick/--full", help="a short grid (default) or the full one"),
    hardware: str | None = typer.Option(
        None, "--hardware", help="GPU: the catalog id to calibrate (default: matched from the device name); "
        "CPU: the id of the host profile (default: host)"
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads (default: every core); 1 times with thread CPU time, steady on a busy host"
    ),
    model: str = typer.Option("llama-3.1-8b", "--model", "-m", help="dense model for the model-level runs"),
    model_runs: bool = typer.Option(True, "--model-runs/--no-model-runs", help="time prefill and decode of a model"),
    moe_model: str = typer.Option(
        "qwen3-30b-a3b", "--moe-model", help="MoE model for a second model-level run ('none': no MoE run)"
    ),
    train_run: bool = typer.Option(
        True, "--train-run/--no-train-run", help="time a training step (forward, backward, AdamW) of --model"
    ),
    host_costs: bool = typer.Option(
        True, "--host-costs/--no-host-costs", help="time eager dispatch, CUDA-graph replay, kernels per operator"
    ),
    runtimes: list[str] = typer.Option(
        [], "--runtime", help="PyTorch launch mode to measure and recalibrate (repeatable): torch-eager, "
        "torch-cuda-graph (gpt-fast); default both"
    ),
    memory_fraction: float | None = typer.Option(
        None, "--memory-fraction", help="share of free memory the benchmarks may use (GPU 0.5, CPU 0.25)"
    ),
    passes: int | None = typer.Option(
        None, "--passes", help="passes over the kernels, the fastest kept (default 1; 2 with --full on a CPU)"
    ),
    force: bool = typer.Option(False, "--force", help="overwrite earlier outputs in the directory"),
    kernel_table: Path | None = typer.Option(
        None, "--kernel-table", help="measured GEMM table (validation CSV schema: gemm rows, latency_us or tflops) "
        "to fit GEMM efficiency curves from, into the calibrated profile; with --device none only that (no PyTorch)"
    ),
    from_dir: Path | None = typer.Option(
        None, "--from-dir", "--from", help="refit a saved run (a calibrate output directory) with this version's "
        "cost model: no device, no PyTorch"
    ),
    fmt: OutputFormat = text_format_option(help="table (summary tables) or json (the report's document)"),
) -> None:  # fmt: skip
    """Measure the device with PyTorch, compare with the cost model, write DIR/<hardware>-calibrated.yaml."""
    if from_dir is not None:
        refitted = calibrate(output, force=force, from_dir=from_dir, runtime=runtimes)
        assert isinstance(refitted, CalibrationReport)
        _print_report(refitted, fmt)
        return
    if device == "none":
        _print_table_report(calibrate(output, device=device, force=force, kernel_table=kernel_table), fmt)
        return
    require_torch()
    with _progress_bar() as bar:
        task = bar.add_task("", total=None) if bar is not None else None

        def progress(what: str, index: int, total: int) -> None:
            if bar is not None:
                bar.update(task, completed=index, total=total, description=what)

        report = calibrate(output, device=device, quick=quick, hardware=hardware, threads=threads, model=model,
                           model_runs=model_runs, memory_fraction=memory_fraction, passes=passes, force=force,
                           progress=progress, kernel_table=kernel_table, host_costs=host_costs,
                           moe_model=None if moe_model == "none" else moe_model, train_run=train_run,
                           runtime=runtimes)  # fmt: skip
    assert isinstance(report, CalibrationReport)
    _print_report(report, fmt)


def _print_report(report: CalibrationReport, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        emit(to_json(report.to_dict()))
    elif fmt is OutputFormat.csv:
        emit(to_csv(report.records()))
    else:
        console = Console(width=140)
        for table in _summary_tables(report.result, report.paths):
            console.print(table)
    for note in report.result.notes:
        typer.echo(f"note: {note}", err=True)
