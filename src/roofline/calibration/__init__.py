"""Calibration: measure the device at hand with PyTorch, compare with the cost model, fit its efficiencies.

PyTorch is an optional extra. The torch-free pieces (benchmark cases, the fit, the calibrated
profile, the report) import without it; the pieces that run kernels (`timing`, `bench`, `device`,
`model_run`, `runner`) are imported only after `require_torch()` has found it.
"""

from __future__ import annotations

from types import ModuleType

from roofline.errors import RooflineError

INSTALL_HINT = (
    "roofline calibrate needs PyTorch: pip install 'roofline[calibrate]' "
    "(or pip install torch==2.13.0 for the CPU build)"
)


class TorchMissingError(RooflineError):
    """PyTorch is not installed; the message says how to install it."""


def require_torch() -> ModuleType:
    try:
        import torch
    except ImportError:
        raise TorchMissingError(INSTALL_HINT) from None
    return torch
