"""Decoder-only transformer skeleton shared by the dense and MoE kinds.

Every layer is attention (with a span: full, sliding window, or chunk) followed by an FFN whose
kind (`dense`, `moe`, ...) the subclass decides per layer. The subclass supplies the FFN's
parameters, weight bytes and operators; this class does embedding, attention, LM head, KV cache
and the grouping of identical layers into one operator with a count.
"""

from __future__ import annotations

from collections import Counter

from pydantic import Field, model_validator

from roofline.errors import RooflineError
from roofline.ir import Op, Placement, Precision, StepShape
from roofline.memo import remembered
from roofline.parallel.collectives import with_collectives
from roofline.workloads.base import ParameterCounts, Workload
from roofline.workloads.layers import (
    FULL,
    AttentionShape,
    Span,
    attention_block_ops,
    embedding_ops,
    lm_head_ops,
    local_heads,
    local_kv_heads,
)


class DecoderTransformer(Workload):
    hidden_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int | None = Field(default=None, gt=0, description="default hidden_size / num_attention_heads")
    vocab_size: int = Field(gt=0)
    norm: str = "rmsnorm"
    hidden_act: str = Field(default="silu", description="the MLP's (gate) activation (gpt-oss: quick_gelu)")
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    qk_norm: bool = False
    attention_sinks: bool = Field(default=False, description="learned per-head sink logits (gpt-oss)")
    sliding_window: int | None = Field(default=None, gt=0)
    sliding_window_layers: list[int] | None = Field(
        default=None, description="layers (0-based) that use the window; all layers when omitted"
    )
    attention_chunk_size: int | None = Field(default=None, gt=0)
    chunked_layers: list[int] | None = Field(default=None, description="layers with chunked attention")

    @model_validator(mode="after")
    def _check_attention(self) -> DecoderTransformer:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size is not divisible by num_attention_heads; give head_dim explicitly")
        for name in ("sliding_window_layers", "chunked_layers"):
            layers = getattr(self, name) or []
            bad = [i for i in layers if not 0 <= i < self.num_hidden_layers]
            if bad:
                raise ValueError(f"{name} {bad} are outside 0..{self.num_hidden_layers - 1}")
        return self

    # ---- structure -------------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return self.num_hidden_layers

    @property
    def attention(self) -> AttentionShape:
        head_dim = self.head_dim or self.hidden_size // self.num_attention_heads
        return AttentionShape(
            self.hidden_size, self.num_attention_heads, self.num_key_value_heads, head_dim, self.qk_norm
        )

    def span_of(self, layer: int) -> Span:
        if self.attention_chunk_size and (self.chunked_layers is None or layer in self.chunked_layers):
            return Span("chunk", self.attention_chunk_size)
        if self.sliding_window and (self.sliding_window_layers is None or layer in self.sliding_window_layers):
            return Span("window", self.sliding_window)
        return FULL

    def ffn_kind(self, layer: int) -> str:
        return "dense"

    def _layer_groups(self, placement: Placement) -> tuple[Counter[Span], Counter[str]]:
        """How many of the stage's layers have each attention span and each FFN kind (remembered
        per workload and stage: every op graph and memory figure of the stage asks)."""
        return remembered(self, ("layer_groups", placement.layer_start, placement.layer_end),
                          lambda: self._count_layer_groups(placement.layer_start, placement.layer_end))  # fmt: skip

    def _count_layer_groups(self, start: int, end: int) -> tuple[Counter[Span], Counter[str]]:
        layers = range(start, end)
        return Counter(self.span_of(i) for i in layers), Counter(self.ffn_kind(i) for i in layers)

    # ---- FFN hooks (subclasses) ------------------------------------------------------------------

    def ffn_params(self, kind: str) -> tuple[float, float]:
        """(total, active) parameter elements of one FFN of this kind, unsharded."""
        raise NotImplementedError

    def ffn_weight_bytes(self, kind: str, precision: Precision, placement: Placement) -> float:
        raise NotImplementedError

    def ffn_ops(self, kind: str, step: StepShape, precision: Precision, placement: Placement, count: int,
                group_tokens: int | None = None) -> list[Op]:  # fmt: skip
        """`step` is the attention replica's share; `group_tokens` all tokens of the step (MoE routing)."""
        raise NotImplementedError

    def ffn_activation_width(self, kind: str, step: StepShape, placement: Placement) -> float:
        """Widest per-token intermediate of the FFN on one GPU (elements)."""
        raise NotImplementedError

    # ---- attention -------------------------------------------------------------------------------

    def attention_params(self, tp: int = 1) -> float:
        att = self.attention
        q_l = local_heads(att.num_heads, tp, "attention heads")
        kv_l = local_kv_heads(att.num_kv_heads, tp)
        params = att.weight_elements(tp)
        if self.attention_bias:
            params += (q_l + 2 * kv_l) * att.head_dim
        if att.qk_norm:
            params += 2 * att.head_dim
        if self.attention_sinks:
            params += q_l
        return params

    def attention_ops(self, span: Span, step: StepShape, precision: Precision, placement: Placement,
                      count: int) -> list[Op]:  # fmt: skip
        return attention_block_ops(self.attention, step, precision, placement, count, span)

    def kv_bytes_per_token_layer(self, precision: Precision, placement: Placement) -> float:
        return self.attention.kv_elements_per_token(placement.tp) * precision.kv_cache.bytes_per_element

    def attention_width(self, placement: Placement) -> float:
        att, tp = self.attention, placement.tp
        return (local_heads(att.num_heads, tp, "heads") + 2 * local_kv_heads(att.num_kv_heads, tp)) * att.head_dim

    # ---- parameters and memory -------------------------------------------------------------------

    @property
    def norm_params(self) -> int:
        return 2 * self.hidden_size * (2 if self.norm == "layernorm" else 1)

    def parameter_counts(self) -> ParameterCounts:
        layers = range(self.num_hidden_layers)
        parts: dict[str, float] = {"attention": self.attention_params() * self.num_hidden_layers}
        active = parts["attention"]
        for kind, count in Counter(self.ffn_kind(i) for i in layers).items():
            total_k, active_k = self.ffn_params(kind)
            parts[f"ffn_{kind}"] = total_k * count
            active += active_k * count
        parts["norms"] = float(self.norm_params * self.num_hidden_layers + self.norm_params // 2)
        table = float(self.vocab_size * self.hidden_size)
        parts["embedding"] = table
        parts["lm_head"] = 0.0 if self.tie_word_embeddings else table
        total = sum(parts.values())
        active += parts["norms"] + parts["embedding"] + parts["lm_head"]
        return ParameterCounts(total=total, active=active, by_component=parts)

    def check_parallel(self, tp: int, pp: int) -> None:
        self.attention_params(tp)  # raises on heads that do not split
        if pp > self.num_hidden_layers:
            raise RooflineError(f"--pp {pp} exceeds the {self.num_hidden_layers} layers of {self.id}")

    def weight_bytes(self, precision: Precision, placement: Placement) -> float:
        """Weights one GPU of this stage holds (remembered per workload, precision and placement)."""
        key = ("weight_bytes", precision, placement)
        return remembered(self, key, lambda: self._weight_bytes(precision, placement))

    def _weight_bytes(self, precision: Precision, placement: Placement) -> float:
        w, a = precision.weight.bytes_per_element, precision.activation.bytes_per_element
        spans, ffns = self._layer_groups(placement)
        total = placement.num_layers * (self.attention_params(placement.tp) * w + self.norm_params * a)
        total += sum(self.ffn_weight_bytes(kind, precision, placement) * n for kind, n in ffns.items())
        rows = self.vocab_size / placement.vocab_tp
        if placement.has_embedding:
            total += rows * self.hidden_size * a
        if placement.has_lm_head:
            total += self.hidden_size * a
            if not (self.tie_word_embeddings and placement.has_embedding):
                total += rows * self.hidden_size * (w if placement.lm_head_quantized else a)
        return total

    def kv_cache_bytes(self, tokens: int, precision: Precision, placement: Placement) -> float:
        per_token = self.kv_bytes_per_token_layer(precision, placement)
        spans, _ = self._layer_groups(placement)
        return sum(span.stored(tokens) * per_token * n for span, n in spans.items())

    def activation_bytes(self, step: StepShape, precision: Precision, placement: Placement) -> float:
        """Residual stream + normed input + the widest intermediate of one layer, plus fp32 logits."""
        t = placement.local_batch(step.batch) * step.new_tokens
        _, ffns = self._layer_groups(placement)
        widest = max([self.attention_width(placement)] + [self.ffn_activation_width(k, step, placement) for k in ffns])
        layer_bytes = t * (2 * self.hidden_size + widest) * precision.activation.bytes_per_element
        logits_bytes = step.batch * (self.vocab_size / placement.vocab_tp) * 4.0 if placement.has_lm_head else 0.0
        return layer_bytes + logits_bytes

    def stage_boundary_bytes(self, step: StepShape, precision: Precision) -> float:
        return step.tokens * self.hidden_size * precision.activation.bytes_per_element

    # ---- operators -------------------------------------------------------------------------------

    def build_ops(self, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
        """One GPU's operators: the graph at this placement's dimension sizes, with its collectives.
        With attention data parallelism each attention replica runs 1/attn_dp of the sequences; the
        FFN hooks see the same local step."""
        local = StepShape(step.phase, placement.local_batch(step.batch), step.new_tokens, step.context_tokens)
        ops: list[Op] = []
        spans, ffns = self._layer_groups(placement)
        if placement.has_embedding:
            ops += embedding_ops(self.hidden_size, local, precision, placement.vocab_parallel)
        for span, count in spans.items():
            ops += self.attention_ops(span, local, precision, placement, count)
        for kind, count in ffns.items():
            ops += self.ffn_ops(kind, local, precision, placement, count, group_tokens=step.tokens)
        if placement.has_lm_head:
            ops += lm_head_ops(self.hidden_size, self.vocab_size, local, precision, placement)
        return with_collectives(ops, placement)
