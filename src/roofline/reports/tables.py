"""Terminal tables (rich) for estimates, memory, hardware and models. Human units only here."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table

from roofline.hardware_specs.schema import Accelerator, Link, System
from roofline.simulator.results import EstimateResult, MemoryResult, PhaseResult, op_row_dict
from roofline.units import format_bytes, format_count, format_rate, format_time
from roofline.workloads.base import Workload


def format_gib(value: float) -> str:
    return format_bytes(value, binary=True)


def estimate_summary(result: EstimateResult) -> Table:
    title = (
        f"{result.model} on {result.num_gpus} x {result.hardware} ({result.system}), "
        f"tp={result.tp} pp={result.pp} dp={result.dp}"
        + (f" ep={result.ep}" if result.ep > 1 else "")
        + (f" attn-dp={result.attn_dp}" if result.attn_dp > 1 else "")
        + f", weights {result.weight_dtype}, KV {result.kv_cache_dtype}"
        + (" (ideal roofline)" if result.ideal else "")
    )
    table = Table(title=title, title_justify="left", show_header=True, min_width=len(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("no-overlap bound", justify="right")
    table.add_row("batch x isl / osl", f"{result.batch} x {result.isl} / {result.osl}", "")
    for row in summary_text_rows(result):
        table.add_row(*row)
    return table


def summary_text_rows(r: EstimateResult) -> list[tuple[str, str, str]]:
    """(metric, value, no-overlap bound) in human units: the terminal table and the HTML report."""
    return [
        ("TTFT (prefill of the batch)", format_time(r.ttft_s), format_time(r.ttft_no_overlap_s)),
        ("TPOT (mean decode step)", format_time(r.tpot_s), format_time(r.tpot_no_overlap_s)),
        ("end-to-end latency", format_time(r.e2e_latency_s), ""),
        ("output tokens/s", f"{r.output_tokens_per_s:,.0f}", ""),
        ("output tokens/s per GPU", f"{r.output_tokens_per_s / r.num_gpus:,.0f}", ""),
        ("decode tokens/s (batch / TPOT)", f"{r.decode_tokens_per_s:,.0f}", ""),
        ("prefill bound / decode bound", f"{r.prefill.bound} / {r.decode.bound}", ""),
    ]


def memory_table(memory: MemoryResult) -> Table:
    table = Table(title="Memory per GPU (most loaded stage)", title_justify="left")
    table.add_column("item")
    table.add_column("size", justify="right")
    for name, value in (
        ("weights", memory.weights_bytes),
        ("KV cache", memory.kv_cache_bytes),
        ("activations (peak)", memory.activation_bytes),
        ("runtime reserve", memory.reserve_bytes),
        ("total", memory.total_bytes),
        ("capacity", memory.capacity_bytes),
    ):
        table.add_row(name, format_gib(value))
    verdict = "yes" if memory.fits else "NO"
    margin = memory.margin_bytes
    table.add_row("fits", f"{verdict} ({'+' if margin >= 0 else '-'}{format_gib(abs(margin))} margin)")
    table.add_row("KV cache per token (whole model)", format_bytes(memory.kv_cache_bytes_per_token))
    table.add_row("max batch at isl+osl", f"{memory.max_batch:,}")
    table.add_row("max context at this batch", f"{memory.max_context_tokens:,} tokens")
    return table


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


def estimate_view(result: EstimateResult, with_ops: bool) -> Group:
    parts: list[Table] = [estimate_summary(result), memory_table(result.memory)]
    if with_ops:
        parts += [ops_table(result.prefill), ops_table(result.decode)]
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
    Console(width=140).print(renderable)


def serve_table(data: dict[str, Any]) -> Table:
    """`serve` summary: throughput, batch, and latency percentiles in ms."""
    table = Table(title=f"{data['model']} on {data['num_gpus']} x {data['hardware']} ({data['engine']}, "
                        f"{data['mode']} {data['load']:g}), isl {data['isl']} / osl {data['osl']}")  # fmt: skip
    table.add_column("metric")
    for col in ("mean", "p50", "p90", "p99"):
        table.add_column(col, justify="right")
    for key, label in (("ttft_ms", "TTFT (ms)"), ("tpot_ms", "TPOT (ms)"), ("e2e_ms", "end-to-end (ms)")):
        s = data[key]
        table.add_row(label, *(f"{s[c]:,.1f}" for c in ("mean", "p50", "p90", "p99")))
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


def format_metric(key: str, value: Any) -> str:
    """A value of a diffusion estimate's dict in human units, by its key's suffix (_s, _bytes, share)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key.endswith("_s") and not key.endswith("per_s"):  # a time, not a rate
        return format_time(value)
    if key.endswith("_bytes"):
        return format_gib(value)
    if key.endswith(("share", "ratio")):
        return f"{value:.3g}" if key.endswith("ratio") else f"{100 * value:.1f}%"
    return f"{value:,.4g}" if isinstance(value, float) else f"{value:,}"


def metric_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The scalars of a diffusion estimate's dict (nested dicts as key.sub), formatted."""
    rows = []
    for key, value in data.items():
        if key == "title" or isinstance(value, list):
            continue
        if isinstance(value, dict):
            rows += [(f"{key}.{sub}", format_metric(sub, v)) for sub, v in value.items()]
        else:
            rows.append((key, format_metric(key, value)))
    return rows


def step_kinds_table(kinds: list[dict[str, Any]]) -> Table:
    """A diffusion LM's kinds of step: tokens recomputed, how many steps, time per step and in all."""
    table = Table(title="Steps by the tokens they recompute", title_justify="left")
    for column in ("step", "tokens", "steps", "time per step", "time in all", "FLOPs per step"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for k in kinds:
        table.add_row(k["phase"], f"{k['tokens']:,}", f"{k['steps']:,}", format_time(k["step_s"]),
                      format_time(k["total_s"]), format_count(k["step_flops"]))  # fmt: skip
    return table


def diffusion_view(data: dict[str, Any]) -> Group:
    """The summary, then one operator table per step kind: the DiT's denoising step and its once-per-
    request operators; each distinct step of a diffusion LM (full pass, cached block step)."""
    parts: list[Table] = [diffusion_table(data)]
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
