"""Fit GEMM efficiency curves (simulator.gemm_efficiency) from a measured kernel table.

The table is any measurements file in the validation schema (`roofline validate --data`): its
`gemm` rows (metric `latency_us` or `tflops`, load `MxNxK`) on accelerators of the catalog. Rows are
grouped by architecture family and math format (FP8 scaling from the notes: `quant=fp8_block` or
"block scaling" = block-scaled, else per-tensor). For each group the four curve numbers (fraction,
k_half, k_step_s, latency_s) are fitted by Levenberg-Marquardt least squares on log time, with the
accelerator's own peak, HBM bandwidth x memory fraction, SM count, tiles, kernel overhead and overlap
exponent -- the same formula the cost model evaluates. Deterministic: fixed start, fixed steps.

Fitted vs held out: with `hold_out="shapes"` every other (N, K) shape of a group (in sorted order)
is held out, so every curve is checked on shapes it never saw; the YAML lists both sets of case ids.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import get_accelerator
from roofline.hardware_specs.cluster import resolve_cluster
from roofline.hardware_specs.schema import Accelerator
from roofline.ir import Op
from roofline.simulator.cost import shared_cost_model, wave_utilization
from roofline.simulator.gemm_efficiency import BEST_CASE_KERNEL, format_key, gemm_op, scale_bytes
from roofline.simulator.plan import ParallelPlan
from roofline.validation.cases import Case, read_cases
from roofline.validation.harness import timing_overhead_s
from roofline.workloads.quantize import quantize_op
from roofline.yaml_io import dump_yaml

OUTPUT_BYTES = 2.0  # C is written in 16 bits
START = (0.7, 512.0, 1e-9, 1e-6)  # fraction, k_half, k_step_s, latency_s: where every fit starts
PRIOR_WEIGHT = 1e-3  # a faint pull of log-parameters to START: keeps unobservable ones finite
ITERATIONS = 80


def scaling_of(case: Case) -> str | None:
    """FP8 scaling mode of a GEMM row from its notes: `quant=fp8_block` or a note of fine-grained /
    block scaling (DeepGEMM rows of kernels.csv) -> "block"; other fp8 rows -> "tensor"."""
    if case.weight_dtype is None or case.weight_dtype.compute_dtype is not DType.FP8:
        return None
    notes = case.notes.lower()
    if "quant=fp8_block" in notes or "block scaling" in notes or "block-scaled" in notes:
        return "block"
    return "tensor"


# GEMM library of a row by its publication (lower-case text of `source`): DeepGEMM's README tables; the
# best-case BLAS microbenchmarks (MAMF max-achievable-matmul search with torch.mm; Azure's cuBLASLt GEMM
# benchmark), which time the vendor BLAS at its best tile choice, not a serving runtime's GEMM path.
KERNEL_BY_SOURCE = {
    "deepgemm": "deepgemm",
    "ml-engineering": BEST_CASE_KERNEL,
    "ai-benchmarking-guide": BEST_CASE_KERNEL,
}


def kernel_of(case: Case) -> str | None:
    """The GEMM library of a row where it is not the runtime's default path: `kernel_source=` of the
    notes (AIC; `torch_flow` is the default path -> None), else by the publication (KERNEL_BY_SOURCE)."""
    for item in case.notes.split(";"):
        key, _, value = item.strip().partition("=")
        if key == "kernel_source":
            return None if value.strip() == "torch_flow" else value.strip()
    source = case.source.lower()
    return next((kernel for marker, kernel in KERNEL_BY_SOURCE.items() if marker in source), None)


@dataclass(frozen=True)
class GemmRow:
    """One measured GEMM on one accelerator."""

    case_id: str
    accelerator: Accelerator
    dtype: DType
    scaling: str | None
    m: int
    n: int
    k: int
    time_s: float
    kernel: str | None = None
    quantize_s: float = 0.0  # the activation-quantise pass the timed call includes (cost model's time)
    harness_s: float = 0.0  # what the row's timing method adds (validation.harness)

    @property
    def key(self) -> str:
        key = format_key(self.dtype, self.scaling)
        return f"{key}@{self.kernel}" if self.kernel else key


def gemm_rows(cases: Iterable[Case]) -> list[GemmRow]:
    """The timed GEMM rows of a file (latency_us, or tflops turned into time); other rows are skipped."""
    rows = []
    for case in cases:
        if (
            case.scenario != "gemm"
            or case.metric not in ("latency_us", "tflops")
            or kernel_of(case) == BEST_CASE_KERNEL
        ):
            continue  # best-case BLAS rows are the accelerator's matmul_fraction, not a curve
        m, n, k = case.gemm_shape
        time_s = case.value * 1e-6 if case.metric == "latency_us" else 2.0 * m * n * k / (case.value * 1e12)
        dtype = case.weight_dtype or DType.BF16
        accelerator, scaling, kernel = get_accelerator(case.hardware), scaling_of(case), kernel_of(case)
        quantize_s = input_quantize_s(case, gemm_op(m, n, k, dtype, scaling, kernel), accelerator)
        harness_s = timing_overhead_s(case)
        rows.append(GemmRow(case.case_id, accelerator, dtype, scaling, m, n, k, time_s, kernel, quantize_s, harness_s))
    return rows


def times_linear_forward(case: Case) -> bool:
    """The row timed TensorRT-LLM's Linear.forward on a bf16 input (AIC gemm rows: notes carry
    `kernel_source=`), which quantises the input itself before a low-precision GEMM."""
    return "kernel_source=" in case.notes


def input_quantize_s(case: Case, gemm: Op, accelerator: Accelerator) -> float:
    """Seconds of the activation-quantise pass inside the row's timed call, as the cost model prices
    it (workloads.quantize); 0 for rows that time the GEMM alone or a bf16 GEMM."""
    if not times_linear_forward(case):
        return 0.0
    quantize = quantize_op(gemm, fused_too=True)
    if quantize is None:
        return 0.0
    return shared_cost_model(resolve_cluster(hardware=accelerator), ParallelPlan()).cost(quantize).total_s


def family_of(accelerator: Accelerator) -> str:
    """The family a part's curves belong to: the packaged family it maps to, else the first word of
    its architecture ("Ampere")."""
    from roofline.simulator.gemm_efficiency import curves_for

    family = curves_for(accelerator.architecture)
    return family.family if family is not None else accelerator.architecture.split()[0].lower()


# ---- the model (the cost model's formula, on numpy arrays) ---------------------------------------


class _Arrays:
    """Per-row constants of the cost formula."""

    def __init__(self, rows: Sequence[GemmRow]) -> None:
        import numpy as np

        self.k = np.array([r.k for r in rows], float)
        self.flops = np.array([2.0 * r.m * r.n * r.k for r in rows])
        self.log_time = np.log([r.time_s for r in rows])
        self.extra_s = np.array([r.quantize_s + r.harness_s for r in rows])
        peaks, memory, waves, overhead, exponent = [], [], [], [], []
        for r in rows:
            acc = r.accelerator
            peak = acc.compute.peak_flops_per_s(r.dtype.compute_dtype)
            if peak is None:
                raise RooflineError(f"row {r.case_id}: {acc.id} has no {r.dtype.value} tensor-core math")
            eff = acc.efficiency
            peaks.append(peak)
            moved = (r.m * r.k + r.k * r.n) * r.dtype.bytes_per_element + r.m * r.n * OUTPUT_BYTES
            moved += scale_bytes(r.m, r.n, r.k, r.dtype, r.scaling)
            memory.append(moved / (acc.memory.bandwidth * eff.memory_bandwidth_fraction))
            tiles = [(t.m, t.n) for t in eff.matmul_tiles]
            waves.append(wave_utilization(r.m, r.n, r.k, 1, acc.sram.sm_count, tiles))
            overhead.append(eff.kernel_overhead)
            exponent.append(eff.overlap_exponent)
        self.peak, self.memory_s = np.array(peaks), np.array(memory)
        self.wave, self.overhead_s, self.p = np.array(waves), np.array(overhead), np.array(exponent)

    def time_s(self, fraction: float, k_half: float, k_step_s: float, latency_s: float) -> Any:
        import numpy as np

        compute = self.flops / (self.peak * fraction * self.wave * (self.k / (self.k + k_half)))
        compute = np.maximum(compute, self.k * k_step_s)
        big = np.maximum(compute, self.memory_s)
        pnorm = big * ((compute / big) ** self.p + (self.memory_s / big) ** self.p) ** (1.0 / self.p)
        return pnorm + self.overhead_s + latency_s + self.extra_s


def _params(theta: Any) -> tuple[float, float, float, float]:
    fraction, k_half, k_step_s, latency_s = (math.exp(float(t)) for t in theta)
    return min(fraction, 1.0), k_half, k_step_s, latency_s


def fit_curve(rows: Sequence[GemmRow]) -> tuple[tuple[float, float, float, float], float]:
    """The four curve numbers that best fit these rows in log time, and the rms log error."""
    import numpy as np

    data = _Arrays(rows)
    start = np.log(START)
    scale = math.sqrt(PRIOR_WEIGHT)

    def residuals(theta: Any) -> Any:
        model = np.log(data.time_s(*_params(theta)))
        return np.concatenate([model - data.log_time, scale * (theta - start)])

    theta, damping = start.copy(), 1e-2
    current = residuals(theta)
    for _ in range(ITERATIONS):
        jacobian = np.empty((len(current), len(theta)))
        for j in range(len(theta)):
            step = np.zeros_like(theta)
            step[j] = 1e-6
            jacobian[:, j] = (residuals(theta + step) - current) / 1e-6
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ current
        trial = theta - np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-12), gradient)
        trial[0] = min(trial[0], 0.0)  # fraction <= 1
        trial_residuals = residuals(trial)
        if trial_residuals @ trial_residuals < current @ current:
            theta, current, damping = trial, trial_residuals, damping * 0.3
        else:
            damping *= 10.0
    fit_error = np.log(data.time_s(*_params(theta))) - data.log_time
    return _params(theta), float(np.sqrt(np.mean(fit_error**2)))


# ---- splitting, grouping, writing ----------------------------------------------------------------


def split_rows(rows: Sequence[GemmRow], hold_out: str) -> tuple[list[GemmRow], list[GemmRow]]:
    """(fitted, held out). `hold_out="shapes"`: every other (N, K) of the group in sorted order is
    held out (the first kept); "none": all rows fitted."""
    if hold_out == "none":
        return list(rows), []
    if hold_out != "shapes":
        raise RooflineError(f"unknown hold-out rule '{hold_out}'; use 'shapes' or 'none'")
    shapes = sorted({(r.n, r.k) for r in rows})
    held = set(shapes[1::2])
    return [r for r in rows if (r.n, r.k) not in held], [r for r in rows if (r.n, r.k) in held]


def group_rows(rows: Iterable[GemmRow]) -> dict[tuple[str, str], list[GemmRow]]:
    """Rows by (family, format key), in file order."""
    groups: dict[tuple[str, str], list[GemmRow]] = defaultdict(list)
    for row in rows:
        groups[(family_of(row.accelerator), row.key)].append(row)
    return dict(groups)


def id_ranges(case_ids: Iterable[str]) -> list[str]:
    """Case ids as a short list: runs of consecutive ids with one prefix become `first..last`."""
    parsed = []
    for case_id in case_ids:
        match = re.fullmatch(r"(.*?)(\d+)", case_id)
        parsed.append((match.group(1), int(match.group(2)), len(match.group(2))) if match else (case_id, -1, 0))
    out: list[str] = []
    run: list[tuple[str, int, int]] = []

    def close() -> None:
        if run:
            first, last = (f"{p}{n:0{w}d}" for p, n, w in (run[0], run[-1]))
            out.append(first if len(run) == 1 else f"{first}..{last}")
            run.clear()

    for item in sorted(parsed):
        if item[1] < 0:
            close()
            out.append(item[0])
        elif run and item[0] == run[-1][0] and item[2] == run[-1][2] and item[1] == run[-1][1] + 1:
            run.append(item)
        else:
            close()
            run.append(item)
    close()
    return out


def expand_ids(items: Iterable[str]) -> set[str]:
    """The case ids an `id_ranges` list names (`ka00001..ka00003` -> ka00001, ka00002, ka00003)."""
    out = set()
    for item in items:
        first, sep, last = item.partition("..")
        if not sep:
            out.add(item)
            continue
        head, tail = re.fullmatch(r"(.*?)(\d+)", first), re.fullmatch(r"(.*?)(\d+)", last)
        if head is None or tail is None or head.group(1) != tail.group(1):
            raise RooflineError(f"'{item}' is not a range of case ids with one prefix")
        width = len(head.group(2))
        out.update(f"{head.group(1)}{i:0{width}d}" for i in range(int(head.group(2)), int(tail.group(2)) + 1))
    return out


def fit_table(rows: Sequence[GemmRow], hold_out: str = "shapes") -> dict[str, dict[str, dict[str, Any]]]:
    """{family: {format key: curve fields}} fitted from the rows."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (family, key), group in sorted(group_rows(rows).items()):
        out[family][key] = _curve_fields(group, hold_out)
    return dict(out)


def curve_file_data(family: str, curves: dict[str, dict[str, Any]], source: str, architectures: Sequence[str],
                    measured_on: Sequence[str], note: str = "") -> dict[str, Any]:  # fmt: skip
    """The YAML mapping of one family's curve file (simulator.gemm_efficiency.GemmCurveFile). A format
    measured only through a named library (`fp8_block@deepgemm` on Blackwell: TensorRT-LLM runs its
    block-scaled FP8 GEMMs on DeepGEMM there) is that format's default (an alias)."""
    aliases = {"fp16": "bf16"}
    for key in sorted(curves):
        plain, _, kernel = key.partition("@")
        if kernel and plain not in curves:
            aliases.setdefault(plain, key)
    return {"kind": "gemm_curves", "family": family, "architectures": list(architectures),
            "measured_on": list(measured_on), "aliases": aliases, "formats": curves,
            "source": source, "note": note}  # fmt: skip


def read_table(path: Path) -> list[GemmRow]:
    """The GEMM rows of a measurements file; RooflineError (one line) when it has none."""
    rows = gemm_rows(read_cases(path))
    if not rows:
        raise RooflineError(
            f"'{path}' has no gemm rows with latency_us or tflops to fit (best-case BLAS benchmark rows are not)"
        )
    return rows


def write_curve_file(path: Path, data: dict[str, Any]) -> None:
    path.write_text(dump_yaml(data), encoding="utf-8")


# ---- calibrate --kernel-table: curves of the very parts a table measured --------------------------


def fit_by_accelerator(rows: Sequence[GemmRow], hold_out: str = "none") -> dict[str, dict[str, dict[str, Any]]]:
    """{accelerator id: {format key: curve fields}}: each part's own curves (calibrate --kernel-table)."""
    by_part: dict[str, list[GemmRow]] = defaultdict(list)
    for row in rows:
        by_part[row.accelerator.id].append(row)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for part, part_rows in sorted(by_part.items()):
        groups: dict[str, list[GemmRow]] = defaultdict(list)
        for row in part_rows:
            groups[row.key].append(row)
        out[part] = {key: _curve_fields(group, hold_out) for key, group in sorted(groups.items())}
    return out


def _curve_fields(group: Sequence[GemmRow], hold_out: str) -> dict[str, Any]:
    fitted, held = split_rows(group, hold_out)
    (fraction, k_half, k_step_s, latency_s), rms = fit_curve(fitted)
    return {
        "fraction": round(fraction, 4), "k_half": round(k_half, 1), "k_step_s": float(f"{k_step_s:.4g}"),
        "latency_s": float(f"{latency_s:.4g}"), "rms_log_error": round(rms, 4),
        "fitted_on": id_ranges(r.case_id for r in fitted), "held_out": id_ranges(r.case_id for r in held),
    }  # fmt: skip


def kernel_table_profile(accelerator: Accelerator, curves: dict[str, dict[str, Any]], table: Path) -> dict[str, Any]:
    """A `base:` accelerator profile: the catalog part with its own GEMM curves from the table."""
    return {
        "kind": "accelerator", "base": accelerator.id, "id": f"{accelerator.id}-kernel-table",
        "name": f"{accelerator.name} (GEMM curves from {table.name})",
        "efficiency": {"gemm_curves": curves},
    }  # fmt: skip


def add_curves_to_profile(profile: Path, curves: dict[str, dict[str, Any]]) -> None:
    """Write the curves into a calibrated profile YAML (efficiency.gemm_curves), beside what the
    device runs fitted."""
    from roofline.yaml_io import read_yaml

    data = read_yaml(profile)
    data.setdefault("efficiency", {})["gemm_curves"] = curves
    write_curve_file(profile, data)
