"""Reading a measurements file in the schema of ../shared/validation/README.md.

Only the columns every row needs (REQUIRED_COLUMNS) are checked up front; a file may leave out the
others and may carry more (notes, runtime, ...). A column that one row's scenario needs
(SCENARIO_COLUMNS) and the file lacks is an error naming that line. Every value is checked as the
file is read: a bad number, dtype, id or load of a known scenario is one RooflineError naming the
line and the column, so a bad file never yields a partial report. Any scenario and metric name is
read; whether a row can be predicted (a predicted scenario and metric, a known model and hardware)
is decided later, per row. A training file (README "Training measurements": no scenario column,
seq_len / global_batch / micro_batch instead) is read with its own columns; its rows get the
scenario TRAINING.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from roofline.dtypes import DType, parse_dtype
from roofline.errors import RooflineError

# The columns of the schema (README); a file needs only REQUIRED_COLUMNS and those its rows need.
COLUMNS = (
    "case_id", "source", "model", "hardware", "num_gpus", "tp", "pp", "ep", "weight_dtype", "kv_dtype",
    "isl", "osl", "scenario", "load", "metric", "value",
)  # fmt: skip
REQUIRED_COLUMNS = ("case_id", "hardware", "num_gpus", "scenario", "metric", "value")

SERVING_METRICS = ("output_tokens_per_s", "ttft_ms", "tpot_ms")
# The scenarios the predictors know and the metrics each one predicts (predict.PREDICTORS).
SCENARIO_METRICS: dict[str, tuple[str, ...]] = {
    "max_throughput": ("output_tokens_per_s",),
    "request_rate": SERVING_METRICS,
    "concurrency": (*SERVING_METRICS, "total_tokens_per_s"),
    "single_stream": ("output_tokens_per_s",),
    "disagg_prefill": ("input_tokens_per_s",),
    "disagg_decode": ("output_tokens_per_s",),
    "gemm": ("tflops", "gbps", "latency_us"),
    "memory_copy": ("gbps",),
    "allreduce": ("busbw_gbps", "latency_us"),
    "grouped_gemm": ("tflops", "gbps", "latency_us"),
    "attention_kernel": ("tflops", "gbps", "latency_us"),
    "moe_experts": ("latency_us",),
    "ep_dispatch": ("latency_us", "gbps"),
    "ep_combine": ("latency_us", "gbps"),
}
SERVING_SCENARIOS = ("max_throughput", "request_rate", "concurrency")
# One phase or one user of a deployment (README "Other runtimes"): a model run, not a serving replay.
PHASE_SCENARIOS = ("single_stream", "disagg_prefill", "disagg_decode")
# Columns a row of a predicted scenario needs beyond REQUIRED_COLUMNS: a file without one is an error.
SCENARIO_COLUMNS: dict[str, tuple[str, ...]] = {
    "max_throughput": ("model", "isl", "osl"),
    "request_rate": ("model", "isl", "osl", "load"),
    "concurrency": ("model", "isl", "osl", "load"),
    "single_stream": ("model", "isl", "osl"),
    "disagg_prefill": ("model", "isl"),
    "disagg_decode": ("model", "isl"),
    "gemm": ("load",),
    "memory_copy": ("load",),
    "allreduce": ("load",),
    "grouped_gemm": ("load",),
    "attention_kernel": ("load",),
    "moe_experts": ("load",),
    "ep_dispatch": ("load",),
    "ep_combine": ("load",),
}
# Kernel scenarios whose load is `key=value;key=value` (README of the validation data).
KEY_VALUE_SCENARIOS = ("grouped_gemm", "attention_kernel", "moe_experts", "ep_dispatch", "ep_combine")
STREAM_KERNELS = ("copy", "scale", "add", "triad")

TRAINING = "training"  # the scenario given to the rows of a training file
TRAINING_MARKERS = ("seq_len", "global_batch", "micro_batch")  # with no scenario column: a training file
TRAINING_REQUIRED_COLUMNS = ("case_id", "hardware", "num_gpus", *TRAINING_MARKERS, "precision", "metric", "value")
TRAINING_PRECISIONS = ("bf16", "fp8-cs", "fp8-ds", "mxfp8", "nvfp4")
TRAINING_LAYOUT_COLUMNS = ("vpp", "cp", "etp", "dp", "recompute")  # read into a training row's load fields

KeyValues = tuple[tuple[str, str], ...]  # a key=value load, in the order written
LoadValue = float | tuple[int, int, int] | KeyValues | str | None


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
    runtime: str = ""  # the software that produced the number (`runtime`, or a training file's `framework`)
    notes: str = ""  # the file's free-text `notes` column (kernel rows: quantisation mode, kernel source, ...)

    @property
    def gemm_shape(self) -> tuple[int, int, int]:
        """M, N, K of a `gemm` row's load."""
        value = self.load_value
        if not (isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, int) for v in value)):
            raise RooflineError(f"row {self.case_id}: the load '{self.load}' is not MxNxK")
        return value  # type: ignore[return-value]

    @property
    def load_fields(self) -> dict[str, str]:
        """The keys of a `key=value;...` load (kernel scenarios), lower-case keys; {} for any other load."""
        if isinstance(self.load_value, tuple) and self.load_value and isinstance(self.load_value[0], tuple):
            return {key: value for key, value in self.load_value}
        return {}

    def load_int(self, key: str, default: int | None = None) -> int:
        """An integer key of the load; RooflineError naming the row when it is missing or not a whole number."""
        text = self.load_fields.get(key)
        if text is None:
            if default is not None:
                return default
            raise RooflineError(f"row {self.case_id}: the {self.scenario} load has no '{key}'")
        try:
            return int(text)
        except ValueError:
            raise RooflineError(f"row {self.case_id}: '{key}={text}' is not a whole number") from None

    def run_key(self) -> tuple[object, ...]:
        """What the prediction depends on: rows that differ only in metric share one simulation."""
        return (self.scenario, self.model, self.hardware, self.num_gpus, self.tp, self.pp, self.ep,
                self.weight_dtype, self.kv_dtype, self.isl, self.osl, self.load_value, self.notes)  # fmt: skip


class _Row:
    """One raw CSV row and where it is, for error messages."""

    def __init__(self, path: Path, line: int, raw: dict[str, str]) -> None:
        self.path, self.line, self.raw = path, line, raw

    def fail(self, column: str, why: str) -> RooflineError:
        return RooflineError(f"{self.path} line {self.line}, column '{column}': {why}")

    def text(self, column: str) -> str:
        return (self.raw.get(column) or "").strip()

    def required_text(self, column: str) -> str:
        text = self.text(column)
        if not text:
            raise self.fail(column, "is empty; every row needs one")
        return text

    def need(self, column: str, scenario: str) -> None:
        """A column this row's scenario cannot do without; the header is every key of `raw`."""
        if column not in self.raw:
            raise RooflineError(f"{self.path} line {self.line}: scenario {scenario} needs column '{column}', "
                                "which the file does not have")  # fmt: skip

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


def _optional_count(text: str) -> float | None:
    """A disaggregated phase's load: a positive whole number (tokens or sequences per GPU), or empty."""
    return None if not text else _clients(text)


def _stream_kernel(text: str) -> str:
    if text.lower() not in STREAM_KERNELS:
        raise ValueError
    return text.lower()


def _no_load(text: str) -> None:
    return None


def _key_values(text: str) -> KeyValues:
    """`key=value;key=value` (kernel loads): pairs with non-empty keys and values, keys lower-case."""
    pairs = []
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError
        pairs.append((key.strip().lower(), value.strip()))
    if not pairs:
        raise ValueError
    return tuple(pairs)


_LOAD_PARSERS: dict[str, tuple[Callable[[str], LoadValue], str]] = {
    "max_throughput": (_no_load, "empty"),
    "request_rate": (_rate, "requests/s (a positive number) or 'inf'"),
    "concurrency": (_clients, "a positive whole number of clients"),
    "single_stream": (_no_load, "empty"),
    "disagg_prefill": (_optional_count, "prompt tokens per GPU per forward batch (a whole number) or empty"),
    "disagg_decode": (_optional_count, "running sequences per GPU (a whole number) or empty"),
    "gemm": (_gemm_shape, "MxNxK, e.g. 4096x4096x4096"),
    "memory_copy": (_stream_kernel, " or ".join(STREAM_KERNELS)),
    "allreduce": (_positive, "a message size in bytes"),
    **{scenario: (_key_values, "key=value pairs separated by ';'") for scenario in KEY_VALUE_SCENARIOS},
}


def _load_value(row: _Row, scenario: str) -> LoadValue:
    """The parsed load of a predicted scenario; None for any other (its load is kept as text)."""
    if scenario not in _LOAD_PARSERS:
        return None
    parse, expected = _LOAD_PARSERS[scenario]
    load = row.text("load")
    try:
        return parse(load)
    except ValueError:
        raise row.fail("load", f"'{load}' is not a {scenario} load; expected {expected}") from None


def _num_gpus(row: _Row) -> int:
    num_gpus = row.integer("num_gpus", required=True)
    assert num_gpus is not None
    return num_gpus


def _case(row: _Row) -> Case:
    """A row of the measurements schema (published.csv, kernels*.csv, runtimes.csv)."""
    scenario = row.required_text("scenario")
    metric = row.required_text("metric")
    for column in SCENARIO_COLUMNS.get(scenario, ()):
        row.need(column, scenario)
    load_value = _load_value(row, scenario)
    serving = scenario in SERVING_SCENARIOS or scenario == "single_stream"
    phase = serving or scenario in PHASE_SCENARIOS
    return Case(
        line=row.line, case_id=row.text("case_id"), source=row.text("source"), model=row.text("model"),
        hardware=row.text("hardware"), num_gpus=_num_gpus(row), tp=row.integer("tp"), pp=row.integer("pp"),
        ep=row.integer("ep"), weight_dtype=row.dtype("weight_dtype"), kv_dtype=row.dtype("kv_dtype"),
        isl=row.integer("isl", required=phase), osl=row.integer("osl", required=serving),
        scenario=scenario, load=row.text("load"), load_value=load_value, metric=metric, value=row.number("value"),
        runtime=row.text("runtime"), notes=row.text("notes"),
    )  # fmt: skip


def _training_case(row: _Row) -> Case:
    """A row of a training file: checked like any row, described in `load` (key=value); its load
    fields also carry the layout columns a Case has no field of (vpp, cp, etp, dp, recompute)."""
    for column in ("vpp", "cp", "etp", "dp"):
        row.integer(column)
    lengths = {column: row.integer(column, required=True) for column in TRAINING_MARKERS}
    precision = row.required_text("precision")
    if precision not in TRAINING_PRECISIONS:
        raise row.fail("precision", f"unknown precision '{precision}'; known: {', '.join(TRAINING_PRECISIONS)}")
    setting = ";".join([*(f"{k}={v}" for k, v in lengths.items()), f"precision={precision}"])
    layout = {column: row.text(column) for column in TRAINING_LAYOUT_COLUMNS if column in row.raw}
    fields = (*((k, str(v)) for k, v in lengths.items()), ("precision", precision),
              *((k, v) for k, v in layout.items() if v))  # fmt: skip
    return Case(
        line=row.line, case_id=row.text("case_id"), source=row.text("source"), model=row.text("model"),
        hardware=row.text("hardware"), num_gpus=_num_gpus(row), tp=row.integer("tp"), pp=row.integer("pp"),
        ep=row.integer("ep"), weight_dtype=None, kv_dtype=None, isl=None, osl=None, scenario=TRAINING,
        load=setting, load_value=fields, metric=row.required_text("metric"), value=row.number("value"),
        runtime=row.text("framework"), notes=row.text("notes"),
    )  # fmt: skip


def _row_reader(path: Path, header: list[str]) -> Callable[[_Row], Case]:
    """The schema of the file from its header; RooflineError naming the columns it lacks."""
    training = "scenario" not in header and all(c in header for c in TRAINING_MARKERS)
    required = TRAINING_REQUIRED_COLUMNS if training else REQUIRED_COLUMNS
    missing = [c for c in required if c not in header]
    if missing:
        raise RooflineError(f"{path} line 1: missing column(s) {', '.join(missing)}")
    return _training_case if training else _case


def parse_cases(path: Path, lines: Iterable[str]) -> list[Case]:
    reader = csv.DictReader(lines)
    if reader.fieldnames is None:
        raise RooflineError(f"{path} is empty; expected a header line with at least {', '.join(REQUIRED_COLUMNS)}")
    header = [name.strip() for name in reader.fieldnames]
    read_row = _row_reader(path, header)
    reader.fieldnames = header
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for raw in reader:
        row = _Row(path, reader.line_num, raw)
        if None in raw:  # more fields than the header has
            extra = len(header) + len(raw[None])
            raise RooflineError(f"{path} line {row.line}: {extra} fields, the header has {len(header)}")
        case = read_row(row)
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
