"""`roofline sweep`: parse, call roofline.api.sweeps, render a table or write CSV / Parquet / XLSX."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from roofline.api import SweepTable, sweep
from roofline.cli.common import OutputFormat, emit
from roofline.cli.running import EXECUTOR, QUIET, SCHEDULER, jobs_option, progress_bar
from roofline.errors import RooflineError
from roofline.executors import executor_named
from roofline.files import write_whole
from roofline.reports.formats import to_csv, to_json
from roofline.reports.workbook import SWEEP_COLUMNS, present_columns, write_workbook
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS

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


def _write(output: Path, result: SweepTable) -> None:
    """The whole file or none: written beside it, then renamed over it."""
    suffix = output.suffix.lower()

    def write(path: Path) -> None:
        if suffix == ".xlsx":
            write_workbook(path, list(result.inputs), result.records())
        elif suffix == ".parquet":
            result.to_frame().to_parquet(path, index=False)
        else:
            path.write_text(to_csv(result.records()), encoding="utf-8")

    try:
        write_whole(output, write)
    except OSError as exc:
        raise RooflineError(f"cannot write '{output}': {exc.strerror}") from None


TABLE_KEYS = (
    "model", "hardware", "weight_dtype", "tp", "pp", "ep", "attn_dp", "batch", "isl", "osl", "request_rate_per_s",
    "ttft_batch_s", "ttft_s", "tpot_s", "ttft_p99_s", "tpot_p99_s", "output_tokens_per_s_per_gpu",
    "output_tokens_per_s_per_user", "memory_bytes", "fits",
)  # fmt: skip


def _table(rows: list[dict[str, Any]]) -> Table:
    columns = [c for c in present_columns(SWEEP_COLUMNS, rows) if c.key in TABLE_KEYS]
    table = Table(title=f"{len(rows)} configurations (a configuration that does not fit shows no latency)")
    for column in columns:
        table.add_column(column.header, justify="left" if column.number_format == "General" else "right")
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column.key)
            if column.key == "fits" and value is False:
                value = "NO (hypothetical)" if row.get("hypothetical") else "NO"
            elif isinstance(value, float):
                digits = column.number_format.rsplit(".", 1)[-1].count("0") if "." in column.number_format else 0
                value = f"{value * column.scale:,.{digits}f}"
            cells.append("-" if value is None else str(value))
        table.add_row(*cells)
    return table


def _describe(row: dict[str, Any]) -> str:
    return (f"{row['model']} on {row['hardware']} tp {row['tp']} pp {row['pp']} batch {row['batch']}: "
            f"{row['output_tokens_per_s_per_gpu']:,.0f} tokens/s per GPU")  # fmt: skip


def sweep_command(
    model: str = typer.Option(..., "--model", "-m", help="model id(s), comma separated"),
    hardware: str = typer.Option(..., "--hardware", help="accelerator ids, comma separated"),
    tp: str = typer.Option("1", "--tp", help=f"tensor-parallel degrees: {LIST_HELP}"),
    pp: str = typer.Option("1", "--pp", help="pipeline stages (list or range)"),
    ep: str = typer.Option("1", "--ep", help="expert-parallel degrees (list or range)"),
    attn_dp: str = typer.Option("1", "--attn-dp", help="attention data-parallel ranks (list or range)"),
    batch: str = typer.Option("1", "--batch", "-b", help="concurrent sequences per replica (list or range)"),
    isl: str = typer.Option("1024", "--isl", help="input tokens (list or range)"),
    osl: str = typer.Option("128", "--osl", help="output tokens (list or range)"),
    weight_dtype: str | None = typer.Option(None, "--weight-dtype", help="weight formats; default: shipped"),
    kv_dtype: str | None = typer.Option(None, "--kv-dtype", help="KV-cache format; default: follows the weights"),
    max_num_tokens: int = typer.Option(DEFAULT_MAX_NUM_TOKENS, "--max-num-tokens", help="engine token budget per step"),
    engine: str | None = typer.Option(None, "--engine", "--runtime", help="add a runtime's host overheads"),
    exact: bool = typer.Option(False, "--exact", help="full estimator per configuration (slow), not the fast path"),
    request_rate: str | None = typer.Option(
        None, "--request-rate", help="serve every configuration at these rates (requests/s, comma list): load "
        "curves from the serving simulator; --batch is then the batch limit, --engine the engine (trtllm)"),
    num_requests: int = typer.Option(300, "--num-requests", help="with --request-rate: requests simulated per point"),
    ignore_memory: bool = typer.Option(
        False, "--ignore-memory", help="show the latency of configurations that do not fit (marked hypothetical)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write FILE.csv, FILE.parquet or FILE.xlsx"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file"),
    jobs: int | None = jobs_option(1, "1, in this process"), executor: str = EXECUTOR,
    scheduler: str | None = SCHEDULER, quiet: bool = QUIET,
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="stdout format without -o: table, json, csv"),
) -> None:  # fmt: skip
    """Estimate a grid of configurations (lists and ranges of parallelism, batch, lengths, formats)."""
    if fmt is OutputFormat.xlsx and (output is None or output.suffix.lower() != ".xlsx"):
        raise RooflineError("--format xlsx writes a binary workbook: add -o FILE.xlsx")
    _check_output(output, force)
    with progress_bar("sweep", quiet) as bar:
        result = sweep(model, hardware, tp=tp, pp=pp, ep=ep, attn_dp=attn_dp, batch=batch, isl=isl, osl=osl,
                       weight_dtype=weight_dtype, kv_dtype=kv_dtype, max_num_tokens=max_num_tokens, engine=engine,
                       exact=exact, request_rate=request_rate, num_requests=num_requests, ignore_memory=ignore_memory,
                       progress=bar.advance if bar else None, jobs=jobs, executor=executor_named(executor),
                       scheduler=scheduler)  # fmt: skip
    if result.skipped:
        reason, count = max(result.skipped.items(), key=lambda kv: kv[1])
        total = len(result.table) + sum(result.skipped.values())
        typer.echo(f"skipped {sum(result.skipped.values())} of {total} configurations that cannot be split "
                   f"that way (e.g. {count}: {reason})", err=True)  # fmt: skip
    if output is not None:
        _write(output, result)
        best = result.best()
        note = f"; best fitting: {_describe(best[0])}" if best else "; none fits in memory"
        typer.echo(f"wrote {len(result.table)} configurations to {output}{note}", err=True)
    elif fmt is OutputFormat.json:
        emit(to_json(result.to_dict()))
    elif fmt is OutputFormat.csv:
        emit(to_csv(result.records()))
    else:
        Console(width=200).print(_table(result.records()))
