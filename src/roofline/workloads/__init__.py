"""Workload models: each kind builds its own operators. A packaged kind's module loads the first time
the kind is looked up in WORKLOAD_KINDS (a model file of that kind, or a Hugging Face import)."""

from roofline.workloads.base import WORKLOAD_KINDS, ParameterCounts, Workload, register_kind
from roofline.workloads.catalog import get_autoregressive, get_workload, model_catalog

__all__ = [
    "WORKLOAD_KINDS", "ParameterCounts", "Workload", "get_autoregressive", "get_workload", "model_catalog",
    "register_kind",
]  # fmt: skip
