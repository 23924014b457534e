"""How far `serve --max-throughput` is from the published TensorRT-LLM max-throughput rows.

Replays every `max_throughput` row of a published.csv-schema file through the serving simulator
the way `roofline validate` does (trtllm-bench's request counts, KV fraction and engine limits:
src/roofline/validation/benchmark_setups.yaml) and prints the error per model and per GPU, and
the run time. Not a test: a report of figures.

Run: .venv/bin/python benchmarks/max_throughput.py [path/to/published.csv] [--max-requests N]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from roofline.validation import validate_file

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "published.csv"


def main(path: Path, max_requests: int | None) -> None:
    start = time.perf_counter()
    report = validate_file(path, ["max_throughput"], max_requests=max_requests)
    elapsed = time.perf_counter() - start
    groups: dict[str, list[float]] = defaultdict(list)
    for row in report.rows:
        groups[f"model {row.case.model}"].append(row.error)
        groups[f"gpu   {row.case.hardware}"].append(row.error)
    print(f"{'group':28} {'rows':>5} {'MAPE':>7} {'mean error':>11} {'worst':>8}")
    for name, errors in sorted(groups.items()):
        worst = max(errors, key=abs)
        print(f"{name:28} {len(errors):5} {statistics.fmean(map(abs, errors)):7.1%} "
              f"{statistics.fmean(errors):+11.1%} {worst:+8.1%}")  # fmt: skip
    errors = [r.error for r in report.rows]
    print(f"all: {len(errors)} rows, MAPE {statistics.fmean(map(abs, errors)):.1%}, "
          f"median {statistics.median(map(abs, errors)):.1%}, signed mean {statistics.fmean(errors):+.1%}, "
          f"{len(report.skipped)} skipped; {elapsed:.0f} s")  # fmt: skip


if __name__ == "__main__":
    args = sys.argv[1:]
    cap = None
    if "--max-requests" in args:
        at = args.index("--max-requests")
        cap = int(args[at + 1])
        del args[at : at + 2]
    main(Path(args[0]) if args else DEFAULT_CSV, cap)
