"""Validation: predict the rows of a published-measurements file and report the errors.

The file schema is ../shared/validation/README.md; `roofline validate` is the command and
`run_validation` its library entry point.
"""

from roofline.validation.cases import SCENARIO_METRICS, Case, read_cases
from roofline.validation.diffusion import DiffusionValidation
from roofline.validation.predict import PREDICTORS, Options, Prediction
from roofline.validation.report import (
    RowResult,
    ScenarioCount,
    Skipped,
    SummaryRow,
    ValidationReport,
    report_inputs,
    validate_file,
)
from roofline.validation.run import DEFAULT_DATA, default_data_path, run_validation

__all__ = [
    "DEFAULT_DATA", "PREDICTORS", "SCENARIO_METRICS", "Case", "DiffusionValidation", "Options", "Prediction",
    "RowResult", "ScenarioCount", "Skipped", "SummaryRow", "ValidationReport", "default_data_path", "read_cases",
    "report_inputs", "run_validation", "validate_file",
]  # fmt: skip
