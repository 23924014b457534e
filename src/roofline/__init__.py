"""roofline: predict how LLM-class workloads run on accelerator hardware.

    import roofline as rl
    r = rl.estimate("llama-3.1-70b", "h100-sxm", tp=8, batch=16, isl=2048, osl=256)
    r.tpot_s, r.ttft_s, r.fits, r.to_frame()

Every command of the CLI is a function here with the same parameters (the long option with '-'
turned into '_') and defaults; see docs/python-api.md. Names load on first use, so `import
roofline` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# pyproject.toml's version (a test keeps the two equal); a constant, since asking
# importlib.metadata costs tens of milliseconds at every start of the CLI
__version__ = "0.1.0"

if TYPE_CHECKING:
    from roofline.api import *  # noqa: F403  (the names of roofline.api.__all__, for type checkers)
    from roofline.calibration import TorchMissingError as TorchMissingError
    from roofline.errors import DoesNotFitError as DoesNotFitError
    from roofline.errors import RooflineError as RooflineError
    from roofline.errors import UnknownIdError as UnknownIdError
    from roofline.hardware_specs import Accelerator as Accelerator
    from roofline.hardware_specs import Link as Link
    from roofline.hardware_specs import System as System

# roofline.api.__all__ (a test keeps the two equal)
_API = (
    "CalibrationReport", "CollectiveSweep", "CollectiveTiming", "DiffusionEstimate", "DiffusionValidation", "EpTiming",
    "Estimate", "Hardware", "MemoryReport", "Model", "PlanReport", "Result", "RlIterationReport", "ServeReport",
    "SweepTable", "TrainReport", "TrainSearchReport", "ValidationReport", "calibrate", "comm", "comm_ep", "comm_sweep",
    "estimate", "estimate_diffusion", "hardware", "hardware_ids", "launch_command", "memory", "model", "model_ids",
    "plan", "serve", "sweep", "system", "system_ids", "train", "train_rl", "train_search", "validate",
)  # fmt: skip
_LAZY = {
    **dict.fromkeys(_API, "roofline.api"),
    **dict.fromkeys(("DoesNotFitError", "RooflineError", "UnknownIdError"), "roofline.errors"),
    "TorchMissingError": "roofline.calibration",
    **dict.fromkeys(("Accelerator", "Link", "System"), "roofline.hardware_specs"),
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'roofline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
