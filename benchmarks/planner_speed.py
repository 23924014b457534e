"""Planner speed: decode-step estimates per second on one core (fast path, dense model) and the wall
time of a full `plan` for a 1T-parameter MoE (kimi-k2) over up to 1,024 GPUs. Not a test; run with
`python benchmarks/planner_speed.py`. Targets from the issue: >= 1,000,000 estimates/s, < 10 s.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ[_var] = "1"

import itertools  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from roofline.planner import grid  # noqa: E402
from roofline.planner.search import PlanRequest, plan  # noqa: E402
from roofline.simulator.fast import FastModel, evaluate  # noqa: E402
from roofline.workloads import get_workload  # noqa: E402

DENSE_HARDWARE = ("h100-sxm", "h200-sxm", "b200", "mi300x", "a100-sxm-80gb")
REPEATS = 5


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return "pinned to one core"
    return "not pinned (no sched_setaffinity)"


def decode_estimates_per_s() -> tuple[float, int, float]:
    """llama-3.1-70b: 5 accelerators x tp 1-8 x pp 1-4 x every batch 1-2048: distinct configurations,
    the decode step of each (TPOT); best of REPEATS after one warm-up that builds the tables."""
    w = get_workload("llama-3.1-70b")
    model = FastModel(w, grid.clusters_for(DENSE_HARDWARE))
    rows = np.array(list(itertools.product(range(len(DENSE_HARDWARE)), (1, 2, 4, 8), (1, 2, 4), range(1, 2049))))
    n = len(rows)
    configs = {"hardware": rows[:, 0], "precision": np.zeros(n, np.int64), "tp": rows[:, 1], "pp": rows[:, 2],
               "ep": np.ones(n, np.int64), "attn_dp": np.ones(n, np.int64), "batch": rows[:, 3],
               "isl": np.full(n, 1024), "osl": np.full(n, 256)}  # fmt: skip
    precisions = [w.shipped_precision]
    start = time.perf_counter()
    evaluate(model, configs, precisions, phases=("decode",))
    cold_s = time.perf_counter() - start
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = evaluate(model, configs, precisions, phases=("decode",))
        best = min(best, time.perf_counter() - start)
    assert np.all(np.isfinite(result["tpot_s"]))
    return n / best, n, cold_s


def kimi_plan_s(recheck: int) -> tuple[float, int, dict]:
    request = PlanRequest("kimi-k2", 1024, 256, rate_per_s=50.0, ttft_p99_s=2.0, tpot_p99_s=0.05, max_gpus=1024,
                          recheck=recheck)  # fmt: skip
    start = time.perf_counter()
    result = plan(request)
    return time.perf_counter() - start, result.searched, result.best[0] if result.best else {}


def main() -> None:
    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}; {_pin_one_core()}")  # fmt: skip
    rate, n, cold = decode_estimates_per_s()
    print(f"decode-step estimates (llama-3.1-70b, {n:,} configurations): {rate:,.0f} per second "
          f"(best of {REPEATS}; first call with table building {cold:.2f} s)")  # fmt: skip
    for recheck in (0, 3):
        wall, searched, best = kimi_plan_s(recheck)
        pick = "none"
        if best:
            pick = (f"{best['gpus']} x {best['hardware']} ({best['weight_dtype']}, tp {best['tp']}, ep {best['ep']}, "
                    f"attn-dp {best['attn_dp']}, pp {best['pp']}, batch {best['batch_limit']})")  # fmt: skip
        print(f"plan kimi-k2, 50 req/s, <= 1024 GPUs, recheck {recheck}: {wall:.2f} s wall, "
              f"{searched:,} configurations; best {pick}")  # fmt: skip


if __name__ == "__main__":
    main()
