"""Workload base class and the registry of workload kinds.

A workload kind is a pydantic model with `kind: Literal[...]`, registered with `@register_kind`.
It computes its own parameter counts, memory per GPU and operator list; the engine never asks
which kind it is (no if/elif chains).
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from roofline.dtypes import DType
from roofline.ir import Op, Placement, Precision, StepShape
from roofline.overrides import replace_fields


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters by component. `active`: what one token's forward pass uses, counting the
    embedding table like the total does (== total for dense models); publishers differ on
    whether their active figure includes the embedding table, hence `active_non_embedding`."""

    total: float
    active: float
    by_component: dict[str, float] = field(default_factory=dict)

    @property
    def active_non_embedding(self) -> float:
        return self.active - self.by_component.get("embedding", 0.0)


class Workload(BaseModel, ABC):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    # image/video diffusion transformers and diffusion LMs: `roofline estimate` times them per
    # image, video or request (a class flag, so asking does not import their modules)
    is_diffusion: ClassVar[bool] = False

    kind: str
    id: str
    name: str
    source: str = Field(min_length=3)
    published_params: float | None = Field(default=None, gt=0, description="published total parameter count")
    published_params_source: str | None = None
    published_active_params: float | None = Field(default=None, gt=0)
    published_rounding: float | None = Field(
        default=None, gt=0, description="the published figures are rounded to this (e.g. 1e9 for '13B')"
    )
    published_active_excludes_embedding: bool = Field(
        default=False, description="the publisher's active count leaves out the embedding table"
    )
    max_position_embeddings: int | None = Field(default=None, gt=0)
    aliases: list[str] | None = Field(
        default=None,
        description="other names that resolve to this model, case-insensitively (a Hugging Face id, a "
        "publisher's spelling such as NeMo's 'GPT3-175B')",
    )
    weight_dtype: DType = Field(default=DType.BF16, description="format the checkpoint ships its weights in")
    expert_weight_dtype: DType | None = Field(default=None, description="expert weights' format, if different")
    fp8_scaling: Literal["tensor", "block"] | None = Field(
        default=None,
        description="FP8 checkpoints' scales: 'block' (128x128 weight / 1x128 activation, DeepSeek-V3 recipe) or "
        "'tensor' (per-tensor, ModelOpt); None: per-tensor",
    )

    kv_cache_dtype: DType = Field(
        default=DType.BF16, description="KV format engines use by default for this checkpoint (vLLM/SGLang 'auto')"
    )

    def replace(self, **changes: Any) -> Self:
        """A what-if copy of the same kind, validated like a YAML file:
        `llama.replace(num_hidden_layers=40)`; nested fields with underscores or dots (see overrides)."""
        return replace_fields(self, changes)

    def to_dict(self) -> dict[str, Any]:
        """The architecture, parameter counts and KV bytes per token: `roofline model show --format json`."""
        from roofline.workloads.summary import model_document

        return model_document(self)

    @classmethod
    def from_hf_config(cls, path: str | os.PathLike[str], model_id: str | None = None) -> Workload:
        """A model from a local Hugging Face config.json (nothing is downloaded); `model_id`
        defaults to the config's folder name."""
        from roofline.errors import RooflineError
        from roofline.workloads.hf_import import import_hf_config

        workload = import_hf_config(Path(path), model_id)
        if not isinstance(workload, cls):
            raise RooflineError(f"'{path}' describes a {workload.kind} model, not a {cls.__name__}")
        return workload

    @property
    def shipped_precision(self) -> Precision:
        """Formats as the checkpoint ships, with the KV format engines default to for it."""
        return Precision(weight=self.weight_dtype, kv_cache=self.kv_cache_dtype, expert_weight=self.expert_weight_dtype,
                         fp8_scaling=self.fp8_scaling)  # fmt: skip

    @property
    @abstractmethod
    def num_layers(self) -> int: ...

    @abstractmethod
    def parameter_counts(self) -> ParameterCounts: ...

    @abstractmethod
    def check_parallel(self, tp: int, pp: int) -> None:
        """Raise RooflineError when the model cannot be split this way."""

    def published_tolerance(self, published: float) -> float:
        """Absolute tolerance for comparing with a published count: 2%, or half the rounding step
        when the publisher only gives a rounded nominal figure."""
        return max(0.02 * published, (self.published_rounding or 0.0) / 2)

    def check_experts(self, ep: int, expert_tp: int) -> None:
        """Raise RooflineError when the experts cannot be spread this way (no experts: ep must be 1)."""
        if ep > 1:
            from roofline.errors import RooflineError

            raise RooflineError(f"{self.id} has no experts; drop --ep")

    @abstractmethod
    def weight_bytes(self, precision: Precision, placement: Placement) -> float:
        """Weight bytes resident on one GPU with this placement."""

    @abstractmethod
    def kv_cache_bytes(self, tokens: int, precision: Precision, placement: Placement) -> float:
        """KV-cache (and recurrent-state) bytes one sequence of `tokens` tokens holds on one GPU."""

    @abstractmethod
    def activation_bytes(self, step: StepShape, precision: Precision, placement: Placement) -> float:
        """Peak live activation bytes on one GPU while running `step`."""

    @abstractmethod
    def build_ops(self, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
        """Operators one GPU runs for one step."""

    @abstractmethod
    def stage_boundary_bytes(self, step: StepShape, precision: Precision) -> float:
        """Activation bytes one pipeline stage hands to the next for this step."""

    @property
    def mtp_layers(self) -> int:
        """Multi-token-prediction layers the checkpoint ships (usable as a speculative head)."""
        return 0

    def mtp_ops(self, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
        """Operators of one pass of the MTP module (on the last pipeline stage)."""
        return []

    def mtp_weight_bytes(self, precision: Precision, placement: Placement) -> float:
        return 0.0

    def kv_cache_bytes_per_token(self, precision: Precision) -> float:
        """Whole-model KV bytes per token of context on one unsharded replica, while the context is
        inside every window (sliding-window and chunked layers count like full ones). Kinds whose
        state is fixed per sequence (Mamba, DeepSeek-V4 window rings) report the growth per token."""
        full = Placement(tp=1, layer_start=0, layer_end=self.num_layers)
        return self.kv_cache_bytes(1, precision, full)


W = TypeVar("W", bound=type[Workload])

# The packaged kinds and the module that registers each, in the order they are listed
PACKAGED_KINDS = {
    "dense": "roofline.workloads.dense", "moe": "roofline.workloads.moe",
    "deepseek_v4": "roofline.workloads.deepseek_v4", "dit": "roofline.workloads.diffusion_dit",
    "diffusion_lm": "roofline.workloads.diffusion_lm", "hybrid": "roofline.workloads.hybrid",
    "mla_moe": "roofline.workloads.mla",
}  # fmt: skip


class _Kinds(MutableMapping[str, type[Workload]]):
    """Workload classes by `kind:`. A packaged kind's module is imported the first time the kind is
    looked up, so loading a dense model does not build the MoE, hybrid or diffusion classes."""

    def __init__(self) -> None:
        self._registered: dict[str, type[Workload]] = {}

    def __getitem__(self, kind: str) -> type[Workload]:
        if kind not in self._registered and kind in PACKAGED_KINDS:
            importlib.import_module(PACKAGED_KINDS[kind])  # registers the kind (register_kind)
        return self._registered[kind]

    def __setitem__(self, kind: str, cls: type[Workload]) -> None:
        self._registered[kind] = cls

    def __delitem__(self, kind: str) -> None:
        del self._registered[kind]

    def __iter__(self) -> Iterator[str]:
        return iter([*PACKAGED_KINDS, *(k for k in self._registered if k not in PACKAGED_KINDS)])

    def __len__(self) -> int:
        return len(set(PACKAGED_KINDS) | set(self._registered))

    def __contains__(self, kind: object) -> bool:
        return kind in PACKAGED_KINDS or kind in self._registered


WORKLOAD_KINDS: MutableMapping[str, type[Workload]] = _Kinds()


def register_kind(name: str) -> Callable[[W], W]:
    def decorate(cls: W) -> W:
        WORKLOAD_KINDS[name] = cls
        return cls

    return decorate
