"""Terminal tables (rich) for every command's answer. Human units only here; the numbers come from
the API's results (roofline.api) and the text rows of roofline.reports.text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from roofline.api import MemoryReport
from roofline.hardware_specs.schema import Accelerator, Link, System
from roofline.reports.text import format_gib, memory_text_rows, metric_rows, summary_text_rows
from roofline.simulator.results import MemoryResult, PhaseResult, op_row_dict
from roofline.units import format_bytes, format_count, format_rate, format_time
from roofline.workloads.base import Workload

if TYPE_CHECKING:
    from roofline.api import DiffusionEstimate, Estimate, ServeReport


def title_of(r: MemoryReport) -> str:
    return (f"{r.model} on {r.num_gpus} x {r.hardware} ({r.system}), tp={r.tp} pp={r.pp} dp={r.dp}"
            + (f" ep={r.ep}" if r.ep > 1 else "") + (f" attn-dp={r.attn_dp}" if r.attn_dp > 1 else "")
            + f", weights {r.weight_dtype}, KV {r.kv_cache_dtype}")  # fmt: skip


def batch_text(r: MemoryReport) -> str:
    per_rank = f", {-(-r.batch // r.attn_dp)} per attention-DP rank" if r.attn_dp > 1 else ""
    replicas = f", x {r.dp} replicas" if r.dp > 1 else ""
    return f"{r.batch} x {r.isl} / {r.osl}" + (f" ({per_rank[2:]}{replicas})" if per_rank or replicas else "")


def does_not_fit(r: MemoryReport | DiffusionEstimate, timed: bool | None) -> Text:
    """The first line of a configuration that does not fit: plainly, before anything else (and
    whether its latency was computed; None: a memory report, which has none)."""
    message = r.does_not_fit_message() if isinstance(r, MemoryReport) else (
        f"does not fit: {r.model} needs {format_gib(r.memory_bytes)} per GPU on {r.hardware}, which has "
        f"{format_gib(r.capacity_bytes)}")  # fmt: skip
    then = {True: " The latency below is hypothetical (--ignore-memory).", None: "",
            False: " Latency not computed; --ignore-memory times it anyway."}[timed]  # fmt: skip
    return Text(f"DOES NOT FIT. {message[len('does not fit: ') :]}.{then}", style="bold red")


def estimate_summary(result: Estimate) -> Table:
    title = title_of(result) + (" (ideal roofline)" if result.ideal else "")
    if result.hypothetical:
        title += " -- HYPOTHETICAL: does not fit"
    table = Table(title=title, title_justify="left", show_header=True, min_width=len(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("no-overlap bound", justify="right")
    table.add_row("batch per replica x isl / osl", batch_text(result), "")
    assert result.detail is not None
    for row in summary_text_rows(result.detail):
        table.add_row(*row)
    return table


def memory_table(memory: MemoryResult) -> Table:
    table = Table(title="Memory per GPU (most loaded stage)", title_justify="left")
    table.add_column("item")
    table.add_column("size", justify="right")
    for name, value in memory_text_rows(memory):
        table.add_row(name, value)
    return table


def memory_view(report: MemoryReport) -> Group:
    parts: list[Any] = [] if report.fits else [does_not_fit(report, timed=None)]
    parts += [Text(title_of(report) + f", batch per replica x isl / osl {batch_text(report)}"),
              memory_table(report.memory)]  # fmt: skip
    return Group(*parts)


def op_rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """Operator rows (the dicts of `op_row_dict` or the diffusion estimators): work, time, share, bound."""
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("operator", "left"),
        ("count", "right"),
        ("FLOPs", "right"),
        ("bytes", "right"),
        ("FLOP/B", "right"),
        ("time", "right"),
        ("share", "right"),
        ("bound", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    total = sum(r["time_s"] for r in rows) or 1.0
    for row in rows:
        table.add_row(
            row["name"],
            str(row["count"]),
            format_count(row["flops"]),
            format_bytes(row["bytes"]),
            f"{row['arithmetic_intensity_flops_per_byte']:.1f}",
            format_time(row["time_s"]),
            f"{100 * row['time_s'] / total:.1f}%",
            row["bound"] if not row["detail"] else f"{row['bound']}: {row['detail']}",
        )
    return table


def ops_table(phase: PhaseResult) -> Table:
    title = f"{phase.phase.value} step operators (context {phase.context_tokens} tokens), per replica"
    return op_rows_table(title, [op_row_dict(r) for r in phase.ops])


def estimate_view(result: Estimate, with_ops: bool) -> Group:
    """A configuration that does not fit says so first; its latency only when timed on request."""
    parts: list[Any] = [] if result.fits else [does_not_fit(result, result.timed)]
    if result.detail is not None:
        parts.append(estimate_summary(result))
    else:
        parts.append(Text(title_of(result) + f", batch per replica x isl / osl {batch_text(result)}"))
    parts.append(memory_table(result.memory))
    if with_ops and result.detail is not None:
        parts += [ops_table(result.detail.prefill), ops_table(result.detail.decode)]
    return Group(*parts)


def serve_table(report: ServeReport) -> Table:
    """`serve` summary: throughput, batch, and latency percentiles in ms (TTFT per request)."""
    data = report.to_dict()
    table = Table(title=f"{data['model']} on {data['num_gpus']} x {data['hardware']} ({data['engine']}, "
                        f"{data['mode']} {data['load']:g}), isl {data['isl']} / osl {data['osl']}")  # fmt: skip
    table.add_column("metric")
    for col in ("mean", "p50", "p90", "p99"):
        table.add_column(col, justify="right")
    for key, label in (("ttft", "TTFT per request (ms)"), ("tpot", "TPOT (ms)"), ("e2e", "end-to-end (ms)")):
        values = [data[f"{key}_s"], *(data[f"{key}_p{p}_s"] for p in (50, 90, 99))]
        table.add_row(label, *(f"{v * 1e3:,.1f}" for v in values))
    table.add_section()
    table.add_row("output tokens/s", f"{data['output_tokens_per_s']:,.0f}", "", "", "")
    table.add_row("  per GPU", f"{data['output_tokens_per_s_per_gpu']:,.0f}", "", "", "")
    table.add_row("  per user", f"{data['output_tokens_per_s_per_user']:,.1f}", "", "", "")
    table.add_row("mean / max batch", f"{data['mean_batch']:,.1f}", f"{data['max_batch']}", "", "")
    table.add_row("KV capacity (tokens)", f"{data['kv_capacity_tokens']:,}", "", "", "")
    table.add_row("requests / steps", f"{data['requests']:,}", f"{data['steps']:,}", "", "")
    if data["preemptions"]:
        table.add_row("preemptions", f"{data['preemptions']:,}", "", "", "")
    return table


def diffusion_table(data: dict[str, Any]) -> Table:
    """`estimate` of a diffusion model (DiT image/video or diffusion LM): the flat summary of its
    to_dict() in human units; keys ending in _s are times, _bytes sizes."""
    table = Table(title=data.get("title", data["model"]), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metric_rows(data):
        table.add_row(key, value)
    return table


def step_kinds_table(kinds: list[dict[str, Any]]) -> Table:
    """A diffusion LM's kinds of step: tokens recomputed, how many steps, time per step and in all."""
    table = Table(title="Steps by the tokens they recompute", title_justify="left")
    for column in ("step", "tokens", "steps", "time per step", "time in all", "FLOPs per step"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for k in kinds:
        table.add_row(k["phase"], f"{k['tokens']:,}", f"{k['steps']:,}", format_time(k["step_s"]),
                      format_time(k["total_s"]), format_count(k["step_flops"]))  # fmt: skip
    return table


def diffusion_view(result: DiffusionEstimate, with_ops: bool = True) -> Group:
    """The summary, then one operator table per step kind: the DiT's denoising step and its once-per-
    request operators; each distinct step of a diffusion LM (full pass, cached block step)."""
    data = {**result.to_dict(ops=with_ops), "title": result.title}
    parts: list[Any] = [] if result.fits else [does_not_fit(result, result.timed)]
    parts.append(diffusion_table(data))
    kinds = {k["phase"]: k for k in data.get("step_kinds", [])}
    if kinds:
        parts.append(step_kinds_table(list(kinds.values())))
    rows = [*data.get("step_ops", []), *data.get("once_ops", [])]
    for phase in dict.fromkeys(r["phase"] for r in rows):
        kind = kinds.get(phase)
        where = f"{phase}, x {kind['steps']} steps" if kind else phase
        scope = "per GPU" if data["kind"] == "dit" else "per GPU of the TP group"
        parts.append(op_rows_table(f"{where}: operators {scope}", [r for r in rows if r["phase"] == phase]))
    return Group(*parts)


def hardware_list(accelerators: list[Accelerator]) -> Table:
    table = Table(title="Accelerators (dense peaks)", title_justify="left")
    for column in ("id", "name", "memory", "bandwidth", "bf16", "fp8", "fp4", "TDP", "status"):
        table.add_column(column)
    for acc in accelerators:
        c = acc.compute
        table.add_row(
            acc.id,
            acc.name,
            format_gib(acc.memory.capacity),
            format_rate(acc.memory.bandwidth, "B/s"),
            *(format_rate(p, "FLOP/s") if p else "n/a" for p in (c.bf16, c.fp8, c.fp4)),
            f"{acc.power.tdp:g} W",
            acc.status,
        )
    return table


def systems_table(systems: list[System]) -> Table:
    table = Table(title="Systems", title_justify="left")
    for column in ("id", "accelerator", "GPUs/node", "scale-up domain", "scale-up", "scale-out"):
        table.add_column(column)
    for s in systems:
        out = f"{s.scale_out.link} x{s.scale_out.ports_per_gpu:g}" if s.scale_out else "-"
        table.add_row(
            s.id,
            s.accelerator,
            str(s.gpus_per_node),
            str(s.gpus_per_domain),
            f"{s.scale_up.link} x{s.scale_up.ports_per_gpu:g}",
            out,
        )
    return table


def links_table(links: list[Link]) -> Table:
    table = Table(title="Links (per direction)", title_justify="left")
    for column in ("id", "name", "per port", "wiring", "latency", "achievable"):
        table.add_column(column)
    for link in links:
        table.add_row(
            link.id,
            link.name,
            format_rate(link.bandwidth_per_port, "B/s"),
            link.wiring.value,
            format_time(link.latency),
            f"{link.achievable_fraction:.0%}",
        )
    return table


def model_list(models: list[Workload]) -> Table:
    table = Table(title="Models", title_justify="left")
    for column in ("id", "kind", "name", "params", "KV / token (bf16)"):
        table.add_column(column)
    from roofline.ir import Precision

    for m in models:
        table.add_row(
            m.id,
            m.kind,
            m.name,
            format_count(m.parameter_counts().total),
            format_bytes(m.kv_cache_bytes_per_token(Precision()), binary=True),
        )
    return table


def print_renderable(renderable: object) -> None:
    Console(width=140, emoji=False, markup=False).print(renderable)
