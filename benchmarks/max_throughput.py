"""How far `estimate` is from the published max-throughput rows (TensorRT-LLM v0.17 table).

Not a test: a report of figures. The serving model (continuous batching, chunked prefill, the
engine's scheduler limits) arrives with the serving issue; until then this script approximates
an offline max-throughput run as one static batch:

- batch B = as many sequences of isl+osl tokens as the KV cache holds after weights and the
  runtime reserve, capped at 2048 (TensorRT-LLM's default max batch size);
- throughput = B x osl / (TTFT(B) + (osl - 1) x TPOT(B)), TTFT = the prefill of all B prompts.

Run: .venv/bin/python benchmarks/max_throughput.py [path/to/published.csv]
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from pathlib import Path

from roofline.dtypes import DType
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Placement, Precision
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.plan import stage_placements
from roofline.workloads import get_workload, model_catalog

MAX_BATCH = 2048
DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "published.csv"


def kv_limited_batch(model: str, hardware: str, plan: ParallelPlan, precision: Precision, tokens: int) -> int:
    workload, cluster = get_workload(model), resolve_cluster(hardware=hardware, num_gpus=plan.num_gpus)
    acc = cluster.accelerator
    worst = max(stage_placements(workload, plan), key=lambda p: workload.weight_bytes(precision, p))
    free = acc.memory.capacity - acc.runtime_reserve - workload.weight_bytes(precision, worst)
    per_sequence = workload.kv_cache_bytes(tokens, precision, Placement(plan.tp, 0, worst.num_layers))
    return max(1, min(MAX_BATCH, int(free // per_sequence)))


def predict(row: dict[str, str]) -> float:
    tp, pp, ep = int(row["tp"] or 1), int(row["pp"] or 1), int(row["ep"] or 1)
    weight = DType(row["weight_dtype"])
    kv = DType(row["kv_dtype"] or ("fp8" if weight is DType.FP4 else row["weight_dtype"]))
    precision = Precision(weight=weight, kv_cache=kv)
    plan = ParallelPlan(tp=tp, pp=pp, ep=ep)
    isl, osl = int(row["isl"]), int(row["osl"])
    batch = kv_limited_batch(row["model"], row["hardware"], plan, precision, isl + osl)
    cluster = resolve_cluster(hardware=row["hardware"], num_gpus=plan.num_gpus)
    result = estimate(get_workload(row["model"]), cluster, Scenario(batch, isl, osl, precision, plan))
    return result.output_tokens_per_s


def main(path: Path) -> None:
    known = set(model_catalog())
    rows = [r for r in csv.DictReader(path.open()) if r["scenario"] == "max_throughput" and r["model"] in known]
    errors: list[float] = []
    start = time.perf_counter()
    print(
        f"{'case':6} {'model':15} {'hardware':14} tp pp {'isl':>6} {'osl':>5} {'measured':>10} {'predicted':>10} error"
    )
    for row in rows:
        predicted, measured = predict(row), float(row["value"])
        error = predicted / measured - 1
        errors.append(error)
        print(
            f"{row['case_id']:6} {row['model']:15} {row['hardware']:14} {row['tp'] or 1:>2} {row['pp'] or 1:>2} "
            f"{row['isl']:>6} {row['osl']:>5} {measured:>10.0f} {predicted:>10.0f} {error:+.1%}"
        )
    elapsed = time.perf_counter() - start
    ape = [abs(e) for e in errors]
    for model in sorted({r["model"] for r in rows}):
        sub = [e for r, e in zip(rows, errors, strict=True) if r["model"] == model]
        mape, median, signed = statistics.mean(map(abs, sub)), statistics.median(map(abs, sub)), statistics.mean(sub)
        print(f"{model:16} {len(sub):3} rows  MAPE {mape:6.1%}  median APE {median:6.1%}  signed {signed:+6.1%}")
    print(
        f"\n{len(rows)} rows in {elapsed:.1f} s; MAPE {statistics.mean(ape):.1%}, median APE "
        f"{statistics.median(ape):.1%}, max APE {max(ape):.1%}, mean signed error {statistics.mean(errors):+.1%}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV)
