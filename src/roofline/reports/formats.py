"""Machine-readable outputs: JSON (SI units, unit in every key) and CSV."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any


def to_json(data: Any) -> str:
    """Strict JSON: infinities and NaN (a rate of inf, a trace's load) become the strings "inf",
    "-inf" and "nan", which every parser reads."""
    import json  # loaded by the formats that write it (not by a table)

    return json.dumps(_finite(data), indent=2, default=_default, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _default(value: Any) -> Any:
    if hasattr(value, "value"):  # enums
        return value.value
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    import csv

    if not rows:
        return ""
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))  # union, first-seen order
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _flat(v) for k, v in row.items()})
    return buffer.getvalue()


def _flat(value: Any) -> Any:
    import json

    return json.dumps(value) if isinstance(value, (dict, list)) else value


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'memory': {'fits': True}} -> {'memory.fits': True} (for one-row CSV)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
