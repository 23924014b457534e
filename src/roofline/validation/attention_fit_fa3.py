"""Fit the FA3 / cuDNN-class Hopper context curve (family `hopper-fa3` of kernels.yaml) on the
FlashAttention-3 paper's forward-speed figure (simulator/data/attention/fa3-paper-fig5.csv).

Each figure point is one bare kernel call on an H100 SXM: batch = 16k tokens / seqlen sequences
of 2048 / head_dim heads (MHA), BF16, causal or not. It is timed by the estimator's own path
(an attention op of that call shape through `RooflineCostModel.cost` with the runtime kernel
`fa3`), under the candidate curve; the floor is the accelerator's kernel overhead (no RoPE or
KV-cache write in the call). The objective is the mean squared log error of TFLOP/s on the rows
marked fit=1, minimised by attention_fit's deterministic Nelder-Mead over (fraction, tile overhead,
score dims).

    python benchmarks/fit_attention_fa3.py
prints the fitted numbers and each point's predicted vs. published TFLOP/s.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Op, OpKind, Phase, Placement, Precision, StepShape
from roofline.simulator.attention_efficiency import DATA_FILE, AttentionCurves, PrefillCurve, load_curves
from roofline.simulator.cost import RooflineCostModel
from roofline.validation.attention_fit import nelder_mead
from roofline.workloads.layers import AttentionShape, attention_block_ops

FIGURE = DATA_FILE.parent / "fa3-paper-fig5.csv"
FAMILY, KERNEL, HARDWARE = "hopper-fa3", "fa3", "h100-sxm"
TOKENS, HIDDEN = 16384, 2048  # the figure's batch x seqlen and hidden size
START = (0.6, 2.0, 64.0)  # fraction, tile overhead (KV tiles), score dims (matmul columns)


@dataclass(frozen=True)
class FigurePoint:
    point: str
    head_dim: int
    causal: bool
    seqlen: int
    kernel: str
    tflops: float
    fit: bool

    @property
    def flops(self) -> float:
        """The figure's count: 4 x seqlen^2 x head_dim x heads per sequence, half of it causal."""
        heads, batch = HIDDEN // self.head_dim, TOKENS // self.seqlen
        return 4.0 * batch * heads * self.seqlen**2 * self.head_dim * (0.5 if self.causal else 1.0)


def read_points(path: Path = FIGURE) -> list[FigurePoint]:
    with path.open() as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return [FigurePoint(r["point"], int(r["head_dim"]), r["causal"] == "1", int(r["seqlen"]), r["kernel"],
                            float(r["tflops"]), r["fit"] == "1") for r in rows]  # fmt: skip


def point_op(p: FigurePoint) -> Op:
    """The attention op of one figure point, from the estimator's GQA builder (MHA: kv heads = heads)."""
    heads = HIDDEN // p.head_dim
    step = StepShape(Phase.PREFILL, TOKENS // p.seqlen, p.seqlen, p.seqlen)
    ops = attention_block_ops(AttentionShape(HIDDEN, heads, heads, p.head_dim), step, Precision(), Placement(), 1)
    op = next(o for o in ops if o.kind is OpKind.ATTENTION)
    assert op.attention is not None and op.dtype is DType.BF16
    if p.causal:
        return op
    return replace(op, attention=replace(op.attention, causal=False), flops=p.flops)


def predicted_tflops(p: FigurePoint, model: RooflineCostModel) -> float:
    return p.flops / model.cost(point_op(p)).total_s / 1e12


def with_curve(curves: AttentionCurves, fraction: float, tile_overhead: float, score_dims: float,
               fitted_on: Sequence[str], source: str) -> AttentionCurves:  # fmt: skip
    fam = curves.families[FAMILY]
    curve = PrefillCurve(fraction=fraction, tile_overhead=tile_overhead, score_dims=score_dims, floor_us=None,
                         fitted_on=list(fitted_on), source=source)  # fmt: skip
    fam = fam.model_copy(update={"prefill": {**fam.prefill, "bf16": curve}})
    return curves.model_copy(update={"families": {**curves.families, FAMILY: fam}})


def log_errors(points: Sequence[FigurePoint], curves: AttentionCurves) -> list[float]:
    model = RooflineCostModel(resolve_cluster(HARDWARE, num_gpus=1), attention_curves=curves,
                              runtime_attention=KERNEL)  # fmt: skip
    return [math.log(predicted_tflops(p, model) / p.tflops) for p in points]


@dataclass(frozen=True)
class FittedFA3:
    fraction: float
    tile_overhead: float
    score_dims: float
    fitted_on: tuple[str, ...]
    rms_log_error: float


def fit(points: Sequence[FigurePoint] | None = None) -> FittedFA3:
    rows = [p for p in (points or read_points()) if p.fit]
    curves, ids = load_curves(), tuple(p.point for p in rows)

    def params(x: Sequence[float]) -> tuple[float, float, float]:
        return min(1.0, math.exp(x[0])), math.exp(x[1]), math.exp(x[2])

    def loss(x: list[float]) -> float:
        errors = log_errors(rows, with_curve(curves, *params(x), ids, "fit"))
        return sum(e * e for e in errors) / len(errors)

    best = nelder_mead(loss, [math.log(v) for v in START])
    fraction, overhead, score_dims = (round(v, 4) for v in params(best))
    return FittedFA3(fraction, overhead, score_dims, ids, math.sqrt(loss(best)))
