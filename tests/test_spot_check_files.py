"""The training spot-check file (benchmarks/data/megatron-bridge-archive.csv, check only: never fit on
it) is read by the validation loader and every row of it is predicted; none repeats a training.csv row."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import pytest

from roofline.validation import validate_file
from roofline.validation.cases import TRAINING, Case, read_cases

ROOT = Path(__file__).resolve().parents[1]
SPOT_CSV = ROOT / "benchmarks" / "data" / "megatron-bridge-archive.csv"
TRAINING_CSV = ROOT.parent / "shared" / "validation" / "training.csv"
TABLE_LINES = 218  # published table lines transcribed, two metrics each (README, benchmarks/data)


def _configuration(case: Case) -> tuple[object, ...]:
    """What makes one published table line: release, task, model, system, precision, GPUs, layout."""
    release = re.search(r"release=(\S+)", case.notes)
    task = re.search(r"task=(\w+)", case.notes)
    return (release and release.group(1), task and task.group(1), case.model, case.hardware, case.num_gpus,
            case.tp, case.pp, case.ep, case.load)  # fmt: skip


def test_every_row_parses_as_a_training_row_with_both_metrics() -> None:
    cases = read_cases(SPOT_CSV)
    assert len(cases) == 2 * TABLE_LINES
    assert {c.scenario for c in cases} == {TRAINING}
    assert len({c.case_id for c in cases}) == len(cases)
    metrics = Counter(_configuration(c) for c in cases)
    assert set(metrics.values()) == {2}, [k for k, n in metrics.items() if n != 2]
    assert all(c.runtime == "megatron-bridge" and "release=" in c.notes for c in cases)


def test_no_row_repeats_a_training_csv_row() -> None:
    if not TRAINING_CSV.is_file():
        pytest.skip(f"{TRAINING_CSV} is absent")
    held = {_configuration(c) for c in read_cases(TRAINING_CSV)}
    repeated = [c.case_id for c in read_cases(SPOT_CSV) if _configuration(c) in held]
    assert not repeated


def test_every_row_is_predicted() -> None:
    report = validate_file(SPOT_CSV)
    assert not report.skipped, [(s.case.case_id, s.reason) for s in report.skipped]
    assert len(report.rows) == 2 * TABLE_LINES
    assert all(math.isfinite(r.predicted) and r.predicted > 0 for r in report.rows)
