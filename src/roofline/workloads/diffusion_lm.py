"""Masked-diffusion language models (kind `diffusion_lm`: LLaDA, Dream): a dense transformer run
without a causal mask. The weights, KV layout (used by the Fast-dLLM prefix and dual caches) and
operators are those of `dense`; the diffusion estimator (simulator/diffusion_lm.py) makes every
query attend to the whole sequence and decides which tokens each denoising step recomputes."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from roofline.workloads.base import register_kind
from roofline.workloads.dense import DenseTransformer


@register_kind("diffusion_lm")
class DiffusionLM(DenseTransformer):
    is_diffusion: ClassVar[bool] = True
    kind: Literal["diffusion_lm"] = "diffusion_lm"  # type: ignore[assignment]
    mask_token_id: int | None = Field(default=None, ge=0)
    default_gen_len: int = Field(default=256, gt=0)
