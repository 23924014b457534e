"""Memo tables for pure functions of frozen objects (workloads, op graphs, operator costs).

Everything the estimator computes from a frozen workload, a step shape and a placement is pure, and
the same pieces come back again and again: the decode steps of one estimate share their matmuls,
the candidates of a plan share their layers, the grid of a serving step model shares its ops. A
table here remembers them; each is bounded (cleared when full) so a long sweep cannot grow it
without end.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 1 << 14  # per table; a table that fills is cleared (the next lookups recompute)


class Memo:
    """A bounded table of results by key."""

    __slots__ = ("_table", "_max_entries")

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._table: dict[Hashable, Any] = {}
        self._max_entries = max_entries

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        try:
            return self._table[key]
        except KeyError:
            pass
        value = compute()
        if len(self._table) >= self._max_entries:
            self._table.clear()
        self._table[key] = value
        return value

    def __len__(self) -> int:
        return len(self._table)


_BY_OBJECT: weakref.WeakKeyDictionary[Any, Memo] = weakref.WeakKeyDictionary()


def memo_of(obj: Any) -> Memo | None:
    """The memo table of a frozen, hashable object (equal objects share one); None when it cannot be
    hashed (a field holding a list), and then callers compute as if there were no table."""
    try:
        table = _BY_OBJECT.get(obj)
    except TypeError:
        return None
    if table is None:
        table = _BY_OBJECT[obj] = Memo()
    return table


def remembered(obj: Any, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, remembered under `key` in `obj`'s table (computed afresh when obj is unhashable)."""
    table = memo_of(obj)
    return compute() if table is None else table.get(key, compute)
