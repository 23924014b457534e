"""Mixture-of-experts decoder (Mixtral, Qwen3-MoE, Llama 4, gpt-oss): GQA attention with optional
sliding windows, chunked attention and sinks; MoE FFN layers with top-k routing, optional shared
experts, dense layers before the first MoE layer (first_k_dense_replace) or interleaved
(moe_layer_step)."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field, model_validator

from roofline.errors import RooflineError
from roofline.ir import Op, OpClass, Placement, Precision, StepShape
from roofline.parallel.collectives import with_collectives
from roofline.workloads.base import register_kind
from roofline.workloads.decoder import DecoderTransformer
from roofline.workloads.dense import mlp_params
from roofline.workloads.layers import dense_mlp_ops, lm_head_ops, matmul_op
from roofline.workloads.moe_blocks import MoEShape, moe_activation_width, moe_ops, moe_weight_bytes


class MoEFields(DecoderTransformer):
    """MoE fields shared by the MoE kinds (GQA here, MLA in the DeepSeek kind)."""

    intermediate_size: int = Field(default=0, ge=0, description="FFN width of the dense (non-MoE) layers")
    mlp: Literal["gated", "plain"] = "gated"
    num_experts: int = Field(gt=1)
    num_experts_per_tok: int = Field(gt=0)
    moe_intermediate_size: int = Field(gt=0)
    num_shared_experts: int = Field(default=0, ge=0)
    shared_expert_intermediate_size: int | None = Field(default=None, gt=0, description="default: moe width")
    first_k_dense_replace: int = Field(default=0, ge=0, description="leading layers with a dense FFN")
    moe_layer_step: int = Field(default=1, gt=0, description="layer i is MoE when (i + 1) % step == 0")
    router_bias: bool = False
    n_group: int = Field(default=1, gt=0, description="grouped top-k: expert groups (config.json n_group)")
    topk_group: int = Field(default=1, gt=0, description="grouped top-k: groups kept per token (topk_group)")
    num_nextn_predict_layers: int = Field(default=0, ge=0, description="MTP layers (counted; --mtp runs them)")

    @model_validator(mode="after")
    def _check_moe(self) -> MoEFields:
        if self.num_experts_per_tok > self.num_experts:
            raise ValueError("num_experts_per_tok exceeds num_experts")
        has_dense = self.first_k_dense_replace > 0 or self.moe_layer_step > 1
        if has_dense and self.intermediate_size == 0:
            raise ValueError("dense FFN layers need intermediate_size")
        return self

    @property
    def moe_shape(self) -> MoEShape:
        return MoEShape(
            hidden=self.hidden_size, num_experts=self.num_experts, top_k=self.num_experts_per_tok,
            expert_intermediate=self.moe_intermediate_size, gated=self.mlp == "gated",
            num_shared=self.num_shared_experts,
            shared_intermediate=self.shared_expert_intermediate_size or self.moe_intermediate_size,
            router_bias=self.router_bias, n_group=self.n_group, topk_group=self.topk_group,
        )  # fmt: skip

    def ffn_kind(self, layer: int) -> str:
        if layer < self.first_k_dense_replace or (layer + 1) % self.moe_layer_step:
            return "dense"
        return "moe"

    def ffn_params(self, kind: str) -> tuple[float, float]:
        if kind == "dense":
            dense = mlp_params(self.hidden_size, self.intermediate_size, self.mlp == "gated")
            return dense, dense
        return self.moe_shape.total_and_active()

    def ffn_weight_bytes(self, kind: str, precision: Precision, placement: Placement) -> float:
        if kind == "dense":
            shard = mlp_params(self.hidden_size, self.intermediate_size // placement.tp, self.mlp == "gated")
            return shard * precision.weight.bytes_per_element
        return moe_weight_bytes(self.moe_shape, precision, placement)

    def ffn_ops(self, kind: str, step: StepShape, precision: Precision, placement: Placement, count: int,
                group_tokens: int | None = None) -> list[Op]:  # fmt: skip
        if kind == "dense":
            return dense_mlp_ops(
                self.hidden_size, self.intermediate_size, self.mlp == "gated", step, precision, placement, count
            )
        return moe_ops(self.moe_shape, step, precision, placement, count, group_tokens)

    def ffn_activation_width(self, kind: str, step: StepShape, placement: Placement) -> float:
        if kind == "dense":
            return 3 * self.intermediate_size / placement.tp
        return moe_activation_width(self.moe_shape, step, placement)

    @property
    def mtp_layers(self) -> int:
        return self.num_nextn_predict_layers

    def mtp_ops(self, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
        """Each MTP layer: a projection of [hidden; next-token embedding] (2d -> d), one attention +
        MoE layer, then the shared final norm and LM head."""
        if not self.num_nextn_predict_layers:
            return []
        last = self.num_hidden_layers - 1
        t, n = step.tokens, self.num_nextn_predict_layers
        ops = [matmul_op("eh_proj", OpClass.MLP, t, self.hidden_size, 2 * self.hidden_size, precision, n)]
        ops += self.attention_ops(self.span_of(last), step, precision, placement, n)
        ops += self.ffn_ops("moe", step, precision, placement, n)
        ops += lm_head_ops(self.hidden_size, self.vocab_size, step, precision, placement)
        return [replace(op, name=f"mtp_{op.name}") for op in with_collectives(ops, placement)]

    def mtp_weight_bytes(self, precision: Precision, placement: Placement) -> float:
        w = precision.weight.bytes_per_element
        layer = self.attention_params(placement.tp) * w + moe_weight_bytes(self.moe_shape, precision, placement)
        return self.num_nextn_predict_layers * (layer + 2 * self.hidden_size**2 * w)

    def check_parallel(self, tp: int, pp: int) -> None:
        super().check_parallel(tp, pp)
        if self.intermediate_size % tp:
            raise RooflineError(f"intermediate_size ({self.intermediate_size}) is not divisible by --tp {tp}")

    def check_experts(self, ep: int, expert_tp: int) -> None:
        if self.num_experts % ep:
            raise RooflineError(f"--ep {ep} must divide the {self.num_experts} experts of {self.id}")
        if self.moe_intermediate_size % expert_tp:
            raise RooflineError(
                f"moe_intermediate_size ({self.moe_intermediate_size}) is not divisible by the {expert_tp} GPUs "
                "that split each expert; raise --ep"
            )


@register_kind("moe")
class MoETransformer(MoEFields):
    kind: Literal["moe"] = "moe"
