"""XLSX workbooks (openpyxl, write-only): the capacity-planning workbook of `sweep` -- Inputs (the
assumptions), Results (one row per configuration, units in the headers, number formats, frozen
header, autofilter) and Summary (the best configurations overall and per accelerator) -- and the
generic `write_sheets` behind the workbooks of `estimate`, `serve` and `validate` (tables with the
same styling, and bar charts). Values arrive in SI units; columns convert. openpyxl loads when a
workbook is written, not when this module is imported."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.chart import BarChart
    from openpyxl.worksheet.worksheet import Worksheet

GIB = 2.0**30


@dataclass(frozen=True)
class Column:
    key: str  # row key, SI units
    header: str  # with the unit shown
    scale: float = 1.0  # shown value = SI value x scale
    number_format: str = "General"
    width: int = 12
    per_row_format: bool = False  # a row's "number_format" value, when it has one, overrides number_format


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
    Column("request_rate_per_s", "Request rate (requests/s)", number_format="#,##0.###"),
    Column("ttft_batch_s", "Prefill of the batch (ms)", 1e3, "#,##0.00"),
    Column("ttft_s", "TTFT, mean per request (ms)", 1e3, "#,##0.00"),
    Column("tpot_s", "TPOT (ms)", 1e3, "#,##0.000"),
    Column("ttft_p99_s", "TTFT p99 (ms)", 1e3, "#,##0.00"),
    Column("tpot_p99_s", "TPOT p99 (ms)", 1e3, "#,##0.000"),
    Column("mean_batch", "Mean batch run (sequences)", number_format="#,##0.0"),
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
_HEADER_FILL_RGB = "DDE5F0"


def _cell(row: dict[str, Any], column: Column) -> Any:
    value = row.get(column.key)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value * column.scale if column.scale != 1.0 else value


def _header(ws: Worksheet, value: Any) -> WriteOnlyCell:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill

    cell = WriteOnlyCell(ws, value=value)
    cell.font, cell.fill = Font(bold=True), PatternFill("solid", fgColor=_HEADER_FILL_RGB)
    cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def _table(ws: Worksheet, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
    """Header and rows appended to a write-only sheet (much faster for large sweeps)."""
    from openpyxl.cell import WriteOnlyCell

    ws.append([_header(ws, column.header) for column in columns])
    formats = [column.number_format for column in columns]
    for row in rows:
        cells = []
        for column, number_format in zip(columns, formats, strict=True):
            cell = WriteOnlyCell(ws, value=_cell(row, column))
            cell.number_format = row.get("number_format", number_format) if column.per_row_format else number_format
            cells.append(cell)
        ws.append(cells)


def _widths(ws: Worksheet, columns: Sequence[Column]) -> None:
    from openpyxl.utils import get_column_letter

    for j, column in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(j)].width = column.width


def _inputs(ws: Worksheet, inputs: Sequence[tuple[str, Any]]) -> None:
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 34, 70
    ws.freeze_panes = "A2"
    ws.append([_header(ws, "Assumption"), _header(ws, "Value")])
    for key, value in inputs:
        ws.append([key, value if isinstance(value, (int, float, bool)) or value is None else str(value)])


def _summary(ws: Worksheet, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    from roofline.planner.sweep import best_rows

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


def present_columns(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> list[Column]:
    """The columns some row has a value for (a served sweep's rates and p99s; not an estimate's)."""
    keys = {k for row in rows for k, v in row.items() if v is not None}
    return [c for c in columns if c.key in keys]


def write_workbook(path: Path, inputs: Sequence[tuple[str, Any]], rows: Sequence[dict[str, Any]],
                   columns: Sequence[Column] = SWEEP_COLUMNS) -> None:  # fmt: skip
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    columns = present_columns(columns, rows)
    book = Workbook(write_only=True)
    _inputs(book.create_sheet("Inputs"), inputs)
    results = book.create_sheet("Results")
    _widths(results, columns)
    results.freeze_panes = "A2"
    results.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    _table(results, columns, rows)
    _summary(book.create_sheet("Summary"), columns, rows)
    book.save(path)


@dataclass(frozen=True)
class Chart:
    """A bar chart of one column of a sheet's table against another, over rows [first, last)."""

    title: str
    data_sheet: str  # the Sheet whose table holds the numbers
    category: str  # column key of the bars' labels
    value: str  # column key of the bars' lengths
    first: int = 0
    last: int | None = None  # None: to the end of the table
    anchor: str = "E2"  # the top-left cell of the chart on the sheet that shows it


@dataclass(frozen=True)
class Sheet:
    """A table sheet: frozen header row, autofilter over the table, column widths and number
    formats from the columns, and the charts shown on it."""

    name: str
    columns: Sequence[Column]
    rows: Sequence[dict[str, Any]]
    charts: Sequence[Chart] = ()


def chart_height_cm(bars: int) -> float:
    return max(7.5, 0.9 * bars + 3.0)


def _bar_chart(chart: Chart, ws: Worksheet, sheet: Sheet) -> BarChart:
    from openpyxl.chart import BarChart, Reference

    keys = [column.key for column in sheet.columns]
    last = len(sheet.rows) if chart.last is None else chart.last
    first_row, last_row = chart.first + 2, last + 1  # the header is row 1
    bar = BarChart()
    bar.type, bar.style, bar.title, bar.legend = "bar", 10, chart.title, None
    value = sheet.columns[keys.index(chart.value)]
    bar.y_axis.title = value.header
    bar.x_axis.delete = bar.y_axis.delete = False  # openpyxl >= 3.1 hides axes unless told not to
    bar.x_axis.scaling.orientation = "maxMin"  # the first row on top, as in the table
    bar.x_axis.tickLblSkip = 1  # a label on every bar
    bar.y_axis.number_format = "0%" if "%" in value.number_format else "General"
    value_column, category_column = keys.index(chart.value) + 1, keys.index(chart.category) + 1
    bar.add_data(Reference(ws, min_col=value_column, min_row=first_row, max_row=last_row))
    bar.set_categories(Reference(ws, min_col=category_column, min_row=first_row, max_row=last_row))
    bar.width, bar.height = 20, chart_height_cm(last - chart.first)
    return bar


def write_sheets(path: Path, inputs: Sequence[tuple[str, Any]], sheets: Sequence[Sheet]) -> None:
    """An Inputs sheet (assumption, value) then one table sheet per `sheets`, charts included."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    _inputs(book.create_sheet("Inputs"), inputs)
    written: dict[str, tuple[Worksheet, Sheet]] = {}
    for sheet in sheets:
        ws = book.create_sheet(sheet.name)
        _widths(ws, sheet.columns)
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(len(sheet.columns))}{len(sheet.rows) + 1}"
        _table(ws, sheet.columns, sheet.rows)
        written[sheet.name] = (ws, sheet)
    for sheet in sheets:
        for chart in sheet.charts:
            written[sheet.name][0].add_chart(_bar_chart(chart, *written[chart.data_sheet]), chart.anchor)
    book.save(path)
