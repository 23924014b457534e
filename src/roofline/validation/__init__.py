"""Validation: predict the rows of a published-measurements file and report the errors.

The file schema is ../shared/validation/README.md; `roofline validate` is the command.
"""

from roofline.validation.cases import SCENARIO_METRICS, Case, read_cases
from roofline.validation.predict import PREDICTORS, Options, Prediction
from roofline.validation.report import RowResult, Skipped, SummaryRow, ValidationReport, validate_file

__all__ = [
    "PREDICTORS", "SCENARIO_METRICS", "Case", "Options", "Prediction", "RowResult", "Skipped", "SummaryRow",
    "ValidationReport", "read_cases", "validate_file",
]  # fmt: skip
