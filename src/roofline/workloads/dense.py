"""Dense decoder-only transformer (Llama, Mistral, Qwen2/3 families): MHA/GQA/MQA attention with
optional sliding windows, gated (SwiGLU) or plain MLP."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from roofline.errors import RooflineError
from roofline.ir import Op, Placement, Precision, StepShape
from roofline.workloads.base import register_kind
from roofline.workloads.decoder import DecoderTransformer
from roofline.workloads.layers import dense_mlp_ops


def mlp_params(hidden: int, intermediate: int, gated: bool, bias: bool = False) -> float:
    params = (3 if gated else 2) * hidden * intermediate
    if bias:
        params += (2 if gated else 1) * intermediate + hidden
    return float(params)


@register_kind("dense")
class DenseTransformer(DecoderTransformer):
    kind: Literal["dense"] = "dense"
    intermediate_size: int = Field(gt=0)
    mlp: Literal["gated", "plain"] = "gated"
    mlp_bias: bool = False

    @property
    def gated(self) -> bool:
        return self.mlp == "gated"

    def ffn_params(self, kind: str) -> tuple[float, float]:
        params = mlp_params(self.hidden_size, self.intermediate_size, self.gated, self.mlp_bias)
        return params, params

    def ffn_weight_bytes(self, kind: str, precision: Precision, placement: Placement) -> float:
        shard = mlp_params(self.hidden_size, self.intermediate_size // placement.tp, self.gated, self.mlp_bias)
        return shard * precision.weight.bytes_per_element

    def ffn_ops(self, kind: str, step: StepShape, precision: Precision, placement: Placement, count: int,
                group_tokens: int | None = None) -> list[Op]:  # fmt: skip
        return dense_mlp_ops(self.hidden_size, self.intermediate_size, self.gated, step, precision, placement, count)

    def ffn_activation_width(self, kind: str, step: StepShape, placement: Placement) -> float:
        return (3 if self.gated else 2) * self.intermediate_size / placement.tp

    def check_parallel(self, tp: int, pp: int) -> None:
        super().check_parallel(tp, pp)
        if self.intermediate_size % tp:
            raise RooflineError(f"intermediate_size ({self.intermediate_size}) is not divisible by --tp {tp}")
