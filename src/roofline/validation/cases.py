"""Reading a measurements file in the schema of ../shared/validation/README.md.

Every value is checked as the file is read: a wrong scenario, metric, number or missing column is
one RooflineError naming the line and the column, so a bad file never yields a partial report.
Whether a row can be predicted (a known model, hardware and combination) is decided later, per row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from roofline.dtypes import DType, parse_dtype
from roofline.errors import RooflineError

COLUMNS = (
    "case_id", "source", "model", "hardware", "num_gpus", "tp", "pp", "ep", "weight_dtype", "kv_dtype",
    "isl", "osl", "scenario", "load", "metric", "value",
)  # fmt: skip

SERVING_METRICS = ("output_tokens_per_s", "ttft_ms", "tpot_ms")
SCENARIO_METRICS: dict[str, tuple[str, ...]] = {
    "max_throughput": ("output_tokens_per_s",),
    "request_rate": SERVING_METRICS,
    "concurrency": SERVING_METRICS,
    "gemm": ("tflops",),
    "memory_copy": ("gbps",),
    "allreduce": ("busbw_gbps",),
}
SERVING_SCENARIOS = ("max_throughput", "request_rate", "concurrency")
STREAM_KERNELS = ("copy", "scale", "add", "triad")

LoadValue = float | tuple[int, int, int] | str | None


@dataclass(frozen=True)
class Case:
    """One row of the file, typed. `line` is the row's line in the file (the header is line 1)."""

    line: int
    case_id: str
    source: str
    model: str
    hardware: str
    num_gpus: int
    tp: int | None
    pp: int | None
    ep: int | None
    weight_dtype: DType | None
    kv_dtype: DType | None
    isl: int | None
    osl: int | None
    scenario: str
    load: str
    load_value: LoadValue
    metric: str
    value: float

    def run_key(self) -> tuple[object, ...]:
        """What the prediction depends on: rows that differ only in metric share one simulation."""
        return (self.scenario, self.model, self.hardware, self.num_gpus, self.tp, self.pp, self.ep,
                self.weight_dtype, self.kv_dtype, self.isl, self.osl, self.load_value)  # fmt: skip


class _Row:
    """One raw CSV row and where it is, for error messages."""

    def __init__(self, path: Path, line: int, raw: dict[str, str]) -> None:
        self.path, self.line, self.raw = path, line, raw

    def fail(self, column: str, why: str) -> RooflineError:
        return RooflineError(f"{self.path} line {self.line}, column '{column}': {why}")

    def text(self, column: str) -> str:
        return (self.raw.get(column) or "").strip()

    def integer(self, column: str, required: bool = False) -> int | None:
        text = self.text(column)
        if not text:
            if required:
                raise self.fail(column, "is empty; a positive integer is needed")
            return None
        try:
            value = int(text)
        except ValueError:
            raise self.fail(column, f"'{text}' is not an integer") from None
        if value < 1:
            raise self.fail(column, f"must be at least 1, got {value}")
        return value

    def dtype(self, column: str) -> DType | None:
        text = self.text(column)
        if not text:
            return None
        try:
            return parse_dtype(text)
        except RooflineError as exc:
            raise self.fail(column, str(exc)) from None

    def number(self, column: str) -> float:
        text = self.text(column)
        try:
            value = float(text)
        except ValueError:
            raise self.fail(column, f"'{text}' is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise self.fail(column, f"must be a positive finite number, got '{text}'")
        return value


def _positive(text: str) -> float:
    value = float(text)  # ValueError for non-numbers
    if not value > 0:
        raise ValueError
    return value


def _rate(text: str) -> float:
    return math.inf if text.lower() == "inf" else _positive(text)


def _clients(text: str) -> float:
    value = _positive(text)
    if value != int(value):
        raise ValueError
    return value


def _gemm_shape(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.lower().split("x")]
    if len(parts) != 3 or min(parts) < 1:
        raise ValueError
    m, n, k = parts
    return m, n, k


def _stream_kernel(text: str) -> str:
    if text.lower() not in STREAM_KERNELS:
        raise ValueError
    return text.lower()


def _no_load(text: str) -> None:
    return None


_LOAD_PARSERS: dict[str, tuple[Callable[[str], LoadValue], str]] = {
    "max_throughput": (_no_load, "empty"),
    "request_rate": (_rate, "requests/s (a positive number) or 'inf'"),
    "concurrency": (_clients, "a positive whole number of clients"),
    "gemm": (_gemm_shape, "MxNxK, e.g. 4096x4096x4096"),
    "memory_copy": (_stream_kernel, " or ".join(STREAM_KERNELS)),
    "allreduce": (_positive, "a message size in bytes"),
}


def _case(row: _Row) -> Case:
    scenario = row.text("scenario")
    if scenario not in SCENARIO_METRICS:
        raise row.fail("scenario", f"unknown scenario '{scenario}'; known: {', '.join(SCENARIO_METRICS)}")
    metric = row.text("metric")
    if metric not in SCENARIO_METRICS[scenario]:
        known = ", ".join(SCENARIO_METRICS[scenario])
        raise row.fail("metric", f"unknown metric '{metric}' for scenario {scenario}; known: {known}")
    parse, expected = _LOAD_PARSERS[scenario]
    load = row.text("load")
    try:
        load_value = parse(load)
    except ValueError:
        raise row.fail("load", f"'{load}' is not a {scenario} load; expected {expected}") from None
    serving = scenario in SERVING_SCENARIOS
    num_gpus = row.integer("num_gpus", required=True)
    assert num_gpus is not None
    return Case(
        line=row.line, case_id=row.text("case_id"), source=row.text("source"), model=row.text("model"),
        hardware=row.text("hardware"), num_gpus=num_gpus, tp=row.integer("tp"), pp=row.integer("pp"),
        ep=row.integer("ep"), weight_dtype=row.dtype("weight_dtype"), kv_dtype=row.dtype("kv_dtype"),
        isl=row.integer("isl", required=serving), osl=row.integer("osl", required=serving),
        scenario=scenario, load=load, load_value=load_value, metric=metric, value=row.number("value"),
    )  # fmt: skip


def parse_cases(path: Path, lines: Iterable[str]) -> list[Case]:
    reader = csv.DictReader(lines)
    if reader.fieldnames is None:
        raise RooflineError(f"{path} is empty; expected a header line with {', '.join(COLUMNS)}")
    header = [name.strip() for name in reader.fieldnames]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RooflineError(f"{path} line 1: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for raw in reader:
        row = _Row(path, reader.line_num, raw)
        if None in raw:  # more fields than the header has
            extra = len(header) + len(raw[None])
            raise RooflineError(f"{path} line {row.line}: {extra} fields, the header has {len(header)}")
        case = _case(row)
        if not case.case_id:
            raise row.fail("case_id", "is empty; every row needs a unique id")
        if case.case_id in seen:
            raise row.fail("case_id", f"'{case.case_id}' repeats the id of line {seen[case.case_id]}")
        seen[case.case_id] = row.line
        cases.append(case)
    return cases


def read_cases(path: Path) -> list[Case]:
    """The rows of a measurements file, checked; RooflineError (one line) for a malformed file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return parse_cases(path, handle)
    except OSError as exc:
        raise RooflineError(f"cannot read '{path}': {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RooflineError(f"'{path}' is not UTF-8 text; expected a CSV file") from None
    except csv.Error as exc:
        raise RooflineError(f"'{path}' is not a valid CSV file: {exc}") from None
