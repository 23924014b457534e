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
# The same object's table by identity: hashing a frozen pydantic model hashes every field, and the
# estimator asks for the table of one workload thousands of times per plan.
_BY_ID: dict[int, tuple[weakref.ref[Any], Memo]] = {}


def _forget(obj_id: int) -> Callable[[weakref.ref[Any]], None]:
    def forget(ref: weakref.ref[Any]) -> None:
        entry = _BY_ID.get(obj_id)
        if entry is not None and entry[0] is ref:
            del _BY_ID[obj_id]

    return forget


def memo_of(obj: Any) -> Memo | None:
    """The memo table of a frozen, hashable object (equal objects share one); None when it cannot be
    hashed (a field holding a list), and then callers compute as if there were no table."""
    entry = _BY_ID.get(id(obj))
    if entry is not None and entry[0]() is obj:
        return entry[1]
    try:
        table = _BY_OBJECT.get(obj)
    except TypeError:
        return None
    if table is None:
        table = _BY_OBJECT[obj] = Memo()
    _BY_ID[id(obj)] = (weakref.ref(obj, _forget(id(obj))), table)
    return table


def remembered(obj: Any, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, remembered under `key` in `obj`'s table (computed afresh when obj is unhashable)."""
    table = memo_of(obj)
    return compute() if table is None else table.get(key, compute)
