"""Human-unit text of results, shared by the terminal tables (cli/tables.py) and the HTML report:
(label, value) rows only; no rendering library here."""

from __future__ import annotations

from typing import Any

from roofline.simulator.results import EstimateResult, MemoryResult
from roofline.units import format_bytes, format_time


def format_gib(value: float) -> str:
    return format_bytes(value, binary=True)


def summary_text_rows(r: EstimateResult) -> list[tuple[str, str, str]]:
    """(metric, value, no-overlap bound) in human units: the terminal table and the HTML report."""
    return [
        ("TTFT (mean request, batch arriving at once)", format_time(r.ttft_s), ""),
        ("prefill of the batch (last request's TTFT)", format_time(r.ttft_batch_s),
         format_time(r.ttft_batch_no_overlap_s)),
        ("TPOT (mean decode step)", format_time(r.tpot_s), format_time(r.tpot_no_overlap_s)),
        ("end-to-end latency (mean request)", format_time(r.e2e_s), ""),
        ("end-to-end latency of the batch", format_time(r.e2e_batch_s), ""),
        ("output tokens/s", f"{r.output_tokens_per_s:,.0f}", ""),
        ("output tokens/s per GPU", f"{r.output_tokens_per_s / r.num_gpus:,.0f}", ""),
        ("decode tokens/s (batch / TPOT)", f"{r.decode_tokens_per_s:,.0f}", ""),
        ("prefill bound / decode bound", f"{r.prefill.bound} / {r.decode.bound}", ""),
    ]  # fmt: skip


def memory_text_rows(memory: MemoryResult) -> list[tuple[str, str]]:
    """The memory table's rows: parts per GPU, the fit, and the largest batch and context."""
    rows = [(name, format_gib(value)) for name, value in (
        ("weights", memory.weights_bytes), ("KV cache", memory.kv_cache_bytes),
        ("activations (peak)", memory.activation_bytes), ("runtime reserve", memory.reserve_bytes),
        ("total", memory.total_bytes), ("capacity", memory.capacity_bytes))]  # fmt: skip
    margin = memory.margin_bytes
    verdict = "yes" if memory.fits else "NO"
    window = memory.context_window_tokens
    rows += [
        ("fits", f"{verdict} ({'+' if margin >= 0 else '-'}{format_gib(abs(margin))} margin)"),
        ("KV cache per token (whole model)", format_bytes(memory.kv_cache_bytes_per_token)),
        ("KV capacity (tokens per replica)", f"{memory.kv_capacity_tokens:,}"),
        ("max batch at isl+osl", f"{memory.max_batch:,}"),
        ("max context at this batch", f"{memory.max_context_tokens:,} tokens"
         + (f" (window {window:,})" if window is not None and memory.max_context_tokens >= window else "")),
    ]  # fmt: skip
    return rows


def format_metric(key: str, value: Any) -> str:
    """A value of a diffusion estimate's dict in human units, by its key's suffix (_s, _bytes, share)."""
    if value is None:
        return "-"
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
