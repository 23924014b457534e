"""Units: parse "3.35 TB/s" / "80 GiB" / "989 TFLOP/s" into plain SI floats, and format them back.

Inside the package every quantity is a float in SI base units: bytes, seconds, FLOP, bytes/s,
FLOP/s, watts, hertz. Rates and counts use decimal prefixes (1 TB/s = 1e12 B/s); binary prefixes
(KiB, MiB, GiB) are accepted where a capacity really is binary. Bits are accepted for link speeds
("400 Gb/s" = 50e9 B/s). Conversion happens only at the edges: YAML loading and report formatting.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, SerializationInfo, ValidationInfo

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}


class Dimension(StrEnum):
    BYTES = "bytes"
    BANDWIDTH = "bytes/s"
    FLOP_RATE = "FLOP/s"
    TIME = "s"
    POWER = "W"
    FREQUENCY = "Hz"


def _unit_table() -> dict[str, tuple[Dimension, float]]:
    table: dict[str, tuple[Dimension, float]] = {}
    for prefix, factor in _DECIMAL.items():
        table[f"{prefix}B"] = (Dimension.BYTES, factor)
        table[f"{prefix}B/s"] = (Dimension.BANDWIDTH, factor)
        table[f"{prefix}b/s"] = (Dimension.BANDWIDTH, factor / 8.0)
        table[f"{prefix}bps"] = (Dimension.BANDWIDTH, factor / 8.0)
        table[f"{prefix}FLOP/s"] = (Dimension.FLOP_RATE, factor)
        table[f"{prefix}FLOPS"] = (Dimension.FLOP_RATE, factor)
        table[f"{prefix}OP/s"] = (Dimension.FLOP_RATE, factor)  # integer ops (int8 TOP/s)
        table[f"{prefix}OPS"] = (Dimension.FLOP_RATE, factor)
        table[f"{prefix}W"] = (Dimension.POWER, factor)
        table[f"{prefix}Hz"] = (Dimension.FREQUENCY, factor)
    for prefix, factor in _BINARY.items():
        table[f"{prefix}B"] = (Dimension.BYTES, factor)
        table[f"{prefix}B/s"] = (Dimension.BANDWIDTH, factor)
    table.update(
        {
            "s": (Dimension.TIME, 1.0),
            "ms": (Dimension.TIME, 1e-3),
            "us": (Dimension.TIME, 1e-6),
            "µs": (Dimension.TIME, 1e-6),
            "ns": (Dimension.TIME, 1e-9),
        }
    )
    return table


UNITS = _unit_table()
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ/]+)\s*$")


def parse_quantity(text: Any, dimension: Dimension) -> float:
    """Parse "3.35 TB/s" into 3.35e12 (bytes/s). Bare numbers and wrong dimensions are rejected."""
    if isinstance(text, bool):
        raise ValueError(f"expected a quantity with a unit (e.g. '3.35 {_example(dimension)}'), got {text!r}")
    if isinstance(text, (int, float)):
        raise ValueError(f"bare number {text!r} has no unit; write it with one, e.g. '{text} {_example(dimension)}'")
    if not isinstance(text, str):
        raise ValueError(f"expected a quantity with a unit ({_example(dimension)}), got {text!r}")
    match = _QUANTITY.match(text)
    if not match and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", text):
        raise ValueError(
            f"bare number {text!r} has no unit; write it with one, e.g. '{text.strip()} {_example(dimension)}'"
        )
    if not match:
        raise ValueError(f"cannot read {text!r} as a quantity; write e.g. '3.35 {_example(dimension)}'")
    number, unit = float(match.group(1)), match.group(2)
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r} in {text!r}; expected a {dimension.value} unit")
    unit_dimension, factor = UNITS[unit]
    if unit_dimension is not dimension:
        raise ValueError(
            f"{text!r} is a {unit_dimension.value} quantity, expected {dimension.value} (e.g. '{_example(dimension)}')"
        )
    value = number * factor
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r} must be a finite, non-negative quantity")
    return value


def _example(dimension: Dimension) -> str:
    return {
        Dimension.BYTES: "GiB",
        Dimension.BANDWIDTH: "TB/s",
        Dimension.FLOP_RATE: "TFLOP/s",
        Dimension.TIME: "us",
        Dimension.POWER: "W",
        Dimension.FREQUENCY: "MHz",
    }[dimension]


# Validation context flag: plain numbers are SI values (Python callers: `replace(memory_bandwidth=10e12)`).
# YAML files are validated without it, so a bare number there stays an error.
SI_NUMBERS = "si_numbers"
# Serialization context flag: write quantities exactly, with units, so that they read back identical.
EXACT_UNITS = "exact_units"


def parse_si_number(value: Any, dimension: Dimension) -> float:
    """A plain number taken as an SI value (bytes, bytes/s ...): finite and non-negative."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        example = f"3.35 {_example(dimension)}"
        raise ValueError(f"expected a number in SI units or a quantity like '{example}', got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} must be a finite, non-negative quantity")
    return number


def _context_flag(info: ValidationInfo | SerializationInfo, flag: str) -> bool:
    context = info.context
    return isinstance(context, dict) and bool(context.get(flag))


def _validator(dimension: Dimension) -> Callable[[Any, ValidationInfo], float]:
    def validate(value: Any, info: ValidationInfo) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and _context_flag(info, SI_NUMBERS):
            return parse_si_number(value, dimension)
        return parse_quantity(value, dimension)

    return validate


def _serializer(dimension: Dimension, display: Callable[[float], str]) -> PlainSerializer:
    """JSON output: the display string (rounded, for people), or with EXACT_UNITS in the
    serialization context the exact string that parses back to the same float (for YAML files)."""

    def serialize(value: float, info: SerializationInfo) -> str:
        return format_exact(value, dimension) if _context_flag(info, EXACT_UNITS) else display(value)

    return PlainSerializer(serialize, when_used="json")


# Pydantic field types: a YAML string with a unit in, an SI float out.
Bytes = Annotated[
    float,
    BeforeValidator(_validator(Dimension.BYTES)),
    _serializer(Dimension.BYTES, lambda v: f"{format_bytes(v)} ({format_bytes(v, binary=True)})"),
]
BytesPerSecond = Annotated[
    float,
    BeforeValidator(_validator(Dimension.BANDWIDTH)),
    Field(gt=0),  # a bandwidth of 0 would divide by zero downstream
    _serializer(Dimension.BANDWIDTH, lambda v: format_rate(v, "B/s")),
]
FlopsPerSecond = Annotated[
    float,
    BeforeValidator(_validator(Dimension.FLOP_RATE)),
    Field(gt=0),  # a missing format is `n/a`, not 0
    _serializer(Dimension.FLOP_RATE, lambda v: format_rate(v, "FLOP/s")),
]
Seconds = Annotated[
    float, BeforeValidator(_validator(Dimension.TIME)), _serializer(Dimension.TIME, lambda v: format_time(v))
]
Watts = Annotated[
    float, BeforeValidator(_validator(Dimension.POWER)), _serializer(Dimension.POWER, lambda v: f"{v:g} W")
]
Hertz = Annotated[
    float,
    BeforeValidator(_validator(Dimension.FREQUENCY)),
    _serializer(Dimension.FREQUENCY, lambda v: format_rate(v, "Hz")),
]


# ---- formatting (edges only) -------------------------------------------------------------------

# The units `format_exact` writes, per dimension: (unit, factor), each parsed by `parse_quantity`.
_EXACT_UNITS: dict[Dimension, tuple[tuple[str, float], ...]] = {
    Dimension.BYTES: tuple((f"{p}B", f) for p, f in [*_DECIMAL.items(), *_BINARY.items()] if p != "K"),
    Dimension.BANDWIDTH: tuple((f"{p}B/s", f) for p, f in [*_DECIMAL.items(), *_BINARY.items()] if p != "K"),
    Dimension.FLOP_RATE: tuple((f"{p}FLOP/s", f) for p, f in _DECIMAL.items() if p != "K"),
    Dimension.TIME: (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)),
    Dimension.POWER: tuple((f"{p}W", f) for p, f in _DECIMAL.items() if p != "K"),
    Dimension.FREQUENCY: tuple((f"{p}Hz", f) for p, f in _DECIMAL.items() if p != "K"),
}


def _number_text(number: float) -> str:
    """Shortest text that reads back as this float: 3.35, 80, 1e-06 (never '80.0')."""
    text = repr(number)
    return text[:-2] if text.endswith(".0") else text


def _significant_digits(text: str) -> int:
    mantissa = text.split("e")[0].replace("-", "").replace(".", "")
    return len(mantissa.strip("0"))


def format_exact(value: float, dimension: Dimension) -> str:
    """A quantity written so that `parse_quantity` reads back the identical float.

    Among the units whose printed number round-trips, the one with the fewest significant digits
    wins, then a number >= 1, then the largest prefix: 85899345920 B -> '80 GiB', 3.35e12 B/s ->
    '3.35 TB/s', 2e-6 s -> '2 us', 50e6 B -> '50 MB'. A plain unit always round-trips.
    """
    units = _EXACT_UNITS[dimension]
    if value == 0:
        return f"0 {units[0][0]}"
    candidates: list[tuple[int, bool, float, str]] = []
    for unit, factor in units:
        text = _number_text(value / factor)
        if float(text) * factor == value:
            candidates.append((_significant_digits(text), abs(value / factor) < 1, -factor, f"{text} {unit}"))
    if not candidates:  # unreachable for finite values: the factor-1 unit always round-trips
        return f"{_number_text(value)} {units[0][0]}"
    return min(candidates)[3]


def format_rate(value: float, unit: str) -> str:
    """Decimal-prefixed rate: 3.35e12, 'B/s' -> '3.35 TB/s'."""
    for prefix, factor in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def format_bytes(value: float, binary: bool = False) -> str:
    """Bytes with decimal (GB) or binary (GiB) prefixes."""
    steps = (
        (("Ti", 2.0**40), ("Gi", 2.0**30), ("Mi", 2.0**20), ("Ki", 2.0**10))
        if binary
        else (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))
    )
    for prefix, factor in steps:
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}B"
    return f"{value:.4g} B"


def format_time(seconds: float) -> str:
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= factor:
            return f"{seconds / factor:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def format_count(value: float) -> str:
    """Decimal count: 70.55e9 -> '70.55 B' (never 1024-based)."""
    for suffix, factor in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {suffix}"
    return f"{value:.4g}"
