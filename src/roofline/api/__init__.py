"""The Python API: the same functions as the CLI's commands, with the same parameters (the long
option with '-' turned into '_') and defaults, returning frozen results with `to_dict()` (the
document `--format json` prints), `to_frame()` and a notebook view.

Each name loads its module on first use: `from roofline.api import estimate` does not import the
planner, the serving simulator or the validation data."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roofline.api.calibration import CalibrationReport, calibrate
    from roofline.api.collectives import CollectiveSweep, CollectiveTiming, EpTiming, comm, comm_ep, comm_sweep
    from roofline.api.diffusion import DiffusionEstimate, estimate_diffusion
    from roofline.api.estimates import Estimate, MemoryReport, estimate, memory
    from roofline.api.launch import launch_command
    from roofline.api.objects import Hardware, Model, hardware, hardware_ids, model, model_ids, system, system_ids
    from roofline.api.planning import PlanReport, plan
    from roofline.api.post_training import RlIterationReport, train_rl
    from roofline.api.serving import ServeReport, serve
    from roofline.api.sweeps import SweepTable, sweep
    from roofline.api.training import TrainReport, TrainSearchReport, train, train_search
    from roofline.api.validation import validate
    from roofline.result import Result
    from roofline.validation import DiffusionValidation, ValidationReport

_MODULES = {
    "roofline.api.calibration": ("CalibrationReport", "calibrate"),
    "roofline.api.collectives": ("CollectiveSweep", "CollectiveTiming", "EpTiming", "comm", "comm_ep", "comm_sweep"),
    "roofline.api.diffusion": ("DiffusionEstimate", "estimate_diffusion"),
    "roofline.api.estimates": ("Estimate", "MemoryReport", "estimate", "memory"),
    "roofline.api.launch": ("launch_command",),
    "roofline.api.objects": ("Hardware", "Model", "hardware", "hardware_ids", "model", "model_ids", "system",
                             "system_ids"),
    "roofline.api.planning": ("PlanReport", "plan"),
    "roofline.api.post_training": ("RlIterationReport", "train_rl"),
    "roofline.api.serving": ("ServeReport", "serve"),
    "roofline.api.sweeps": ("SweepTable", "sweep"),
    "roofline.api.training": ("TrainReport", "TrainSearchReport", "train", "train_search"),
    "roofline.api.validation": ("validate",),
    "roofline.result": ("Result",),
    "roofline.validation": ("DiffusionValidation", "ValidationReport"),
}  # fmt: skip
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "CalibrationReport", "CollectiveSweep", "CollectiveTiming", "DiffusionEstimate", "DiffusionValidation", "EpTiming",
    "Estimate", "Hardware", "MemoryReport", "Model", "PlanReport", "Result", "RlIterationReport", "ServeReport",
    "SweepTable", "TrainReport", "TrainSearchReport", "ValidationReport", "calibrate", "comm", "comm_ep", "comm_sweep",
    "estimate", "estimate_diffusion", "hardware", "hardware_ids", "launch_command", "memory", "model", "model_ids",
    "plan", "serve", "sweep", "system", "system_ids", "train", "train_rl", "train_search", "validate",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'roofline.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
