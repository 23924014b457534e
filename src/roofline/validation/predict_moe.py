"""Kernel rows of scenario moe_experts (README of the validation data), timed by the cost model."""

from __future__ import annotations

from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster
from roofline.validation.cases import Case
from roofline.validation.predict import Prediction


def moe_experts(case: Case, cluster: Cluster) -> Prediction:
    raise RooflineError("scenario 'moe_experts' is not predicted yet")
