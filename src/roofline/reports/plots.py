"""Figures for `roofline plot`: the only module that imports matplotlib (Agg backend, no display).

Every function takes data from plot_data.py and returns the Figure, so tests can inspect its axes;
`save` writes it. Numbers arrive in SI units and are scaled for the axes here only.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter  # noqa: E402
from matplotlib.transforms import ScaledTranslation  # noqa: E402

from roofline.errors import RooflineError  # noqa: E402
from roofline.reports.plot_data import (  # noqa: E402
    BREAKDOWN_GROUPS,
    Breakdown,
    CompareData,
    PhasePoints,
    RooflineData,
    ScalingData,
    ridge_flops_per_byte,
)

GIB = 2.0**30
TERA = 1e12
COLOURS = {"attention": "tab:blue", "MLP / experts": "tab:orange", "communication": "tab:green",
           "norm": "tab:purple", "LM head": "tab:red", "other": "tab:gray"}  # fmt: skip
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
CEILING_GID, PEAK_GID, SLOPE_GID, PEAK_SLOPE_GID = "ceiling", "peak-ceiling", "memory-slope", "peak-memory-slope"
FORMATS = (".png", ".svg", ".pdf")


def _finish(fig: Figure, title: str, caption: str) -> Figure:
    """Title on top, the wrapped caption in a band at the bottom that the layout keeps free."""
    width_in, height_in = fig.get_size_inches()
    wrapped = textwrap.fill(caption, width=int(width_in * 15))
    lines = wrapped.count("\n") + 1
    band = (lines * 8 * 1.35 / 72 + 0.12) / height_in
    fig.suptitle(textwrap.fill(title, width=int(width_in * 9)), fontsize=12)
    fig.get_layout_engine().set(rect=(0.0, band, 1.0, 1.0 - band))  # type: ignore[union-attr, call-arg]
    fig.text(0.01, band - 0.01, wrapped, ha="left", va="top", fontsize=8, color="0.25")
    return fig


def _figure(width_in: float, height_in: float) -> Figure:
    return plt.figure(figsize=(width_in, height_in), layout="constrained")


def _time_unit(max_s: float) -> tuple[float, str]:
    if max_s >= 1.0:
        return 1.0, "s"
    return (1e3, "ms") if max_s >= 1e-3 else (1e6, "us")


def _short(value: float, _pos: object = None) -> str:
    """Tick labels in plain numbers: 0.01, 2, 500, 4k, 2M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _log_ticks(axis: Any, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """A log axis with 1-2-5 ticks in plain numbers and no minor labels."""
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(_short))
    axis.set_minor_formatter(NullFormatter())


def _tokens(value: float, _pos: object = None) -> str:
    """Token counts that are multiples of 1024 the way contexts are quoted: 4k, 128k."""
    return f"{int(value) // 1024}k" if value >= 1024 and int(value) % 1024 == 0 else _short(value)


def _batch_ticks(axis: Any, batches: list[int]) -> None:
    axis.set_major_locator(FixedLocator(batches))
    axis.set_major_formatter(FuncFormatter(_tokens))
    axis.set_minor_formatter(NullFormatter())


def save(fig: Figure, path: Path, force: bool, dpi: int = 100) -> None:
    """Write the figure; the format follows the suffix. Never overwrites without force."""
    if path.suffix.lower() not in FORMATS:
        raise RooflineError(f"-o '{path}': use a .png, .svg or .pdf file name")
    if path.exists() and not force:
        raise RooflineError(f"'{path}' already exists; pass --force to overwrite it")
    try:
        fig.savefig(path, dpi=dpi, format=path.suffix.lower()[1:], metadata=_metadata(path))
    except OSError as exc:
        raise RooflineError(f"cannot write '{path}': {exc.strerror}") from None
    finally:
        plt.close(fig)


def _metadata(path: Path) -> dict[str, str | None]:
    """No creation date in SVG/PDF, so the same plot gives the same file."""
    suffix = path.suffix.lower()
    if suffix == ".svg":
        return {"Date": None}
    return {"CreationDate": None} if suffix == ".pdf" else {}


# ---------------------------------------------------------------- roofline


def _roof_limits(data: RooflineData) -> tuple[float, float, float, float]:
    points = [p for pp in (data.prefill, *data.decode) for p in pp.points]
    slope = data.slopes[0]
    ridges = [ridge_flops_per_byte(c, slope) for c in data.ceilings]
    xs = [p.intensity_flops_per_byte for p in points] + ridges
    ys = [p.achieved_flops_per_s / TERA for p in points] + [c.peak_flops_per_s / TERA for c in data.ceilings]
    x_lo = 10 ** math.floor(math.log10(min(xs) / 2))
    x_hi = 10 ** math.ceil(math.log10(max(xs) * 20))
    y_lo = 10 ** math.floor(math.log10(min(ys) / 2))
    y_hi = max(ys) * 3
    return x_lo, x_hi, y_lo, y_hi


def _draw_roofs(ax: Axes, data: RooflineData, x_lo: float, x_hi: float, peaks: bool) -> None:
    top = max(data.ceilings, key=lambda c: c.flops_per_s)
    for slope in data.slopes:
        ridge = ridge_flops_per_byte(top, slope)
        ax.plot([x_lo, ridge], [slope.bytes_per_s * x_lo / TERA, top.flops_per_s / TERA], color="black", lw=1.6,
                gid=SLOPE_GID)  # fmt: skip
        if peaks:
            peak_ridge = top.peak_flops_per_s / slope.peak_bytes_per_s
            ax.plot([x_lo, peak_ridge], [slope.peak_bytes_per_s * x_lo / TERA, top.peak_flops_per_s / TERA],
                    color="0.45", lw=0.8, ls="--", gid=PEAK_SLOPE_GID)  # fmt: skip
        # along the slope: in data coordinates a line y = b x through (x, y) runs at atan(y / x)
        lift = ax.transData + ScaledTranslation(0, 10 / 72, ax.figure.dpi_scale_trans)  # 10 pt above the line
        x = x_lo * 1.3
        ax.text(x, slope.bytes_per_s * x / TERA, f"{slope.name} {slope.bytes_per_s / 1e12:.2f} TB/s", fontsize=8,
                rotation=math.degrees(math.atan(slope.bytes_per_s / TERA)), rotation_mode="anchor",
                transform=lift, transform_rotates_text=True)  # fmt: skip
    slope = data.slopes[0]
    for c in data.ceilings:
        ridge = ridge_flops_per_byte(c, slope)
        bold = c.dtype == data.math_dtype
        ax.plot([ridge, x_hi], [c.flops_per_s / TERA] * 2, color="black", lw=2.0 if bold else 1.0, gid=CEILING_GID)
        if peaks:
            ax.plot([c.peak_flops_per_s / slope.peak_bytes_per_s, x_hi], [c.peak_flops_per_s / TERA] * 2,
                    color="0.45", lw=0.8, ls="--", gid=PEAK_GID)  # fmt: skip
        ax.plot([ridge], [c.flops_per_s / TERA], marker="o", mfc="white", mec="black", ms=6, ls="none", zorder=5)
        ax.annotate(f"{c.dtype} {c.flops_per_s / TERA:,.0f} TFLOP/s",
                    (x_hi, c.flops_per_s / TERA), xytext=(-3, 2), textcoords="offset points", fontsize=7.5,
                    ha="right", va="bottom", fontweight="bold" if bold else "normal",
                    bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.7})  # fmt: skip


def _walk(ax: Axes, phase_points: tuple[PhasePoints, ...], min_share: float = 0.05) -> None:
    """A faint line through the same operator at each batch: decode walking toward the ridge."""
    if len(phase_points) < 2:
        return
    names = {p.name for pp in phase_points for p in pp.points if p.time_share >= min_share}
    for name in sorted(names):
        pts = [p for pp in phase_points for p in pp.points if p.name == name]
        ax.plot([p.intensity_flops_per_byte for p in pts], [p.achieved_flops_per_s / TERA for p in pts],
                color=COLOURS[pts[0].group], lw=0.8, alpha=0.5, zorder=3)  # fmt: skip


def _scatter(ax: Axes, phase_points: tuple[PhasePoints, ...]) -> None:
    for i, pp in enumerate(phase_points):
        for group in COLOURS:
            pts = [p for p in pp.points if p.group == group]
            if not pts:
                continue
            ax.scatter([p.intensity_flops_per_byte for p in pts], [p.achieved_flops_per_s / TERA for p in pts],
                       s=[15 + 500 * p.time_share for p in pts], c=COLOURS[group], marker=MARKERS[i % len(MARKERS)],
                       alpha=0.75, edgecolors="black", linewidths=0.5, zorder=4)  # fmt: skip


def _label_top(ax: Axes, pp: PhasePoints, limits: tuple[float, float, float, float], size_pt: tuple[float, float],
               n: int = 3) -> None:  # fmt: skip
    """Name the few operators that take the most time, each label moved down until it clears the
    ones already placed (positions estimated from the axis limits and the axes' size in points)."""
    x_lo, x_hi, y_lo, y_hi = limits
    placed: list[tuple[float, float, float, float]] = []
    for p in sorted(pp.points, key=lambda p: -p.time_share)[:n]:
        text = f"{p.name} {p.time_share:.0%}"
        x = math.log(p.intensity_flops_per_byte / x_lo) / math.log(x_hi / x_lo) * size_pt[0] + 8
        y = math.log(p.achieved_flops_per_s / TERA / y_lo) / math.log(y_hi / y_lo) * size_pt[1] - 10
        width, dy = len(text) * 4.0, 0.0
        while any(x < bx + bw and bx < x + width and abs(y + dy - by) < 9 for bx, by, bw, _ in placed):
            dy -= 9
        placed.append((x, y + dy, width, 9))
        ax.annotate(text, (p.intensity_flops_per_byte, p.achieved_flops_per_s / TERA), xytext=(8, -10 + dy),
                    textcoords="offset points", fontsize=7, color="0.2",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5})  # fmt: skip


def roofline_figure(data: RooflineData, peaks: bool = False) -> Figure:
    """Prefill and decode side by side on the accelerator's rooflines (log-log); for a diffusion model
    one panel per step kind."""
    x_lo, x_hi, y_lo, y_hi = _roof_limits(data)
    if data.panel_titles:  # diffusion: one panel per step kind
        groups: list[tuple[PhasePoints, ...]] = [(pp,) for pp in (data.prefill, *data.decode)]
        names = list(data.panel_titles)
    else:
        batches = ", ".join(str(d.batch) for d in data.decode)
        groups = [(data.prefill,), data.decode]
        names = [f"prefill (batch {data.prefill.batch})", f"decode step (batch {batches})"]
    fig = _figure(14 if len(groups) > 1 else 9.5, 6.8)
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for ax, points, name in zip(axes, groups, names, strict=True):
        _draw_roofs(ax, data, x_lo, x_hi, peaks)
        _walk(ax, points)
        _scatter(ax, points)
        _label_top(ax, points[-1], (x_lo, x_hi, y_lo, y_hi), (5.4 * 72, 5.0 * 72))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        _log_ticks(ax.xaxis, (1.0,))
        _log_ticks(ax.yaxis, (1.0,))
        ax.set_xlabel("arithmetic intensity (FLOP/byte)")
        ax.set_title(name)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("achieved throughput (TFLOP/s per GPU)")
    fig.legend(handles=_roof_legend(data, peaks), loc="outside right upper", fontsize=8, frameon=False)
    return _finish(fig, data.title, data.caption)


def _roof_legend(data: RooflineData, peaks: bool) -> list[Line2D | Patch]:
    present = {p.group for pp in (data.prefill, *data.decode) for p in pp.points}
    handles: list[Line2D | Patch] = [Patch(color=COLOURS[g], label=g) for g in COLOURS if g in present]
    if len(data.decode) > 1:
        handles += [Line2D([], [], marker=MARKERS[i % len(MARKERS)], ls="none", color="0.3", label=f"batch {d.batch}")
                    for i, d in enumerate(data.decode)]  # fmt: skip
    handles.append(Line2D([], [], color="black", label="achievable roof"))
    if peaks:
        handles.append(Line2D([], [], color="black", ls="--", lw=0.8, label="spec peak"))
    slope = data.slopes[0]
    handles += [
        Line2D(
            [],
            [],
            marker="o",
            mfc="white",
            mec="black",
            ls="none",
            label=f"ridge {c.dtype}: {ridge_flops_per_byte(c, slope):,.0f} FLOP/B",
        )
        for c in data.ceilings
    ]
    handles.append(Line2D([], [], color="black", lw=2.0, label=f"thick: the run's math ({data.math_dtype})"))
    return handles


# ---------------------------------------------------------------- breakdown


def breakdown_figure(data: Breakdown) -> Figure:
    """Time per operator class (share of TTFT / TPOT) and the memory of one GPU."""
    fig = _figure(12, 6.2)
    ax_time, ax_mem = fig.subplots(1, 2, width_ratios=[1.4, 1])
    names = {"prefill": "prefill (TTFT)", "decode": "decode step (TPOT)"}
    for x, (phase, groups) in enumerate(data.group_time_s.items()):
        total = data.phase_time_s[phase]
        scale, unit = _time_unit(total)
        bottom = 0.0
        for group in BREAKDOWN_GROUPS:
            share = groups[group] / total if total else 0.0
            ax_time.bar(x, share * 100, bottom=bottom, color=COLOURS[group], width=0.6, edgecolor="white",
                        label=group if x == 0 else None, gid="time-bar")  # fmt: skip
            if share > 0.06:
                ax_time.text(x, bottom + share * 50, f"{groups[group] * scale:.3g} {unit}\n({share:.0%})",
                             ha="center", va="center", fontsize=8, color="white")  # fmt: skip
            bottom += share * 100
        ax_time.text(x, 101.5, f"{total * scale:.3g} {unit}", ha="center", va="bottom", fontsize=9)
    ax_time.set_xticks(range(len(data.group_time_s)), [names[p] for p in data.group_time_s])
    ax_time.set_ylim(0, 112)
    ax_time.set_ylabel("share of the phase time (%)")
    ax_time.set_title("time per operator class")
    ax_time.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _memory_bar(ax_mem, data)
    return _finish(fig, data.title, data.caption)


def _memory_bar(ax: Axes, data: Breakdown) -> None:
    colours = {"weights": "tab:blue", "KV cache": "tab:orange", "activations": "tab:purple", "reserve": "tab:gray",
               "free": "#e6e6e6"}  # fmt: skip
    bottom = 0.0
    capacity = data.capacity_bytes / GIB
    for name, size in data.memory_bytes.items():
        gib = size / GIB
        if gib <= 0:
            continue
        ax.bar(0, gib, bottom=bottom, color=colours[name], width=0.5, edgecolor="white", gid="memory-bar",
               label=f"{name}: {gib:,.1f} GiB")  # fmt: skip
        if gib > 0.05 * capacity:
            ax.text(0, bottom + gib / 2, f"{name}\n{gib:,.1f} GiB", ha="center", va="center", fontsize=8,
                    color="black" if name == "free" else "white")  # fmt: skip
        bottom += gib
    ax.axhline(capacity, color="black", ls="--", lw=1)
    ax.text(0.27, capacity, f"capacity {capacity:,.1f} GiB", va="bottom", ha="left", fontsize=8)
    ax.set_xlim(-0.5, 1.4)
    ax.set_ylim(0, max(bottom, capacity) * 1.1)
    ax.set_xticks([0], ["most loaded GPU"])
    ax.set_ylabel("memory per GPU (GiB)")
    ax.set_title("memory per GPU")
    ax.legend(loc="center right", fontsize=8, frameon=False)


# ---------------------------------------------------------------- scaling


def _mark_fit(
    ax: Axes, xs: Sequence[float], ys: Sequence[float], fits: Sequence[bool], colour: str, label: str
) -> None:
    ax.plot(xs, ys, color=colour, lw=1.2, label=label)
    ax.scatter([x for x, f in zip(xs, fits, strict=True) if f], [y for y, f in zip(ys, fits, strict=True) if f],
               color=colour, s=22, zorder=3)  # fmt: skip
    ax.scatter([x for x, f in zip(xs, fits, strict=True) if not f],
               [y for y, f in zip(ys, fits, strict=True) if not f],
               facecolors="white", edgecolors=colour, s=22, zorder=3)  # fmt: skip


def scaling_figure(data: ScalingData) -> Figure:
    """TPOT and tokens/s vs batch, TTFT vs prompt, KV cache vs context (and the Pareto curve)."""
    fig = _figure(16 if data.serve else 12, 9)
    axes = fig.subplot_mosaic("ABE;CDE" if data.serve else "AB;CD")
    tpot, tps, ttft, kv = axes["A"], axes["B"], axes["C"], axes["D"]
    batches = [p.batch for p in data.batches]
    fits = [p.fits for p in data.batches]
    scale, unit = _time_unit(max(p.tpot_s for p in data.batches))
    _mark_fit(tpot, batches, [p.tpot_s * scale for p in data.batches], fits, "tab:blue", "TPOT")
    tpot.set(xscale="log", xlabel="batch (sequences)", ylabel=f"TPOT ({unit})", title="TPOT vs batch")
    _mark_fit(tps, batches, [p.output_tokens_per_s for p in data.batches], fits, "tab:green", "output tokens/s")
    tps.set(xscale="log", yscale="log", xlabel="batch (sequences)", ylabel="output tokens/s (all GPUs)",
            title="throughput vs batch")  # fmt: skip
    scale, unit = _time_unit(max(p.ttft_batch_s for p in data.prompts))
    isls = [p.isl for p in data.prompts]
    _mark_fit(ttft, isls, [p.ttft_batch_s * scale for p in data.prompts], [p.fits for p in data.prompts], "tab:red",
              "TTFT")  # fmt: skip
    ttft.set(xscale="log", yscale="log", xlabel="prompt length (tokens)", ylabel=f"TTFT ({unit})",
             title=f"TTFT vs prompt length (batch {data.ttft_batch})")  # fmt: skip
    for i, curve in enumerate(data.kv):
        kv.plot(curve.context_tokens, [b / GIB for b in curve.kv_cache_bytes], marker=MARKERS[i % len(MARKERS)],
                ms=4, label=f"batch {curve.batch}")  # fmt: skip
    kv.axhline(data.kv_room_bytes / GIB, color="black", ls="--", lw=1,
               label=f"room for KV: {data.kv_room_bytes / GIB:,.1f} GiB")  # fmt: skip
    kv.set(xscale="log", yscale="log", xlabel="context (tokens)", ylabel="KV cache per GPU (GiB)",
           title="KV cache vs context")  # fmt: skip
    kv.legend(fontsize=8, loc="upper left")
    _batch_ticks(tpot.xaxis, batches)
    _batch_ticks(tps.xaxis, batches)
    _batch_ticks(ttft.xaxis, isls)
    _batch_ticks(kv.xaxis, list(data.kv[0].context_tokens))
    _log_ticks(tps.yaxis)
    _log_ticks(ttft.yaxis)
    _log_ticks(kv.yaxis, (1.0,))
    if data.serve:
        _pareto(axes["E"], data)
    for a in axes.values():
        a.grid(True, which="major", alpha=0.3)
    return _finish(fig, data.title, data.caption)


def _pareto(ax: Axes, data: ScalingData) -> None:
    xs = [p.tokens_per_s_per_user for p in data.batches]
    ys = [p.decode_tokens_per_s_per_gpu for p in data.batches]
    _mark_fit(ax, xs, ys, [p.fits for p in data.batches], "tab:purple", "decode")
    for p, x, y in zip(data.batches, xs, ys, strict=True):
        ax.annotate(f"batch {p.batch}", (x, y), xytext=(-6, 0), textcoords="offset points", fontsize=7, ha="right",
                    va="center")  # fmt: skip
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="tokens/s per user (1 / TPOT)",
        ylabel="decode tokens/s per GPU (batch / TPOT / GPUs)",
        title="throughput vs interactivity (decode)",
    )
    _log_ticks(ax.xaxis, (1.0, 1.5, 2.0, 3.0, 5.0, 7.0))
    _log_ticks(ax.yaxis)
    ax.margins(x=0.15, y=0.08)


# ---------------------------------------------------------------- compare


def compare_figure(data: CompareData) -> Figure:
    """TTFT, TPOT and tokens/s per GPU: a group per hardware, a bar per weight format."""
    fig = _figure(min(18.0, max(12.0, 4 + 0.9 * len(data.hardware) * len(data.dtypes))), 6.2)
    axes = fig.subplots(1, 3)
    rows = {(r.hardware, r.weight_dtype): r for r in data.rows}
    width = 0.8 / len(data.dtypes)
    t_scale, t_unit = _time_unit(max(r.ttft_batch_s for r in data.rows))
    p_scale, p_unit = _time_unit(max(r.tpot_s for r in data.rows))
    metrics = (("TTFT", f"TTFT ({t_unit})", lambda r: r.ttft_batch_s * t_scale),
               ("TPOT", f"TPOT ({p_unit})", lambda r: r.tpot_s * p_scale),
               ("tokens/s per GPU", "output tokens/s per GPU", lambda r: r.output_tokens_per_s_per_gpu))  # fmt: skip
    for ax, (title, ylabel, value) in zip(axes, metrics, strict=True):
        for j, dtype in enumerate(data.dtypes):
            for i, hw in enumerate(data.hardware):
                row = rows.get((hw, dtype))
                if row is None:
                    continue
                bars = ax.bar(i + (j - (len(data.dtypes) - 1) / 2) * width, value(row), width=width * 0.95,
                              color=f"C{j}", hatch=None if row.fits else "//", edgecolor="black", lw=0.4,
                              gid="compare-bar", label=dtype if i == 0 else None)  # fmt: skip
                ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
        crowded = sum(len(h) + 2 for h in data.hardware) > 36
        ax.set_xticks(range(len(data.hardware)), data.hardware, rotation=30 if crowded else 0,
                      ha="right" if crowded else "center")  # fmt: skip
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.margins(y=0.15)
        ax.grid(True, axis="y", alpha=0.3)
    if len(data.dtypes) > 1:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", title="weights", fontsize=8,
                   frameon=False)  # fmt: skip
    return _finish(fig, data.title, data.caption)
