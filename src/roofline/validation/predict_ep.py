"""Kernel rows of scenario ep_dispatch / ep_combine (README of the validation data), timed by the cost model."""

from __future__ import annotations

from roofline.errors import RooflineError
from roofline.validation.cases import Case
from roofline.validation.predict import Prediction


def ep_all_to_all(case: Case) -> Prediction:
    raise RooflineError("scenario 'ep_dispatch / ep_combine' is not predicted yet")
