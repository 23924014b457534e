"""Request streams: fixed or drawn lengths, Poisson / burst arrivals, or a trace file."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roofline.errors import RooflineError


@dataclass(frozen=True)
class Requests:
    """N requests: arrival time (s; NaN = sent by a closed-loop client when one frees up), lengths."""

    arrival_s: np.ndarray
    isl: np.ndarray
    osl: np.ndarray

    def __len__(self) -> int:
        return len(self.isl)


def lengths(n: int, mean: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    """`n` lengths around `mean`: fixed when spread is 0, else uniform in mean x [1 - spread, 1 + spread]."""
    if not 0 <= spread < 1:
        raise RooflineError(f"length spread must be in [0, 1), got {spread}")
    if spread == 0:
        return np.full(n, mean, dtype=np.int64)
    low, high = max(1, round(mean * (1 - spread))), max(1, round(mean * (1 + spread)))
    return rng.integers(low, high + 1, n)


def poisson_arrivals(n: int, rate_per_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of a Poisson process (`inf`: everything at t = 0)."""
    if not rate_per_s > 0:  # NaN too
        raise RooflineError(f"--request-rate must be positive, got {rate_per_s}")
    if math.isinf(rate_per_s):
        return np.zeros(n)
    gaps = rng.exponential(1.0 / rate_per_s, n)
    gaps[0] = 0.0
    if n > 1:  # the run's mean rate is the requested one (the draw's spread stays in the gaps)
        gaps *= (n - 1) / rate_per_s / gaps.sum()
    return np.cumsum(gaps)


def read_trace(path: Path) -> Requests:
    """A CSV with columns arrival_s, isl, osl (header required); a bad row is named by its line."""
    if not path.exists():
        raise RooflineError(f"trace file '{path}' does not exist")
    if not path.is_file():
        raise RooflineError(f"trace '{path}' is not a file")
    try:
        return _parse_trace(path)
    except UnicodeDecodeError:
        raise RooflineError(f"trace '{path}' is not a UTF-8 text CSV") from None


def _parse_trace(path: Path) -> Requests:
    rows: list[tuple[float, int, int]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:  # a spreadsheet's BOM is not a column name
        reader = csv.DictReader(handle)
        missing = {"arrival_s", "isl", "osl"} - set(reader.fieldnames or [])
        if missing:
            raise RooflineError(f"trace '{path}': missing column(s) {', '.join(sorted(missing))}; "
                                "the header must be arrival_s,isl,osl")  # fmt: skip
        for line, row in enumerate(reader, start=2):
            try:
                arrival, isl, osl = float(row["arrival_s"]), int(row["isl"]), int(row["osl"])
            except (TypeError, ValueError):
                raise RooflineError(f"trace '{path}' line {line}: arrival_s, isl, osl must be numbers") from None
            if not math.isfinite(arrival) or arrival < 0 or isl < 1 or osl < 1:
                raise RooflineError(f"trace '{path}' line {line}: need a finite arrival_s >= 0, isl >= 1, osl >= 1")
            rows.append((arrival, isl, osl))
    if not rows:
        raise RooflineError(f"trace '{path}' has no requests")
    rows.sort()
    arr = np.array(rows)
    return Requests(arr[:, 0], arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64))
