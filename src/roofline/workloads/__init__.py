"""Workload models: each kind builds its own operators. Importing this package registers the kinds."""

from roofline.workloads import deepseek_v4 as _deepseek_v4  # noqa: F401  (registers kind 'deepseek_v4')
from roofline.workloads import dense as _dense  # noqa: F401  (registers kind 'dense')
from roofline.workloads import diffusion_dit as _diffusion_dit  # noqa: F401  (registers kind 'dit')
from roofline.workloads import diffusion_lm as _diffusion_lm  # noqa: F401  (registers kind 'diffusion_lm')
from roofline.workloads import hybrid as _hybrid  # noqa: F401  (registers kind 'hybrid')
from roofline.workloads import mla as _mla  # noqa: F401  (registers kind 'mla_moe')
from roofline.workloads import moe as _moe  # noqa: F401  (registers kind 'moe')
from roofline.workloads.base import WORKLOAD_KINDS, ParameterCounts, Workload, register_kind
from roofline.workloads.catalog import get_autoregressive, get_workload, model_catalog

__all__ = [
    "WORKLOAD_KINDS", "ParameterCounts", "Workload", "get_autoregressive", "get_workload", "model_catalog",
    "register_kind",
]  # fmt: skip
