"""The HTML report of one estimate: what `roofline report -o FILE.html` writes and what the web
page (`roofline ui`) exports, from one code path so the two are the same page.

`estimate_report(found)` and `diffusion_report(found)` take the Python API's result and give a
`ReportPage`: the HTML text and the warnings the caller shows (the library never prints). A
result that was not timed (it does not fit, no --ignore-memory) is a RooflineError line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from roofline import __version__
from roofline.errors import RooflineError
from roofline.reports import html
from roofline.reports.assumptions import diffusion_inputs, estimate_inputs, hardware_sources, parallelism

if TYPE_CHECKING:
    from roofline.api.diffusion import DiffusionEstimate
    from roofline.api.estimates import Estimate
    from roofline.api.query import Query
    from roofline.hardware_specs import Cluster
    from roofline.simulator.results import EstimateResult

SCALING_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
NOT_TIMED = "add --ignore-memory to report its latency anyway (marked hypothetical)"
HYPOTHETICAL = ("memory", "DOES NOT FIT: the latency is hypothetical (--ignore-memory)")
Pairs = list[tuple[str, Any]]


@dataclass(frozen=True)
class ReportPage:
    """A report's HTML text and what the caller should warn about (e.g. figures that could not be drawn)."""

    html: str
    warnings: tuple[str, ...] = ()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def estimate_header(q: Query, result: EstimateResult) -> Pairs:
    """The report's heading rows of a language-model estimate (model, hardware, layout, formats, tool, date)."""
    p, acc = q.scenario.precision, q.cluster.accelerator
    return [
        ("model", f"{q.workload.id} ({q.workload.name})"),
        ("hardware", f"{acc.id} ({acc.name})"),
        ("system", f"{q.cluster.describe()}: {q.cluster.system.name}"),
        ("parallelism", parallelism(q.scenario)),
        ("formats", f"weights {p.weight.value}, experts {p.experts.value}, KV cache {p.kv_cache.value}, "
                    f"activations {p.activation.value}"),
        ("batch x isl / osl", f"{result.batch} x {result.isl} / {result.osl}" + (" (ideal roofline)" if result.ideal
                                                                                 else "")),
        ("tool", f"roofline {__version__}"),
        ("date", _now()),
    ]  # fmt: skip


def diffusion_header(data: dict[str, Any], cluster: Cluster) -> Pairs:
    """The report's heading rows of a diffusion model's estimate (`data`: its to_dict())."""
    acc = cluster.accelerator
    return [
        ("model", f"{data['model']} ({data['kind']})"),
        ("hardware", f"{acc.id} ({acc.name})"),
        ("system", f"{cluster.describe()}: {cluster.system.name}"),
        ("attention", f"{data['attention_kernel']}, {'torch.compile' if data['compiled'] else 'eager PyTorch'}"),
        ("tool", f"roofline {__version__}"),
        ("date", _now()),
    ]


def _drawn(figures: list[tuple[str, Callable[[], Any]]]) -> tuple[list[html.Figure], tuple[str, ...]]:
    """PNGs of the figures; none and one warning when this installation cannot draw them."""
    try:
        return [(title, html.figure_png(draw())) for title, draw in figures], ()
    except (ImportError, AttributeError, TypeError) as exc:
        return [], (f"no figures in the report ({type(exc).__name__}: {exc})",)


def estimate_figures(q: Query, result: EstimateResult) -> tuple[list[html.Figure], tuple[str, ...]]:
    """The report's figures (roofline, time and memory breakdown, scaling) and any warning."""
    try:
        from roofline.reports import plot_data, plots
    except (ImportError, AttributeError) as exc:  # the plotting module is optional
        return [], (f"no figures in the report ({type(exc).__name__}: {exc})",)
    batches = sorted({*SCALING_BATCHES, q.scenario.batch})
    return _drawn([
        ("Operators on the roofline (prefill and a decode step)",
         lambda: plots.roofline_figure(plot_data.roofline_data(q.workload, q.cluster, q.scenario, [q.scenario.batch]))),
        ("Where the time and the memory go",
         lambda: plots.breakdown_figure(plot_data.breakdown_data(result, q.scenario))),
        ("Scaling with batch, prompt length and context",
         lambda: plots.scaling_figure(plot_data.scaling_data(q.workload, q.cluster, q.scenario, batches))),
    ])  # fmt: skip


def diffusion_figures(data: dict[str, Any], cluster: Cluster) -> tuple[list[html.Figure], tuple[str, ...]]:
    try:
        from roofline.reports import plot_data, plots
    except (ImportError, AttributeError) as exc:
        return [], (f"no figures in the report ({type(exc).__name__}: {exc})",)
    draw = lambda: plots.roofline_figure(plot_data.diffusion_roofline_data(data, cluster))  # noqa: E731
    return _drawn([("Operators of each step on the roofline", draw)])


def timed(found: Estimate) -> tuple[Query, EstimateResult]:
    """The simulator's inputs and result of a timed estimate; a RooflineError line when it was not timed."""
    if found.detail is None or found.query is None:
        raise RooflineError(f"{found.does_not_fit_message()}; {NOT_TIMED}")
    return found.query, found.detail


def estimate_report(found: Estimate, figures: bool = True) -> ReportPage:
    """The HTML report of a language-model estimate (`rl.estimate(...)`): summary, memory, operator
    tables, figures (unless `figures=False`), assumptions and the source of every hardware number."""
    q, result = timed(found)
    header = estimate_header(q, result) + ([HYPOTHETICAL] if found.hypothetical else [])
    drawn, warnings = estimate_figures(q, result) if figures else ([], ())
    page = html.estimate_page(result, header, estimate_inputs(q.workload, q.cluster, q.scenario, found.ideal),
                              hardware_sources(q.cluster), drawn,
                              result.to_dict(with_ops=False)["bounds"]["headline"])  # fmt: skip
    return ReportPage(page, warnings)


def diffusion_report(found: DiffusionEstimate, figures: bool = True, ignore_memory: bool = False) -> ReportPage:
    """The HTML report of a diffusion model's estimate (`rl.estimate_diffusion(..., ignore_memory=True)`);
    one that does not fit is refused unless `ignore_memory`."""
    if not found.fits and not ignore_memory:
        raise RooflineError(f"{found.model} does not fit on {found.hardware}; {NOT_TIMED}")
    data = {**found.to_dict(), "title": found.title}
    drawn, warnings = diffusion_figures(data, found.cluster) if figures else ([], ())
    page = html.diffusion_page(data, diffusion_header(data, found.cluster), diffusion_inputs(data, found.cluster,
                               found.ideal), hardware_sources(found.cluster), drawn)  # fmt: skip
    return ReportPage(page, warnings)
