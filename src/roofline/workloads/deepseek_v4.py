"""DeepSeek-V4 (Pro, Flash): hybrid compressed attention + MoE.

Every layer attends through a 128-token sliding-window (SWA) branch over a single shared K=V
head of 512 dims (MQA), plus, per the layer's compress ratio m:
- CSA (m = 4): keys compressed every 4 tokens by learned gated pooling; a lightning indexer
  (FP8, 64 heads x 128) scores the compressed entries and the query keeps the top index_topk;
- HCA (m = 128): keys compressed every 128 tokens, attended densely, no indexer;
- m = 0: the sliding window only.
The output projection is grouped low-rank (o_groups groups of heads -> o_lora_rank -> hidden);
the residual stream is widened to hc_mult parallel streams (mHC). Facts: shared/reference/
models.md §6 (HF DeepseekV4Config, config copies); the cache arithmetic reproduces vLLM's
9.62 GiB per 1M-token sequence for Pro in bf16.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from roofline.dtypes import DType
from roofline.ir import AttentionCall, MatmulShape, Op, OpClass, OpKind, Placement, Precision, StepShape
from roofline.workloads.base import ParameterCounts, register_kind
from roofline.workloads.layers import Span, causal_kv_sum, elementwise_op, local_heads, matmul_op, partial_sum
from roofline.workloads.moe import MoEFields


def _compressed_sum(prior: int, new: int, ratio: int, cap: int | None) -> float:
    """Sum over the new tokens of compressed entries visible at their position, capped at `cap`."""
    first, last = prior + 1, prior + new
    if cap is None:
        # sum_{s=first}^{last} floor(s / ratio), close enough as s / ratio for costing
        return (first + last) * new / 2.0 / ratio
    limit = cap * ratio  # positions beyond which the cap binds
    if last <= limit:
        return (first + last) * new / 2.0 / ratio
    if first > limit:
        return float(cap) * new
    below = (first + limit) * (limit - first + 1) / 2.0 / ratio
    return below + float(cap) * (last - limit)


@register_kind("deepseek_v4")
class DeepSeekV4(MoEFields):
    kind: Literal["deepseek_v4"] = "deepseek_v4"
    qk_rope_head_dim: int = Field(gt=0)
    q_lora_rank: int = Field(gt=0)
    o_groups: int = Field(gt=0)
    o_lora_rank: int = Field(gt=0)
    compress_ratios: list[int] = Field(description="per layer: 0 (window only), csa_ratio or hca_ratio")
    csa_ratio: int = Field(default=4, gt=0)
    hca_ratio: int = Field(default=128, gt=0)
    index_n_heads: int = Field(gt=0)
    index_head_dim: int = Field(gt=0)
    index_topk: int = Field(gt=0)
    hc_mult: int = Field(default=1, gt=0, description="parallel residual streams (mHC)")

    @model_validator(mode="after")
    def _check_v4(self) -> DeepSeekV4:
        if len(self.compress_ratios) != self.num_hidden_layers:
            raise ValueError("compress_ratios needs one entry per layer")
        bad = set(self.compress_ratios) - {0, self.csa_ratio, self.hca_ratio}
        if bad:
            raise ValueError(f"compress_ratios holds {sorted(bad)}; use 0, csa_ratio or hca_ratio")
        if self.sliding_window is None:
            raise ValueError("DeepSeek-V4 layers need sliding_window (the SWA branch)")
        return self

    # ---- structure -------------------------------------------------------------------------------

    def span_of(self, layer: int) -> Span:
        ratio = self.compress_ratios[layer]
        kind = "csa" if ratio == self.csa_ratio else "hca" if ratio == self.hca_ratio else "swa"
        return Span(kind, ratio or None)

    @property
    def kv_dim(self) -> int:
        assert self.head_dim is not None
        return self.head_dim

    def _indexer_params(self) -> float:
        return float(self.q_lora_rank * self.index_n_heads * self.index_head_dim
                     + self.hidden_size * (self.index_head_dim + self.index_n_heads))  # fmt: skip

    def _attention_core_params(self, tp: int = 1) -> float:
        n_l, d, dim = local_heads(self.num_attention_heads, tp, "attention heads"), self.hidden_size, self.kv_dim
        q = d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * n_l * dim
        kv = d * dim + dim
        out = n_l * dim * self.o_lora_rank + self.o_groups // tp * self.o_lora_rank * d
        return float(q + kv + out + n_l)  # + per-head sink

    def attention_params(self, tp: int = 1) -> float:
        """Average over layers: the indexer is only on CSA layers (used for totals)."""
        csa = sum(1 for r in self.compress_ratios if r == self.csa_ratio)
        return self._attention_core_params(tp) + self._indexer_params() * csa / self.num_hidden_layers

    def parameter_counts(self) -> ParameterCounts:
        main = super().parameter_counts()
        if not self.num_nextn_predict_layers:
            return main
        layer = self._attention_core_params() + self.moe_shape.total_and_active()[0] + self.norm_params
        mtp = self.num_nextn_predict_layers * (layer + 2 * self.hidden_size + 2 * self.hidden_size**2)
        return ParameterCounts(main.total + mtp, main.active, dict(main.by_component, mtp=mtp))

    # ---- KV cache --------------------------------------------------------------------------------

    def _layer_kv_bytes(self, tokens: int, span: Span, precision: Precision) -> float:
        b = precision.kv_cache.bytes_per_element
        assert self.sliding_window is not None
        window = min(tokens, self.sliding_window) * self.kv_dim * b
        if span.kind == "csa":
            return window + tokens // self.csa_ratio * (self.kv_dim + self.index_head_dim) * b
        if span.kind == "hca":
            return window + tokens // self.hca_ratio * self.kv_dim * b
        return window

    def kv_cache_bytes(self, tokens: int, precision: Precision, placement: Placement) -> float:
        spans, _ = self._layer_groups(placement)  # one K=V head, replicated on every TP rank
        return sum(self._layer_kv_bytes(tokens, span, precision) * n for span, n in spans.items())

    def kv_cache_bytes_per_token(self, precision: Precision) -> float:
        """Growth per token at long context (compressed entries; the window ring is fixed)."""
        b, csa, hca = precision.kv_cache.bytes_per_element, 0, 0
        for r in self.compress_ratios:
            csa += r == self.csa_ratio
            hca += r == self.hca_ratio
        return csa * (self.kv_dim + self.index_head_dim) * b / self.csa_ratio + hca * self.kv_dim * b / self.hca_ratio

    def stage_boundary_bytes(self, step: StepShape, precision: Precision) -> float:
        return self.hc_mult * super().stage_boundary_bytes(step, precision)  # all mHC residual streams

    def attention_width(self, placement: Placement) -> float:
        return self.num_attention_heads // placement.tp * self.kv_dim * 2

    # ---- operators -------------------------------------------------------------------------------

    def attention_ops(self, span: Span, step: StepShape, precision: Precision, placement: Placement,
                      count: int) -> list[Op]:  # fmt: skip
        t, d, dim = step.tokens, self.hidden_size, self.kv_dim
        n_l = placement.heads(self.num_attention_heads)
        g_l = placement.heads(self.o_groups, "output groups")
        a, w = precision.activation.bytes_per_element, precision.weight.bytes_per_element
        kv_b = precision.kv_cache.bytes_per_element
        streams = self.hc_mult * d
        ops = [
            elementwise_op("mhc_mix_norm", OpClass.NORM, 2.0 * t * streams, 2.0 * t * streams, 8.0, precision, count),
            matmul_op("q_a_proj", OpClass.ATTENTION, t, self.q_lora_rank, d, precision, count),
            matmul_op("q_b_proj", OpClass.ATTENTION, t, n_l * dim, self.q_lora_rank, precision, count),
            matmul_op("kv_proj", OpClass.ATTENTION, t, dim, d, precision, count),
        ]
        assert self.sliding_window is not None
        entries = causal_kv_sum(step.prior_tokens, step.new_tokens, self.sliding_window)
        read = min(step.context_tokens, self.sliding_window) * dim * kv_b
        attended = min(step.context_tokens, self.sliding_window)
        if span.kind in ("csa", "hca"):
            ratio = self.csa_ratio if span.kind == "csa" else self.hca_ratio
            ops.append(elementwise_op(f"kv_compress[{span.kind}]", OpClass.ATTENTION, t * dim * 2, t * dim / ratio,
                                      4.0, precision, count))  # fmt: skip
            cap = self.index_topk if span.kind == "csa" else None
            entries += _compressed_sum(step.prior_tokens, step.new_tokens, ratio, cap)
            visible = step.context_tokens // ratio
            read += (min(visible, cap) if cap else visible) * dim * kv_b
            attended += min(visible, cap) if cap else visible
        if span.kind == "csa":
            ops += self._indexer_ops(step, precision, count)
        core = Op(
            name=f"attention[{span.kind}]", kind=OpKind.ATTENTION, op_class=OpClass.ATTENTION,
            dtype=precision.activation, flops=step.batch * 2.0 * n_l * (dim + dim) * entries,
            activation_bytes=2.0 * t * n_l * dim * a, kv_read_bytes=step.batch * read,
            kv_write_bytes=t * dim * kv_b, count=count,
            attention=AttentionCall(step.phase, step.batch, step.new_tokens, attended, n_l, 1, dim, dim, True,
                                    "mla_sparse" if span.kind == "csa" else "mla", precision.kv_cache),
        )  # fmt: skip
        per_group = n_l // g_l * dim
        grouped = Op(
            name="o_a_grouped", kind=OpKind.MATMUL, op_class=OpClass.ATTENTION, dtype=precision.matmul_dtype,
            flops=2.0 * t * g_l * per_group * self.o_lora_rank, weight_bytes=g_l * per_group * self.o_lora_rank * w,
            activation_bytes=t * g_l * (per_group + self.o_lora_rank) * a, count=count,
            shape=MatmulShape(m=t, n=self.o_lora_rank, k=per_group, batch=g_l),
        )  # fmt: skip
        out = matmul_op("o_b_proj", OpClass.ATTENTION, t, d, g_l * self.o_lora_rank, precision, count,
                        sync=partial_sum("attn_all_reduce", t, d, precision))  # fmt: skip
        return [*ops, core, grouped, out]

    def _indexer_ops(self, step: StepShape, precision: Precision, count: int) -> list[Op]:
        t, h, dh = step.tokens, self.index_n_heads, self.index_head_dim
        keys = _compressed_sum(step.prior_tokens, step.new_tokens, self.csa_ratio, None)
        kv_b = precision.kv_cache.bytes_per_element
        scores = Op(
            name="indexer_scores", kind=OpKind.ATTENTION, op_class=OpClass.ATTENTION, dtype=DType.FP8,
            flops=step.batch * 2.0 * h * dh * keys,
            kv_read_bytes=step.batch * step.context_tokens // self.csa_ratio * dh * kv_b,
            activation_bytes=t * h * dh * 1.0, count=count,
        )  # fmt: skip
        return [
            matmul_op("indexer_q", OpClass.ATTENTION, t, h * dh, self.q_lora_rank, precision, count),
            matmul_op("indexer_k_weights", OpClass.ATTENTION, t, dh + h, self.hidden_size, precision, count),
            scores,
            elementwise_op(
                "indexer_topk", OpClass.ATTENTION, 2.0 * keys, 2.0 * t * self.index_topk, 2.0, precision, count
            ),  # fmt: skip
        ]

    def weight_bytes(self, precision: Precision, placement: Placement) -> float:
        """The base counts every layer's attention at the layer average; correct the indexer per stage."""
        total = super().weight_bytes(precision, placement)
        spans, _ = self._layer_groups(placement)
        csa_here = sum(n for s, n in spans.items() if s.kind == "csa")
        avg = self._indexer_params() * sum(1 for r in self.compress_ratios if r == self.csa_ratio) / self.num_layers
        correction = csa_here * self._indexer_params() - placement.num_layers * avg
        return total + correction * precision.weight.bytes_per_element
