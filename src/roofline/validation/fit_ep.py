"""Fit of the EP dispatch / combine constants (simulator/data/comm/deepep.yaml, trtllm.yaml) on the
kernels.csv rows of scenario ep_dispatch / ep_combine.

Deterministic split: per kernel family (load `mode`), the rows in file order, every other one
(the 1st, 3rd, ...) is fitted and the rest held out. Each row's time is its latency_us, or its
bandwidth turned back into a time with the source's own definition (predict_ep). Then, with the
model's per-row link terms (bytes / nominal link bandwidth, from ep_comm.traffic):

- normal: grid over nvlink_fraction, rdma_fraction (0.50-1.00, step 0.01) and sm_half_saturation
  (0-12, step 0.05), latency kept at the YAML prior; the least mean relative error wins;
- low_latency: grid over nvlink_fraction and rdma_fraction, for each a weighted least-squares fit
  of latency[dispatch], latency[combine] and latency_per_peer (all >= 0);
- one_sided: weighted least squares of latency[dispatch], latency[combine], latency_per_peer and
  1 / nvlink_fraction.
numpy is imported here only (never on the estimate path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roofline.ir import CollectiveKind
from roofline.simulator.collectives import CollectiveModel, group_topology, load_library
from roofline.simulator.ep_comm import EpModeSpec, payload_factor, traffic
from roofline.validation.cases import Case, read_cases
from roofline.validation.predict_ep import LIBRARY_OF_MODE, EpRow, _logical_gbps, _payload_bytes_per_token, _routing

EP_SCENARIOS = ("ep_dispatch", "ep_combine")


@dataclass(frozen=True)
class RowTerms:
    """One row as the fit sees it: measured seconds and the model's link seconds at fraction 1."""

    case_id: str
    dispatch: bool
    peers: int
    sms: int | None
    nvlink_s: float
    rdma_s: float
    measured_s: float


def split(cases: list[Case]) -> dict[str, tuple[list[Case], list[Case]]]:
    """Per mode: (fitted rows, held-out rows), every other row in file order."""
    by_mode: dict[str, list[Case]] = {}
    for case in cases:
        if case.scenario in EP_SCENARIOS:
            by_mode.setdefault(case.load_fields.get("mode", ""), []).append(case)
    return {mode: (rows[::2], rows[1::2]) for mode, rows in by_mode.items()}


def _spec(mode: str, transport: str) -> EpModeSpec:
    spec = load_library(LIBRARY_OF_MODE[mode]).expert_parallel
    assert spec is not None
    base = spec.modes[mode]
    pure_rdma = mode == "low_latency" and transport == "rdma"
    return base.model_copy(update={"intranode_nvlink": False}) if pure_rdma else base


def row_terms(case: Case) -> RowTerms:
    from roofline.hardware_specs import resolve_cluster

    row = EpRow.of(case)
    payload, _ = _payload_bytes_per_token(row, case)
    element_bytes = 2.0 if row.mode != "one_sided" else payload / row.hidden
    routing, _ = _routing(row, element_bytes)
    topo = group_topology(resolve_cluster(hardware=case.hardware, num_gpus=row.ep), row.ep)
    spec = _spec(row.mode, row.transport)
    links = CollectiveModel()._ep_links(topo)
    t = traffic(spec, routing, topo)
    wire = row.tokens * row.hidden * element_bytes * payload_factor(spec, row.kind, routing)
    rdma_s = wire * t.rdma / links.rdma_bytes_per_s if t.rdma else 0.0
    measured = case.value * 1e-6 if case.metric == "latency_us" else 0.0
    if case.metric == "gbps":  # the source's bytes over its time: time = bytes / (GB/s x 1e9)
        measured = _logical_gbps(row, routing, payload, 1.0)[0] / case.value
    return RowTerms(case.case_id, row.kind is CollectiveKind.EP_DISPATCH, row.ep - 1, row.sms,
                    wire * t.nvlink / links.nvlink_bytes_per_s, rdma_s, measured)  # fmt: skip


def _fit_normal(rows: list[RowTerms], spec: EpModeSpec) -> dict[str, float]:
    import numpy as np

    nvl, rdma = np.array([r.nvlink_s for r in rows]), np.array([r.rdma_s for r in rows])
    sms = np.array([float(r.sms or spec.sms or 0) for r in rows])
    measured = np.array([r.measured_s for r in rows])
    latency = np.array([spec.latency["dispatch" if r.dispatch else "combine"] for r in rows])
    grid = np.round(np.arange(0.50, 1.0001, 0.01), 2)
    s0s = np.round(np.arange(0.0, 12.0001, 0.05), 2)
    fn, fr, s0 = np.meshgrid(grid, grid, s0s, indexing="ij")
    share = sms / (sms + s0[..., None])
    time = latency + np.maximum(nvl / (fn[..., None] * share), rdma / fr[..., None])
    error = np.abs(time / measured - 1.0).mean(axis=-1)
    i = np.unravel_index(int(np.argmin(error)), error.shape)
    return {"nvlink_fraction": float(fn[i]), "rdma_fraction": float(fr[i]), "sm_half_saturation": float(s0[i])}


def _nonneg_lstsq(x: Any, y: Any) -> Any:
    import numpy as np

    w = 1.0 / y
    coef = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)[0]
    return coef if np.all(coef >= 0) else None


def _fit_low_latency(rows: list[RowTerms]) -> dict[str, float]:
    import numpy as np

    nvl, rdma = np.array([r.nvlink_s for r in rows]), np.array([r.rdma_s for r in rows])
    dispatch = np.array([r.dispatch for r in rows], dtype=float)
    x = np.stack([dispatch, 1.0 - dispatch, np.array([r.peers for r in rows], dtype=float)], axis=1)
    measured = np.array([r.measured_s for r in rows])
    best: tuple[float, dict[str, float]] | None = None
    for fn in np.round(np.arange(0.50, 1.0001, 0.01), 2):
        for fr in np.round(np.arange(0.50, 1.0001, 0.01), 2):
            transfer = np.maximum(nvl / fn, rdma / fr)
            coef = _nonneg_lstsq(x, measured - transfer)
            if coef is None:
                continue
            error = float(np.abs((x @ coef + transfer) / measured - 1.0).mean())
            if best is None or error < best[0]:
                best = (error, {"nvlink_fraction": float(fn), "rdma_fraction": float(fr), "dispatch_s": float(coef[0]),
                                "combine_s": float(coef[1]), "latency_per_peer_s": float(coef[2])})  # fmt: skip
    assert best is not None
    return best[1]


def _fit_one_sided(rows: list[RowTerms]) -> dict[str, float]:
    import numpy as np

    dispatch = np.array([r.dispatch for r in rows], dtype=float)
    x = np.stack([dispatch, 1.0 - dispatch, np.array([r.peers for r in rows], dtype=float),
                  np.array([r.nvlink_s for r in rows])], axis=1)  # fmt: skip
    coef = _nonneg_lstsq(x, np.array([r.measured_s for r in rows]))
    assert coef is not None
    return {"dispatch_s": float(coef[0]), "combine_s": float(coef[1]), "latency_per_peer_s": float(coef[2]),
            "nvlink_fraction": float(1.0 / coef[3])}  # fmt: skip


def fit(path: Path) -> dict[str, dict[str, Any]]:
    """Per mode: the fitted constants and `fitted_on` (case ids), from the kernel file at `path`."""
    out: dict[str, dict[str, Any]] = {}
    for mode, (fitted, _) in split(read_cases(path)).items():
        rows = [row_terms(c) for c in fitted]
        if mode == "normal":
            constants = _fit_normal(rows, _spec(mode, "nvlink"))
        elif mode == "low_latency":
            constants = _fit_low_latency(rows)
        else:
            constants = _fit_one_sided(rows)
        out[mode] = {**constants, "fitted_on": [c.case_id for c in fitted]}
    return out
