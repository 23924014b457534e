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
    glu_requires_silu: bool = False  # a gated MLP counts 3 projections only when its activation is SiLU
    sliding_window: bool = True  # False: windowed layers are counted as full causal attention
    mamba: Literal["graph", "megatron"] = "graph"  # megatron: the hybrid formula (d_inner = 2 x hidden)
    framework: str | None = None  # a release-specific variant of this framework's convention ...
    before_release: str | None = None  # ... for the framework's container releases before this one
    source: str = Field(min_length=3)


class PrecisionRecipe(_Frozen):
    gemm_dtype: str
    architectures: tuple[str, ...] = ()  # the accelerator architectures that run it (empty: any with the format)
    scaling: Literal["tensor", "block"] | None = None
    copies: int = Field(ge=0)
    fused: bool
    source: str = Field(min_length=3)


class FrameworkDefaults(_Frozen):
    grad_reduce_in_fp32: bool
    source: str = Field(min_length=3)


class TpOverlap(_Frozen):
    """TE userbuffers TP communication overlap: which share of the overlapped GEMMs split their
    communication into tp chunks (ring exchange over the copy engines) and which into `splits`
    chunks with `sms` SMs given to the collective (pipeline); the first chunk of each cannot start
    under compute."""

    ring_exchange_share: float = Field(ge=0.0, le=1.0)
    pipeline_splits: int = Field(gt=0)
    pipeline_sms: int = Field(ge=0)
    source: str = Field(min_length=3)


class PublishedRecipe(_Frozen):
    """Switches a published recipe sets for a model on some systems (empty: any) at a precision
    (None: any)."""

    model: str
    hardware: tuple[str, ...] = ()
    precision: str | None = None
    ep_overlap: bool = False
    mtp_layers: int = Field(default=0, ge=0)
    balanced_stages: bool = False
    recompute_modules: tuple[str, ...] = ()
    moe_fused_mlp: bool = False
    tp_comm_overlap: bool = False
    except_precisions: tuple[str, ...] = ()  # precisions the recipe switches these off for
    from_release: str | None = None  # the framework release whose recipes first set these switches
    before_release: str | None = None  # the first release whose recipes no longer do
    layout: dict[str, int] = Field(default_factory=dict)  # the recipe's layout (pp, vpp, ep ...), when it names one
    framework: str | None = None  # the framework whose recipe it is (None: the model's own, any framework)
    source: str = Field(min_length=3)

    def applies(self, model: str, hardware: str, precision: str, release: str | None = None,
                layout: dict[str, int] | None = None, framework: str | None = None) -> bool:  # fmt: skip
        """Whether the recipe holds for this model, system, precision and layout at this container
        release (None: the latest, so a recipe that ended before it does not hold) in this framework."""
        if not (self.model == model and (not self.hardware or hardware in self.hardware)
                and self.precision in (None, precision) and precision not in self.except_precisions):  # fmt: skip
            return False
        if self.framework is not None and framework is not None and framework != self.framework:
            return False
        if self.layout and any((layout or {}).get(key) != value for key, value in self.layout.items()):
            return False
        if release is None or not release_key(release):
            return self.before_release is None
        if self.from_release and release_key(release) < release_key(self.from_release):
            return False
        return not (self.before_release and release_key(release) >= release_key(self.before_release))


class TrainingConstants(_Frozen):
    kind: Literal["training_constants"]
    param_bytes: float = Field(gt=0.0)
    grad_bytes: float = Field(gt=0.0)
    grad_bytes_bf16: float = Field(gt=0.0)
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
    ep_comm_library: str = Field(min_length=1)
    moe_kernels: str = Field(min_length=1)  # the MoE kernel variant training runs (moe_kernels.yaml)
    moe_unfused_layer_s: float = Field(ge=0.0)  # host-synchronised unfused MoE path, per MoE layer and micro-batch
    tp_overlap: TpOverlap
    ssd_scan_fraction: float = Field(gt=0.0, le=1.0)
    ssd_backward_flops_ratio: float = Field(gt=0.0)
    rl_rollout_memory_fraction: float = Field(gt=0.0, le=1.0)
    published_recipes: tuple[PublishedRecipe, ...] = ()
    framework_defaults: dict[str, FrameworkDefaults] = Field(default_factory=dict)


@lru_cache(maxsize=1)
def constants() -> TrainingConstants:
    return cast(TrainingConstants, validate_into(TrainingConstants, read_yaml(DATA_FILE), f"'{DATA_FILE}'"))


def release_key(release: str) -> tuple[int, ...]:
    """'26.04.01' -> (26, 4, 1); the leading numeric fields of a container release name."""
    parts: list[int] = []
    for field in release.split("."):
        digits = "".join(ch for ch in field if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def flop_convention_for(framework: str, release: str | None = None) -> str:
    """The FLOP convention a framework's published tables used at a container release: the
    release-specific variant whose `before_release` is the earliest one after `release`, else the
    framework's own convention ('megatron' when the framework has none)."""
    table = constants().flop_conventions
    base = framework if framework in table else "megatron"
    if not release or not release_key(release):
        return base
    variants = [(name, c) for name, c in table.items()
                if c.framework == framework and c.before_release
                and release_key(release) < release_key(c.before_release)]  # fmt: skip
    if not variants:
        return base
    return min(variants, key=lambda item: release_key(item[1].before_release or ""))[0]
