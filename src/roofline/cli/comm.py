"""`roofline comm <collective>` and `roofline comm sweep`: collective timings the way nccl-tests
reports them (time, algbw, busbw), with the algorithm and the links crossed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer
from rich.table import Table

from roofline.cli.common import OutputFormat, emit, text_format_option
from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.ir import CollectiveKind
from roofline.reports import tables
from roofline.reports.formats import to_csv, to_json
from roofline.simulator.collectives import CollectiveCost, CollectiveModel, group_topology, load_library
from roofline.units import Dimension, format_bytes, format_rate, format_time, parse_quantity

app = typer.Typer(help="Collective communication: time, algbw and busbw as nccl-tests reports them.",
                  no_args_is_help=True)  # fmt: skip


class Collective(StrEnum):
    all_reduce = "all-reduce"
    all_gather = "all-gather"
    reduce_scatter = "reduce-scatter"
    all_to_all = "all-to-all"
    broadcast = "broadcast"
    send_recv = "send-recv"

    @property
    def kind(self) -> CollectiveKind:
        return CollectiveKind(self.value.replace("-", "_"))


SYSTEM = typer.Option(None, "--system", help="system id (roofline hardware list), e.g. dgx-h100")
HARDWARE = typer.Option(None, "--hardware", help="accelerator id; its default system is used")
GPUS = typer.Option(8, "--gpus", help="GPUs in the group (consecutive: one domain fills before the next)")
LIBRARY = typer.Option("nccl", "--library", help="communication library profile: nccl, deepep, uccl")
ALGORITHM = typer.Option(None, "--algorithm", help="force ring, tree, nvls or hierarchical (default: fastest)")
FORMAT = text_format_option()


def _bytes(text: str, option: str) -> float:
    try:
        return parse_quantity(text, Dimension.BYTES)
    except ValueError as exc:
        raise RooflineError(f"{option}: {exc}") from None


def _row(cost: CollectiveCost) -> dict[str, Any]:
    return {
        "collective": cost.kind.value, "size_bytes": cost.size_bytes, "gpus": cost.group_size,
        "time_s": cost.time_s, "algbw_bytes_per_s": cost.algbw_bytes_per_s,
        "busbw_bytes_per_s": cost.busbw_bytes_per_s, "algorithm": cost.algorithm, "protocol": cost.protocol,
        "levels": list(cost.levels),
    }  # fmt: skip


def _cost(collective: Collective, size: float, system: str | None, hardware: str | None, gpus: int, library: str,
          algorithm: str | None) -> CollectiveCost:  # fmt: skip
    if hardware is None and system is None:
        raise RooflineError("name the hardware: --system ID or --hardware ID")
    if gpus < 2 and collective is not Collective.send_recv:
        raise RooflineError(f"a collective needs at least 2 GPUs, got --gpus {gpus}")
    cluster = resolve_cluster(hardware=hardware, system=system, num_gpus=gpus)
    topology = group_topology(cluster, 2 if collective is Collective.send_recv else gpus)
    return CollectiveModel(load_library(library)).cost(collective.kind, size, topology, algorithm)


def _table(rows: list[CollectiveCost], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("size", "time", "algbw", "busbw", "algorithm", "links crossed"):
        table.add_column(column, justify="left" if column in ("algorithm", "links crossed") else "right")
    for c in rows:
        table.add_row(format_bytes(c.size_bytes, binary=True), format_time(c.time_s),
                      format_rate(c.algbw_bytes_per_s, "B/s"), format_rate(c.busbw_bytes_per_s, "B/s"),
                      f"{c.algorithm}/{c.protocol}", " + ".join(c.levels) or "-")  # fmt: skip
    return table


def _emit(rows: list[CollectiveCost], fmt: OutputFormat, title: str, single: bool) -> None:
    if fmt is OutputFormat.json:
        emit(to_json(_row(rows[0]) if single else [_row(r) for r in rows]))
    elif fmt is OutputFormat.csv:
        emit(to_csv([{k: (";".join(v) if isinstance(v, list) else v) for k, v in _row(r).items()} for r in rows]))
    else:
        tables.print_renderable(_table(rows, title))


def _one(collective: Collective) -> Any:
    def command(
        size: str = typer.Option(..., "--bytes", help="message size per GPU as nccl-tests counts it, e.g. 256MiB"),
        system: str | None = SYSTEM, hardware: str | None = HARDWARE, gpus: int = GPUS,
        library: str = LIBRARY, algorithm: str | None = ALGORITHM, fmt: OutputFormat = FORMAT,
    ) -> None:  # fmt: skip
        cost = _cost(collective, _bytes(size, "--bytes"), system, hardware, gpus, library, algorithm)
        _emit([cost], fmt, f"{collective.value} over {cost.group_size} GPUs ({library})", single=True)

    command.__doc__ = f"Time, algbw and busbw of one {collective.value}."
    return command


for _collective in Collective:
    app.command(_collective.value)(_one(_collective))


@app.command("sweep")
def sweep(
    collective: Collective = typer.Argument(..., help="all-reduce, all-gather, reduce-scatter, all-to-all, ..."),
    start: str = typer.Option("1KiB", "--from", help="smallest message"),
    stop: str = typer.Option("8GiB", "--to", help="largest message"),
    factor: int = typer.Option(2, "--factor", help="size multiplier between rows (nccl-tests -f)"),
    system: str | None = SYSTEM, hardware: str | None = HARDWARE, gpus: int = GPUS,
    library: str = LIBRARY, algorithm: str | None = ALGORITHM, fmt: OutputFormat = FORMAT,
) -> None:  # fmt: skip
    """A size sweep like nccl-tests -b FROM -e TO -f FACTOR."""
    low, high = _bytes(start, "--from"), _bytes(stop, "--to")
    if factor < 2 or low <= 0 or high < low:
        raise RooflineError("need 0 < --from <= --to and --factor >= 2")
    sizes, size = [], low
    while size <= high:
        sizes.append(size)
        size *= factor
    rows = [_cost(collective, s, system, hardware, gpus, library, algorithm) for s in sizes]
    _emit(rows, fmt, f"{collective.value} over {rows[0].group_size} GPUs ({library})", single=False)
