"""Dense decoder-only transformer (Llama, Mistral, Qwen2/3 families): MHA/GQA/MQA attention with
optional sliding windows, gated (SwiGLU) or plain MLP."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from roofline.errors import RooflineError
from roofline.ir import Op, Placement, Precision, StepShape
from roofline.workloads.base import ParameterCounts, Workload, register_kind
from roofline.workloads.layers import (
    AttentionShape,
    attention_block_ops,
    dense_mlp_ops,
    embedding_ops,
    kv_length,
    lm_head_ops,
    local_heads,
    local_kv_heads,
)


@register_kind("dense")
class DenseTransformer(Workload):
    kind: Literal["dense"] = "dense"
    hidden_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int | None = Field(default=None, gt=0, description="default hidden_size / num_attention_heads")
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    mlp: Literal["gated", "plain"] = "gated"
    hidden_act: str = "silu"
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    sliding_window: int | None = Field(default=None, gt=0)
    sliding_window_layers: list[int] | None = Field(
        default=None, description="layers (0-based) that use the window; all layers when omitted"
    )

    @model_validator(mode="after")
    def _check_shape(self) -> DenseTransformer:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size is not divisible by num_attention_heads; give head_dim explicitly")
        if self.sliding_window_layers is not None:
            bad = [i for i in self.sliding_window_layers if not 0 <= i < self.num_hidden_layers]
            if bad:
                raise ValueError(f"sliding_window_layers {bad} are outside 0..{self.num_hidden_layers - 1}")
        return self

    # ---- shape helpers ---------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return self.num_hidden_layers

    @property
    def attention(self) -> AttentionShape:
        head_dim = self.head_dim or self.hidden_size // self.num_attention_heads
        return AttentionShape(
            self.hidden_size, self.num_attention_heads, self.num_key_value_heads, head_dim, self.qk_norm
        )

    def window_of(self, layer: int) -> int | None:
        if self.sliding_window is None:
            return None
        if self.sliding_window_layers is None or layer in self.sliding_window_layers:
            return self.sliding_window
        return None

    def _windows(self, placement: Placement) -> dict[int | None, int]:
        """Layers of the placement grouped by their attention window."""
        groups: dict[int | None, int] = {}
        for layer in range(placement.layer_start, placement.layer_end):
            window = self.window_of(layer)
            groups[window] = groups.get(window, 0) + 1
        return groups

    # ---- parameters and memory -------------------------------------------------------------------

    def _layer_parts(self, tp: int) -> dict[str, float]:
        """Per-layer parameter elements on one GPU, by component."""
        att = self.attention
        q_l = local_heads(att.num_heads, tp, "attention heads")
        kv_l = local_kv_heads(att.num_kv_heads, tp)
        f_l = self.intermediate_size / tp
        norm_factor = 2 if self.norm == "layernorm" else 1  # layernorm has a bias
        attention = att.weight_elements(tp)
        if self.attention_bias:
            attention += (q_l + 2 * kv_l) * att.head_dim
        if att.qk_norm:
            attention += 2 * att.head_dim
        mlp = (3 if self.mlp == "gated" else 2) * self.hidden_size * f_l
        if self.mlp_bias:
            mlp += (2 if self.mlp == "gated" else 1) * f_l + self.hidden_size
        return {"attention": attention, "mlp": mlp, "norms": 2.0 * norm_factor * self.hidden_size}

    def parameter_counts(self) -> ParameterCounts:
        parts = {k: v * self.num_hidden_layers for k, v in self._layer_parts(1).items()}
        parts["embedding"] = float(self.vocab_size * self.hidden_size)
        parts["lm_head"] = 0.0 if self.tie_word_embeddings else float(self.vocab_size * self.hidden_size)
        parts["norms"] += self.hidden_size * (2 if self.norm == "layernorm" else 1)  # final norm
        total = sum(parts.values())
        return ParameterCounts(total=total, active=total, by_component=parts)

    def check_parallel(self, tp: int, pp: int) -> None:
        self._layer_parts(tp)  # raises on heads that do not split
        if self.intermediate_size % tp:
            raise RooflineError(f"intermediate_size ({self.intermediate_size}) is not divisible by --tp {tp}")
        if pp > self.num_hidden_layers:
            raise RooflineError(f"--pp {pp} exceeds the {self.num_hidden_layers} layers of {self.id}")

    def weight_bytes(self, precision: Precision, placement: Placement) -> float:
        w, a = precision.weight.bytes_per_element, precision.activation.bytes_per_element
        parts = self._layer_parts(placement.tp)
        per_layer = (parts["attention"] + parts["mlp"]) * w + parts["norms"] * a
        table = self.vocab_size / placement.tp * self.hidden_size * a
        total = per_layer * placement.num_layers
        if placement.has_embedding:
            total += table
        if placement.has_lm_head:
            total += self.hidden_size * a
            if not (self.tie_word_embeddings and placement.has_embedding):
                total += table
        return total

    def kv_cache_bytes(self, tokens: int, precision: Precision, placement: Placement) -> float:
        per_token_layer = self.attention.kv_elements_per_token(placement.tp) * precision.kv_cache.bytes_per_element
        return sum(
            kv_length(tokens, window) * per_token_layer * layers for window, layers in self._windows(placement).items()
        )

    def activation_bytes(self, step: StepShape, precision: Precision, placement: Placement) -> float:
        """Residual stream + normed input + the widest intermediate of one layer, plus fp32 logits."""
        att, t, tp = self.attention, step.tokens, placement.tp
        qkv_width = (local_heads(att.num_heads, tp, "heads") + 2 * local_kv_heads(att.num_kv_heads, tp)) * att.head_dim
        f_l = self.intermediate_size // tp
        mlp_width = (3 if self.mlp == "gated" else 2) * f_l
        widest = max(qkv_width, mlp_width)
        layer_bytes = t * (2 * self.hidden_size + widest) * precision.activation.bytes_per_element
        logits_bytes = step.batch * (self.vocab_size / tp) * 4.0 if placement.has_lm_head else 0.0
        return layer_bytes + logits_bytes

    # ---- operators -------------------------------------------------------------------------------

    def build_ops(self, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
        tp, ops = placement.tp, []
        if placement.has_embedding:
            ops += embedding_ops(self.hidden_size, step, precision, tp)
        for window, layers in self._windows(placement).items():
            suffix = f"[window={window}]" if window is not None else ""
            ops += attention_block_ops(self.attention, step, precision, tp, layers, window, suffix)
        ops += dense_mlp_ops(
            self.hidden_size, self.intermediate_size, self.mlp == "gated", step, precision, tp, placement.num_layers
        )
        if placement.has_lm_head:
            ops += lm_head_ops(self.hidden_size, self.vocab_size, step, precision, tp)
        return ops

    def stage_boundary_bytes(self, step: StepShape, precision: Precision) -> float:
        """Activation bytes handed from one pipeline stage to the next."""
        return step.tokens * self.hidden_size * precision.activation.bytes_per_element
