"""Predict every row of a measurements file and summarise the errors per (scenario, metric).

error = predicted / measured - 1 (signed: > 0 is an over-prediction); APE = |error|. The summary
gives, per (scenario, metric), the count, the mean APE (MAPE), the median APE and the largest APE,
and the same on the rows no packaged constant was fitted on (`held_out_*`: a row some constant was
fitted on, listed by `roofline.validation.fitted`, scores the fit, not the model). `breakdown` splits
each (scenario, metric) further by hardware and dtype.
Rows that cannot be predicted are listed as skipped with the reason, never dropped, and counted
per scenario beside the predicted ones.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roofline.errors import RooflineError
from roofline.result import Result
from roofline.validation.aic_screen import suspect_rows
from roofline.validation.cases import PHASE_SCENARIOS, SCENARIO_METRICS, SERVING_SCENARIOS, TRAINING, Case, read_cases
from roofline.validation.fitted import fitted_rows
from roofline.validation.predict import PREDICTORS, Options, Prediction, metric_value, not_predicted
from roofline.validation.predict_runtimes import runtime_label


def _case_dict(c: Case) -> dict[str, Any]:
    return {
        "case_id": c.case_id, "scenario": c.scenario, "model": c.model, "hardware": c.hardware,
        "num_gpus": c.num_gpus, "tp": c.tp, "pp": c.pp, "ep": c.ep,
        "weight_dtype": c.weight_dtype.value if c.weight_dtype else None,
        "kv_dtype": c.kv_dtype.value if c.kv_dtype else None, "isl": c.isl, "osl": c.osl, "load": c.load,
        "metric": c.metric, "measured": c.value, "runtime": row_runtime(c),
    }  # fmt: skip


def row_runtime(case: Case) -> str:
    """The runtime a row is summarised under (predict_runtimes.runtime_label): the file's `runtime`,
    empty meaning TensorRT-LLM for model-level rows and '-' (none) for kernel rows."""
    return runtime_label(case, case.scenario in (*SERVING_SCENARIOS, *PHASE_SCENARIOS))


@dataclass(frozen=True)
class RowResult:
    case: Case
    predicted: float
    note: str = ""
    fitted_on: tuple[str, ...] = ()  # packaged constants fitted on this row (empty: a held-out row)

    @property
    def measured(self) -> float:
        return self.case.value

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**_case_dict(self.case), "predicted": self.predicted, "error": self.error, "note": self.note,
                "source": self.case.source, "fitted_on": list(self.fitted_on)}  # fmt: skip


@dataclass(frozen=True)
class Skipped:
    case: Case
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case.case_id, "reason": self.reason}

    def csv_row(self) -> dict[str, Any]:
        """The columns of a predicted row's to_dict, with no prediction."""
        return {**_case_dict(self.case), "predicted": None, "error": None, "note": "", "source": self.case.source,
                "fitted_on": []}  # fmt: skip


@dataclass(frozen=True)
class SummaryRow:
    """The errors of one group of rows; `held_out_*` over the rows no constant was fitted on (None: none)."""

    scenario: str
    metric: str
    count: int
    mape: float
    median_ape: float
    max_ape: float
    held_out_count: int = 0
    held_out_mape: float | None = None
    hardware: str = ""  # breakdown rows: the group's hardware and dtype ("" in the summary)
    dtype: str = ""
    runtime: str = ""  # by-runtime rows: the group's runtime ("" elsewhere)

    def to_dict(self) -> dict[str, Any]:
        group = {"hardware": self.hardware, "dtype": self.dtype} if self.hardware or self.dtype else {}
        if self.runtime:
            group = {"runtime": self.runtime, **group}
        return {"scenario": self.scenario, "metric": self.metric, **group, "count": self.count, "mape": self.mape,
                "median_ape": self.median_ape, "max_ape": self.max_ape, "held_out_count": self.held_out_count,
                "held_out_mape": self.held_out_mape}  # fmt: skip


@dataclass(frozen=True)
class ScenarioCount:
    """How many rows of one scenario were predicted and how many skipped."""

    scenario: str
    predicted: int
    skipped: int

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "predicted": self.predicted, "skipped": self.skipped}


@dataclass(frozen=True, repr=False)
class ValidationReport(Result):
    """Every row predicted (`rows`: measured, predicted, error) or skipped with its reason, and the
    error per scenario and metric (`summary`: MAPE, median and max APE). `to_frame()` is the table
    `--format csv` prints: predicted and skipped rows in file order."""

    rows: tuple[RowResult, ...]
    skipped: tuple[Skipped, ...]
    summary: tuple[SummaryRow, ...]

    @property
    def breakdown(self) -> tuple[SummaryRow, ...]:
        """The errors per (scenario, metric, hardware, dtype)."""
        return breakdown(self.rows)

    @property
    def by_runtime(self) -> tuple[SummaryRow, ...]:
        """The errors per (runtime, scenario, metric)."""
        return by_runtime(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """What `roofline validate --format json` prints."""
        return {
            "rows": [r.to_dict() for r in self.rows],
            "summary": [s.to_dict() for s in self.summary],
            "by_runtime": [s.to_dict() for s in self.by_runtime],
            "breakdown": [s.to_dict() for s in self.breakdown],
            "skipped": [s.to_dict() for s in self.skipped],
            "per_scenario": [c.to_dict() for c in self.per_scenario()],
        }

    def summary_for(self, scenario: str, metric: str) -> SummaryRow | None:
        return next((s for s in self.summary if (s.scenario, s.metric) == (scenario, metric)), None)

    def per_scenario(self) -> tuple[ScenarioCount, ...]:
        """Predicted and skipped rows per scenario, in the order the scenarios first appear in the file."""
        cases = sorted([r.case for r in self.rows] + [s.case for s in self.skipped], key=lambda c: c.line)
        scenarios = dict.fromkeys(c.scenario for c in cases)
        predicted = Counter(r.case.scenario for r in self.rows)
        skipped = Counter(s.case.scenario for s in self.skipped)
        return tuple(ScenarioCount(s, predicted[s], skipped[s]) for s in scenarios)

    def csv_rows(self) -> list[dict[str, Any]]:
        """Predicted and skipped rows in file order (`--format csv`); a skipped row has no prediction
        and says why in `skipped` (empty for a predicted row)."""
        rows = [(r.case.line, {**r.to_dict(), "skipped": ""}) for r in self.rows]
        rows += [(s.case.line, {**s.csv_row(), "skipped": s.reason}) for s in self.skipped]
        return [row for _, row in sorted(rows, key=lambda item: item[0])]

    def records(self) -> list[dict[str, Any]]:
        return self.csv_rows()

    def overview(self) -> list[tuple[str, Any]]:
        pairs: list[tuple[str, Any]] = [("predicted / skipped", f"{len(self.rows)} / {len(self.skipped)}")]
        return pairs + [(f"{s.scenario} {s.metric} MAPE ({s.count})", f"{s.mape:.1%}") for s in self.summary]


def report_inputs(path: Path, scenarios: Sequence[str], max_requests: int | None, report: ValidationReport,
                  version: str) -> list[tuple[str, Any]]:  # fmt: skip
    """The Inputs sheet of the workbook: what was run, on what, and how many rows were predicted."""
    skipped = ", ".join(f"{c.scenario} {c.skipped}" for c in report.per_scenario() if c.skipped)
    return [
        ("Tool", f"roofline {version}"),
        ("Measurements file", str(path)),
        ("Scenarios", ", ".join(scenarios) or "all"),
        ("Simulated requests per serving run", max_requests or "as the benchmark ran them"),
        ("Rows predicted / skipped", f"{len(report.rows)} / {len(report.skipped)}"),
        ("Skipped rows per scenario", skipped or "none"),
        ("Error", "predicted / measured - 1 (> 0: over-prediction); APE = |error|; MAPE = mean APE"),
        ("Serving rows", "replayed as benchmarked (validation/benchmark_setups.yaml)"),
    ]


def _regimes(case: Case, screened: Mapping[str, str]) -> list[str]:
    """Sub-groups worth their own summary line: request-rate rows at a finite rate (below
    saturation, the issue's target) apart from those at rate inf (a queue that only grows);
    training rows by precision, GPU generation and task; AIConfigurator's MoE rows that pass its
    table's consistency screen (validation/aic_screen.py: runs that timed an untuned fallback
    tactic fail it), per hardware, apart from those that fail."""
    if case.scenario == "moe_experts" and "kernel_source=" in case.notes:
        if case.case_id in screened:
            return [f"{case.scenario} (AIC screen failed)"]
        return [f"{case.scenario} (AIC screen passed)", f"{case.scenario} (AIC screen passed, {case.hardware})"]
    if case.scenario == "request_rate":
        rate = "rate inf" if str(case.load).strip().lower() == "inf" else "finite"
        return [f"{case.scenario} ({rate})"]
    if case.scenario == TRAINING:
        from roofline.validation.predict_training import gpu_generation, note_fields

        precision = case.load_fields.get("precision", "")
        task = note_fields(case).get("task", "pretrain")
        return [f"training (precision {precision})", f"training (gen {gpu_generation(case.hardware)})",
                f"training (task {task})"]  # fmt: skip
    return []


def _summary_row(rows: Sequence[RowResult], scenario: str, metric: str, hardware: str = "",
                 dtype: str = "", runtime: str = "") -> SummaryRow:  # fmt: skip
    apes = [abs(r.error) for r in rows]
    held_out = [abs(r.error) for r in rows if not r.fitted_on]
    return SummaryRow(scenario, metric, len(apes), statistics.fmean(apes), statistics.median(apes), max(apes),
                      len(held_out), statistics.fmean(held_out) if held_out else None, hardware, dtype,
                      runtime)  # fmt: skip


def summarize(rows: Sequence[RowResult]) -> tuple[SummaryRow, ...]:
    """One summary row per (scenario, metric), in the order they first appear, then the sub-groups."""
    groups: dict[tuple[str, str], list[RowResult]] = {}
    for row in rows:
        groups.setdefault((row.case.scenario, row.case.metric), []).append(row)
    screened = suspect_rows(row.case for row in rows)
    regimes = [_regimes(row.case, screened) for row in rows]
    for level in range(max((len(r) for r in regimes), default=0)):  # each kind of sub-group together
        for row, names in zip(rows, regimes, strict=True):
            if level < len(names):
                groups.setdefault((names[level], row.case.metric), []).append(row)
    return tuple(_summary_row(members, scenario, metric) for (scenario, metric), members in groups.items())


def breakdown(rows: Sequence[RowResult]) -> tuple[SummaryRow, ...]:
    """One row per (scenario, metric, hardware, weight dtype), in the order they first appear."""
    groups: dict[tuple[str, str, str, str], list[RowResult]] = {}
    for row in rows:
        c = row.case
        dtype = c.weight_dtype.value if c.weight_dtype else ""
        groups.setdefault((c.scenario, c.metric, c.hardware, dtype), []).append(row)
    return tuple(_summary_row(members, *key) for key, members in groups.items())


def by_runtime(rows: Sequence[RowResult]) -> tuple[SummaryRow, ...]:
    """One row per (runtime, scenario, metric), runtimes in the order they first appear."""
    groups: dict[tuple[str, str, str], list[RowResult]] = {}
    for row in rows:
        groups.setdefault((row_runtime(row.case), row.case.scenario, row.case.metric), []).append(row)
    first = {runtime: index for index, runtime in enumerate(dict.fromkeys(key[0] for key in groups))}
    ordered = sorted(groups.items(), key=lambda item: first[item[0][0]])  # stable: scenarios in file order
    return tuple(_summary_row(members, scenario, metric, runtime=runtime)
                 for (runtime, scenario, metric), members in ordered)  # fmt: skip


Runs = dict[tuple[object, ...], Prediction | RooflineError]  # one model run per configuration


def _predict(case: Case, options: Options, runs: Runs) -> RowResult | Skipped:
    """The case's prediction, from the run of its configuration (made once, kept in `runs`), or why not."""
    reason = not_predicted(case)
    if reason is not None:
        return Skipped(case, reason)
    key = case.run_key()
    if key not in runs:
        try:
            runs[key] = PREDICTORS[case.scenario](case, options)
        except RooflineError as exc:
            runs[key] = exc
    outcome = runs[key]
    if isinstance(outcome, RooflineError):
        return Skipped(case, str(outcome))
    try:
        return RowResult(case, metric_value(outcome, case), outcome.note, fitted_rows().get(case.case_id, ()))
    except RooflineError as exc:
        return Skipped(case, str(exc))


def predict_cases(
    cases: Sequence[Case], options: Options, progress: Callable[[int, int], None] | None = None
) -> ValidationReport:
    """Predict each case; one model run per distinct configuration (the metrics of a run share it)."""
    runs: Runs = {}
    rows: list[RowResult] = []
    skipped: list[Skipped] = []
    for index, case in enumerate(cases):
        outcome = _predict(case, options, runs)
        if isinstance(outcome, RowResult):
            rows.append(outcome)
        else:
            skipped.append(outcome)
        if progress is not None:
            progress(index + 1, len(cases))
    return ValidationReport(tuple(rows), tuple(skipped), summarize(rows))


def select(cases: Sequence[Case], scenarios: Sequence[str]) -> list[Case]:
    """The cases of `scenarios` (all when empty); a scenario may be a predicted one or any in the file."""
    in_file = [s for s in dict.fromkeys(c.scenario for c in cases) if s not in SCENARIO_METRICS]
    unknown = [s for s in scenarios if s not in SCENARIO_METRICS and s not in in_file]
    if unknown:
        others = f"; in the file: {', '.join(in_file)}" if in_file else ""
        raise RooflineError(f"unknown scenario '{unknown[0]}'; known: {', '.join(SCENARIO_METRICS)}{others}")
    return [c for c in cases if not scenarios or c.scenario in scenarios]


def validate_file(
    path: Path, scenarios: Sequence[str] = (), max_requests: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationReport:  # fmt: skip
    """Read `path` (the whole file is checked), keep the rows of `scenarios` (all when empty),
    predict them and summarise. RooflineError for a malformed file or a bad argument."""
    if max_requests is not None and max_requests < 1:
        raise RooflineError(f"max requests must be at least 1, got {max_requests}")
    cases = select(read_cases(path), scenarios)
    return predict_cases(cases, Options(max_requests=max_requests), progress)
