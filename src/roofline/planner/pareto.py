"""The Pareto frontier of two quantities to maximise (tokens/s per GPU vs tokens/s per user)."""

from __future__ import annotations

import numpy as np


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both x and y (ties kept once), by x descending.

    Sorted by x descending (then y descending), a point is on the front when its y exceeds every y
    before it."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((-y, -x))
    ys = y[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(ys)[:-1]))
    return order[ys > best_before]
