"""The Python API: the same functions as the CLI's commands, with the same parameters (the long
option with '-' turned into '_') and defaults, returning frozen results with `to_dict()` (the
document `--format json` prints), `to_frame()` and a notebook view."""

from roofline.api.calibration import CalibrationReport, calibrate
from roofline.api.collectives import CollectiveSweep, CollectiveTiming, comm, comm_sweep
from roofline.api.diffusion import DiffusionEstimate, estimate_diffusion
from roofline.api.estimates import Estimate, MemoryReport, estimate, memory
from roofline.api.objects import Hardware, Model, hardware, hardware_ids, model, model_ids, system, system_ids
from roofline.api.planning import PlanReport, plan
from roofline.api.serving import ServeReport, serve
from roofline.api.sweeps import SweepTable, sweep
from roofline.api.validation import validate
from roofline.result import Result
from roofline.validation import DiffusionValidation, ValidationReport

__all__ = [
    "CalibrationReport", "CollectiveSweep", "CollectiveTiming", "DiffusionEstimate", "DiffusionValidation", "Estimate",
    "Hardware", "MemoryReport", "Model", "PlanReport", "Result", "ServeReport", "SweepTable", "ValidationReport",
    "calibrate", "comm", "comm_sweep", "estimate", "estimate_diffusion", "hardware", "hardware_ids", "memory", "model",
    "model_ids", "plan", "serve", "sweep", "system", "system_ids", "validate",
]  # fmt: skip
