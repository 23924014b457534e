"""Disaggregated serving: a prefill pool and a decode pool of replicas (the DistServe / Dynamo /
SGLang PD design). A request is prefilled on one prefill replica, its KV cache is sent to a decode
replica over the fabric (every GPU of the replica sends its shard at once), and the decode replica
streams the tokens: TTFT counts the prefill and the KV transfer. Replicas are assigned round-robin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.ir import CollectiveKind
from roofline.simulator.collectives import CollectiveModel, GroupTopology, load_library
from roofline.simulator.host import on_cluster_host
from roofline.simulator.plan import Scenario, stage_placements
from roofline.simulator.serving.engine_config import EngineConfig
from roofline.simulator.serving.requests import Requests
from roofline.simulator.serving.service import (
    Load,
    ServeResult,
    build_requests,
    kv_capacity_tokens,
    per_attention_replica,
)  # fmt: skip
from roofline.simulator.serving.simulate import SimulationResult, simulate
from roofline.simulator.serving.step_model import StepTimeModel
from roofline.workloads.base import Workload


@dataclass(frozen=True)
class KvTransfer:
    bytes_per_gpu: np.ndarray  # per request
    time_s: np.ndarray
    link: str


def kv_transfer(workload: Workload, cluster: Cluster, scenario: Scenario, isl: np.ndarray,
                replicas: int = 2) -> KvTransfer:  # fmt: skip
    """Each GPU of the prefill replica sends its KV shard to its peer in the decode replica: inside
    the scale-up domain when both pools fit in it, else over the scale-out fabric."""
    placement = max(stage_placements(workload, scenario.plan), key=lambda p: p.num_layers)
    pools_gpus = replicas * scenario.plan.gpus_per_replica  # both pools, side by side
    crosses = pools_gpus > cluster.system.gpus_per_domain and cluster.scale_out is not None
    topo = GroupTopology(2, 1 if crosses else 2, 2 if crosses else 1, cluster.scale_up, cluster.scale_out, False)
    model = CollectiveModel(load_library(scenario.comm_library))
    per_gpu = np.array([workload.kv_cache_bytes(int(n), scenario.precision, placement) for n in isl])
    times = np.array([model.cost(CollectiveKind.SEND_RECV, float(b), topo).time_s for b in per_gpu])
    link = (cluster.scale_out if crosses and cluster.scale_out else cluster.scale_up).link.id
    return KvTransfer(per_gpu, times, link)


def _run_pool(model: StepTimeModel, engine: EngineConfig, capacity: int, requests: Requests, replicas: int,
              prefix_hit: float) -> tuple[np.ndarray, np.ndarray, list[SimulationResult]]:  # fmt: skip
    """Round-robin the requests over `replicas`; returns first-token and finish times per request."""
    first, finish = np.full(len(requests), np.nan), np.full(len(requests), np.nan)
    results = []
    for r in range(replicas):
        idx = np.arange(r, len(requests), replicas)
        if len(idx) == 0:
            continue
        order = idx[np.argsort(requests.arrival_s[idx], kind="stable")]
        sub = Requests(requests.arrival_s[order], requests.isl[order], requests.osl[order])
        sim = simulate(model, sub, engine, capacity, None, prefix_hit, engine.request_overhead)
        first[order], finish[order] = sim.first_token_s, sim.finish_s
        results.append(sim)
    return first, finish, results


def serve_disaggregated(workload: Workload, cluster: Cluster, scenario: Scenario, engine: EngineConfig, load: Load,
                        prefill_replicas: int, decode_replicas: int, ideal: bool = False) -> ServeResult:  # fmt: skip
    if prefill_replicas < 1 or decode_replicas < 1:
        raise RooflineError("--disaggregate P:D needs at least one prefill and one decode replica")
    if load.mode == "concurrency":
        raise RooflineError("disaggregated serving is simulated for --request-rate and --max-throughput loads")
    engine = per_attention_replica(on_cluster_host(engine, cluster), scenario)  # as run_serve: GPU limits, host speed
    capacity = kv_capacity_tokens(workload, cluster, scenario, engine)
    length = scenario.isl + scenario.osl
    requests = build_requests(scenario, load, max(1, min(engine.max_batch, capacity // max(length, 1))))
    max_context = int((requests.isl + requests.osl).max())
    max_decode = min(engine.max_batch, max(1, capacity))
    model = StepTimeModel(workload, cluster, scenario, engine, max_context, max_decode, ideal)
    # prefill pool: every request's prompt and first token
    prompts = Requests(requests.arrival_s, requests.isl, np.ones_like(requests.osl))
    first, _, pre = _run_pool(model, engine, capacity, prompts, prefill_replicas, load.prefix_hit)
    transfer = kv_transfer(workload, cluster, scenario, requests.isl, prefill_replicas + decode_replicas)
    ready = first + transfer.time_s
    # decode pool: the prompt is already cached (one token recomputed), osl - 1 tokens to generate
    rest = Requests(ready, requests.isl, np.maximum(requests.osl - 1, 1))
    _, finish, dec = _run_pool(model, engine, capacity, rest, decode_replicas, 1.0 - 1e-9)
    finish = np.where(requests.osl > 1, finish, first)
    steps = sum(s.steps for s in pre + dec)
    mean_batch = float(np.mean([s.mean_batch for s in dec]))
    sim = SimulationResult(requests.arrival_s, ready, finish, requests.osl, steps, mean_batch,
                           max(s.max_batch for s in dec), sum(s.preemptions for s in pre + dec))  # fmt: skip
    gpus = scenario.plan.gpus_per_replica * (prefill_replicas + decode_replicas)
    return ServeResult(load, engine.id, gpus, 1, capacity, sim)
