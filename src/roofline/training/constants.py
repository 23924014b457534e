"""The training constants (data/training.yaml), each with its source: state bytes per parameter,
optimizer formats, gradient buckets, backward ratios, FLOP conventions, precision recipes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from roofline.yaml_io import read_yaml, validate_into

DATA_FILE = Path(__file__).parent / "data" / "training.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OptimizerFormat(_Frozen):
    master_bytes: float = Field(ge=0.0)
    state_bytes: float = Field(ge=0.0)
    source: str = Field(min_length=3)


class FlopConvention(_Frozen):
    causal_attention: bool
    attention_tasks: tuple[str, ...] = ("pretrain", "sft", "lora")
    source: str = Field(min_length=3)


class PrecisionRecipe(_Frozen):
    gemm_dtype: str
    architectures: tuple[str, ...] = ()  # the accelerator architectures that run it (empty: any with the format)
    scaling: Literal["tensor", "block"] | None = None
    copies: int = Field(ge=0)
    fused: bool
    source: str = Field(min_length=3)


class TrainingConstants(_Frozen):
    kind: Literal["training_constants"]
    param_bytes: float = Field(gt=0.0)
    grad_bytes: float = Field(gt=0.0)
    grad_reduce_bytes: float = Field(gt=0.0)
    param_gather_bytes: float = Field(gt=0.0)
    qlora_base_bytes: float = Field(gt=0.0)
    optimizers: dict[str, OptimizerFormat]
    bucket_params: float = Field(gt=0.0)
    bucket_params_per_dp_rank: float = Field(ge=0.0)
    attention_backward_flops_ratio: float = Field(gt=0.0)
    attention_backward_efficiency: float = Field(gt=0.0, le=1.0)
    elementwise_backward_bytes_ratio: float = Field(gt=0.0)
    flop_conventions: dict[str, FlopConvention]
    precisions: dict[str, PrecisionRecipe]


@lru_cache(maxsize=1)
def constants() -> TrainingConstants:
    return cast(TrainingConstants, validate_into(TrainingConstants, read_yaml(DATA_FILE), f"'{DATA_FILE}'"))
