"""`roofline plan`: the cheapest configurations that serve a request rate within p99 latency targets."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from roofline.api import plan
from roofline.cli import launch as launching
from roofline.cli.common import OutputFormat, emit, text_format_option
from roofline.planner.search import PlanResult
from roofline.reports.formats import to_csv, to_json

PARETO_SHOWN = 12


def _fmt(value: Any, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value * scale:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:,.0f}%"


def _rows_table(title: str, rows: list[dict[str, Any]], priced: bool, with_failures: bool = False) -> Table:
    table = Table(title=title, title_justify="left")
    heads = ["hardware", "weights", "tp", "pp", "ep", "attn-dp", "dp", "GPUs", "batch limit", "TTFT p99 (ms)",
             "TPOT p99 (ms)", "load", "tokens/s/GPU", "tokens/s/user", "GiB/GPU"]  # fmt: skip
    heads += ["$/hour", "$/Mtoken"] if priced else []
    heads += ["failed"] if with_failures else []
    for h in heads:
        table.add_column(h, justify="left" if h in ("hardware", "weights", "failed") else "right")
    for r in rows:
        cells = [r["hardware"], r["weight_dtype"], *(str(r[k]) for k in ("tp", "pp", "ep", "attn_dp", "dp", "gpus")),
                 str(r["batch_limit"]), _fmt(r["ttft_p99_s"], 1e3), _fmt(r["tpot_p99_s"], 1e3, 2),
                 _percent(r["utilisation"]), _fmt(r["tokens_per_s_per_gpu"], digits=0),
                 _fmt(r["tokens_per_s_per_user"]), _fmt(r["memory_bytes"], 2**-30)]  # fmt: skip
        cells += [_fmt(r["usd_per_hour"], digits=2), _fmt(r["usd_per_million_tokens"], digits=3)] if priced else []
        cells += ["; ".join(r["failed"])] if with_failures else []
        table.add_row(*cells)
    return table


def _recheck_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Re-checked with the serving simulator (Poisson arrivals at the rate)", title_justify="left")
    for h in ("hardware", "weights", "tp x pp x attn-dp", "dp", "batch limit", "TTFT p99 plan / sim (ms)",
              "TPOT p99 plan / sim (ms)", "meets SLO"):  # fmt: skip
        table.add_column(h, justify="left" if h in ("hardware", "weights") else "right")
    for r in rows:
        split = f"{r['tp']} x {r['pp']} x {r['attn_dp']}"
        if "error" in r:
            table.add_row(
                r["hardware"], r["weight_dtype"], split, str(r["dp"]), str(r["batch_limit"]), r["error"], "", ""
            )
            continue
        table.add_row(r["hardware"], r["weight_dtype"], split, str(r["dp"]), str(r["batch_limit"]),
                      f"{r['planned_ttft_p99_s'] * 1e3:,.1f} / {r['simulated_ttft_p99_s'] * 1e3:,.1f}",
                      f"{r['planned_tpot_p99_s'] * 1e3:,.2f} / {r['simulated_tpot_p99_s'] * 1e3:,.2f}",
                      "yes" if r["meets_slo"] else "NO")  # fmt: skip
    return table


def _recommendation(result: PlanResult) -> Text:
    r = result.recommended
    if r is None:
        return Text(f"None of the {len(result.recheck)} picks re-checked meets every target in simulation: the "
                    "queueing approximation is optimistic here; relax a target or raise --recheck.",
                    style="bold yellow")  # fmt: skip
    missed = next(i for i, c in enumerate(result.recheck) if c.get("meets_slo"))  # the checks before it failed
    note = f" ({missed} cheaper pick{_s(missed)} missed a target in simulation)" if missed else ""
    ttft_ms, tpot_ms = r["simulated_ttft_p99_s"] * 1e3, r["simulated_tpot_p99_s"] * 1e3
    return Text(f"Recommended: {r['hardware']} {r['weight_dtype']}, tp {r['tp']} x pp {r['pp']} x attn-dp "
                f"{r['attn_dp']}, {r['dp']} replica{_s(r['dp'])}, {r['gpus']} GPU{_s(r['gpus'])}, batch limit "
                f"{r['batch_limit']}: simulated TTFT p99 {ttft_ms:,.1f} ms, TPOT p99 {tpot_ms:,.2f} ms{note}.",
                style="bold green")  # fmt: skip


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _view(result: PlanResult) -> Group:
    req = result.request
    priced = bool(req.prices_per_gpu_hour)
    head = (f"{req.model_id}: {req.rate_per_s:g} requests/s of {req.isl} -> {req.osl} tokens, TTFT p99 <= "
            f"{req.ttft_p99_s * 1e3:g} ms, TPOT p99 <= {req.tpot_p99_s * 1e3:g} ms, at most {req.max_gpus} GPUs "
            f"({result.searched:,} configurations in {result.search_s:.2f} s)")  # fmt: skip
    parts: list[Any] = [Text(head, style="bold")]
    if result.feasible:
        order = "$/hour" if priced else "fewest GPUs"
        parts.append(_rows_table(f"Cheapest configurations that meet the targets ({order})", result.best, priced))
        if result.recheck:
            parts.append(_recheck_table(result.recheck))
            parts.append(_recommendation(result))
    else:
        labels = {"memory": "memory", "tpot_p99": "TPOT p99", "ttft_p99": "TTFT p99", "gpus": "--max-gpus"}
        counts = ", ".join(f"{labels[k]} {n:,}" for k, n in result.failing.items() if n)
        parts.append(Text(f"No configuration meets every target (failing, of the valid ones: {counts}). "
                          "Closest, with what each fails:", style="bold red"))  # fmt: skip
        parts.append(_rows_table("Closest configurations", result.closest, priced, with_failures=True))
    shown = result.pareto[:: max(1, -(-len(result.pareto) // PARETO_SHOWN))]
    parts.append(_rows_table(f"Pareto frontier: tokens/s per GPU vs tokens/s per user ({len(result.pareto)} points, "
                             f"{len(shown)} shown; load and GPUs at the requested rate)", shown, priced))  # fmt: skip
    parts.append(Text("p99s are a queueing approximation (roofline.planner.slo); the re-check simulates them."))
    return Group(*parts)


def plan_command(
    model: str = typer.Option(..., "--model", "-m", help="model id (roofline model list) or a model YAML path"),
    isl: int = typer.Option(..., "--isl", help="input (prompt) tokens per request"),
    osl: int = typer.Option(..., "--osl", help="output tokens per request"),
    rate: float = typer.Option(..., "--rate", help="requests per second to serve (Poisson arrivals)"),
    ttft_p99: str = typer.Option(..., "--ttft-p99", help="TTFT p99 target, e.g. 500ms or 2s (bare number: ms)"),
    tpot_p99: str = typer.Option(..., "--tpot-p99", help="TPOT p99 target, e.g. 50ms (bare number: ms)"),
    hardware: str | None = typer.Option(None, "--hardware", help="accelerators, comma separated; default: released"),
    max_gpus: int = typer.Option(1024, "--max-gpus", help="the most GPUs a plan may use"),
    price: str | None = typer.Option(None, "--price", help="$/GPU-hour by accelerator: h100-sxm=2.5,b200=5"),
    weight_dtype: str | None = typer.Option(None, "--weight-dtype", help="weight formats to try; default: shipped,fp8"),
    batch: str | None = typer.Option(None, "--batch", help="batch limits to try (list or range); default 1..1024"),
    engine: str = typer.Option("trtllm", "--engine", "--runtime", help="runtime profile (trtllm, vllm, sglang ...)"),
    top: int = typer.Option(5, "--top", help="configurations to list"),
    recheck: int = typer.Option(3, "--recheck", help="best configurations to re-check with the serving simulator"),
    fmt: OutputFormat = text_format_option(), launch: bool = launching.LAUNCH,
) -> None:  # fmt: skip
    """Cheapest configurations that serve --rate within TTFT and TPOT p99 targets, and the Pareto frontier."""
    launching.check(launch, fmt)
    report = plan(model, hardware, isl=isl, osl=osl, rate=rate, ttft_p99=ttft_p99, tpot_p99=tpot_p99,
                  max_gpus=max_gpus, price=price, weight_dtype=weight_dtype, batch=batch, engine=engine, top=top,
                  recheck=recheck)  # fmt: skip
    launched = launching.for_result(launch, report, engine)
    if fmt is OutputFormat.json:
        emit(to_json(launching.with_launch(report.to_dict(), launched, launch)))
    elif fmt is OutputFormat.csv:
        emit(to_csv(report.records()))
    else:
        Console(width=200).print(_view(report.result))
    launching.show(launched, fmt, launch)
