"""`serve`: a load against one configuration, simulated, summarised as benchmarks report it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.simulator.memory import kv_capacity
from roofline.simulator.plan import Scenario
from roofline.simulator.serving.engine_config import EngineConfig
from roofline.simulator.serving.limits import trtllm_bench_limits
from roofline.simulator.serving.requests import Requests, lengths, poisson_arrivals
from roofline.simulator.serving.simulate import SimulationResult, simulate
from roofline.simulator.serving.step_model import Draft, StepTimeModel
from roofline.workloads.base import Workload

DEFAULT_REQUESTS = 1000
MAX_REQUESTS = 1_000_000  # simulated requests of one run (memory and time stay bounded)


@dataclass(frozen=True)
class Load:
    """max_throughput: everything queued at t = 0; request_rate: Poisson (inf = all at once);
    concurrency: closed loop with that many clients."""

    mode: str  # "max_throughput" | "request_rate" | "concurrency"
    value: float = math.inf
    num_requests: int | None = None
    isl_spread: float = 0.0
    osl_spread: float = 0.0
    seed: int = 0
    prefix_hit: float = 0.0
    trace: Requests | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.num_requests is not None and not 1 <= self.num_requests <= MAX_REQUESTS:
            raise RooflineError(f"--num-requests must be between 1 and {MAX_REQUESTS:,}, got {self.num_requests}")


def per_attention_replica(engine: EngineConfig, scenario: Scenario) -> EngineConfig:
    """With attention data parallelism each attention replica schedules its own batch and token
    budget (SGLang / TensorRT-LLM DP attention): the group's limits are the engine's x attn_dp, and
    each replica's executor does the per-sequence host work of its own sequences, in parallel with
    the others (engine.per_replica): the group's per-sequence cost is the engine's / attn_dp."""
    group = scenario.plan.attn_dp
    if group == 1:
        return engine
    return engine.model_copy(update={"max_batch": engine.max_batch * group,
                                     "max_num_tokens": engine.max_num_tokens * group,
                                     "per_sequence_overhead": engine.per_sequence_overhead / group})  # fmt: skip


def kv_capacity_tokens(workload: Workload, cluster: Cluster, scenario: Scenario, engine: EngineConfig) -> int:
    """Tokens of KV one replica holds (memory.kv_capacity on the rule of capacity.py, as estimate):
    the engine's fraction of what is left after weights, reserve and the largest step's activations."""
    length = scenario.isl + scenario.osl
    capacity = kv_capacity(workload, cluster, scenario, max(1, scenario.plan.attn_dp), length,
                           engine.kv_memory_fraction)  # fmt: skip
    if not capacity.has_room:
        gib = cluster.accelerator.memory.capacity / 2**30
        raise RooflineError(f"{workload.id} does not fit: weights and activations need more than {gib:.0f} GiB "
                            "per GPU; use more GPUs (--tp / --pp)")  # fmt: skip
    return capacity.tokens


def build_requests(scenario: Scenario, load: Load, batch_hint: int) -> Requests:
    if load.trace is not None:  # --num-requests: the trace's first N requests
        n = len(load.trace) if load.num_requests is None else min(load.num_requests, len(load.trace))
        t = load.trace
        return Requests(t.arrival_s[:n], t.isl[:n], t.osl[:n])
    rng = np.random.default_rng(load.seed)
    n = load.num_requests or (
        max(DEFAULT_REQUESTS, 3 * batch_hint) if load.mode == "max_throughput" else DEFAULT_REQUESTS
    )
    isl, osl = lengths(n, scenario.isl, load.isl_spread, rng), lengths(n, scenario.osl, load.osl_spread, rng)
    rate = math.inf if load.mode != "request_rate" else load.value
    return Requests(poisson_arrivals(n, rate, rng), isl, osl)


PERCENTILES = (50, 90, 99)


def latency_stats(name: str, values_s: np.ndarray) -> dict[str, float]:
    """Mean and percentiles in seconds, keyed `ttft_s`, `ttft_p50_s` ... (nan when nothing was measured)."""
    if len(values_s) == 0:
        return {f"{name}_s": math.nan, **{f"{name}_p{p}_s": math.nan for p in PERCENTILES}}
    found = np.percentile(values_s, PERCENTILES)
    return {f"{name}_s": float(values_s.mean()),
            **{f"{name}_p{p}_s": float(v) for p, v in zip(PERCENTILES, found, strict=True)}}  # fmt: skip


@dataclass(frozen=True)
class ServeResult:
    load: Load
    engine: str
    num_gpus: int
    replicas: int
    kv_capacity_tokens: int
    sim: SimulationResult
    total_requests: int | None = None  # all replicas; default: the simulated replica's x replicas

    @property
    def output_tokens_per_s(self) -> float:
        """All data-parallel replicas together."""
        return self.sim.output_tokens_per_s * self.replicas

    def latency(self) -> dict[str, float]:
        """TTFT (arrival to first token), TPOT and end-to-end of the requests: mean and percentiles (s)."""
        sim = self.sim
        return {**latency_stats("ttft", sim.ttft_s), **latency_stats("tpot", sim.tpot_s),
                **latency_stats("e2e", sim.e2e_s)}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """SI units, the unit in every key (the document `roofline serve --format json` extends)."""
        latency = self.latency()
        tpot = latency["tpot_s"]
        return {
            "mode": self.load.mode,
            "load": self.load.value,
            "engine": self.engine,
            "num_gpus": self.num_gpus,
            "replicas": self.replicas,
            "requests": self.total_requests or int(len(self.sim.osl)) * self.replicas,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_per_gpu": self.output_tokens_per_s / self.num_gpus,
            "output_tokens_per_s_per_user": 1.0 / tpot if tpot > 0 else math.nan,
            "mean_batch": self.sim.mean_batch,
            "max_batch": self.sim.max_batch,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "preemptions": self.sim.preemptions,
            "steps": self.sim.steps,
            "duration_s": self.sim.duration_s,
            **latency,
        }


def serve(workload: Workload, cluster: Cluster, scenario: Scenario, engine: EngineConfig, load: Load,
          ideal: bool = False, draft: Draft | None = None,
          progress: Callable[[float], None] | None = None) -> ServeResult:  # fmt: skip
    """Simulate one replica (tp x pp x cp GPUs, attention-DP inside) and scale by the replicas:
    requests are spread evenly over data-parallel replicas, so each sees rate / dp. `progress`: the
    fraction of the replica's requests finished, as the simulation goes."""
    from roofline.simulator.host import on_cluster_host  # simulator.host imports this package's engine_config

    replicas = scenario.plan.dp
    engine = per_attention_replica(on_cluster_host(engine, cluster), scenario)
    capacity = kv_capacity_tokens(workload, cluster, scenario, engine)
    if engine.limits == "trtllm-bench":  # batch and token limits sized from the dataset
        max_batch, max_tokens = trtllm_bench_limits(capacity / (scenario.isl + scenario.osl), scenario.isl,
                                                    scenario.osl, scenario.plan.pp)  # fmt: skip
        engine = engine.model_copy(update={"max_batch": max_batch, "max_num_tokens": max_tokens, "limits": "fixed"})
        scenario = replace(scenario, max_num_tokens=max_tokens)
        capacity = kv_capacity_tokens(workload, cluster, scenario, engine)  # activations of the new budget
    length = scenario.isl + scenario.osl
    batch_hint = max(1, min(engine.max_batch, capacity // max(length, 1)))
    requests = build_requests(scenario, load, batch_hint)
    total = len(requests) if load.trace is not None else None
    if replicas > 1 and load.trace is not None:  # round-robin: this replica serves every dp-th request
        requests = Requests(requests.arrival_s[::replicas], requests.isl[::replicas], requests.osl[::replicas])
    elif load.mode == "request_rate" and replicas > 1:
        requests = Requests(requests.arrival_s * replicas, requests.isl, requests.osl)
    max_context = int((requests.isl + requests.osl).max())
    model = StepTimeModel(workload, cluster, scenario, engine, max_context=max_context,
                          max_decode=min(engine.max_batch, max(1, capacity)), ideal=ideal, draft=draft)  # fmt: skip
    concurrency = int(load.value) if load.mode == "concurrency" else None
    if concurrency is not None and replicas > 1:
        if concurrency % replicas:
            raise RooflineError(f"--concurrency {concurrency} does not split evenly over {replicas} data-parallel "
                                "replicas; use a multiple of the replica count")  # fmt: skip
        concurrency //= replicas
    sim = simulate(model, requests, engine, capacity, concurrency, load.prefix_hit, engine.request_overhead, progress)
    return ServeResult(load, engine.id, scenario.plan.num_gpus, replicas, capacity, sim, total)
