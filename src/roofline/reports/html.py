"""One self-contained HTML page for an estimate: the stylesheet inline, figures as base64 PNG data
URIs, no script and nothing fetched. Every piece of text is HTML-escaped; http(s) addresses in the
hardware sources become links (to follow, not to load)."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from html import escape
from typing import Any

from roofline.reports.text import format_gib, metric_rows, summary_text_rows
from roofline.simulator.results import EstimateResult, MemoryResult, PhaseResult, op_row_dict
from roofline.units import format_bytes, format_count, format_time

Figure = tuple[str, bytes]  # (title, PNG bytes)
Row = Sequence[Any]
_URL = re.compile(r"https?://[^\s)<>\"']+")

STYLE = """
:root { --ink: #1f2933; --muted: #52606d; --line: #d9e2ec; --band: #f0f4f8; --head: #dde5f0; --accent: #2457a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 8px; padding-bottom: 8px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; color: var(--muted); }
p.note { color: var(--muted); margin: 4px 0 10px; }
nav { margin: 8px 0 0; color: var(--muted); }
nav a { margin-right: 14px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
thead th { background: var(--head); font-weight: 600; }
tbody tr:nth-child(even) { background: var(--band); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.meta th { background: var(--band); font-weight: 600; width: 360px; }
table.wide { width: 100%; }
td.source { color: var(--muted); font-size: 12px; }
.cols { display: flex; gap: 40px; flex-wrap: wrap; align-items: flex-start; }
.cols > section { max-width: 600px; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
"""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


def _cell(value: Any, tag: str = "td", numeric: bool = False) -> str:
    text = _text(value)
    css = ' class="num"' if numeric else ""
    return f"<{tag}{css}>{escape(text)}</{tag}>"


def table(header: Row, rows: Sequence[Row], css: str = "", numeric: Sequence[int] = ()) -> str:
    """A table; the columns at `numeric` are right-aligned."""
    head = "".join(_cell(h, "th", j in numeric) for j, h in enumerate(header))
    body = "\n".join("<tr>" + "".join(_cell(v, "td", j in numeric) for j, v in enumerate(row)) + "</tr>"
                     for row in rows)  # fmt: skip
    return f'<table class="{css}"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>'


def _meta(rows: Sequence[tuple[str, Any]]) -> str:
    body = "\n".join(f"<tr><th>{escape(k)}</th>{_cell(v)}</tr>" for k, v in rows)
    return f'<table class="meta"><tbody>\n{body}\n</tbody></table>'


def _linked(text: str) -> str:
    """Escaped text with its http(s) addresses as links."""
    out, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;")
        out += [escape(text[last : match.start()]), f'<a href="{escape(url)}">{escape(url)}</a>']
        last = match.start() + len(url)
    out.append(escape(text[last:]))
    return "".join(out)


def _sources(rows: Sequence[tuple[str, str, str]]) -> str:
    body = "\n".join(f"<tr><td>{escape(item)}</td><td>{escape(values)}</td><td class=\"source\">{_linked(source)}</td>"
                     "</tr>" for item, values, source in rows)  # fmt: skip
    return ('<table class="wide"><thead><tr><th>item</th><th>numbers used</th><th>source</th></tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table>")  # fmt: skip


def summary_rows(r: EstimateResult) -> list[tuple[str, str, str]]:
    return [*summary_text_rows(r), ("fits in memory", _fit(r.memory), "")]


def _fit(m: MemoryResult) -> str:
    sign = "+" if m.margin_bytes >= 0 else "-"
    return f"{'yes' if m.fits else 'NO'} ({sign}{format_gib(abs(m.margin_bytes))} margin)"


def memory_rows(m: MemoryResult) -> list[tuple[str, str]]:
    return [
        ("weights", format_gib(m.weights_bytes)),
        ("KV cache", format_gib(m.kv_cache_bytes)),
        ("activations (peak)", format_gib(m.activation_bytes)),
        ("runtime reserve", format_gib(m.reserve_bytes)),
        ("total", format_gib(m.total_bytes)),
        ("capacity", format_gib(m.capacity_bytes)),
        ("fits", _fit(m)),
        ("KV cache per token (whole model)", format_bytes(m.kv_cache_bytes_per_token)),
        ("max batch at isl + osl", f"{m.max_batch:,}"),
        ("max context at this batch", f"{m.max_context_tokens:,} tokens"),
    ]


OP_HEADER = ("operator", "class", "count", "FLOPs", "bytes", "FLOP/B", "compute", "memory", "comm.", "time", "share",
             "bound")  # fmt: skip
OP_NUMERIC = tuple(range(2, 11))


def op_rows(phase: PhaseResult) -> list[tuple[Any, ...]]:
    return dict_op_rows([op_row_dict(op) for op in phase.ops])


def dict_op_rows(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Operator rows (op_row_dict keys) as table cells, each with its share of the rows' time."""
    total = sum(r["time_s"] for r in rows) or 1.0
    return [(r["name"], r["op_class"], r["count"], format_count(r["flops"]), format_bytes(r["bytes"]),
             f"{r['arithmetic_intensity_flops_per_byte']:,.1f}", format_time(r["compute_s"]),
             format_time(r["memory_s"]), format_time(r["communication_s"]) if r["communication_s"] else "-",
             format_time(r["time_s"]), f"{100 * r['time_s'] / total:.1f}%",
             f"{r['bound']}: {r['detail']}" if r["detail"] else r["bound"])
            for r in rows]  # fmt: skip


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib Figure as PNG bytes; the figure is closed afterwards (pyplot holds it otherwise)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    import matplotlib.pyplot as plt  # loaded already by whoever drew the figure

    plt.close(fig)
    return buffer.getvalue()


def _figures(figures: Sequence[Figure]) -> str:
    if not figures:
        return '<p class="note">No figures in this report (--no-figures, or the plotting module is not available).</p>'
    return "\n".join(f'<figure><img src="{png_data_uri(png)}" alt="{escape(title)}">'
                     f"<figcaption>{escape(title)}</figcaption></figure>" for title, png in figures)  # fmt: skip


def title_of(r: EstimateResult) -> str:
    return f"{r.model} on {r.num_gpus} x {r.hardware} ({r.system})"


Pairs = Sequence[tuple[str, Any]]


def estimate_page(result: EstimateResult, header: Pairs, assumptions: Pairs, sources: Sequence[tuple[str, str, str]],
                  figures: Sequence[Figure], headline: str) -> str:  # fmt: skip
    """The whole page: header facts, summary, memory, figures, operators, assumptions, sources."""
    r = result
    summary = (table(("metric", "value", "no-overlap bound"), summary_rows(r), numeric=(1, 2))
               + f'<p class="note">Headline: {escape(headline)}.<br>No-overlap bound: the sum of each '
                 "operator's compute, memory and communication.</p>")  # fmt: skip
    operators = (f"<h3>Prefill of the batch (context {r.prefill.context_tokens:,} tokens), per replica</h3>\n"
                 f"{table(OP_HEADER, op_rows(r.prefill), 'wide', OP_NUMERIC)}\n"
                 f"<h3>One decode step (context {r.decode.context_tokens:,} tokens), per replica</h3>\n"
                 f"{table(OP_HEADER, op_rows(r.decode), 'wide', OP_NUMERIC)}")  # fmt: skip
    sections = [
        ("summary", "Summary", summary),
        ("memory", "Memory per GPU (most loaded stage)", table(("item", "size"), memory_rows(r.memory), numeric=(1,))),
        ("figures", "Figures", _figures(figures)),
        ("operators", "Operators", operators),
        ("assumptions", "Assumptions", _meta(assumptions)),
        ("sources", "Hardware numbers and their sources", _sources(sources)),
    ]
    return _page(title_of(r), header, sections)


def diffusion_page(data: dict[str, Any], header: Pairs, assumptions: Pairs, sources: Sequence[tuple[str, str, str]],
                   figures: Sequence[Figure]) -> str:  # fmt: skip
    """A diffusion estimate (its dict with operator rows): summary, memory, figures, one operator
    table per step kind, assumptions, sources."""
    scalars = {k: v for k, v in data.items() if k not in ("memory", "compare_ar")}
    summary = table(("metric", "value"), metric_rows(scalars), numeric=(1,))
    if "compare_ar" in data:
        summary += "<h3>Autoregressive comparison</h3>\n" + table(
            ("metric", "value"), metric_rows(data["compare_ar"]), numeric=(1,)
        )
    memory = table(("item", "size"), metric_rows(data["memory"]), numeric=(1,))
    kinds = {k["phase"]: k for k in data.get("step_kinds", [])}
    rows = [*data.get("step_ops", []), *data.get("once_ops", [])]
    operators = "\n".join(
        f"<h3>{escape(phase)}" + (f", x {kinds[phase]['steps']:,} steps" if phase in kinds else "") + "</h3>\n"
        + table(OP_HEADER, dict_op_rows([r for r in rows if r["phase"] == phase]), "wide", OP_NUMERIC)
        for phase in dict.fromkeys(r["phase"] for r in rows)
    )  # fmt: skip
    sections = [
        ("summary", "Summary", summary),
        ("memory", "Memory per GPU", memory),
        ("figures", "Figures", _figures(figures)),
        ("operators", "Operators", operators or '<p class="note">No operator rows.</p>'),
        ("assumptions", "Assumptions", _meta(assumptions)),
        ("sources", "Hardware numbers and their sources", _sources(sources)),
    ]
    return _page(str(data.get("title", data["model"])), header, sections)


def _page(heading: str, header: Pairs, sections: Sequence[tuple[str, str, str]]) -> str:
    nav = " ".join(f'<a href="#{key}">{escape(name)}</a>' for key, name, _ in sections)
    parts = [f'<section id="{key}"><h2>{escape(name)}</h2>\n{body}</section>' for key, name, body in sections]
    body = f'<div class="cols">{parts[0]}\n{parts[1]}</div>\n' + "\n".join(parts[2:])
    title = f"roofline report: {heading}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<header>
<h1>{escape(heading)}</h1>
{_meta(header)}
<nav>{nav}</nav>
</header>
{body}
<footer>Written by roofline. All numbers are estimates from the operator model, not measurements.</footer>
</main>
</body>
</html>
"""
