"""Figures of `roofline train --plot`: the step-time breakdown and the memory per GPU of one
layout; with `--search`, the step-time breakdown of each listed layout and MFU / step time against
the GPU count along the frontier. Numbers arrive in SI units (roofline.api.training)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from roofline.reports.plots import GIB, _figure, _finish

if TYPE_CHECKING:
    from roofline.api.training import TrainReport

PART_COLOURS = {"forward": "tab:blue", "backward": "tab:orange", "recompute": "tab:olive", "tp_comm": "tab:green",
                "cp_comm": "tab:cyan", "ep_comm": "tab:pink", "pp_comm": "tab:brown", "pp_bubble": "tab:gray",
                "dp_comm_exposed": "tab:purple", "optimizer": "tab:red"}  # fmt: skip
MEMORY_COLOURS = {"parameters": "tab:blue", "gradients": "tab:orange", "optimizer states": "tab:red",
                  "activations": "tab:purple", "reserve": "tab:gray", "free": "#e6e6e6"}  # fmt: skip


def _label(r: TrainReport) -> str:
    c = r.config
    return f"{c.gpus} GPUs\ntp{c.tp} pp{c.pp} vpp{c.vpp}\ncp{c.cp} ep{c.ep} mb{c.micro_batch}\n{c.recompute}"


def _parts(ax: Axes, reports: Sequence[TrainReport]) -> None:
    """Stacked step time by part, one bar per layout."""
    for x, r in enumerate(reports):
        bottom = 0.0
        for part, colour in PART_COLOURS.items():
            seconds = r.step.parts[part]
            if seconds <= 0:
                continue
            ax.bar(x, seconds, bottom=bottom, color=colour, width=0.6, edgecolor="white", gid="step-bar",
                   label=part if part not in ax.get_legend_handles_labels()[1] else None)  # fmt: skip
            bottom += seconds
        ax.text(x, bottom, f"{r.step_time_s:.3g} s", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(reports)), [_label(r) for r in reports], fontsize=7)
    ax.set_ylabel("step time (s)")
    ax.set_title("step time by part")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _memory(ax: Axes, r: TrainReport) -> None:
    m = r.step.memory
    used = {"parameters": m.params_bytes, "gradients": m.grads_bytes, "optimizer states": m.optimizer_bytes,
            "activations": m.activations_bytes, "reserve": m.reserve_bytes,
            "free": max(0.0, m.capacity_bytes - m.total_bytes)}  # fmt: skip
    bottom = 0.0
    for name, size in used.items():
        gib = size / GIB
        if gib <= 0:
            continue
        ax.bar(0, gib, bottom=bottom, color=MEMORY_COLOURS[name], width=0.5, edgecolor="white", gid="memory-bar",
               label=f"{name}: {gib:,.1f} GiB")  # fmt: skip
        bottom += gib
    capacity = m.capacity_bytes / GIB
    ax.axhline(capacity, color="black", ls="--", lw=1)
    ax.text(0.27, capacity, f"capacity {capacity:,.1f} GiB", va="bottom", ha="left", fontsize=8)
    ax.set_xlim(-0.5, 1.6)
    ax.set_ylim(0, max(bottom, capacity) * 1.1)
    ax.set_xticks([0], ["first pipeline stage" if r.config.pp > 1 else "one GPU"])
    ax.set_ylabel("memory per GPU (GiB)")
    ax.set_title("memory per GPU" + ("" if m.fits else " (does not fit)"))
    ax.legend(loc="center right", fontsize=7, frameon=False)


def train_figure(report: TrainReport) -> Figure:
    """One layout: its step time by part and its memory per GPU."""
    fig = _figure(11, 5.8)
    ax_time, ax_mem = fig.subplots(1, 2, width_ratios=[1.2, 1])
    _parts(ax_time, [report])
    _memory(ax_mem, report)
    c = report.config
    title = f"training step: {report.model} on {c.gpus} x {report.hardware}"
    caption = (f"{report.tokens_per_s_per_gpu:,.0f} tokens/s/GPU, {report.model_tflops_per_gpu:,.0f} model "
               f"TFLOP/s/GPU, MFU {report.mfu:.1%} (dense bf16 peak), precision {c.precision}, global batch "
               f"{c.global_batch} x {c.seq_len} tokens, {c.micro_batches} micro-batches per DP rank.")  # fmt: skip
    return _finish(fig, title, caption)


def search_figure(layouts: Sequence[TrainReport], frontier: Sequence[TrainReport]) -> Figure:
    """The listed layouts' step time by part, and MFU and step time against GPUs on the frontier."""
    fig = _figure(13, 6.2)
    ax_time, ax_scale = fig.subplots(1, 2, width_ratios=[1.6, 1])
    _parts(ax_time, layouts)
    gpus = [r.config.gpus for r in frontier]
    ax_scale.plot(gpus, [r.mfu * 100 for r in frontier], marker="o", color="tab:blue", label="MFU (%)",
                  gid="mfu-line")  # fmt: skip
    ax_scale.set_xscale("log", base=2)
    ax_scale.set_xticks(gpus, [str(g) for g in gpus])
    ax_scale.set_xlabel("GPUs")
    ax_scale.set_ylabel("MFU (%)", color="tab:blue")
    ax_step = ax_scale.twinx()
    ax_step.plot(gpus, [r.step_time_s for r in frontier], marker="s", color="tab:red", gid="step-line")
    ax_step.set_ylabel("step time (s)", color="tab:red")
    ax_scale.set_title("frontier: fastest layout per GPU count")
    first = layouts[0] if layouts else frontier[0]
    title = f"training layouts: {first.model} on {first.hardware}"
    caption = (f"global batch {first.config.global_batch} x {first.config.seq_len} tokens, precision "
               f"{first.config.precision}; each layout with the least recompute that fits; MFU against the dense "
               "bf16 peak.")  # fmt: skip
    return _finish(fig, title, caption)
