"""Predicted vs measured kernel times, and the fit of the cost model's efficiencies to them.

The prediction of a case is the cost model's time for its operator (simulator/cost.py), written
out over arrays so the fit can evaluate it thousands of times:

    compute_s = flops / (peak[dtype] * fraction)      matmul: matmul_fraction[dtype] x wave utilization
                                                      attention: attention_fraction; elementwise: 1 (fp32 peak)
    memory_s  = bytes / (memory bandwidth * memory_bandwidth_fraction)
    time_s    = (compute_s^p + memory_s^p)^(1/p) + kernels * kernel_overhead

(`tests/test_calibrate.py` holds it equal to `RooflineCostModel.cost(op).total_s`.) The fit is a
robust (Huber) Levenberg-Marquardt least squares on log time over the fitted cases, in stages
(see `fit_efficiency`), for matmul_fraction per measured format, memory_bandwidth_fraction,
attention_fraction, kernel_overhead and overlap_exponent; for a host profile also over a few
single-tile choices (`tile_candidates`).
Held-out cases never enter the fit; their error before and after is the honest measure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from roofline.calibration.cases import FITTED_FAMILIES, BenchCase, Family
from roofline.dtypes import DType
from roofline.hardware_specs.schema import Accelerator, EfficiencySpec, MatmulTile
from roofline.ir import OpKind
from roofline.simulator.cost import gemv_extra_bytes, gemv_rows, kernel_time_s, wave_utilization

FloatArray = np.ndarray
MIN_FRACTION, MAX_FRACTION = 1e-4, 1.0
MIN_OVERHEAD_S, MAX_OVERHEAD_S = 1e-9, 1e-2
MAX_EXPONENT = 32.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def _logit(f: float) -> float:
    f = min(max(f, 1e-6), 1.0 - 1e-6)
    return math.log(f / (1.0 - f))


class Predictor:
    """The cost model's time for each case on one accelerator, for any efficiency block."""

    def __init__(self, cases: Sequence[BenchCase], accelerator: Accelerator) -> None:
        self.cases, self.accelerator = list(cases), accelerator
        compute = accelerator.compute
        self.flops = np.array([c.op.flops for c in cases], dtype=float)
        self.bytes = np.array([c.op.bytes for c in cases], dtype=float)
        self.kernels = np.array([c.op.kernels for c in cases], dtype=float)
        self.is_matmul = np.array([c.op.kind is OpKind.MATMUL for c in cases])
        self.is_attention = np.array([c.op.kind is OpKind.ATTENTION for c in cases])
        self.is_decode_attention = self.is_attention & np.array([c.variant == "decode" for c in cases], dtype=bool)
        peaks = []
        for c in cases:
            dtype = c.op.dtype.compute_dtype if c.op.kind is not OpKind.ELEMENTWISE else DType.FP32
            peak = compute.peak_flops_per_s(dtype)
            if peak is None:
                raise ValueError(f"{accelerator.id} has no {dtype.value} peak for case {c.name}")
            peaks.append(peak)
        self.peak = np.array(peaks, dtype=float)
        self.dtype_keys = [c.op.dtype.compute_dtype.value for c in cases]
        self.weight_bytes = np.array([c.op.weight_bytes for c in cases], dtype=float)
        self.n = np.array([s.n if (s := c.op.shape) is not None else 0 for c in cases], dtype=float)
        self._waves: dict[tuple[tuple[int, int], ...], FloatArray] = {}
        self._gemv: dict[int, FloatArray] = {}

    def gemv_rows(self, below_m: int) -> FloatArray:
        """Per case: its rows where it runs as matrix-vector products (cost.gemv_rows), else 0."""
        if below_m not in self._gemv:
            self._gemv[below_m] = np.array([gemv_rows(c.op, below_m) for c in self.cases], dtype=float)
        return self._gemv[below_m]

    def waves(self, tiles: Sequence[MatmulTile]) -> FloatArray:
        key = tuple((t.m, t.n) for t in tiles)
        if key not in self._waves:
            sm = self.accelerator.sram.sm_count
            self._waves[key] = np.array(
                [wave_utilization(s.m, s.n, s.k, s.batch, sm, key) if (s := c.op.shape) is not None else 1.0
                 for c in self.cases]
            )  # fmt: skip
        return self._waves[key]

    def times(self, eff: EfficiencySpec) -> FloatArray:
        matmul = np.array([eff.matmul_fraction.get(k, eff.matmul_fraction["default"]) for k in self.dtype_keys])
        gemv = self.gemv_rows(eff.gemv_below_m)
        waves = np.where(gemv > 0, 1.0, self.waves(eff.matmul_tiles))
        fraction = np.where(self.is_matmul, matmul * waves, 1.0)
        fraction = np.where(self.is_attention, eff.attention_fraction, fraction)
        compute_s = self.flops / (self.peak * fraction)
        moved = self.bytes + gemv_extra_bytes(gemv, 1.0, self.weight_bytes)
        memory_s = moved / (self.accelerator.memory.bandwidth * eff.memory_bandwidth_fraction)
        if eff.decode_attention_memory_fraction is not None:  # cost.RooflineCostModel._decode_stream_timing
            stream = self.bytes / (self.accelerator.memory.bandwidth * eff.decode_attention_memory_fraction)
            memory_s = np.where(self.is_decode_attention, stream, memory_s)
        fixed_s = self.kernels * eff.kernel_overhead + gemv * self.n * eff.gemv_output_overhead
        return kernel_time_s(compute_s, memory_s, eff.overlap_exponent) + fixed_s


def relative_errors(predicted_s: FloatArray, measured_s: FloatArray) -> FloatArray:
    """Signed error of the prediction: predicted / measured - 1."""
    return predicted_s / measured_s - 1.0


@dataclass(frozen=True)
class ErrorSummary:
    count: int
    mean_abs: float
    median_abs: float
    max_abs: float

    @classmethod
    def of(cls, errors: FloatArray) -> ErrorSummary:
        if len(errors) == 0:
            return cls(0, math.nan, math.nan, math.nan)
        a = np.abs(errors)
        return cls(len(a), float(a.mean()), float(np.median(a)), float(a.max()))


# ---- the fit --------------------------------------------------------------------------------------

EXPONENTS = (1.0, 1.5, 2.0, 3.0, 4.0, 8.0)  # overlap_exponent choices (a grid: the fit is not smooth in p)
HUBER_DELTA = 0.1  # log-time residual (about 10%) beyond which a shape's pull grows linearly, not quadratically
IRLS_ROUNDS = 6


@dataclass(frozen=True)
class _Knobs:
    """The efficiency knobs one fit stage varies ("matmul:<format>", "memory", "attention",
    "decode_attention", "overhead", "gemv_output"); the rest stay as in the start point. Fractions
    are fitted through a logistic map (always in (0, 1)), times through their logarithm."""

    names: tuple[str, ...]

    def encode(self, eff: EfficiencySpec) -> FloatArray:
        """Start values, kept off the bounds so the fit can move them."""
        x = []
        for name in self.names:
            if name == "overhead":
                x.append(math.log(min(max(eff.kernel_overhead, 1e-6), 1e-3)))
            elif name == "gemv_output":
                x.append(math.log(min(max(eff.gemv_output_overhead, 1e-9), 1e-6)))
            else:
                x.append(_logit(min(max(self._fraction(eff, name), 0.02), 0.95)))
        return np.array(x, dtype=float)

    @staticmethod
    def _fraction(eff: EfficiencySpec, name: str) -> float:
        if name.startswith("matmul:"):
            return eff.matmul_fraction.get(name[7:], eff.matmul_fraction["default"])
        if name == "decode_attention":
            return eff.decode_attention_memory_fraction or eff.memory_bandwidth_fraction
        return eff.memory_bandwidth_fraction if name == "memory" else eff.attention_fraction

    def decode(self, x: FloatArray, start: EfficiencySpec) -> EfficiencySpec:
        update: dict[str, object] = {}
        fractions = dict(start.matmul_fraction)
        for name, value in zip(self.names, x, strict=True):
            if name == "overhead":
                update["kernel_overhead"] = min(max(math.exp(min(float(value), 0.0)), MIN_OVERHEAD_S), MAX_OVERHEAD_S)
            elif name == "gemv_output":
                update["gemv_output_overhead"] = min(math.exp(min(float(value), 0.0)), MAX_OVERHEAD_S)
            elif name.startswith("matmul:"):
                fractions[name[7:]] = _clip_fraction(_sigmoid(float(value)))
            else:
                update[_FRACTION_FIELDS[name]] = _clip_fraction(_sigmoid(float(value)))
        update["matmul_fraction"] = fractions
        return start.model_copy(update=update)


_FRACTION_FIELDS = {"memory": "memory_bandwidth_fraction", "attention": "attention_fraction",
                    "decode_attention": "decode_attention_memory_fraction"}  # fmt: skip


def _clip_fraction(f: float) -> float:
    return min(max(f, MIN_FRACTION), MAX_FRACTION)


def levenberg_marquardt(
    residuals: Callable[[FloatArray], FloatArray], x0: FloatArray, max_iter: int = 200, tol: float = 1e-10
) -> FloatArray:
    """Minimise sum(residuals(x)^2) from x0 (numerical Jacobian, adaptive damping)."""
    x = np.array(x0, dtype=float)
    r = residuals(x)
    cost = float(r @ r)
    damping, done = 1e-3, False
    for _ in range(max_iter):
        jac = np.empty((len(r), len(x)))
        for j in range(len(x)):
            h = 1e-6 * max(1.0, abs(x[j]))
            step = x.copy()
            step[j] += h
            jac[:, j] = (residuals(step) - r) / h
        grad, hess = jac.T @ r, jac.T @ jac
        improved = False
        while damping < 1e12:
            lhs = hess + damping * np.diag(np.diag(hess) + 1e-12)
            try:
                delta = np.linalg.solve(lhs, -grad)
            except np.linalg.LinAlgError:
                damping *= 10.0
                continue
            r_new = residuals(x + delta)
            cost_new = float(r_new @ r_new)
            if np.isfinite(cost_new) and cost_new < cost:
                x, r, damping, improved = x + delta, r_new, max(damping / 3.0, 1e-12), True
                done = cost - cost_new < tol * max(cost, 1e-30)
                cost = cost_new
                break
            damping *= 10.0
        if not improved or done:
            break
    return x


def huber(r: FloatArray, delta: float = HUBER_DELTA) -> float:
    """Sum of the Huber loss: r^2 / 2 within +-delta, linear beyond."""
    a = np.abs(r)
    return float(np.sum(np.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta))))


def _fit_stage(
    predictor: Predictor, mask: FloatArray, log_measured: FloatArray, start: EfficiencySpec, knobs: _Knobs
) -> tuple[float, EfficiencySpec]:
    """Robust least squares on log time over the cases in `mask`: Huber loss by iteratively
    reweighted Levenberg-Marquardt, so a few shapes the cost model cannot express (or a
    disturbed measurement) do not pull every knob. Returns (Huber loss, fitted block)."""

    def raw(x: FloatArray) -> FloatArray:
        return np.asarray(np.log(predictor.times(knobs.decode(x, start))[mask]) - log_measured[mask])

    def weighted(x: FloatArray, root: FloatArray) -> FloatArray:
        return root * raw(x)

    x, weights = knobs.encode(start), np.ones(int(np.count_nonzero(mask)))
    for _ in range(IRLS_ROUNDS):
        x = levenberg_marquardt(partial(weighted, root=np.sqrt(weights)), x)
        a = np.abs(raw(x))
        new = np.where(a <= HUBER_DELTA, 1.0, HUBER_DELTA / np.maximum(a, 1e-12))
        if np.allclose(new, weights, rtol=1e-3):
            break
        weights = new
    return huber(raw(x)), knobs.decode(x, start)


@dataclass(frozen=True)
class FitResult:
    before: EfficiencySpec
    after: EfficiencySpec
    predicted_before_s: FloatArray
    predicted_after_s: FloatArray
    measured_s: FloatArray
    fitted: tuple[bool, ...]  # per case: in the fit
    held_out: tuple[bool, ...]  # per case: left out of the fit (every third of each family)
    stream_memory_fraction: float = math.nan  # what copy/read/elementwise alone give (stage 1)

    @property
    def errors_before(self) -> FloatArray:
        return relative_errors(self.predicted_before_s, self.measured_s)

    @property
    def errors_after(self) -> FloatArray:
        return relative_errors(self.predicted_after_s, self.measured_s)

    def summary(self, which: str, after: bool, mask: Sequence[bool] | None = None) -> ErrorSummary:
        """Errors on the `fitted` or `held_out` cases (optionally narrowed by `mask`)."""
        chosen = np.array(getattr(self, which), dtype=bool)
        if mask is not None:
            chosen &= np.array(mask, dtype=bool)
        errors = self.errors_after if after else self.errors_before
        return ErrorSummary.of(errors[chosen])


STREAM_FAMILIES = (Family.COPY, Family.READ, Family.ELEMENTWISE)
MATMUL_EXTRA: tuple[str, ...] = ("memory",)


def fit_efficiency(
    cases: Sequence[BenchCase],
    measured_s: Sequence[float],
    accelerator: Accelerator,
    tile_candidates: Sequence[Sequence[MatmulTile]] | None = None,
    exponents: Sequence[float] = EXPONENTS,
    gemv_candidates: Sequence[int] = (0,),
    shared_from: DType | None = None,
    split_decode_attention: bool = False,
) -> FitResult:
    """Fit the accelerator's efficiency block to the measured times of the non-held-out cases,
    robust (Huber) least squares on log time, in three stages:

    1. copy, read and elementwise kernels: kernel_overhead (the fixed time per kernel) with a
       memory fraction of their own (`FitResult.stream_memory_fraction`);
    2. matmul shapes, that overhead fixed: matmul_fraction per measured format and
       memory_bandwidth_fraction (weight streaming of skinny GEMMs is what decode time is made
       of), for each overlap_exponent in `exponents`, tile set in `tile_candidates` (default:
       the accelerator's own) and matrix-vector threshold in `gemv_candidates` (gemv_below_m; a
       host's BLAS), the best kept; with `shared_from` (a host: the format its model-level runs
       compute in), the memory fraction, tiles, exponent and threshold come from that format's
       shapes alone and the other formats' fractions are fitted after them (a host's BLAS runs
       another format on another code path, whose small-M behaviour is not the model's);
    3. attention shapes: attention_fraction; with `split_decode_attention` (a host, whose decode
       attention is no fused kernel) the prefill shapes alone, then the decode shapes'
       decode_attention_memory_fraction (their KV stream).

    The start point (and the `before` errors) is the accelerator's own block; formats not
    measured keep their fraction.
    """
    measured = np.array(measured_s, dtype=float)
    usable = np.isfinite(measured) & (measured > 0)
    families = [c.family for c in cases]
    fit_family = np.array([f in FITTED_FAMILIES for f in families], dtype=bool)
    held_flag = np.array([c.held_out for c in cases], dtype=bool)
    fitted, held = usable & fit_family & ~held_flag, usable & fit_family & held_flag
    predictor = Predictor(cases, accelerator)
    before = accelerator.efficiency
    predicted_before = predictor.times(before) if len(cases) else np.zeros(0)
    log_measured = np.log(np.where(usable, measured, 1.0))

    def among(*wanted: Family) -> FloatArray:
        return fitted & np.array([f in wanted for f in families], dtype=bool)

    after, stream_fraction = before, math.nan
    streams = among(*STREAM_FAMILIES)
    if streams.any():
        after = _fit_stage(predictor, streams, log_measured, after, _Knobs(("memory", "overhead")))[1]
        stream_fraction = after.memory_bandwidth_fraction
    matmul = among(Family.MATMUL)
    if matmul.any():
        keys = np.array([c.op.dtype.compute_dtype.value for c in cases])
        formats = sorted(set(keys[matmul]))
        lead = matmul & (keys == shared_from.value) if shared_from is not None else matmul
        lead = lead if lead.any() else matmul
        lead_formats = sorted(set(keys[lead]))
        knobs = _Knobs(tuple(f"matmul:{f}" for f in lead_formats) + MATMUL_EXTRA)
        best: tuple[float, EfficiencySpec] | None = None
        for tiles in tile_candidates or [before.matmul_tiles]:
            for p in exponents:
                for below_m in gemv_candidates:
                    start = after.model_copy(update={"matmul_tiles": list(tiles), "overlap_exponent": p,
                                                     "gemv_below_m": below_m})  # fmt: skip
                    extra = _Knobs(knobs.names + ("gemv_output",)) if below_m > 1 else knobs
                    trial = _fit_stage(predictor, lead, log_measured, start, extra)
                    if best is None or trial[0] < best[0]:
                        best = trial
        assert best is not None
        after = best[1]
        rest = [f for f in formats if f not in lead_formats]
        if rest:  # the other formats' fractions, the shared knobs as the lead format set them
            after = _fit_stage(predictor, matmul & ~lead, log_measured, after,
                               _Knobs(tuple(f"matmul:{f}" for f in rest)))[1]  # fmt: skip
        after = _with_default(after, formats)
    attention = among(Family.ATTENTION)
    decode = attention & predictor.is_decode_attention
    if split_decode_attention and decode.any() and (attention & ~decode).any():
        after = _fit_stage(predictor, attention & ~decode, log_measured, after, _Knobs(("attention",)))[1]
        after = _fit_stage(predictor, decode, log_measured, after, _Knobs(("decode_attention",)))[1]
    elif attention.any():
        after = _fit_stage(predictor, attention, log_measured, after, _Knobs(("attention",)))[1]
    return FitResult(before, after, predicted_before, predictor.times(after), measured, tuple(fitted),
                     tuple(held), stream_fraction)  # fmt: skip


def _with_default(eff: EfficiencySpec, fitted_formats: Sequence[str]) -> EfficiencySpec:
    fractions = dict(eff.matmul_fraction)
    for preferred in ("bf16", "fp16", "fp32"):
        if preferred in fitted_formats:
            fractions["default"] = fractions[preferred]
            break
    return eff.model_copy(update={"matmul_fraction": fractions})


# gemv_below_m choices for a host profile: none, M = 1 only, or M < 4 (single-thread MKL fp32 reads
# the weights once per row up to M = 2 and packs them from M = 4); the fit keeps the best
HOST_GEMV_CANDIDATES = (0, 2, 4)


def single_tiles(sizes_m: Sequence[int] = (1, 4, 8, 16, 32), sizes_n: Sequence[int] = (1, 16, 64)) -> list[
    list[MatmulTile]
]:  # fmt: skip
    """One-tile choices for a host CPU profile (the fit keeps the one that explains the shapes best)."""
    return [[MatmulTile(m=m, n=n)] for m in sizes_m for n in sizes_n]
