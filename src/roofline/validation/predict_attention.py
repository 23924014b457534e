"""Kernel rows of scenario attention_kernel (README of the validation data), timed by the cost model."""

from __future__ import annotations

from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster
from roofline.validation.cases import Case
from roofline.validation.predict import Prediction


def attention_kernel(case: Case, cluster: Cluster) -> Prediction:
    raise RooflineError("scenario 'attention_kernel' is not predicted yet")
