"""`plan`: the cheapest configurations that serve a request rate within TTFT and TPOT p99 targets.

Searched: accelerator x weight format x (tp, attention-DP, ep) inside one scale-up domain x pp x
batch limit; every candidate is evaluated on the fast path (simulator/fast.py) in one vectorised
pass, then slo.py gives its capacity and p99s, and the fewest data-parallel replicas that meet
the rate and the TTFT target fix the GPU count (dp x tp x attention-DP x pp). Ranked by $/hour
when prices are given, else by GPU count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster
from roofline.ir import Precision
from roofline.planner import grid, slo
from roofline.planner.pareto import pareto_front
from roofline.planner.recheck import RECHECK_FALLBACK, recheck
from roofline.simulator.fast import FastModel, evaluate
from roofline.simulator.plan import MAX_SEQUENCE_TOKENS
from roofline.simulator.serving.engine_config import EngineConfig, load_engine
from roofline.workloads import get_autoregressive
from roofline.workloads.base import Workload

DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
SECONDS_PER_HOUR = 3600.0
MAX_BATCH_LIMIT = 65536  # sequences per replica; far above any engine's batch limit


MAX_RECHECK = 20  # each re-check is a serving simulation of a few seconds


@dataclass(frozen=True)
class PlanRequest:
    model: str | Workload  # an id, a path or a Workload object
    isl: int
    osl: int
    rate_per_s: float
    ttft_p99_s: float
    tpot_p99_s: float
    hardware: tuple[str, ...] = ()  # empty: grid.default_hardware()
    max_gpus: int = 1024
    prices_per_gpu_hour: dict[str, float] = field(default_factory=dict)
    weight_dtypes: tuple[str, ...] = ()  # empty: as shipped, and fp8
    batches: tuple[int, ...] = DEFAULT_BATCHES
    engine: str = "trtllm"
    top: int = 5
    recheck: int = 3  # best configurations re-checked with the serving simulator

    @property
    def model_id(self) -> str:
        return self.model.id if isinstance(self.model, Workload) else self.model

    def __post_init__(self) -> None:
        if self.isl < 1 or self.osl < 2:
            raise RooflineError("--isl must be >= 1 and --osl >= 2 (TPOT needs two output tokens)")
        for option, value in (("--rate", self.rate_per_s), ("--ttft-p99", self.ttft_p99_s),
                              ("--tpot-p99", self.tpot_p99_s)):  # fmt: skip
            if not (math.isfinite(value) and value > 0):  # NaN fails both
                raise RooflineError(f"{option} must be a finite positive number, not {value:g}")
        if self.max_gpus < 1:
            raise RooflineError(f"--max-gpus must be >= 1, not {self.max_gpus}")
        if self.top < 1 or not 0 <= self.recheck <= MAX_RECHECK:
            raise RooflineError(f"--top must be >= 1 and --recheck in [0, {MAX_RECHECK}]")
        if self.isl + self.osl > MAX_SEQUENCE_TOKENS:
            raise RooflineError(f"--isl + --osl at most {MAX_SEQUENCE_TOKENS:,} tokens (beyond any context window)")
        if not self.batches or min(self.batches) < 1 or max(self.batches) > MAX_BATCH_LIMIT:
            raise RooflineError(f"--batch: batch limits must be between 1 and {MAX_BATCH_LIMIT:,}")
        unpriced = [h for h in self.hardware if self.prices_per_gpu_hour and h not in self.prices_per_gpu_hour]
        if unpriced:
            missing = ", ".join(unpriced)
            raise RooflineError(f"--price has no price for {missing}; add them or drop them from --hardware")


@dataclass(frozen=True)
class Candidates:
    """Every configuration searched, as arrays (one entry per configuration)."""

    hardware: list[str]
    precisions: list[Precision]
    columns: dict[str, np.ndarray]


def _layouts(workload: Workload, cluster: Cluster, max_gpus: int) -> list[tuple[int, int, int, int]]:
    """(tp, attn_dp, ep, pp): powers of two, the stage inside one scale-up domain, a replica within
    max_gpus (and one node when the system has no scale-out); impossible splits dropped later."""
    domain = min(cluster.system.gpus_per_domain, max_gpus)
    node = cluster.system.gpus_per_node if cluster.scale_out is None else max_gpus
    moe = _has_experts(workload)
    out = []
    for tp in grid.powers_of_two(domain):
        for attn_dp in grid.powers_of_two(domain // tp) if moe else [1]:
            for ep in sorted({1, tp * attn_dp}) if moe else [1]:
                if attn_dp > 1 and ep == 1:
                    continue
                for pp in grid.powers_of_two(min(workload.num_layers, max_gpus // (tp * attn_dp))):
                    if tp * attn_dp * pp <= min(node, max_gpus):
                        out.append((tp, attn_dp, ep, pp))
    return out


def _has_experts(workload: Workload) -> bool:
    """Kinds with experts override Workload.check_experts (which refuses any ep > 1)."""
    return type(workload).check_experts is not Workload.check_experts


def candidates(workload: Workload, clusters: Sequence[Cluster], hardware: list[str], precisions: list[Precision],
               request: PlanRequest) -> Candidates:  # fmt: skip
    rows = []
    for h, cluster in enumerate(clusters):
        for p in range(len(precisions)):
            for tp, attn_dp, ep, pp in _layouts(workload, cluster, request.max_gpus):
                rows += [(h, p, tp, pp, ep, attn_dp, b) for b in request.batches]
    a = np.array(rows, dtype=np.int64).reshape(-1, 7)
    n = len(a)
    columns = {name: a[:, i] for i, name in enumerate(("hardware", "precision", "tp", "pp", "ep", "attn_dp", "batch"))}
    columns.update(isl=np.full(n, request.isl), osl=np.full(n, request.osl))
    return Candidates(hardware, precisions, columns)


def score(model: FastModel, cands: Candidates, request: PlanRequest, engine: EngineConfig) -> dict[str, np.ndarray]:
    """Fast-path times, memory, capacity, replicas and p99s of every candidate."""
    c = cands.columns
    full = evaluate(model, c, cands.precisions, engine)
    one = evaluate(model, {**c, "batch": np.ones_like(c["batch"])}, cands.precisions, engine, phases=("prefill",))
    tpot, prefill_batch, prefill_one = full["tpot_s"], full["ttft_batch_s"], one["ttft_batch_s"]
    batch, osl = c["batch"].astype(float), request.osl
    capacity = slo.capacity_requests_per_s(batch, tpot, prefill_batch, osl)
    dp = slo.replicas_needed(request.rate_per_s, capacity, prefill_one, tpot, request.ttft_p99_s)
    reachable = dp > 0
    dp = np.where(reachable, dp, np.maximum(1.0, np.ceil(request.rate_per_s / (slo.RHO_MAX * capacity))))
    replica_gpus = c["tp"] * c["attn_dp"] * c["pp"]

    def ttft99(i: np.ndarray) -> np.ndarray:
        rate = request.rate_per_s / dp[i]
        slot = slo.slot_wait_p99_s(rate, capacity[i], batch[i])
        return slo.ttft_p99_s(prefill_one[i], tpot[i], rate / capacity[i], slot)

    ttft = ttft99(np.arange(len(dp)))
    for _ in range(16):  # more replicas until the slot wait fits the TTFT target too (or the GPUs run out)
        grow = np.flatnonzero(reachable & (ttft > request.ttft_p99_s) & (dp * replica_gpus < request.max_gpus))
        if not len(grow):
            break
        dp[grow] += np.maximum(1.0, np.ceil(dp[grow] / 4))
        ttft[grow] = ttft99(grow)
    rho = request.rate_per_s / (dp * capacity)
    tpot99 = slo.tpot_p99_s(tpot, prefill_batch, osl)
    out = {
        "valid": full["valid"], "fits": full["fits"], "memory_bytes": full["total_bytes"],
        "capacity_bytes": full["capacity_bytes"], "tpot_s": tpot, "prefill_one_s": prefill_one,
        "prefill_batch_s": prefill_batch, "capacity_requests_per_s": capacity, "dp": dp, "utilisation": rho,
        "gpus": dp * replica_gpus, "tpot_p99_s": tpot99, "ttft_p99_s": ttft,
        "tokens_per_s_per_gpu": capacity * osl / replica_gpus, "tokens_per_s_per_user": 1.0 / tpot99,
    }  # fmt: skip
    prices = np.array([request.prices_per_gpu_hour.get(h, math.nan) for h in cands.hardware])
    out["usd_per_hour"] = out["gpus"] * prices[c["hardware"]]
    tokens_per_hour = request.rate_per_s * osl * SECONDS_PER_HOUR
    out["usd_per_million_tokens"] = out["usd_per_hour"] / tokens_per_hour * 1e6
    return out


FAILURES = ("memory", "tpot_p99", "ttft_p99", "gpus")
# what a configuration that does not fit in memory leaves empty (it cannot run, so it has no latency)
TIMED_KEYS = ("tpot_p99_s", "ttft_p99_s", "utilisation", "capacity_requests_per_s", "tokens_per_s_per_gpu",
              "tokens_per_s_per_user")  # fmt: skip


def violations(s: dict[str, np.ndarray], request: PlanRequest) -> dict[str, np.ndarray]:
    """How far each candidate is over each limit (ratio; <= 1 means met)."""
    return {
        "memory": s["memory_bytes"] / s["capacity_bytes"],
        "tpot_p99": s["tpot_p99_s"] / request.tpot_p99_s,
        "ttft_p99": s["ttft_p99_s"] / request.ttft_p99_s,
        "gpus": s["gpus"] / request.max_gpus,
    }


def _row(cands: Candidates, s: dict[str, np.ndarray], i: int, failed: list[str]) -> dict[str, Any]:
    c = cands.columns
    h = int(c["hardware"][i])
    row: dict[str, Any] = {
        "hardware": cands.hardware[h], "weight_dtype": grid.dtype_label(cands.precisions[int(c["precision"][i])]),
        **{k: int(c[k][i]) for k in ("tp", "pp", "ep", "attn_dp")}, "dp": int(s["dp"][i]), "gpus": int(s["gpus"][i]),
        "batch_limit": int(c["batch"][i]),
    }  # fmt: skip
    unfit = not bool(s["fits"][i])  # a configuration that cannot run: no latency or throughput shown
    for key in ("tpot_p99_s", "ttft_p99_s", "utilisation", "capacity_requests_per_s", "tokens_per_s_per_gpu",
                "tokens_per_s_per_user", "memory_bytes", "usd_per_hour", "usd_per_million_tokens"):  # fmt: skip
        value = float(s[key][i])
        row[key] = None if math.isnan(value) or (unfit and key in TIMED_KEYS) else value
    row["failed"] = [f for f in failed if not unfit or not f.startswith(("TPOT", "TTFT"))]
    return row


def _best_per_layout(order: np.ndarray, c: dict[str, np.ndarray], top: int) -> list[int]:
    """The first `top` entries of `order` with distinct (hardware, format, tp, pp, ep, attn_dp)."""
    seen: set[tuple[int, ...]] = set()
    picked: list[int] = []
    for i in order:
        key = tuple(int(c[k][i]) for k in ("hardware", "precision", "tp", "pp", "ep", "attn_dp"))
        if key not in seen:
            seen.add(key)
            picked.append(int(i))
            if len(picked) == top:
                break
    return picked


def _failures(v: dict[str, np.ndarray], i: int, s: dict[str, np.ndarray], request: PlanRequest) -> list[str]:
    limits = {
        "memory": f"memory {s['memory_bytes'][i] / 2**30:.1f} GiB > {s['capacity_bytes'][i] / 2**30:.1f} GiB per GPU",
        "tpot_p99": f"TPOT p99 {s['tpot_p99_s'][i] * 1e3:.3g} ms > {request.tpot_p99_s * 1e3:.3g} ms",
        "ttft_p99": f"TTFT p99 {s['ttft_p99_s'][i] * 1e3:.4g} ms > {request.ttft_p99_s * 1e3:.4g} ms",
        "gpus": f"needs {int(s['gpus'][i])} GPUs > --max-gpus {request.max_gpus}",
    }
    return [limits[k] for k in FAILURES if not v[k][i] <= 1.0]


@dataclass(frozen=True)
class PlanResult:
    request: PlanRequest
    best: list[dict[str, Any]]  # meet every target, cheapest first
    closest: list[dict[str, Any]]  # when none does: the nearest misses and what they fail
    pareto: list[dict[str, Any]]  # tokens/s per GPU vs tokens/s per user, configurations that fit
    searched: int
    search_s: float
    recheck: list[dict[str, Any]] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)  # valid configurations failing each limit
    recommended: dict[str, Any] | None = None  # the cheapest pick the serving simulator confirms

    @property
    def feasible(self) -> bool:
        return bool(self.best)


def plan(request: PlanRequest) -> PlanResult:
    start = time.perf_counter()
    workload = get_autoregressive(request.model)
    hardware = list(request.hardware) or grid.default_hardware()
    if request.prices_per_gpu_hour and not request.hardware:
        hardware = [h for h in hardware if h in request.prices_per_gpu_hour]
    dtypes = list(request.weight_dtypes) or list(dict.fromkeys([workload.weight_dtype.value, "fp8"]))
    precisions = [grid.precision_for(workload, None if d == workload.weight_dtype.value else d) for d in dtypes]
    clusters = grid.clusters_for(hardware)
    engine = load_engine(request.engine)
    if engine.eager:
        raise RooflineError(f"plan searches with the vectorised estimator, which does not model {engine.id}'s "
                            "op-by-op Python dispatch; plan a serving runtime (trtllm, vllm, sglang, torch-cuda-graph) "
                            f"or price {engine.id} with `roofline sweep --engine {engine.id}`")  # fmt: skip
    model = FastModel(workload, clusters, max_num_tokens=engine.max_num_tokens,
                      attention_kernel=engine.kernels.attention)  # fmt: skip
    cands = candidates(workload, clusters, hardware, precisions, request)
    s = score(model, cands, request, engine)
    v = violations(s, request)
    ok = s["valid"] & np.all([v[k] <= 1.0 for k in FAILURES], axis=0)
    cost = s["usd_per_hour"] if request.prices_per_gpu_hour else s["gpus"]
    c = cands.columns
    ranked = np.lexsort((s["tpot_p99_s"], s["gpus"], cost))
    best = [_row(cands, s, i, []) for i in _best_per_layout(ranked[ok[ranked]], c, request.top)]
    closest: list[dict[str, Any]] = []
    if not best:
        worst = np.max(np.stack([v[k] for k in FAILURES]), axis=0)
        near = np.lexsort((cost, np.where(s["valid"], worst, np.inf)))
        closest = [_row(cands, s, i, _failures(v, i, s, request)) for i in _best_per_layout(near, c, request.top)]
    fits = np.flatnonzero(s["valid"] & s["fits"] & (s["gpus"] <= request.max_gpus))
    front = fits[pareto_front(s["tokens_per_s_per_gpu"][fits], s["tokens_per_s_per_user"][fits])]
    pareto = [_row(cands, s, int(i), []) for i in front]
    searched_s = time.perf_counter() - start
    order = _best_per_layout(ranked[ok[ranked]], c, request.recheck * RECHECK_FALLBACK) if request.recheck else []
    picks = [(cands.hardware[int(c["hardware"][i])], cands.precisions[int(c["precision"][i])], _row(cands, s, i, []))
             for i in order]  # fmt: skip
    checks, recommended = _recheck_in_order(workload, request, engine, picks)
    failing = {k: int(np.sum(s["valid"] & ~(v[k] <= 1.0))) for k in FAILURES}
    return PlanResult(request, best, closest, pareto, len(c["batch"]), searched_s, checks, failing, recommended)


def _recheck_in_order(workload: Workload, request: PlanRequest, engine: EngineConfig,
                      picks: list[tuple[str, Precision, dict[str, Any]]]
                      ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:  # fmt: skip
    """Simulate the `request.recheck` cheapest picks; when none of them meets the targets, go on down
    the list one pick at a time (up to RECHECK_FALLBACK x as many) until one does. Returns every check
    and the cheapest pick the simulator confirms (its planned row and simulated p99s), if any."""
    checks: list[dict[str, Any]] = []
    recommended: dict[str, Any] | None = None
    if request.recheck == 0:  # --recheck 0: no simulation at all
        return checks, recommended
    for n, pick in enumerate(picks[: request.recheck * RECHECK_FALLBACK]):
        if n >= request.recheck and recommended is not None:
            break
        done = recheck(workload, request, engine, [pick])
        checks += done
        if recommended is None and done and done[0].get("meets_slo"):
            recommended = {**pick[2], **done[0]}
    return checks, recommended
