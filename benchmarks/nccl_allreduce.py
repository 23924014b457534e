"""How far the collective model is from the published nccl-tests all-reduce rows.

Reads the `allreduce` rows of a published.csv-schema file (num_gpus GPUs in one node, load = bytes,
metric busbw_gbps) and prints, per row, the predicted bus bandwidth, the algorithm and protocol
the model picked, and the error. Not a test: a report of figures.

Run: .venv/bin/python benchmarks/nccl_allreduce.py [path/to/published.csv]
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

from roofline.hardware_specs import resolve_cluster
from roofline.ir import CollectiveKind
from roofline.simulator.collectives import CollectiveModel, group_topology

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "published.csv"


def main(path: Path) -> None:
    rows = [r for r in csv.DictReader(path.open()) if r["scenario"] == "allreduce"]
    model = CollectiveModel()
    print(f"{'case':6} {'hardware':14} {'bytes':>12} {'measured':>9} {'predicted':>9} {'algorithm':>14} error")
    errors: dict[str, list[float]] = {"< 16 MB": [], ">= 16 MB": []}
    for row in rows:
        n, size = int(row["num_gpus"]), float(row["load"])
        cluster = resolve_cluster(hardware=row["hardware"], num_gpus=n)
        cost = model.cost(CollectiveKind.ALL_REDUCE, size, group_topology(cluster, n))
        predicted, measured = cost.busbw_bytes_per_s / 1e9, float(row["value"])
        error = predicted / measured - 1
        errors[">= 16 MB" if size >= 16e6 else "< 16 MB"].append(error)
        print(f"{row['case_id']:6} {row['hardware']:14} {size:12.4g} {measured:9.1f} {predicted:9.1f} "
              f"{cost.algorithm + '/' + cost.protocol:>14} {error:+.1%}")  # fmt: skip
    for band, errs in errors.items():
        if errs:
            ratio = max(max(1 + e, 1 / (1 + e)) for e in errs)
            print(f"{band}: {len(errs)} rows, MAPE {statistics.mean(map(abs, errs)):.1%}, "
                  f"max |error| {max(map(abs, errs)):.1%}, worst ratio {ratio:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV)
