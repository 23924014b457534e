"""Fit of the grouped-GEMM efficiencies (simulator/data/grouped_gemm.yaml) from kernel rows.

Rows are grouped by (kernel family, architecture, format key); in each group, ordered by case id,
every other row is fitted (the first, third, ...) and the rest held out. For one group the fit
finds the compute fraction (of the tensor-core peak, on the padded tile math), the memory
fraction (of HBM bandwidth), the overlap exponent, the per-tile overhead in K steps and the fixed
latency per launch that minimise the mean |log(predicted / measured)| of the fitted rows, on grids
(coarse, then finer around the best); every other op of a row (top-k, permute, finalize, launch overheads) is
timed as the estimator times it. Deterministic and re-runnable: `fit_rows(cases, build)`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy

from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster, resolve_cluster
from roofline.ir import Op
from roofline.simulator.cost import RooflineCostModel, kernel_time_s
from roofline.simulator.grouped_gemm import architecture_key, split_kind, tile_flops
from roofline.validation.cases import Case

COARSE = [i / 20 for i in range(1, 21)]  # 0.05 .. 1.00, then 0.01 steps around the best
# No kernel streams HBM faster than a copy does: STREAM copy / triad reach 0.87 of spec on H100
# (hardware_specs h100-sxm.yaml), a D2D copy 0.90 on B300; the memory fraction stays at or below 0.90.
MEMORY_CAP = 0.90


@dataclass(frozen=True)
class RowTerms:
    """One row's time as a function of the two fractions: other_s + sum over its grouped GEMMs of
    p-norm(compute_s / fc, memory_s / fm) + overhead."""

    case_id: str
    measured_s: float
    other_s: float
    gemms: tuple[tuple[float, float, float], ...]  # (compute_s at fraction 1 and no tile overhead, k, memory_s)
    overlap_exponent: float
    launches: int  # grouped-GEMM launches (each pays the fixed latency)
    resident: int = 0  # over the grouped-GEMM launches: the experts on the GPU (each pays its setup)

    def predict_s(self, fc: float, fm: float, k0: float = 0.0, latency_s: float = 0.0, p: float | None = None,
                  setup_s: float = 0.0) -> float:  # fmt: skip
        p = self.overlap_exponent if p is None else p
        gemm = sum(kernel_time_s(c * (k + k0) / k / fc, m / fm, p) for c, k, m in self.gemms)
        return self.other_s + gemm + self.launches * latency_s + self.resident * setup_s


def row_terms(case: Case, ops: list[Op], cluster: Cluster, measured_s: float, per_kernel_s: float) -> tuple[
        str, RowTerms]:  # fmt: skip
    """The group key (family, architecture, format) and the row's terms."""
    model = RooflineCostModel(cluster)
    acc = cluster.accelerator
    key, other, gemms, launches, resident = "", 0.0, [], 0, 0
    for op in ops:
        other += per_kernel_s * op.kernels * op.count
        kernel = model.grouped_kernel(op)
        if kernel is None or op.shape is None:
            other += model.cost(op).total_s
            continue
        name, fmt = split_kind(op.shape.grouped)
        key = f"{name}/{architecture_key(acc.architecture)}/{fmt or model.math_dtype(op.dtype).value}"
        s = op.shape
        compute_s = tile_flops(s.m, s.n, s.k, s.batch, acc.sram.sm_count, kernel.tile_m, kernel.tile_n)
        compute_s /= model.peak_flops_per_s(op.dtype)
        gemms.append((compute_s * op.count, float(s.k), op.bytes / acc.memory.bandwidth * op.count))
        other += op.kernels * op.count * model.cluster.accelerator.efficiency.kernel_overhead
        launches += op.kernels * op.count
        resident += op.kernels * op.count * s.resident_groups
    if not key:
        raise RooflineError(f"row {case.case_id}: no grouped GEMM")
    return key, RowTerms(case.case_id, measured_s, other, tuple(gemms), acc.efficiency.overlap_exponent, launches,
                         resident)  # fmt: skip


Fit = tuple[float, float, float, float, float, float]  # compute fraction, memory fraction, overlap exponent,
# per-tile overhead in K steps, fixed latency per launch in us, setup per launch and resident expert in us
# Overlap exponents tried: 2 (the accelerators' default) to nearly max() (a warp-specialized kernel
# that loads the next tile while it multiplies this one).
OVERLAP = (2.0, 3.0, 4.0, 8.0)
# Per CTA tile: its prologue (pipeline fill) and epilogue (output tile written, SwiGLU / scales) in
# K steps; a GEMM with a short K, or many experts each with a part-empty tile, spends a larger share
# there. Per launch: the grouped kernel's fixed latency (group / TMA-descriptor setup, tail of the
# last wave) beyond the accelerator's launch overhead.
TILE_OVERHEAD_K = (0.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0)
LATENCY_US = (0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0)
# Per launch and expert held on the GPU, empty ones included: the per-expert setup of the fused MoE
# and its grouped GEMM. The same routed rows with 128 instead of 16 experts on the GPU cost 0-7 us
# more in bf16 / FP8 and 20-40 us more in block-scaled FP8 and NVFP4 in AIC's Qwen3-30B rows (T = 1
# at ep 1 against T = 8 at ep 8): up to ~0.2 us per expert and launch.
EXPERT_SETUP_US = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)


def _losses(rows: list[RowTerms], fc: Any, fm: Any, p: float, k0: float, latency_us: float,
            setup_us: float = 0.0) -> Any:  # fmt: skip
    """Mean |log(predicted / measured)| over the rows, element-wise over arrays of fractions."""
    total: Any = 0.0
    for r in rows:
        gemm: Any = 0.0
        for c, k, m in r.gemms:
            gemm = gemm + kernel_time_s(c * (k + k0) / k / fc, m / fm, p)
        fixed = (r.launches * latency_us + r.resident * setup_us) * 1e-6
        total = total + abs(numpy.log((r.other_s + gemm + fixed) / r.measured_s))
    return total / len(rows)


def fit_group(rows: list[RowTerms]) -> Fit:
    """(compute fraction, memory fraction, overlap exponent, tile overhead K, latency us, expert setup
    us), least mean |log error|: fractions on a 0.05 grid for each exponent, tile overhead, latency
    and setup of the grids above, then 0.01 apart within 0.05 of the best; ties: the first (numpy
    argmin)."""
    grid = numpy.array(COARSE)
    mem_grid = numpy.array([x for x in COARSE if x <= MEMORY_CAP])
    best: tuple[float, Fit] | None = None
    for p, k0, lat, setup in itertools.product(OVERLAP, TILE_OVERHEAD_K, LATENCY_US, EXPERT_SETUP_US):
        loss = _losses(rows, grid[:, None], mem_grid[None, :], p, k0, lat, setup)
        i, j = numpy.unravel_index(int(numpy.argmin(loss)), loss.shape)
        if best is None or float(loss[i, j]) < best[0]:
            best = (float(loss[i, j]), (float(grid[i]), float(mem_grid[j]), p, k0, lat, setup))
    assert best is not None
    fc, fm, p, k0, lat, setup = best[1]
    fine = lambda x, top: numpy.array([round(x + i / 100, 2) for i in range(-5, 6) if 0.01 <= x + i / 100 <= top])  # noqa: E731
    a, b = fine(fc, 1.0), fine(fm, MEMORY_CAP + 1e-9)
    loss = _losses(rows, a[:, None], b[None, :], p, k0, lat, setup)
    i, j = numpy.unravel_index(int(numpy.argmin(loss)), loss.shape)
    return float(a[i]), float(b[j]), p, k0, lat, setup


def split_fit(case_ids: list[str]) -> set[str]:
    """The fitted half of one group: every other row in case-id order, starting with the first."""
    return set(sorted(case_ids)[::2])


def fit_rows(cases: Iterable[Case], build: Callable[[Case], tuple[list[Op], float, float]]) -> dict[
        str, tuple[Fit, list[str]]]:  # fmt: skip
    """group key -> (fit, fitted case ids). `build(case)` gives a row's ops, its measured seconds
    and what its timing method adds per kernel."""
    groups: dict[str, list[RowTerms]] = {}
    for case in cases:
        ops, measured_s, per_kernel_s = build(case)
        cluster = resolve_cluster(hardware=case.hardware)
        key, terms = row_terms(case, ops, cluster, measured_s, per_kernel_s)
        groups.setdefault(key, []).append(terms)
    out = {}
    for key, rows in sorted(groups.items()):
        chosen = split_fit([r.case_id for r in rows])
        fitted = [r for r in rows if r.case_id in chosen]
        out[key] = (fit_group(fitted), sorted(chosen))
    return out


def compress(case_ids: list[str]) -> list[str]:
    """Sorted ids, runs of consecutive numbers with one prefix as 'first..last' (fitted_on format)."""
    out: list[str] = []
    run: list[str] = []

    def number(cid: str) -> tuple[str, int]:
        digits = len(cid) - len(cid.lstrip("abcdefghijklmnopqrstuvwxyz"))
        return cid[:digits], int(cid[digits:])

    for cid in sorted(case_ids):
        if run and number(run[-1])[0] == number(cid)[0] and number(run[-1])[1] + 1 == number(cid)[1]:
            run.append(cid)
            continue
        if run:
            out.append(run[0] if len(run) == 1 else f"{run[0]}..{run[-1]}")
        run = [cid]
    if run:
        out.append(run[0] if len(run) == 1 else f"{run[0]}..{run[-1]}")
    return out
