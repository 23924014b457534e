"""Re-check planned configurations with the discrete-event serving simulator (simulator/serving):
Poisson arrivals at the planned rate through the engine's scheduler, p99s measured, not modelled."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Precision
from roofline.simulator.plan import ParallelPlan, Scenario
from roofline.simulator.serving.engine_config import EngineConfig
from roofline.workloads.base import Workload

if TYPE_CHECKING:
    from roofline.planner.search import PlanRequest

RECHECK_REQUESTS = 300
RECHECK_FALLBACK = 4  # when none of the --recheck picks holds in simulation, try up to 4x as many in all


def recheck(workload: Workload, request: PlanRequest, engine: EngineConfig,
            picks: Sequence[tuple[str, Precision, dict[str, Any]]]) -> list[dict[str, Any]]:  # fmt: skip
    """One row per pick (hardware, formats, planned row): the simulated p99s next to the planned ones."""
    try:
        from roofline.simulator.serving import Load, serve
    except ImportError:  # the serving simulator is optional to the planner
        return []
    out = []
    for hardware, precision, row in picks:
        plan = ParallelPlan(tp=row["tp"], pp=row["pp"], dp=row["dp"], ep=row["ep"], attn_dp=row["attn_dp"])
        scenario = Scenario(row["batch_limit"], request.isl, request.osl, precision, plan,
                            max_num_tokens=engine.max_num_tokens)  # fmt: skip
        start = time.perf_counter()
        try:
            cluster = resolve_cluster(hardware=hardware, num_gpus=plan.num_gpus)
            # the planned limit counts the whole replica; serve() gives each attention replica max_batch
            per_attention = -(-row["batch_limit"] // plan.attn_dp)  # (service.per_attention_replica)
            limited = engine.model_copy(update={"max_batch": per_attention})
            load = Load("request_rate", request.rate_per_s, num_requests=RECHECK_REQUESTS)
            data = serve(workload, cluster, scenario, limited, load).to_dict()
        except RooflineError as exc:
            out.append({**_key(row), "error": str(exc)})
            continue
        ttft, tpot = data["ttft_p99_s"], data["tpot_p99_s"]
        out.append({
            **_key(row), "planned_ttft_p99_s": row["ttft_p99_s"], "simulated_ttft_p99_s": ttft,
            "planned_tpot_p99_s": row["tpot_p99_s"], "simulated_tpot_p99_s": tpot,
            "meets_slo": bool(ttft <= request.ttft_p99_s and tpot <= request.tpot_p99_s),
            "requests": RECHECK_REQUESTS, "simulation_s": time.perf_counter() - start,
        })  # fmt: skip
    return out


def _key(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("hardware", "weight_dtype", "tp", "pp", "ep", "attn_dp", "dp", "gpus", "batch_limit")}
