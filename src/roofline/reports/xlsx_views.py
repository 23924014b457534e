"""The workbooks of `estimate`, `serve` and `validate`: Inputs (the assumptions), Results and Summary
sheets laid out for each command, written by `workbook.write_sheets`. Units in every header."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roofline.reports.workbook import GIB, Chart, Column, Sheet, chart_height_cm, write_sheets
from roofline.simulator.results import EstimateResult, op_row_dict

if TYPE_CHECKING:
    from roofline.validation import ValidationReport

MS, US = 1e3, 1e6
TIME_MS = "#,##0.000"
METRIC = Column("metric", "Metric", width=46)

OP_COLUMNS = (
    Column("phase", "Phase", width=9),
    Column("name", "Operator", width=22),
    Column("op_class", "Class", width=12),
    Column("kind", "Kind", width=12),
    Column("count", "Count (kernels)", number_format="#,##0", width=9),
    Column("flops", "FLOPs (GFLOP)", 1e-9, "#,##0.000"),
    Column("bytes", "Bytes (MB)", 1e-6, "#,##0.000"),
    Column("arithmetic_intensity_flops_per_byte", "Arithmetic intensity (FLOP/byte)", number_format="#,##0.0"),
    Column("compute_s", "Compute (ms)", MS, "#,##0.0000"),
    Column("memory_s", "Memory (ms)", MS, "#,##0.0000"),
    Column("communication_s", "Communication (ms)", MS, "#,##0.0000"),
    Column("overhead_s", "Kernel overhead (ms)", MS, "#,##0.0000"),
    Column("time_s", "Time (ms)", MS, "#,##0.0000"),
    Column("bound", "Bound", width=14),
    Column("detail", "Detail", width=40),
)


def _metric(label: str, value: Any, number_format: str = "General", **more: Any) -> dict[str, Any]:
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return {"metric": label, "value": value, "number_format": number_format, **more}


def _chart_rows(bars: int) -> int:
    """Rows of the sheet a bar chart of `bars` bars covers (a row is about 0.53 cm high)."""
    return math.ceil(chart_height_cm(bars) / 0.53) + 2


def estimate_summary_rows(result: EstimateResult) -> list[dict[str, Any]]:
    m = result.memory
    gib = "#,##0.00"
    return [
        _metric("TTFT, mean per request (ms)", result.ttft_s * MS, TIME_MS),
        _metric(
            "Prefill of the batch, last request's TTFT (ms)",
            result.ttft_batch_s * MS,
            TIME_MS,
            bound=result.ttft_batch_no_overlap_s * MS,
        ),
        _metric("TPOT (ms)", result.tpot_s * MS, TIME_MS, bound=result.tpot_no_overlap_s * MS),
        _metric("End-to-end latency, mean per request (ms)", result.e2e_s * MS, TIME_MS),
        _metric("End-to-end latency of the batch (ms)", result.e2e_batch_s * MS, TIME_MS),
        _metric("Output throughput (tokens/s)", result.output_tokens_per_s, "#,##0"),
        _metric("Output throughput per GPU (tokens/s/GPU)", result.output_tokens_per_s / result.num_gpus, "#,##0"),
        _metric("Decode throughput, batch / TPOT (tokens/s)", result.decode_tokens_per_s, "#,##0"),
        _metric("Prefill throughput (tokens/s)", result.prefill_tokens_per_s, "#,##0"),
        _metric("Prefill bound", result.prefill.bound),
        _metric("Decode bound", result.decode.bound),
        _metric("Weights per GPU (GiB)", m.weights_bytes / GIB, gib),
        _metric("KV cache per GPU (GiB)", m.kv_cache_bytes / GIB, gib),
        _metric("Activations per GPU, peak (GiB)", m.activation_bytes / GIB, gib),
        _metric("Runtime reserve per GPU (GiB)", m.reserve_bytes / GIB, gib),
        _metric("Memory per GPU, total (GiB)", m.total_bytes / GIB, gib),
        _metric("GPU memory (GiB)", m.capacity_bytes / GIB, gib),
        _metric("Fits in memory", "yes" if m.fits else "no"),
        _metric("Margin (GiB)", m.margin_bytes / GIB, gib),
        _metric("KV cache per token, whole model (kB)", m.kv_cache_bytes_per_token / 1e3, "#,##0.0"),
        _metric("Max batch at isl + osl (sequences)", m.max_batch, "#,##0"),
        _metric("Max context at this batch (tokens)", m.max_context_tokens, "#,##0"),
    ]


def write_estimate(path: Path, result: EstimateResult, inputs: list[tuple[str, Any]]) -> None:
    """Results: one row per operator (prefill then a decode step); Summary: the headline numbers,
    the memory fit and a bar chart of time per operator for each phase."""
    ops = [op_row_dict(row) for row in (*result.prefill.ops, *result.decode.ops)]
    prefill = len(result.prefill.ops)
    charts = (
        Chart("Prefill: time per operator (ms)", "Results", "name", "time_s", 0, prefill, "E2"),
        Chart(f"Decode step (context {result.decode.context_tokens}): time per operator (ms)", "Results", "name",
              "time_s", prefill, len(ops), f"E{2 + _chart_rows(prefill)}"),
    )  # fmt: skip
    summary_columns = (METRIC, Column("value", "Value", width=16, per_row_format=True),
                       Column("bound", "No-overlap bound", width=16, per_row_format=True))  # fmt: skip
    write_sheets(path, inputs, [Sheet("Results", OP_COLUMNS, ops),
                                Sheet("Summary", summary_columns, estimate_summary_rows(result), charts)])  # fmt: skip


DIFFUSION_OP_COLUMNS = (OP_COLUMNS[0], Column("steps", "Steps of this kind", number_format="#,##0", width=9),
                        *OP_COLUMNS[1:])  # fmt: skip


def diffusion_summary_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every scalar of a diffusion estimate: times in ms, sizes in GiB, shares in %."""
    rows = []
    for kind in data.get("step_kinds", []):
        rows += [_metric(f"{kind['phase']}: steps", kind["steps"], "#,##0"),
                 _metric(f"{kind['phase']}: time per step (ms)", kind["step_s"] * MS, TIME_MS)]  # fmt: skip
    for key, value in data.items():
        if isinstance(value, dict):
            rows += diffusion_summary_rows({f"{key}.{k}": v for k, v in value.items()})
        elif key == "title" or isinstance(value, list | str | bool):
            continue
        elif key.endswith("_s") and not key.endswith("per_s"):  # a time, not a rate
            rows.append(_metric(f"{key.removesuffix('_s')} (ms)", value * MS, TIME_MS))
        elif key.endswith("_bytes"):
            rows.append(_metric(f"{key.removesuffix('_bytes')} (GiB)", value / GIB, "#,##0.00"))
        elif key.endswith(("share", "ratio")):
            rows.append(_metric(key, value, "0.0%" if key.endswith("share") else "0.00"))
        else:
            rows.append(_metric(key, value, "#,##0.###"))
    return rows


def write_diffusion(path: Path, data: dict[str, Any], inputs: list[tuple[str, Any]]) -> None:
    """Results: the operator rows of each step kind (and the once-per-request ones); Summary: every
    scalar of the estimate with a bar chart of time per operator of the first step kind."""
    ops = [*data.get("step_ops", []), *data.get("once_ops", [])]
    charts: tuple[Chart, ...] = ()
    if ops:
        first = ops[0]["phase"]
        end = next((i for i, r in enumerate(ops) if r["phase"] != first), len(ops))
        charts = (Chart(f"{first}: time per operator (ms)", "Results", "name", "time_s", 0, end, "E2"),)
    summary_columns = (METRIC, Column("value", "Value", width=16, per_row_format=True))
    write_sheets(path, inputs, [Sheet("Results", DIFFUSION_OP_COLUMNS, ops),
                                Sheet("Summary", summary_columns, diffusion_summary_rows(data), charts)])  # fmt: skip


PERCENTILES = ("mean", "p50", "p90", "p99")
LATENCIES = (("ttft", "TTFT per request"), ("tpot", "TPOT"), ("e2e", "End-to-end latency"))


def _latency_s(data: dict[str, Any], key: str, statistic: str) -> float:
    """serve's flat SI keys: ttft_s (mean), ttft_p50_s ..."""
    return float(data[f"{key}_s" if statistic == "mean" else f"{key}_{statistic}_s"])


def serve_summary_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        _metric("Output throughput (tokens/s)", data["output_tokens_per_s"], "#,##0"),
        _metric("Output throughput per GPU (tokens/s/GPU)", data["output_tokens_per_s_per_gpu"], "#,##0"),
        _metric("Speed per user (tokens/s/user)", data["output_tokens_per_s_per_user"], "#,##0.0"),
    ]
    for key, label in LATENCIES:
        rows += [_metric(f"{label} {p} (ms)", _latency_s(data, key, p) * MS, TIME_MS) for p in ("p50", "p90", "p99")]
    rows += [
        _metric("Requests", data["requests"], "#,##0"),
        _metric("Simulated duration (s)", data["duration_s"], "#,##0.000"),
        _metric("Engine steps", data["steps"], "#,##0"),
        _metric("Mean batch run (sequences)", data["mean_batch"], "#,##0.0"),
        _metric("Largest batch run (sequences)", data["max_batch"], "#,##0"),
        _metric("KV capacity per replica (tokens)", data["kv_capacity_tokens"], "#,##0"),
        _metric("Preemptions", data["preemptions"], "#,##0"),
        _metric("Replicas", data["replicas"], "#,##0"),
        _metric("GPUs", data["num_gpus"], "#,##0"),
    ]
    return rows


def write_serve(path: Path, data: dict[str, Any], inputs: list[tuple[str, Any]]) -> None:
    """Results: TTFT, TPOT and end-to-end latency with mean / p50 / p90 / p99 columns in ms;
    Summary: throughput, the latency percentiles, batch and queueing."""
    columns = (METRIC, *(Column(p, f"{p.capitalize() if p == 'mean' else p} (ms)", number_format=TIME_MS)
                         for p in PERCENTILES))  # fmt: skip
    rows = [{"metric": label, **{p: _latency_s(data, key, p) * MS for p in PERCENTILES}} for key, label in LATENCIES]
    summary_columns = (METRIC, Column("value", "Value", width=16, per_row_format=True))
    write_sheets(path, inputs, [Sheet("Results", columns, rows), Sheet("Summary", summary_columns,
                                                                       serve_summary_rows(data))])  # fmt: skip


CASE_COLUMNS = (
    Column("case_id", "Case", width=10),
    Column("scenario", "Scenario", width=15),
    Column("model", "Model", width=18),
    Column("hardware", "Hardware", width=12),
    Column("num_gpus", "GPUs", number_format="0", width=6),
    Column("isl", "Input length (tokens)", number_format="#,##0", width=10),
    Column("osl", "Output length (tokens)", number_format="#,##0", width=10),
    Column("load", "Load", width=16),
    Column("metric", "Metric (its unit)", width=20),
    Column("measured", "Measured (metric unit)", number_format="#,##0.000", width=14),
    Column("predicted", "Predicted (metric unit)", number_format="#,##0.000", width=14),
    Column("error", "Error (%)", number_format="+0.0%;-0.0%;0.0%", width=14),
    Column("note", "Note", width=40),
    Column("source", "Source", width=40),
)
SKIPPED_COLUMNS = (*CASE_COLUMNS[:10], Column("reason", "Reason not predicted", width=60))
APE = "0.0%"
SUMMARY_COLUMNS = (
    Column("label", "Scenario / metric", width=40),
    Column("scenario", "Scenario", width=24),
    Column("metric", "Metric", width=20),
    Column("count", "Rows", number_format="#,##0", width=7),
    Column("mape", "MAPE (%)", number_format=APE, width=10),
    Column("median_ape", "Median APE (%)", number_format=APE, width=10),
    Column("max_ape", "Max APE (%)", number_format=APE, width=10),
)
BY_RUNTIME_COLUMNS = (Column("runtime", "Runtime", width=16), *SUMMARY_COLUMNS[1:])


def write_validation(path: Path, report: ValidationReport, inputs: list[tuple[str, Any]]) -> None:
    """Results: one row per predicted case; Summary: count / MAPE / median / max APE per scenario and
    metric with a bar chart of the MAPEs; By runtime: the same per runtime; Skipped: the rows not
    predicted and why."""
    rows = [r.to_dict() for r in report.rows]
    summary = [{"label": f"{s.scenario} / {s.metric}", **s.to_dict()} for s in report.summary]
    skipped = [{"case_id": s.case.case_id, "scenario": s.case.scenario, "model": s.case.model,
                "hardware": s.case.hardware, "num_gpus": s.case.num_gpus, "isl": s.case.isl, "osl": s.case.osl,
                "load": s.case.load, "metric": s.case.metric, "measured": s.case.value, "reason": s.reason}
               for s in report.skipped]  # fmt: skip
    charts = (Chart("MAPE per scenario and metric", "Summary", "label", "mape", anchor="I2"),) if summary else ()
    write_sheets(path, inputs, [Sheet("Results", CASE_COLUMNS, rows), Sheet("Summary", SUMMARY_COLUMNS, summary,
                                                                           charts),
                                Sheet("By runtime", BY_RUNTIME_COLUMNS, [s.to_dict() for s in report.by_runtime]),
                                Sheet("Skipped", SKIPPED_COLUMNS, skipped)])  # fmt: skip
