"""`roofline sweep`: estimate over a grid of parameters; a table, or a CSV / Parquet / XLSX file."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from roofline import __version__
from roofline.cli.common import OutputFormat, emit
from roofline.errors import RooflineError
from roofline.planner import grid
from roofline.planner.sweep import AXES, SweepRequest, run_sweep
from roofline.reports.formats import to_csv, to_json
from roofline.reports.workbook import SWEEP_COLUMNS, best_rows, present_columns, write_workbook
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS
from roofline.simulator.serving.engine_config import DEFAULT_ENGINE, load_engine

SUFFIXES = (".csv", ".parquet", ".xlsx")
LIST_HELP = "comma list or range START:STOP[:+STEP|:xFACTOR]"


def _check_output(output: Path | None, force: bool) -> None:
    if output is None:
        return
    if output.suffix.lower() not in SUFFIXES:
        raise RooflineError(f"-o {output}: the file name must end in {', '.join(SUFFIXES)}")
    if output.is_dir():
        raise RooflineError(f"-o {output} is a directory; give a file name")
    if output.exists() and not force:
        raise RooflineError(f"'{output}' already exists; pass --force to overwrite it")
    if output.suffix.lower() == ".parquet":
        _pyarrow()


def _pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise RooflineError("writing .parquet needs pyarrow: pip install pyarrow (or write .csv / .xlsx)") from None


def _write(output: Path, rows: list[dict[str, Any]], inputs: list[tuple[str, Any]]) -> None:
    suffix = output.suffix.lower()
    try:
        if suffix == ".xlsx":
            write_workbook(output, inputs, rows)
        elif suffix == ".parquet":
            import pandas as pd

            pd.DataFrame(rows).to_parquet(output, index=False)
        else:
            output.write_text(to_csv(rows), encoding="utf-8")
    except OSError as exc:
        raise RooflineError(f"cannot write '{output}': {exc.strerror}") from None


TABLE_KEYS = (
    "model",
    "hardware",
    "weight_dtype",
    "tp",
    "pp",
    "ep",
    "attn_dp",
    "batch",
    "isl",
    "osl",
    "request_rate_per_s",
    "ttft_s",
    "tpot_s",
    "ttft_p99_s",
    "tpot_p99_s",
    "output_tokens_per_s_per_gpu",
    "output_tokens_per_s_per_user",
    "memory_bytes",
    "fits",
)


def _table(rows: list[dict[str, Any]]) -> Table:
    columns = [c for c in present_columns(SWEEP_COLUMNS, rows) if c.key in TABLE_KEYS]
    table = Table(title=f"{len(rows)} configurations")
    for column in columns:
        table.add_column(column.header, justify="left" if column.number_format == "General" else "right")
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column.key)
            if isinstance(value, float):
                digits = column.number_format.rsplit(".", 1)[-1].count("0") if "." in column.number_format else 0
                value = f"{value * column.scale:,.{digits}f}"
            cells.append("" if value is None else str(value))
        table.add_row(*cells)
    return table


def _progress(quiet: bool, total: int) -> Any:
    if quiet or not sys.stderr.isatty():
        return nullcontext(None)
    return Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)  # fmt: skip


def sweep_command(
    model: str = typer.Option(..., "--model", "-m", help="model id(s), comma separated"),
    hardware: str = typer.Option(..., "--hardware", help="accelerator ids, comma separated"),
    tp: str = typer.Option("1", "--tp", help=f"tensor-parallel degrees: {LIST_HELP}"),
    pp: str = typer.Option("1", "--pp", help="pipeline stages (list or range)"),
    ep: str = typer.Option("1", "--ep", help="expert-parallel degrees (list or range)"),
    attn_dp: str = typer.Option("1", "--attn-dp", help="attention data-parallel replicas (list or range)"),
    batch: str = typer.Option("1", "--batch", "-b", help="concurrent sequences per replica (list or range)"),
    isl: str = typer.Option("1024", "--isl", help="input tokens (list or range)"),
    osl: str = typer.Option("128", "--osl", help="output tokens (list or range)"),
    weight_dtype: str | None = typer.Option(None, "--weight-dtype", help="weight formats; default: shipped"),
    kv_dtype: str | None = typer.Option(None, "--kv-dtype", help="KV-cache format; default: follows the weights"),
    max_num_tokens: int = typer.Option(DEFAULT_MAX_NUM_TOKENS, "--max-num-tokens", help="engine token budget per step"),
    engine: str | None = typer.Option(None, "--engine", help="add an engine profile's host overheads (trtllm, vllm)"),
    exact: bool = typer.Option(False, "--exact", help="full estimator per configuration (slow), not the fast path"),
    request_rate: str | None = typer.Option(
        None, "--request-rate", help="serve every configuration at these rates (requests/s, comma list): load "
        "curves from the serving simulator; --batch is then the batch limit, --engine the engine (trtllm)"),
    num_requests: int = typer.Option(300, "--num-requests", help="with --request-rate: requests simulated per point"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write FILE.csv, FILE.parquet or FILE.xlsx"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="stdout format without -o: table, json, csv"),
) -> None:  # fmt: skip
    """Estimate a grid of configurations (lists and ranges of parallelism, batch, lengths, formats)."""
    if fmt is OutputFormat.xlsx and (output is None or output.suffix.lower() != ".xlsx"):
        raise RooflineError("--format xlsx writes a binary workbook: add -o FILE.xlsx")
    _check_output(output, force)
    texts = {"tp": tp, "pp": pp, "ep": ep, "attn_dp": attn_dp, "batch": batch, "isl": isl, "osl": osl}
    axes = {name: grid.parse_ints(texts[name], "--" + name.replace("_", "-")) for name in AXES}
    dtypes: tuple[str | None, ...] = tuple(grid.parse_names(weight_dtype)) if weight_dtype else (None,)
    profile = load_engine(engine) if engine else None
    rates = _rates(request_rate) if request_rate is not None else ()
    request = SweepRequest(tuple(grid.parse_names(model)), tuple(grid.parse_names(hardware)), axes, dtypes, kv_dtype,
                           max_num_tokens, profile, exact, rates, num_requests)  # fmt: skip
    with _progress(quiet, request.size) as bar:
        task = bar.add_task("sweep", total=request.size) if bar else None
        rows, skipped = run_sweep(request, (lambda n: bar.advance(task, n)) if bar else None)
    if skipped:
        reason, count = max(skipped.items(), key=lambda kv: kv[1])
        typer.echo(f"skipped {sum(skipped.values())} of {request.size} configurations that cannot be split "
                   f"that way (e.g. {count}: {reason})", err=True)  # fmt: skip
    if not rows:
        raise RooflineError("no configuration in the grid is valid; see the reason above")
    inputs = _inputs(request, engine)
    if output is not None:
        _write(output, rows, inputs)
        best = best_rows(rows)
        note = f"; best fitting: {_describe(best[0])}" if best else "; none fits in memory"
        typer.echo(f"wrote {len(rows)} configurations to {output}{note}", err=True)
    elif fmt is OutputFormat.json:
        emit(to_json({"inputs": dict(inputs), "rows": rows, "skipped": skipped}))
    elif fmt is OutputFormat.csv:
        emit(to_csv(rows))
    else:
        Console(width=200).print(_table(rows))


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise RooflineError(f"--request-rate takes requests/s separated by commas, e.g. 1,2,4; got '{text}'") from None
    if not rates:
        raise RooflineError("--request-rate needs at least one rate")
    return rates


def _describe(row: dict[str, Any]) -> str:
    return (f"{row['model']} on {row['hardware']} tp {row['tp']} pp {row['pp']} batch {row['batch']}: "
            f"{row['output_tokens_per_s_per_gpu']:,.0f} tokens/s per GPU")  # fmt: skip


def _inputs(request: SweepRequest, engine: str | None) -> list[tuple[str, Any]]:
    axes = request.axes
    served = bool(request.request_rates_per_s)
    profile = request.engine or (load_engine() if served else None)
    if served:
        estimator = "serving simulator: each configuration served at each rate (Poisson arrivals)"
    else:
        estimator = "full estimator per configuration" if request.exact else "fast path (vectorised roofline)"
    rows: list[tuple[str, Any]] = [
        ("Tool", f"roofline {__version__}"),
        ("Estimator", estimator),
        ("Models", ", ".join(request.models)),
        ("Hardware", ", ".join(request.hardware)),
        ("Weight formats", ", ".join(d or "as shipped" for d in request.weight_dtypes)),
        ("KV-cache format", request.kv_dtype or "follows the weight format"),
        ("Input lengths (tokens)", ", ".join(map(str, axes["isl"]))),
        ("Output lengths (tokens)", ", ".join(map(str, axes["osl"]))),
        ("Batch limit (sequences per replica)" if served else "Batch (sequences per replica)",
         ", ".join(map(str, axes["batch"]))),
        ("TP / PP / EP / attention DP",
         " / ".join(", ".join(map(str, axes[k])) for k in ("tp", "pp", "ep", "attn_dp"))),
        ("Engine token budget per step (max_num_tokens)", request.max_num_tokens),
        ("Engine", (engine or DEFAULT_ENGINE) if served else engine or "none (host overheads off, as `estimate`)"),
        ("Engine step overhead (ms)", profile.step_overhead * 1e3 if profile else 0.0),
        ("Engine per-sequence overhead (us)", profile.per_sequence_overhead * 1e6 if profile else 0.0),
        ("Activations", "bf16"),
    ]  # fmt: skip
    if served:
        return [
            *rows,
            ("Request rates (requests/s)", ", ".join(f"{r:g}" for r in request.request_rates_per_s)),
            ("Requests simulated per point", request.num_requests),
            ("TTFT / TPOT", "mean and p99 over the simulated requests; throughput: achieved output tokens/s"),
        ]
    return [*rows, ("TPOT", "decode step at the mean decode context; TTFT: prefill of the whole batch"),
            ("Throughput", "batch / TPOT (steady decode), per GPU over tp x pp x attention-DP GPUs")]  # fmt: skip
