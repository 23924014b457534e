"""The one entry point of validation: `run_validation`, what `roofline validate` calls and renders.

It checks the arguments as the command takes them (the messages name the options), finds the
default measurements file and returns a frozen report: `ValidationReport` for a measurements CSV,
`DiffusionValidation` for the diffusion latencies. No printing: progress goes to the callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from roofline.errors import RooflineError
from roofline.validation.diffusion import DiffusionValidation
from roofline.validation.report import ValidationReport, validate_file

# src/roofline/validation/run.py -> parents[3] is the repository root; its sibling shared/ holds the data
DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "validation" / "published.csv"


def default_data_path(data: Path | None = None) -> Path:
    """`data` when given, else the published file beside the repository; RooflineError when it is absent."""
    if data is not None:
        return data
    if not DEFAULT_DATA.is_file():
        raise RooflineError(f"no --data given and the default file '{DEFAULT_DATA}' does not exist; pass --data FILE")
    return DEFAULT_DATA


def run_validation(
    data: Path | None, scenarios: Sequence[str] = (), max_requests: int | None = None, diffusion: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationReport | DiffusionValidation:  # fmt: skip
    """Predict the rows of `data` (default: the published file; with `diffusion`, the packaged
    diffusion latencies) and summarise the errors. `scenarios` keeps those rows only (all when
    empty); `max_requests` caps the simulated requests of each serving run. RooflineError (one
    line) for a bad argument or a malformed file."""
    if diffusion:
        if scenarios or max_requests is not None:
            raise RooflineError("--scenario and --max-requests are for the LLM measurements, not --diffusion")
        return DiffusionValidation.from_file(data)
    return validate_file(default_data_path(data), scenarios, max_requests, progress)
