"""Fit the attention curves (simulator/data/attention/kernels.yaml) on kernel measurements.

Rows: the `attention_kernel` rows of a kernels-aic.csv (AIConfigurator's TensorRT-LLM tables).
Each curve (family x phase x format) is fitted on a deterministic subset, the rows whose case
number is even (every other shape of each series: the rows are listed by shape), and the odd
rows are held out. The objective is the mean squared log error of latency, with every row timed
by the estimator's own path (`predict_attention.kernel_time_s`: the same op builders and
`RooflineCostModel.cost`) under the candidate curve. The optimiser is a plain Nelder-Mead from a
fixed start, so the fit is deterministic.

    python benchmarks/fit_attention.py ../shared/validation/kernels-aic.csv
prints the `families:` section of kernels.yaml (numbers and `fitted_on` lists) that the fit gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.simulator.attention_efficiency import AttentionCurves, DecodeCurve, PrefillCurve, load_curves
from roofline.simulator.cost import RooflineCostModel
from roofline.validation.cases import Case, read_cases
from roofline.validation.predict_attention import kernel_time_s, kv_format

PREFILL_START = (0.5, 5.0, 10.0)  # fraction, tile overhead (KV tiles), floor (us)
DECODE_START = (0.8, 10.0)  # bandwidth fraction, floor (us)


def is_fit_row(case: Case) -> bool:
    """The fit subset: even case numbers (ka01010, ka01012, ...)."""
    digits = "".join(ch for ch in case.case_id if ch.isdigit())
    return bool(digits) and int(digits) % 2 == 0


def curve_key(case: Case, curves: AttentionCurves) -> tuple[str, str, str] | None:
    """(family, phase, format) of the curve a row belongs to: context curves by the math format
    (FP8 with an FP8 cache), decode curves by the cache format."""
    member = curves.accelerators.get(case.hardware)
    if member is None or not member.measured:
        return None
    phase = case.load_fields.get("phase", "")
    fmt = kv_format(case).compute_dtype.value
    return member.family, phase, fmt


def nelder_mead(f: Callable[[list[float]], float], start: Sequence[float], step: float = 0.3,
                iterations: int = 400) -> list[float]:  # fmt: skip
    """Minimise f from `start` (deterministic: fixed simplex, fixed iteration count)."""
    n = len(start)
    simplex = [list(start)] + [[x + (step if i == j else 0.0) for j, x in enumerate(start)] for i in range(n)]
    values = [f(p) for p in simplex]
    for _ in range(iterations):
        order = sorted(range(n + 1), key=lambda i: values[i])
        simplex, values = [simplex[i] for i in order], [values[i] for i in order]
        centroid = [sum(p[j] for p in simplex[:-1]) / n for j in range(n)]
        worst = simplex[-1]

        def towards(t: float, worst: list[float] = worst, centroid: list[float] = centroid) -> list[float]:
            return [c + t * (w - c) for c, w in zip(centroid, worst, strict=True)]

        reflected = towards(-1.0)
        fr = f(reflected)
        if fr < values[0]:
            expanded = towards(-2.0)
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = towards(0.5)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                best = simplex[0]
                simplex = [best] + [[b + 0.5 * (x - b) for b, x in zip(best, p, strict=True)] for p in simplex[1:]]
                values = [values[0]] + [f(p) for p in simplex[1:]]
    return simplex[min(range(n + 1), key=lambda i: values[i])]


@dataclass(frozen=True)
class FittedCurve:
    family: str
    phase: str
    fmt: str
    params: tuple[float, ...]  # prefill: fraction, tile overhead, floor us; decode: bandwidth fraction, floor us
    fitted_on: tuple[str, ...]
    fit_error: float  # RMS log error on the fit rows


def _with(curves: AttentionCurves, family: str, phase: str, fmt: str, params: Sequence[float],
          fitted_on: Sequence[str], source: str) -> AttentionCurves:  # fmt: skip
    fam = curves.families[family]
    if phase == "prefill":
        prefill = dict(fam.prefill)
        prefill[fmt] = PrefillCurve(fraction=params[0], tile_overhead=params[1], floor_us=params[2],
                                    fitted_on=list(fitted_on), source=source)  # fmt: skip
        fam = fam.model_copy(update={"prefill": prefill})
    else:
        decode = dict(fam.decode)
        decode[fmt] = DecodeCurve(bandwidth_fraction=params[0], floor_us=params[1], fitted_on=list(fitted_on),
                                  source=source)  # fmt: skip
        fam = fam.model_copy(update={"decode": decode})
    return curves.model_copy(update={"families": {**curves.families, family: fam}})


def _params(phase: str, x: Sequence[float]) -> tuple[float, ...]:
    """Optimiser coordinates (logs) -> curve parameters (fractions capped at 1)."""
    if phase == "prefill":
        return min(1.0, math.exp(x[0])), math.exp(x[1]), math.exp(x[2])
    return min(1.0, math.exp(x[0])), math.exp(x[1])


def fit_curve(cases: Sequence[Case], family: str, phase: str, fmt: str, curves: AttentionCurves) -> FittedCurve:
    clusters = {c.hardware: resolve_cluster(c.hardware, num_gpus=1) for c in cases}
    ids = tuple(c.case_id for c in cases)

    def loss(x: list[float]) -> float:
        trial = _with(curves, family, phase, fmt, _params(phase, x), ids, "fit")
        models = {hw: RooflineCostModel(cl, attention_curves=trial) for hw, cl in clusters.items()}
        errors = [math.log(kernel_time_s(c, clusters[c.hardware], models[c.hardware])[0] * 1e6 / c.value)
                  for c in cases]  # fmt: skip
        return sum(e * e for e in errors) / len(errors)

    start = PREFILL_START if phase == "prefill" else DECODE_START
    best = nelder_mead(loss, [math.log(v) for v in start])
    return FittedCurve(family, phase, fmt, tuple(round(v, 4) for v in _params(phase, best)), ids,
                       math.sqrt(loss(best)))  # fmt: skip


def fit_rows(path: Path) -> dict[tuple[str, str, str], list[Case]]:
    """The fit rows of a kernel table, grouped by curve."""
    curves = load_curves()
    groups: dict[tuple[str, str, str], list[Case]] = {}
    for case in read_cases(path):
        if case.scenario != "attention_kernel" or case.metric != "latency_us" or not is_fit_row(case):
            continue
        key = curve_key(case, curves)
        if key is not None:
            groups.setdefault(key, []).append(case)
    if not groups:
        raise RooflineError(f"'{path}' has no attention_kernel latency rows on a measured family")
    return groups


def fit_all(path: Path) -> list[FittedCurve]:
    curves = load_curves()
    return [fit_curve(rows, *key, curves) for key, rows in sorted(fit_rows(path).items())]


FIT_SOURCE = (
    "fitted by roofline.validation.attention_fit on kernels-aic.csv (AIConfigurator 0.12.0, "
    "TensorRT-LLM 1.3.0rc20 {table}) {hardware} rows with even case numbers (odd ones held out); "
    "RMS log error {error:.3f}"
)


def yaml_families(fitted: Sequence[FittedCurve], path: Path) -> str:
    """The `families:` section of kernels.yaml for these fits (what the committed file holds)."""
    hardware = {c.hardware for c in read_cases(path) if c.scenario == "attention_kernel"}
    curves = load_curves()
    lines = ["families:"]
    for family in sorted({f.family for f in fitted}):
        members = sorted(h for h in hardware if h in curves.accelerators and curves.accelerators[h].family == family)
        title = f"fitted on kernels-aic.csv {' + '.join(members)} attention_kernel rows"
        lines += [f"  {family}:", f'    source: "{title}"']
        for phase in ("prefill", "decode"):
            lines.append(f"    {phase}:")
            table = "context_attention_perf" if phase == "prefill" else "generation_attention_perf"
            for f in (x for x in fitted if x.family == family and x.phase == phase):
                names = ("fraction", "tile_overhead", "floor_us") if phase == "prefill" else (
                    "bandwidth_fraction", "floor_us")  # fmt: skip
                values = ", ".join(f"{n}: {v}" for n, v in zip(names, f.params, strict=True))
                source = FIT_SOURCE.format(table=table, hardware=" + ".join(members), error=f.fit_error)
                lines += [f"      {f.fmt}:", f"        {values.replace(', ', chr(10) + '        ')}",
                          f"        fitted_on: [{', '.join(f.fitted_on)}]", f'        source: "{source}"']  # fmt: skip
    return "\n".join(lines) + "\n"
