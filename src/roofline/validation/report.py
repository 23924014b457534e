"""Predict every row of a measurements file and summarise the errors per (scenario, metric).

error = predicted / measured - 1 (signed: > 0 is an over-prediction); APE = |error|. The summary
gives, per (scenario, metric), the count, the mean APE (MAPE), the median APE and the largest APE.
Rows that cannot be predicted are listed as skipped with the reason, never dropped.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roofline.errors import RooflineError
from roofline.validation.cases import SCENARIO_METRICS, Case, read_cases
from roofline.validation.predict import PREDICTORS, Options, Prediction, metric_value


@dataclass(frozen=True)
class RowResult:
    case: Case
    predicted: float
    note: str = ""

    @property
    def measured(self) -> float:
        return self.case.value

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1.0

    def to_dict(self) -> dict[str, Any]:
        c = self.case
        return {
            "case_id": c.case_id, "scenario": c.scenario, "model": c.model, "hardware": c.hardware,
            "num_gpus": c.num_gpus, "tp": c.tp, "pp": c.pp, "ep": c.ep,
            "weight_dtype": c.weight_dtype.value if c.weight_dtype else None,
            "kv_dtype": c.kv_dtype.value if c.kv_dtype else None, "isl": c.isl, "osl": c.osl, "load": c.load,
            "metric": c.metric, "measured": self.measured, "predicted": self.predicted, "error": self.error,
            "note": self.note, "source": c.source,
        }  # fmt: skip


@dataclass(frozen=True)
class Skipped:
    case: Case
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case.case_id, "reason": self.reason}


@dataclass(frozen=True)
class SummaryRow:
    scenario: str
    metric: str
    count: int
    mape: float
    median_ape: float
    max_ape: float

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "metric": self.metric, "count": self.count, "mape": self.mape,
                "median_ape": self.median_ape, "max_ape": self.max_ape}  # fmt: skip


@dataclass(frozen=True)
class ValidationReport:
    rows: tuple[RowResult, ...]
    skipped: tuple[Skipped, ...]
    summary: tuple[SummaryRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "summary": [s.to_dict() for s in self.summary],
            "skipped": [s.to_dict() for s in self.skipped],
        }

    def summary_for(self, scenario: str, metric: str) -> SummaryRow | None:
        return next((s for s in self.summary if (s.scenario, s.metric) == (scenario, metric)), None)


def _regime(case: Case) -> str | None:
    """A sub-group worth its own summary line: request-rate rows at a finite rate (below
    saturation, the issue's target) apart from those at rate inf (a queue that only grows)."""
    if case.scenario != "request_rate":
        return None
    return f"{case.scenario} (rate inf)" if str(case.load).strip().lower() == "inf" else f"{case.scenario} (finite)"


def summarize(rows: Sequence[RowResult]) -> tuple[SummaryRow, ...]:
    """One summary row per (scenario, metric), in the order they first appear, then the sub-groups."""
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row.case.scenario, row.case.metric), []).append(abs(row.error))
    for row in rows:
        regime = _regime(row.case)
        if regime is not None:
            groups.setdefault((regime, row.case.metric), []).append(abs(row.error))
    return tuple(
        SummaryRow(scenario, metric, len(apes), statistics.fmean(apes), statistics.median(apes), max(apes))
        for (scenario, metric), apes in groups.items()
    )


def predict_cases(
    cases: Sequence[Case], options: Options, progress: Callable[[int, int], None] | None = None
) -> ValidationReport:
    """Predict each case; one model run per distinct configuration (the metrics of a run share it)."""
    runs: dict[tuple[object, ...], Prediction | RooflineError] = {}
    rows: list[RowResult] = []
    skipped: list[Skipped] = []
    for index, case in enumerate(cases):
        key = case.run_key()
        if key not in runs:
            try:
                runs[key] = PREDICTORS[case.scenario](case, options)
            except RooflineError as exc:
                runs[key] = exc
        outcome = runs[key]
        try:
            if isinstance(outcome, RooflineError):
                raise outcome
            rows.append(RowResult(case, metric_value(outcome, case), outcome.note))
        except RooflineError as exc:
            skipped.append(Skipped(case, str(exc)))
        if progress is not None:
            progress(index + 1, len(cases))
    return ValidationReport(tuple(rows), tuple(skipped), summarize(rows))


def select(cases: Sequence[Case], scenarios: Sequence[str]) -> list[Case]:
    unknown = [s for s in scenarios if s not in SCENARIO_METRICS]
    if unknown:
        raise RooflineError(f"unknown scenario '{unknown[0]}'; known: {', '.join(SCENARIO_METRICS)}")
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
