"""`sweep`: `estimate` over a grid of parameters, on the fast path (or, with `exact`, the full
estimator one configuration at a time), as rows in SI units. With request rates, each configuration
is served instead: Poisson arrivals at every rate through the engine's scheduler (simulator/serving),
the batch axis being the engine's batch limit, so the rows trace load curves."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.planner import grid
from roofline.simulator.engine import estimate
from roofline.simulator.fast import FastModel, configs_from, evaluate
from roofline.simulator.memory import memory_result
from roofline.simulator.plan import (
    DEFAULT_MAX_NUM_TOKENS,
    MAX_SEQUENCE_TOKENS,
    ParallelPlan,
    Scenario,
    prefill_chunks,
)
from roofline.simulator.serving.engine_config import EngineConfig, load_engine
from roofline.simulator.serving.service import MAX_REQUESTS
from roofline.workloads import get_autoregressive

AXES = ("tp", "pp", "ep", "attn_dp", "batch", "isl", "osl")
MAX_CONFIGURATIONS = 2_000_000  # grid points of one sweep (served points count once per rate)


@dataclass(frozen=True)
class SweepRequest:
    models: tuple[str, ...]
    hardware: tuple[str, ...]
    axes: dict[str, list[int]]  # AXES -> values
    weight_dtypes: tuple[str | None, ...] = (None,)  # None: as shipped
    kv_dtype: str | None = None
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS
    engine: EngineConfig | None = None  # host overheads added to TTFT and TPOT when given; serve: the engine
    exact: bool = False
    request_rates_per_s: tuple[float, ...] = ()  # requests/s per configuration: serve each (Poisson) instead
    num_requests: int = 300  # simulated requests per served point

    def __post_init__(self) -> None:
        if self.max_num_tokens < 1:
            raise RooflineError(f"--max-num-tokens must be >= 1, not {self.max_num_tokens}")
        for name, values in self.axes.items():
            if not values or min(values) < 1:
                raise RooflineError(f"--{name.replace('_', '-')}: values must be positive integers")
        if any(not (0 < r < math.inf) for r in self.request_rates_per_s):
            raise RooflineError("--request-rate: rates must be positive and finite (requests/s)")
        if not 10 <= self.num_requests <= MAX_REQUESTS:
            raise RooflineError(f"--num-requests must be between 10 and {MAX_REQUESTS:,}, not {self.num_requests}")
        if max(self.axes["isl"]) + max(self.axes["osl"]) > MAX_SEQUENCE_TOKENS:
            raise RooflineError(f"--isl + --osl at most {MAX_SEQUENCE_TOKENS:,} tokens (beyond any context window)")
        if self.size > MAX_CONFIGURATIONS:
            raise RooflineError(f"the grid has {self.size:,} points; at most {MAX_CONFIGURATIONS:,} (narrow the "
                                "ranges or use coarser steps)")  # fmt: skip
        if self.request_rates_per_s and self.exact:
            raise RooflineError("--exact is for estimate sweeps; with --request-rate every point is simulated")

    @property
    def size(self) -> int:
        n = len(self.models) * len(self.hardware) * len(self.weight_dtypes)
        for values in self.axes.values():
            n *= len(values)
        return n * max(1, len(self.request_rates_per_s))


def _row(model: str, hardware: str, weights: str, kv: str, cfg: dict[str, int], ttft_s: float, tpot_s: float,
         memory: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    gpus = cfg["tp"] * cfg["pp"] * cfg["attn_dp"]
    throughput = cfg["batch"] / tpot_s
    return {
        "model": model, "hardware": hardware, "weight_dtype": weights, "kv_dtype": kv,
        **{k: cfg[k] for k in ("tp", "pp", "ep", "attn_dp")}, "gpus": gpus,
        **{k: cfg[k] for k in ("batch", "isl", "osl")}, "ttft_s": ttft_s, "tpot_s": tpot_s,
        "output_tokens_per_s": throughput, "output_tokens_per_s_per_gpu": throughput / gpus,
        "output_tokens_per_s_per_user": 1.0 / tpot_s, **memory,
    }  # fmt: skip


def run_sweep(request: SweepRequest, progress: Callable[[int], None] | None = None
              ) -> tuple[list[dict[str, Any]], dict[str, int]]:  # fmt: skip
    """Rows for every valid configuration; and the reasons others were skipped, with counts."""
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    clusters = grid.clusters_for(request.hardware)
    for model_id in request.models:
        workload = get_autoregressive(model_id)
        precisions = [grid.precision_for(workload, d, request.kv_dtype) for d in request.weight_dtypes]
        configs = [{"hardware": h, "precision": p, **c} for h in range(len(clusters)) for p in range(len(precisions))
                   for c in grid.product_rows(request.axes)]  # fmt: skip
        run = _serve if request.request_rates_per_s else _exact if request.exact else _fast
        rows += run(workload.id, request, clusters, precisions, configs, skipped, progress)
    return rows, skipped


def _fast(model_id: str, request: SweepRequest, clusters: list[Any], precisions: list[Any],
          configs: list[dict[str, int]], skipped: dict[str, int], progress: Callable[[int], None] | None
          ) -> list[dict[str, Any]]:  # fmt: skip
    workload = get_autoregressive(model_id)
    model = FastModel(workload, clusters, max_num_tokens=request.max_num_tokens)
    result = evaluate(model, configs_from(configs), precisions, request.engine, progress=progress)
    for message, count in result.errors.items():
        skipped[message] = skipped.get(message, 0) + count
    keys = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes", "capacity_bytes")
    rows = []
    for i in np.flatnonzero(result["valid"]):
        cfg = configs[i]
        memory = {k.replace("total_bytes", "memory_bytes"): float(result[k][i]) for k in keys}
        memory["fits"] = bool(result["fits"][i])
        p = precisions[cfg["precision"]]
        rows.append(_row(model_id, request.hardware[cfg["hardware"]], grid.dtype_label(p), p.kv_cache.value, cfg,
                         float(result["ttft_s"][i]), float(result["tpot_s"][i]), memory))  # fmt: skip
    return rows


def _exact(model_id: str, request: SweepRequest, clusters: list[Any], precisions: list[Any],
           configs: list[dict[str, int]], skipped: dict[str, int], progress: Callable[[int], None] | None
           ) -> list[dict[str, Any]]:  # fmt: skip
    """The full estimator (engine.estimate), one configuration at a time."""
    workload = get_autoregressive(model_id)
    rows = []
    for cfg in configs:
        p, hardware = precisions[cfg["precision"]], request.hardware[cfg["hardware"]]
        try:
            plan = ParallelPlan(tp=cfg["tp"], pp=cfg["pp"], ep=cfg["ep"], attn_dp=cfg["attn_dp"])
            scenario = Scenario(cfg["batch"], cfg["isl"], cfg["osl"], p, plan, max_num_tokens=request.max_num_tokens)
            cluster = resolve_cluster(hardware=hardware, num_gpus=plan.num_gpus)
            result = estimate(workload, cluster, scenario)
        except RooflineError as exc:
            skipped[str(exc)] = skipped.get(str(exc), 0) + 1
            if progress:
                progress(1)
            continue
        memory = _memory(workload, cluster, scenario)
        ttft, tpot = result.ttft_s, result.tpot_s
        engine = request.engine
        if engine is not None:  # host overheads as FastModel adds them: per step, per sequence in a step
            steps = sum(r for _, r in prefill_chunks(cfg["batch"], cfg["isl"], request.max_num_tokens, cfg["attn_dp"]))
            passes = -(-cfg["isl"] // request.max_num_tokens)
            ttft += steps * engine.step_overhead + passes * cfg["batch"] * engine.per_sequence_overhead
            tpot += engine.step_overhead + cfg["batch"] * engine.per_sequence_overhead
        rows.append(_row(model_id, hardware, grid.dtype_label(p), p.kv_cache.value, cfg, ttft, tpot, memory))
        if progress:
            progress(1)
    return rows


def _memory(workload: Any, cluster: Any, scenario: Scenario) -> dict[str, Any]:
    mem = memory_result(workload, cluster, scenario)
    return {"weights_bytes": mem.weights_bytes, "kv_cache_bytes": mem.kv_cache_bytes,
            "activation_bytes": mem.activation_bytes, "memory_bytes": mem.total_bytes,
            "capacity_bytes": mem.capacity_bytes, "fits": mem.fits}  # fmt: skip


def _serve(model_id: str, request: SweepRequest, clusters: list[Any], precisions: list[Any],
           configs: list[dict[str, int]], skipped: dict[str, int], progress: Callable[[int], None] | None
           ) -> list[dict[str, Any]]:  # fmt: skip
    """Each configuration served at each rate: the batch axis is the replica's batch limit and the
    engine's token budget is --max-num-tokens (both fixed, not the trtllm-bench heuristic)."""
    from roofline.simulator.serving import Load, serve

    workload = get_autoregressive(model_id)
    engine = request.engine or load_engine()
    rates = request.request_rates_per_s
    rows = []
    for cfg in configs:
        p, hardware = precisions[cfg["precision"]], request.hardware[cfg["hardware"]]
        try:
            if cfg["batch"] % cfg["attn_dp"]:
                raise RooflineError(f"batch limit {cfg['batch']} does not split evenly over {cfg['attn_dp']} "
                                    "attention-DP replicas")  # fmt: skip
            plan = ParallelPlan(tp=cfg["tp"], pp=cfg["pp"], ep=cfg["ep"], attn_dp=cfg["attn_dp"])
            scenario = Scenario(cfg["batch"], cfg["isl"], cfg["osl"], p, plan, max_num_tokens=request.max_num_tokens)
            cluster = resolve_cluster(hardware=hardware, num_gpus=plan.num_gpus)
            memory = _memory(workload, cluster, scenario)
        except RooflineError as exc:
            skipped[str(exc)] = skipped.get(str(exc), 0) + len(rates)
            if progress:
                progress(len(rates))
            continue
        limited = engine.model_copy(update={"max_batch": cfg["batch"] // plan.attn_dp, "limits": "fixed",
                                            "max_num_tokens": request.max_num_tokens})  # fmt: skip
        for rate in rates:
            try:
                data = serve(workload, cluster, scenario, limited,
                             Load("request_rate", rate, num_requests=request.num_requests)).to_dict()  # fmt: skip
            except RooflineError as exc:  # this rate only; the configuration's other rates still run
                skipped[str(exc)] = skipped.get(str(exc), 0) + 1
            else:
                rows.append(_served_row(model_id, hardware, p, cfg, rate, data, memory))
            if progress:
                progress(1)
    return rows


def _served_row(model_id: str, hardware: str, precision: Any, cfg: dict[str, int], rate: float,
                data: dict[str, Any], memory: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    row = _row(model_id, hardware, grid.dtype_label(precision), precision.kv_cache.value, cfg,
               data["ttft_ms"]["mean"] / 1e3, data["tpot_ms"]["mean"] / 1e3, memory)  # fmt: skip
    return {**row, "request_rate_per_s": rate, "ttft_p99_s": data["ttft_ms"]["p99"] / 1e3,
            "tpot_p99_s": data["tpot_ms"]["p99"] / 1e3, "output_tokens_per_s": data["output_tokens_per_s"],
            "output_tokens_per_s_per_gpu": data["output_tokens_per_s_per_gpu"],
            "output_tokens_per_s_per_user": data["output_tokens_per_s_per_user"],
            "mean_batch": data["mean_batch"]}  # fmt: skip
