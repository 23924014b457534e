"""The base of the API's results: frozen values with `to_dict()` (the JSON document the CLI prints
with --format json), `to_json()`, `to_frame()` (a pandas DataFrame of the result's rows) and a
compact `_repr_html_` for Jupyter. SI units, the unit in every key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from roofline.reports.formats import flatten, to_json

if TYPE_CHECKING:
    import pandas as pd

HTML_ROWS = 12  # rows a notebook shows of a result's table before "... N more"


class Result:
    """A frozen result of the API. Subclasses are frozen dataclasses that define `to_dict()` and
    `records()` (the per-op or per-row table; default: the document as one flat row)."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def records(self) -> list[dict[str, Any]]:
        """The rows of `to_frame()`: the table the CLI writes with --format csv."""
        return [flatten(self.to_dict())]

    def to_json(self) -> str:
        """Strict JSON (infinities as "inf"), exactly what the CLI prints with --format json."""
        return to_json(self.to_dict())

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.records())

    def overview(self) -> list[tuple[str, Any]]:
        """(label, value) pairs for the notebook view; default: the document's scalars."""
        return [(k, v) for k, v in flatten(self.to_dict()).items() if not isinstance(v, list)][:HTML_ROWS]

    def _repr_html_(self) -> str:
        return html_table(type(self).__name__, self.overview())

    def __repr__(self) -> str:
        """Compact: the summary, not every field (a notebook's plain-text view; to_dict() has it all)."""
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.overview()) + ")"


def _cell(value: Any) -> str:
    from html import escape  # the notebook view only: the CLI does not load html

    if isinstance(value, float):
        return f"{value:,.4g}"
    return escape(str(value))


def html_table(title: str, pairs: Sequence[tuple[str, Any]], rows: Sequence[Mapping[str, Any]] = ()) -> str:
    """A small HTML view: a title, key/value pairs, then up to HTML_ROWS rows of a table."""
    from html import escape

    parts = [f"<div><strong>{escape(title)}</strong><table>"]
    parts += [f"<tr><th style='text-align:left'>{escape(k)}</th><td>{_cell(v)}</td></tr>" for k, v in pairs]
    parts.append("</table>")
    if rows:
        columns = list(rows[0])
        parts.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>")
        for row in rows[:HTML_ROWS]:
            parts.append("<tr>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>" for c in columns) + "</tr>")
        parts.append("</table>")
        if len(rows) > HTML_ROWS:
            parts.append(f"<p>... {len(rows) - HTML_ROWS} more rows (.to_frame())</p>")
    parts.append("</div>")
    return "".join(parts)
