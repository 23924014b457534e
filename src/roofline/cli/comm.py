"""`roofline comm <collective>` and `roofline comm sweep`: parse, call roofline.api.collectives, render
(time, algbw, busbw as nccl-tests reports them, with the algorithm and the links crossed)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer
from rich.table import Table

from roofline.api import CollectiveTiming, EpTiming, comm, comm_ep, comm_sweep
from roofline.api.collectives import COLLECTIVES, EP_COLLECTIVES
from roofline.cli import tables
from roofline.cli.common import OutputFormat, emit, text_format_option
from roofline.reports.formats import to_csv, to_json
from roofline.units import format_bytes, format_rate, format_time

app = typer.Typer(help="Collective communication: time, algbw and busbw as nccl-tests reports them.",
                  no_args_is_help=True)  # fmt: skip

Collective = StrEnum("Collective", {name.replace("-", "_"): name for name in COLLECTIVES})  # type: ignore[misc]

SYSTEM = typer.Option(None, "--system", help="system id (roofline hardware list), e.g. dgx-h100")
HARDWARE = typer.Option(None, "--hardware", help="accelerator id; its default system is used")
GPUS = typer.Option(8, "--gpus", help="GPUs in the group (consecutive: one domain fills before the next)")
LIBRARY = typer.Option("nccl", "--library", help="communication library profile: nccl, deepep, uccl")
ALGORITHM = typer.Option(None, "--algorithm", help="force ring, tree, nvls or hierarchical (default: fastest)")
FORMAT = text_format_option()


def _table(rows: list[CollectiveTiming], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("size", "time", "algbw", "busbw", "algorithm", "links crossed"):
        table.add_column(column, justify="left" if column in ("algorithm", "links crossed") else "right")
    for t in rows:
        c = t.cost
        table.add_row(format_bytes(c.size_bytes, binary=True), format_time(c.time_s),
                      format_rate(c.algbw_bytes_per_s, "B/s"), format_rate(c.busbw_bytes_per_s, "B/s"),
                      f"{c.algorithm}/{c.protocol}", " + ".join(c.levels) or "-")  # fmt: skip
    return table


def _emit(data: dict[str, Any], rows: list[dict[str, Any]], timings: list[CollectiveTiming], fmt: OutputFormat,
          title: str) -> None:  # fmt: skip
    if fmt is OutputFormat.json:
        emit(to_json(data))
    elif fmt is OutputFormat.csv:
        emit(to_csv(rows))
    else:
        tables.print_renderable(_table(timings, title))


def _one(collective: str) -> Any:
    def command(
        size: str = typer.Option(..., "--bytes", help="message size per GPU as nccl-tests counts it: 256MiB, 1GB, or "
                                 "a byte count"),  # fmt: skip
        system: str | None = SYSTEM, hardware: str | None = HARDWARE, gpus: int = GPUS,
        library: str = LIBRARY, algorithm: str | None = ALGORITHM, fmt: OutputFormat = FORMAT,
    ) -> None:  # fmt: skip
        timing = comm(collective, hardware, bytes=size, system=system, gpus=gpus, library=library,
                      algorithm=algorithm)  # fmt: skip
        _emit(timing.to_dict(), timing.records(), [timing], fmt,
              f"{collective} over {timing.cost.group_size} GPUs ({library})")  # fmt: skip

    command.__doc__ = f"Time, algbw and busbw of one {collective}."
    return command


for _collective in COLLECTIVES:
    app.command(_collective)(_one(_collective))


@app.command("sweep")
def sweep(
    collective: Collective = typer.Argument(..., help="all-reduce, all-gather, reduce-scatter, all-to-all, ..."),
    min_bytes: str = typer.Option("1KiB", "--min-bytes", "--from", help="smallest message (nccl-tests -b)"),
    max_bytes: str = typer.Option("8GiB", "--max-bytes", "--to", help="largest message (nccl-tests -e)"),
    factor: int = typer.Option(2, "--factor", help="size multiplier between rows (nccl-tests -f)"),
    system: str | None = SYSTEM, hardware: str | None = HARDWARE, gpus: int = GPUS,
    library: str = LIBRARY, algorithm: str | None = ALGORITHM, fmt: OutputFormat = FORMAT,
) -> None:  # fmt: skip
    """A size sweep like nccl-tests -b MIN -e MAX -f FACTOR."""
    result = comm_sweep(collective.value, hardware, min_bytes=min_bytes, max_bytes=max_bytes, factor=factor,
                        system=system, gpus=gpus, library=library, algorithm=algorithm)  # fmt: skip
    timings = list(result.timings)
    _emit(result.to_dict(), result.records(), timings, fmt,
          f"{collective.value} over {timings[0].cost.group_size} GPUs ({library})")  # fmt: skip


def _ep_table(t: EpTiming) -> Table:
    table = Table(title=f"{t.cost.kind.value} over {t.cost.group_size} GPUs ({t.library})", title_justify="left")
    for column in ("tokens/GPU", "time", "kernel", "GPUs/token", "domains/token", "links crossed"):
        table.add_column(column, justify="left" if column in ("kernel", "links crossed") else "right")
    table.add_row(str(t.tokens), format_time(t.time_s), f"{t.cost.algorithm}/{t.cost.protocol}",
                  f"{t.destination_gpus:.2f}", f"{t.destination_domains:.2f}",
                  " + ".join(t.cost.levels) or "-")  # fmt: skip
    return table


def _ep(collective: str) -> Any:
    def command(
        tokens: int = typer.Option(..., "--tokens", help="tokens per GPU in one call"),
        hidden: int = typer.Option(..., "--hidden", help="values per token (the model's hidden or latent width)"),
        topk: int = typer.Option(..., "--topk", help="experts each token is routed to"),
        experts: int = typer.Option(..., "--experts", help="routed experts in all"),
        ep: int = typer.Option(8, "--ep", help="GPUs of the EP group (consecutive: one domain fills before the next)"),
        system: str | None = SYSTEM, hardware: str | None = HARDWARE,
        library: str = typer.Option("deepep", "--library", help="deepep (normal, low_latency), trtllm (one_sided), "
                                    "nccl (a plain all-to-all)"),
        mode: str | None = typer.Option(None, "--mode", help="force a kernel family of the library (default: fastest)"),
        sms: int | None = typer.Option(None, "--sms", help="SMs the DeepEP kernel gets (default: the library's)"),
        imbalance: float = typer.Option(1.0, "--imbalance", help="busiest GPU's tokens over the mean"),
        groups: int = typer.Option(1, "--groups", help="expert groups for group-limited routing (1: none)"),
        topk_groups: int = typer.Option(1, "--topk-groups", help="groups each token may use (DeepSeek-V3: 4 of 8)"),
        element_bytes: float = typer.Option(2.0, "--element-bytes", help="bytes per activation value (bf16: 2)"),
        fmt: OutputFormat = FORMAT,
    ) -> None:  # fmt: skip
        timing = comm_ep(collective, hardware, tokens=tokens, hidden=hidden, topk=topk, experts=experts, ep=ep,
                         system=system, library=library, mode=mode, sms=sms, imbalance=imbalance, groups=groups,
                         topk_groups=topk_groups, element_bytes=element_bytes)  # fmt: skip
        if fmt is OutputFormat.json:
            emit(to_json(timing.to_dict()))
        elif fmt is OutputFormat.csv:
            emit(to_csv(timing.records()))
        else:
            tables.print_renderable(_ep_table(timing))

    what = collective.removeprefix("ep-")
    command.__doc__ = f"Time of one MoE {what} over the EP group (DeepEP, TensorRT-LLM, NCCL kernels)."
    return command


for _collective in EP_COLLECTIVES:
    app.command(_collective)(_ep(_collective))
    app.command(_collective.replace("-", "_"), hidden=True)(_ep(_collective))
