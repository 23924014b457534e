"""The capacity-planning workbook (XLSX, openpyxl): Inputs (the assumptions), Results (one row per
configuration, units in the headers, number formats, frozen header, autofilter) and Summary (the
best configurations overall and per accelerator). Values arrive in SI units; columns convert."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

GIB = 2.0**30


@dataclass(frozen=True)
class Column:
    key: str  # row key, SI units
    header: str  # with the unit shown
    scale: float = 1.0  # shown value = SI value x scale
    number_format: str = "General"
    width: int = 12


SWEEP_COLUMNS = (
    Column("model", "Model", width=18),
    Column("hardware", "Hardware", width=14),
    Column("weight_dtype", "Weights"),
    Column("kv_dtype", "KV cache"),
    Column("tp", "TP", number_format="0", width=6),
    Column("pp", "PP", number_format="0", width=6),
    Column("ep", "EP", number_format="0", width=6),
    Column("attn_dp", "Attention DP", number_format="0", width=8),
    Column("gpus", "GPUs", number_format="0", width=7),
    Column("batch", "Batch (sequences)", number_format="#,##0"),
    Column("isl", "Input length (tokens)", number_format="#,##0"),
    Column("osl", "Output length (tokens)", number_format="#,##0"),
    Column("ttft_s", "TTFT (ms)", 1e3, "#,##0.00"),
    Column("tpot_s", "TPOT (ms)", 1e3, "#,##0.000"),
    Column("output_tokens_per_s", "Output throughput (tokens/s)", number_format="#,##0", width=14),
    Column("output_tokens_per_s_per_gpu", "Throughput per GPU (tokens/s/GPU)", number_format="#,##0", width=14),
    Column("output_tokens_per_s_per_user", "Speed per user (tokens/s/user)", number_format="#,##0.0", width=14),
    Column("weights_bytes", "Weights per GPU (GiB)", 1 / GIB, "#,##0.00"),
    Column("kv_cache_bytes", "KV cache per GPU (GiB)", 1 / GIB, "#,##0.00"),
    Column("activation_bytes", "Activations per GPU (GiB)", 1 / GIB, "#,##0.00"),
    Column("memory_bytes", "Memory per GPU incl. reserve (GiB)", 1 / GIB, "#,##0.00", 14),
    Column("capacity_bytes", "GPU memory (GiB)", 1 / GIB, "#,##0.00"),
    Column("fits", "Fits in memory", width=9),
)
SUMMARY_TOP = 10
_HEADER_FILL = PatternFill("solid", fgColor="DDE5F0")


def _cell(row: dict[str, Any], column: Column) -> Any:
    value = row.get(column.key)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value * column.scale if column.scale != 1.0 else value


def _header(ws: Worksheet, value: Any) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    cell.font, cell.fill = Font(bold=True), _HEADER_FILL
    cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def _table(ws: Worksheet, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
    """Header and rows appended to a write-only sheet (much faster for large sweeps)."""
    ws.append([_header(ws, column.header) for column in columns])
    formats = [column.number_format for column in columns]
    for row in rows:
        cells = []
        for column, number_format in zip(columns, formats, strict=True):
            cell = WriteOnlyCell(ws, value=_cell(row, column))
            cell.number_format = number_format
            cells.append(cell)
        ws.append(cells)


def _widths(ws: Worksheet, columns: Sequence[Column]) -> None:
    for j, column in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(j)].width = column.width


def _inputs(ws: Worksheet, inputs: Sequence[tuple[str, Any]]) -> None:
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 34, 70
    ws.append([_header(ws, "Assumption"), _header(ws, "Value")])
    for key, value in inputs:
        ws.append([key, value if isinstance(value, (int, float, bool)) or value is None else str(value)])


def best_rows(rows: Sequence[dict[str, Any]], key: str = "output_tokens_per_s_per_gpu") -> list[dict[str, Any]]:
    """Configurations that fit, highest `key` first."""
    fits = [r for r in rows if r.get("fits") and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return sorted(fits, key=lambda r: -r[key])


def _summary(ws: Worksheet, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
    ranked = best_rows(rows)
    per_hardware: dict[str, dict[str, Any]] = {}
    for row in ranked:
        per_hardware.setdefault(str(row.get("hardware")), row)
    sections = (
        (f"Highest throughput per GPU (top {SUMMARY_TOP}, fits in memory, no latency target)", ranked[:SUMMARY_TOP]),
        ("Highest throughput per GPU on each accelerator", list(per_hardware.values())),
    )
    _widths(ws, columns)
    for title, section in sections:
        heading = WriteOnlyCell(ws, value=title)
        heading.font = Font(bold=True, size=12)
        ws.append([heading])
        _table(ws, columns, section)
        if not section:
            ws.append(["no configuration fits in memory"])
        ws.append([])
        ws.append([])


def write_workbook(path: Path, inputs: Sequence[tuple[str, Any]], rows: Sequence[dict[str, Any]],
                   columns: Sequence[Column] = SWEEP_COLUMNS) -> None:  # fmt: skip
    book = Workbook(write_only=True)
    _inputs(book.create_sheet("Inputs"), inputs)
    results = book.create_sheet("Results")
    _widths(results, columns)
    results.freeze_panes = "A2"
    results.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    _table(results, columns, rows)
    _summary(book.create_sheet("Summary"), columns, rows)
    book.save(path)
