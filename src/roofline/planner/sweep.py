"""`sweep`: `estimate` over a grid of parameters, on the fast path (or, with `exact`, the full
estimator one configuration at a time), as rows in SI units. With request rates, each configuration
is served instead: Poisson arrivals at every rate through the engine's scheduler (simulator/serving),
the batch axis being the engine's batch limit, so the rows trace load curves."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from roofline.errors import RooflineError
from roofline.executors import check_options, run_chunks
from roofline.hardware_specs import Accelerator, resolve_cluster
from roofline.planner import grid
from roofline.simulator.engine import estimate
from roofline.simulator.fast import FastModel, configs_from, evaluate
from roofline.simulator.memory import memory_result
from roofline.simulator.plan import (
    DEFAULT_MAX_NUM_TOKENS,
    MAX_SEQUENCE_TOKENS,
    ParallelPlan,
    Scenario,
)
from roofline.simulator.serving.engine_config import DEFAULT_ENGINE, EngineConfig, load_engine
from roofline.simulator.serving.service import MAX_REQUESTS
from roofline.workloads import Workload, get_autoregressive

AXES = ("tp", "pp", "ep", "attn_dp", "batch", "isl", "osl")
MAX_CONFIGURATIONS = 2_000_000  # grid points of one sweep (served points count once per rate)


@dataclass(frozen=True)
class SweepRequest:
    models: tuple[str | Workload, ...]  # ids, paths or objects
    hardware: tuple[str | Accelerator, ...]
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


def _row(model: str, hardware: str, weights: str, kv: str, cfg: dict[str, int], ttft: tuple[str, float],
         tpot_s: float, memory: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """A row; `ttft` names its TTFT: ("ttft_batch_s", the prefill of the whole batch) for an estimate,
    ("ttft_s", the mean request's) for a served row."""
    gpus = cfg["tp"] * cfg["pp"] * cfg["attn_dp"]
    throughput = cfg["batch"] / tpot_s
    return {
        "model": model, "hardware": hardware, "weight_dtype": weights, "kv_dtype": kv,
        **{k: cfg[k] for k in ("tp", "pp", "ep", "attn_dp")}, "gpus": gpus,
        **{k: cfg[k] for k in ("batch", "isl", "osl")}, ttft[0]: ttft[1], "tpot_s": tpot_s,
        "output_tokens_per_s": throughput, "output_tokens_per_s_per_gpu": throughput / gpus,
        "output_tokens_per_s_per_user": 1.0 / tpot_s, **memory,
    }  # fmt: skip


# Configurations per chunk of work (fixed, whatever runs them, so the rows come out the same):
# the fast path is vectorised, the full estimator and the serving simulator take a while per point.
FAST_CHUNK_CONFIGS = 131_072
EXACT_CHUNK_CONFIGS = 16
SERVED_CHUNK_CONFIGS = 4


@dataclass(frozen=True)
class SweepChunk:
    """Configurations of one model to run in one task: the request and light index rows, picklable."""

    request: SweepRequest
    model: int  # index in request.models
    configs: tuple[dict[str, int], ...]  # AXES + "hardware" and "precision" (indices)


Outcome = tuple[list[dict[str, Any]], dict[str, int]]  # rows, skip reasons with their counts


def sweep_chunks(request: SweepRequest) -> list[SweepChunk]:
    """Every configuration of the grid, model by model, cut into chunks of a fixed size."""
    size = (SERVED_CHUNK_CONFIGS if request.request_rates_per_s else EXACT_CHUNK_CONFIGS if request.exact
            else FAST_CHUNK_CONFIGS)  # fmt: skip
    configs = [{"hardware": h, "precision": p, **c} for h in range(len(request.hardware))
               for p in range(len(request.weight_dtypes)) for c in grid.product_rows(request.axes)]  # fmt: skip
    return [SweepChunk(request, m, tuple(configs[start:start + size]))
            for m in range(len(request.models)) for start in range(0, len(configs), size)]  # fmt: skip


def run_sweep_chunk(chunk: SweepChunk, progress: Callable[[int], None] | None = None) -> Outcome:
    """The rows of one chunk's valid configurations, and why the others were skipped (what a worker runs)."""
    request = chunk.request
    skipped: dict[str, int] = {}
    clusters = grid.clusters_for(request.hardware)
    workload = get_autoregressive(request.models[chunk.model])
    precisions = [grid.precision_for(workload, d, request.kv_dtype) for d in request.weight_dtypes]
    eager = request.engine is not None and request.engine.eager  # op-by-op dispatch: the full estimator prices it
    run = _serve if request.request_rates_per_s else _exact if request.exact or eager else _fast
    rows = run(workload, request, clusters, precisions, list(chunk.configs), skipped, progress)
    return rows, skipped


def run_sweep(request: SweepRequest, progress: Callable[[int], None] | None = None, *, executor: str = "local",
              jobs: int | None = 1, scheduler: str | None = None) -> Outcome:  # fmt: skip
    """Rows for every valid configuration; and the reasons others were skipped, with counts. The
    chunks run in this process (jobs 1), on `jobs` local processes (None: the machine's cores) or,
    with `executor="dask"`, on the Dask cluster at `scheduler`; the rows are the same."""
    workers = check_options(executor, jobs, scheduler)
    chunks = sweep_chunks(request)
    here = executor == "local" and (workers == 1 or len(chunks) == 1)
    fn = partial(run_sweep_chunk, progress=progress) if here else run_sweep_chunk

    def finished(index: int) -> None:
        if progress is not None and not here:  # run here, the chunk reported its own progress
            progress(len(chunks[index].configs) * max(1, len(request.request_rates_per_s)))

    parts = run_chunks(fn, chunks, executor=executor, jobs=1 if here else workers, scheduler=scheduler,
                       done=finished)  # fmt: skip
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for part_rows, part_skipped in parts:
        rows += part_rows
        for message, count in part_skipped.items():
            skipped[message] = skipped.get(message, 0) + count
    return rows, skipped


def _attention_kernel(request: SweepRequest) -> str | None:
    """The attention kernel of the request's runtime (None: TensorRT-LLM FMHA, as `estimate` without one)."""
    return None if request.engine is None else request.engine.kernels.attention


def _fast(workload: Workload, request: SweepRequest, clusters: list[Any], precisions: list[Any],
          configs: list[dict[str, int]], skipped: dict[str, int], progress: Callable[[int], None] | None
          ) -> list[dict[str, Any]]:  # fmt: skip
    model = FastModel(workload, clusters, max_num_tokens=request.max_num_tokens,
                      attention_kernel=_attention_kernel(request))  # fmt: skip
    result = evaluate(model, configs_from(configs), precisions, request.engine, progress=progress)
    for message, count in result.errors.items():
        skipped[message] = skipped.get(message, 0) + count
    keys = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes", "capacity_bytes")
    rows = []
    for i in np.flatnonzero(result["valid"]):
        cfg = configs[i]
        memory = {k.replace("total_bytes", "memory_bytes"): float(result[k][i]) for k in keys}
        memory["fits"] = bool(result["fits"][i])
        p, label = precisions[cfg["precision"]], clusters[cfg["hardware"]].accelerator.id
        rows.append(_row(workload.id, label, grid.dtype_label(p), p.kv_cache.value, cfg,
                         ("ttft_batch_s", float(result["ttft_batch_s"][i])), float(result["tpot_s"][i]),
                         memory))  # fmt: skip
    return rows


def _exact(workload: Workload, request: SweepRequest, clusters: list[Any], precisions: list[Any],
           configs: list[dict[str, int]], skipped: dict[str, int], progress: Callable[[int], None] | None
           ) -> list[dict[str, Any]]:  # fmt: skip
    """The full estimator (engine.estimate), one configuration at a time."""
    rows = []
    for cfg in configs:
        p, hardware = precisions[cfg["precision"]], request.hardware[cfg["hardware"]]
        try:
            plan = ParallelPlan(tp=cfg["tp"], pp=cfg["pp"], ep=cfg["ep"], attn_dp=cfg["attn_dp"])
            plan = plan.with_vocab_layout(request.engine)
            scenario = Scenario(cfg["batch"], cfg["isl"], cfg["osl"], p, plan, max_num_tokens=request.max_num_tokens,
                                attention=_attention_kernel(request), runtime=request.engine)  # fmt: skip
            cluster = resolve_cluster(hardware=hardware, num_gpus=plan.num_gpus)
            result = estimate(workload, cluster, scenario)  # the runtime's host side included, as `estimate` does
        except RooflineError as exc:
            skipped[str(exc)] = skipped.get(str(exc), 0) + 1
            if progress:
                progress(1)
            continue
        memory = _memory(workload, cluster, scenario)
        ttft, tpot = result.ttft_batch_s, result.tpot_s
        label = clusters[cfg["hardware"]].accelerator.id
        rows.append(_row(workload.id, label, grid.dtype_label(p), p.kv_cache.value, cfg, ("ttft_batch_s", ttft), tpot,
                         memory))  # fmt: skip
        if progress:
            progress(1)
    return rows


def _memory(workload: Any, cluster: Any, scenario: Scenario) -> dict[str, Any]:
    mem = memory_result(workload, cluster, scenario)
    return {"weights_bytes": mem.weights_bytes, "kv_cache_bytes": mem.kv_cache_bytes,
            "activation_bytes": mem.activation_bytes, "memory_bytes": mem.total_bytes,
            "capacity_bytes": mem.capacity_bytes, "fits": mem.fits}  # fmt: skip


def _serve(workload: Workload, request: SweepRequest, clusters: list[Any], precisions: list[Any],
           configs: list[dict[str, int]], skipped: dict[str, int], progress: Callable[[int], None] | None
           ) -> list[dict[str, Any]]:  # fmt: skip
    """Each configuration served at each rate: the batch axis is the replica's batch limit and the
    engine's token budget is --max-num-tokens (both fixed, not the trtllm-bench heuristic)."""
    from roofline.simulator.serving import Load, serve

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
            plan = plan.with_vocab_layout(request.engine)
            scenario = Scenario(cfg["batch"], cfg["isl"], cfg["osl"], p, plan, max_num_tokens=request.max_num_tokens,
                                attention=_attention_kernel(request))  # fmt: skip
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
                label = clusters[cfg["hardware"]].accelerator.id
                rows.append(_served_row(workload.id, label, p, cfg, rate, data, memory))
            if progress:
                progress(1)
    return rows


def _served_row(model_id: str, hardware: str, precision: Any, cfg: dict[str, int], rate: float,
                data: dict[str, Any], memory: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """A served row: `ttft_s` is the mean per request (arrival to first token), as serve reports it."""
    row = _row(model_id, hardware, grid.dtype_label(precision), precision.kv_cache.value, cfg,
               ("ttft_s", data["ttft_s"]), data["tpot_s"], memory)  # fmt: skip
    return {**row, "request_rate_per_s": rate, "ttft_p99_s": data["ttft_p99_s"],
            "tpot_p99_s": data["tpot_p99_s"], "output_tokens_per_s": data["output_tokens_per_s"],
            "output_tokens_per_s_per_gpu": data["output_tokens_per_s_per_gpu"],
            "output_tokens_per_s_per_user": data["output_tokens_per_s_per_user"],
            "mean_batch": data["mean_batch"]}  # fmt: skip


def sweep_inputs(request: SweepRequest, engine: str | None, version: str) -> list[tuple[str, Any]]:
    """The assumptions of a sweep as the workbook's Inputs sheet (and the JSON's "inputs") list them."""
    axes = request.axes
    served = bool(request.request_rates_per_s)
    profile = request.engine or (load_engine() if served else None)
    if served:
        estimator = "serving simulator: each configuration served at each rate (Poisson arrivals)"
    else:
        estimator = "full estimator per configuration" if request.exact else "fast path (vectorised roofline)"
    rows: list[tuple[str, Any]] = [
        ("Tool", f"roofline {version}"),
        ("Estimator", estimator),
        ("Models", ", ".join(m if isinstance(m, str) else m.id for m in request.models)),
        ("Hardware", ", ".join(h if isinstance(h, str) else h.id for h in request.hardware)),
        ("Weight formats", ", ".join(d or "as shipped" for d in request.weight_dtypes)),
        ("KV-cache format", request.kv_dtype or "follows the weight format"),
        ("Input lengths (tokens)", ", ".join(map(str, axes["isl"]))),
        ("Output lengths (tokens)", ", ".join(map(str, axes["osl"]))),
        ("Batch limit (sequences per replica)" if served else "Batch (sequences per replica)",
         ", ".join(map(str, axes["batch"]))),
        ("TP / PP / EP / attention DP",
         " / ".join(", ".join(map(str, axes[k])) for k in ("tp", "pp", "ep", "attn_dp"))),
        ("Engine token budget per step (max_num_tokens)", request.max_num_tokens),
        ("Engine", (engine or DEFAULT_ENGINE) if served else engine or "none (host overheads off, as `estimate`)"),
        ("Engine step overhead (ms)", profile.step_overhead * 1e3 if profile else 0.0),
        ("Engine per-sequence overhead (us)", profile.per_sequence_overhead * 1e6 if profile else 0.0),
        ("Activations", "bf16"),
    ]  # fmt: skip
    if served:
        return [
            *rows,
            ("Request rates (requests/s)", ", ".join(f"{r:g}" for r in request.request_rates_per_s)),
            ("Requests simulated per point", request.num_requests),
            ("TTFT / TPOT", "mean and p99 over the simulated requests (TTFT per request, arrival to first token); "
                            "throughput: achieved output tokens/s"),
        ]  # fmt: skip
    return [*rows, ("TPOT", "decode step at the mean decode context; prefill of the batch: every prompt at once"),
            ("Throughput", "batch / TPOT (steady decode), per GPU over tp x pp x attention-DP GPUs"),
            ("Configurations that do not fit", "their latency and throughput are left empty unless timed on "
                                               "request (--ignore-memory; marked hypothetical)")]  # fmt: skip


def best_rows(rows: Sequence[dict[str, Any]], key: str = "output_tokens_per_s_per_gpu") -> list[dict[str, Any]]:
    """Configurations that fit, highest `key` first."""
    fits = [r for r in rows if r.get("fits") and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return sorted(fits, key=lambda r: -r[key])
