"""Fit the one-shot / two-shot custom all-reduce of a communication library (CustomAllReduceSpec)
from measured all-reduce latencies in the validation schema (e.g. AIConfigurator's TensorRT-LLM
`custom_allreduce_perf` rows in kernels-aic.csv).

Per NVLink generation, four numbers: launch latency, latency per peer, and the bandwidth fraction
of each kernel. The base library's own algorithms stay as they are and take part (the library
picks the fastest, as TensorRT-LLM's AUTO strategy does), so the fit sees exactly what a prediction
computes. Every `hold_out`-th message size of each (hardware, GPU count) series is held out of the
fit. The search is a fixed grid (deterministic), minimising the mean |log(predicted / measured)|.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from roofline.hardware_specs import resolve_cluster
from roofline.ir import CollectiveKind
from roofline.simulator.collectives import CollectiveModel, _bandwidth, group_topology, load_library
from roofline.validation.cases import Case

LAUNCH_GRID_US = tuple(round(1.0 + 0.1 * i, 1) for i in range(61))  # 1.0 .. 7.0 us
PEER_GRID_US = tuple(round(0.05 * i, 2) for i in range(21))  # 0 .. 1.0 us
FRACTION_GRID = tuple(round(0.05 + 0.025 * i, 3) for i in range(39))  # 0.05 .. 1.0


@dataclass(frozen=True)
class CustomAllReduceFit:
    link: str
    launch_latency_us: float
    peer_latency_us: float
    oneshot_fraction: float
    twoshot_fraction: float
    fitted_on: tuple[str, ...]
    held_out: tuple[str, ...]
    mean_abs_log_error: float


@dataclass(frozen=True)
class _Row:
    case_id: str
    n: int
    size_bytes: float
    measured_s: float
    bandwidth_bytes_per_s: float  # per-GPU NVLink toward n - 1 peers
    base_s: float  # the base library's fastest time


def split_rows(cases: Sequence[Case], hold_out: int = 2) -> tuple[list[Case], list[Case]]:
    """(fit, held-out): the latency rows of each (hardware, num_gpus) series by size, every
    `hold_out`-th one held out (the second, fourth, ... with hold_out 2)."""
    series: dict[tuple[str, int], list[Case]] = {}
    for case in cases:
        if case.scenario == "allreduce" and case.metric == "latency_us":
            series.setdefault((case.hardware, case.num_gpus), []).append(case)
    fit: list[Case] = []
    held: list[Case] = []
    for rows in series.values():
        for index, case in enumerate(sorted(rows, key=lambda c: float(c.load_value or 0))):  # type: ignore[arg-type]
            (held if index % hold_out == hold_out - 1 else fit).append(case)
    return fit, held


def _rows(cases: Sequence[Case], base_library: str) -> dict[str, list[_Row]]:
    """The fit rows grouped by the NVLink generation of their hardware."""
    model = CollectiveModel(load_library(base_library))
    by_link: dict[str, list[_Row]] = {}
    for case in cases:
        cluster = resolve_cluster(hardware=case.hardware, num_gpus=case.num_gpus)
        topo = group_topology(cluster, case.num_gpus)
        size = float(case.load_value)  # type: ignore[arg-type]
        base = model.cost(CollectiveKind.ALL_REDUCE, size, topo).time_s
        bandwidth = _bandwidth(topo.intra, case.num_gpus - 1, True)
        row = _Row(case.case_id, case.num_gpus, size, case.value * 1e-6, bandwidth, base)
        by_link.setdefault(topo.intra.link.id, []).append(row)
    return by_link


def _fit_link(link: str, rows: list[_Row]) -> CustomAllReduceFit:
    import numpy as np

    n = np.array([r.n for r in rows], dtype=float)
    size = np.array([r.size_bytes for r in rows])
    measured = np.array([r.measured_s for r in rows])
    bandwidth = np.array([r.bandwidth_bytes_per_s for r in rows])
    base = np.array([r.base_s for r in rows])
    fractions = np.array(FRACTION_GRID)
    one_bytes = ((n - 1) * size / bandwidth)[None, :] / fractions[:, None]  # [fraction, row]
    two_bytes = (2 * (n - 1) / n * size / bandwidth)[None, :] / fractions[:, None]
    best = (np.inf, 0.0, 0.0, 0.0, 0.0)
    for launch_us in LAUNCH_GRID_US:
        for peer_us in PEER_GRID_US:
            lat1 = launch_us * 1e-6 + (n - 1) * peer_us * 1e-6
            lat2 = launch_us * 1e-6 + 2 * (n - 1) * peer_us * 1e-6
            one = np.minimum(lat1 + one_bytes, base)  # [f1, row]
            two = lat2 + two_bytes  # [f2, row]
            time = np.minimum(one[:, None, :], two[None, :, :])  # [f1, f2, row]
            error = np.abs(np.log(time / measured)).mean(axis=2)
            i, j = np.unravel_index(int(np.argmin(error)), error.shape)
            if error[i, j] < best[0] - 1e-12:
                best = (float(error[i, j]), launch_us, peer_us, float(fractions[i]), float(fractions[j]))
    error, launch_us, peer_us, f1, f2 = best
    return CustomAllReduceFit(link, launch_us, peer_us, f1, f2, tuple(r.case_id for r in rows), (), error)


def fit_custom_all_reduce(cases: Sequence[Case], base_library: str = "nccl", hold_out: int = 2
                          ) -> list[CustomAllReduceFit]:  # fmt: skip
    """One fit per NVLink generation of the all-reduce latency rows in `cases` (every
    `hold_out`-th size held out, listed in each fit's `held_out`)."""
    fit, held = split_rows(cases, hold_out)
    held_by_link = _rows(held, base_library)
    results = []
    for link, rows in sorted(_rows(fit, base_library).items()):
        result = _fit_link(link, rows)
        held_ids = tuple(r.case_id for r in held_by_link.get(link, []))
        results.append(CustomAllReduceFit(**{**result.__dict__, "held_out": held_ids}))
    return results
