"""Predicted vs measured time of every calibration kernel, before and after fitting (Agg backend).

Log-log axes, the diagonal and a +-15% band; hollow markers before fitting, filled after, one
colour per kernel family, a cross over the held-out shapes; model-level runs as stars.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from roofline.calibration.report import case_rows  # noqa: E402
from roofline.calibration.runner import CalibrationResult  # noqa: E402
from roofline.errors import RooflineError  # noqa: E402

COLOURS = {
    "matmul": "tab:blue",
    "copy": "tab:green",
    "read": "tab:olive",
    "elementwise": "tab:orange",
    "attention": "tab:purple",
    "all_reduce": "tab:brown",
    "all_to_all": "tab:pink",
    "model": "tab:red",
    "train": "tab:cyan",
}
BAND = 0.15


def _finite(*values: float) -> bool:
    return all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values)


def calibration_figure(result: CalibrationResult) -> Figure:
    rows: list[dict[str, Any]] = case_rows(result)
    fig = Figure(figsize=(7.5, 7.0), dpi=110)
    ax = fig.add_subplot()
    values: list[float] = []
    for row in rows:
        measured, before, after = row["measured_s"], row["predicted_before_s"], row["predicted_after_s"]
        colour = COLOURS.get(row["family"], "tab:gray")
        marker = "*" if row["family"] in ("model", "train") else "o"
        size = 90 if marker == "*" else 22
        if _finite(measured, before):
            ax.scatter([measured], [before], s=size, marker=marker, facecolors="none", edgecolors=colour, alpha=0.5)
            values += [measured, before]
        if _finite(measured, after):
            ax.scatter([measured], [after], s=size, marker=marker, color=colour, alpha=0.9)
            values += [measured, after]
            if row["role"] == "held_out":
                ax.scatter([measured], [after], s=55, marker="x", color="black", linewidths=0.8)
    if values:
        low, high = min(values) / 1.5, max(values) * 1.5
        line = [low, high]
        ax.plot(line, line, color="black", linewidth=0.8)
        ax.fill_between(line, [v * (1 - BAND) for v in line], [v * (1 + BAND) for v in line], color="gray",
                        alpha=0.15, linewidth=0)  # fmt: skip
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured time per call (s)")
    ax.set_ylabel("predicted time (s)")
    ax.set_title(f"{result.device.name}: cost model vs PyTorch ({result.date})", fontsize=10)
    families = sorted({r["family"] for r in rows if r["family"] in COLOURS})
    handles = [Line2D([], [], marker="o", linestyle="", color=COLOURS[f], label=f) for f in families]
    handles += [
        Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="gray", label="before fit"),
        Line2D([], [], marker="o", linestyle="", color="gray", label="after fit"),
        Line2D([], [], marker="x", linestyle="", color="black", label="held out"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", title=f"grey band: +-{BAND:.0%}", title_fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def write_calibration_plot(result: CalibrationResult, path: Path) -> Path:
    try:
        calibration_figure(result).savefig(path)
    except OSError as exc:
        raise RooflineError(f"cannot write '{path}': {exc.strerror}") from None
    return path
