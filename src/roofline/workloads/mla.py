"""DeepSeek-class decoder: multi-head latent attention (MLA) + MoE, optional DeepSeek sparse
attention (DSA, V3.2) and multi-token-prediction (MTP) layers. DeepSeek-V3/R1/V3.2, Kimi K2.

MLA caches one compressed latent of kv_lora_rank + qk_rope_head_dim values per token and layer,
shared by all heads (so tensor parallelism does not split it). Prefill runs the naive (MHA) form:
the latent is expanded to per-head K and V by kv_b_proj and attention is ordinary multi-head.
Decode runs the absorbed (MQA) form: W_UK is folded into the query, attention runs over the
576-wide latent for every head, and W_UV maps the 512-wide result back per head
(DeepSeek-V2 paper §2.1; DeepSeek-V3 inference/model.py; shared/reference/models.md §13.4).
DSA adds a small FP8 indexer that scores every cached token and keeps the top `index_topk`
for the main attention (DeepSeek-V3.2 paper §2.1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from roofline.dtypes import DType
from roofline.ir import AttentionCall, MatmulShape, Op, OpClass, OpKind, Phase, Placement, Precision, StepShape
from roofline.workloads.base import ParameterCounts, register_kind
from roofline.workloads.layers import (
    Span,
    causal_kv_sum,
    elementwise_op,
    local_heads,
    matmul_op,
    partial_sum,
)
from roofline.workloads.moe import MoEFields

INDEXER_BYTES_PER_KEY = 128 + 4  # FP8 e4m3 key of 128 + one fp32 scale (V3.2 model.py k_cache, k_scale_cache)
# FlashMLA's FP8 cache for sparse MLA (V3.2): the latent in FP8 e4m3 with one fp32 scale per 128
# values, the RoPE part kept in BF16: 512 + 4 x 4 + 64 x 2 = 656 bytes per token and layer, not 576
# (FlashMLA README "FP8 KV cache" / docs/20250929-hopper-fp8-sparse-deep-dive.md).
FLASHMLA_FP8_SCALE_GROUP = 128
FLASHMLA_SCALE_BYTES = 4.0  # fp32
FLASHMLA_ROPE_BYTES = 2.0  # bf16


@register_kind("mla_moe")
class MLATransformer(MoEFields):
    kind: Literal["mla_moe"] = "mla_moe"
    q_lora_rank: int | None = Field(default=None, gt=0, description="None: queries projected directly")
    kv_lora_rank: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)
    index_n_heads: int | None = Field(default=None, gt=0, description="DSA indexer heads (V3.2)")
    index_head_dim: int | None = Field(default=None, gt=0)
    index_topk: int | None = Field(default=None, gt=0, description="KV entries each query keeps (DSA)")

    # ---- shape -----------------------------------------------------------------------------------

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent_width(self) -> int:
        return self.kv_lora_rank + self.qk_rope_head_dim

    @property
    def sparse(self) -> bool:
        return self.index_topk is not None

    def span_of(self, layer: int) -> Span:
        # DSA keeps the top-k entries: for counting attended entries it acts like a window of k
        return Span("topk", self.index_topk) if self.index_topk else super().span_of(layer)

    def _indexer_params(self) -> float:
        if not self.sparse or self.index_n_heads is None or self.index_head_dim is None:
            return 0.0
        q_in = self.q_lora_rank or self.hidden_size
        d, h, dh = self.hidden_size, self.index_n_heads, self.index_head_dim
        return float(q_in * h * dh + d * dh + 2 * dh + d * h)  # wq_b, wk, k_norm, weights_proj

    def attention_params(self, tp: int = 1) -> float:
        n_l = local_heads(self.num_attention_heads, tp, "attention heads")
        d = self.hidden_size
        if self.q_lora_rank:
            q = d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * n_l * self.qk_head_dim
        else:
            q = d * n_l * self.qk_head_dim
        kv = d * self.latent_width + self.kv_lora_rank
        kv += self.kv_lora_rank * n_l * (self.qk_nope_head_dim + self.v_head_dim)
        out = n_l * self.v_head_dim * d
        return float(q + kv + out) + self._indexer_params()

    def parameter_counts(self) -> ParameterCounts:
        """The main model; MTP layers are a separate component (one full MLA+MoE layer plus two
        norms and a 2d -> d projection each, sharing embedding and head) in the total only."""
        main = super().parameter_counts()
        if not self.num_nextn_predict_layers:
            return main
        layer = self.attention_params() + self.moe_shape.total_and_active()[0] + self.norm_params
        mtp = self.num_nextn_predict_layers * (layer + 2 * self.hidden_size + 2 * self.hidden_size**2)
        parts = dict(main.by_component, mtp=mtp)
        return ParameterCounts(total=main.total + mtp, active=main.active, by_component=parts)

    def kv_bytes_per_token_layer(self, precision: Precision, placement: Placement) -> float:
        latent = self._latent_bytes(precision)  # replicated on every TP rank
        return latent + (INDEXER_BYTES_PER_KEY if self.sparse else 0.0)

    def attention_width(self, placement: Placement) -> float:
        n_l = self.num_attention_heads // placement.tp
        return n_l * (self.qk_head_dim + self.qk_head_dim + self.v_head_dim)  # q, expanded k, v

    # ---- operators -------------------------------------------------------------------------------

    def attention_ops(self, span: Span, step: StepShape, precision: Precision, placement: Placement,
                      count: int) -> list[Op]:  # fmt: skip
        t, d = step.tokens, self.hidden_size
        n_l = placement.heads(self.num_attention_heads)
        ops = [elementwise_op("attn_norm", OpClass.NORM, 2.0 * t * d, 2.0 * t * d, 5.0, precision, count)]
        if self.q_lora_rank:
            ops += [
                matmul_op("q_a_proj", OpClass.ATTENTION, t, self.q_lora_rank, d, precision, count),
                elementwise_op(
                    "q_a_norm", OpClass.NORM, t * self.q_lora_rank, t * self.q_lora_rank, 5.0, precision, count
                ),  # fmt: skip
                matmul_op(
                    "q_b_proj", OpClass.ATTENTION, t, n_l * self.qk_head_dim, self.q_lora_rank, precision, count
                ),  # fmt: skip
            ]
        else:
            ops.append(matmul_op("q_proj", OpClass.ATTENTION, t, n_l * self.qk_head_dim, d, precision, count))
        ops += [
            matmul_op("kv_a_proj", OpClass.ATTENTION, t, self.latent_width, d, precision, count),
            elementwise_op(
                "kv_a_norm_rope",
                OpClass.ATTENTION,
                t * (self.latent_width + n_l * self.qk_rope_head_dim),
                t * (self.latent_width + n_l * self.qk_rope_head_dim),
                6.0,
                precision,
                count,
            ),  # fmt: skip
        ]
        if self.sparse:
            ops += self._indexer_ops(step, precision, count)
        core = self._naive_ops if step.phase is Phase.PREFILL else self._absorbed_ops
        ops += core(span, step, precision, n_l, count)
        ops.append(matmul_op("o_proj", OpClass.ATTENTION, t, d, n_l * self.v_head_dim, precision, count,
                             sync=partial_sum("attn_all_reduce", t, d, precision)))  # fmt: skip
        return ops

    def _latent_bytes(self, precision: Precision) -> float:
        """Cache bytes of one token's latent: FlashMLA's FP8 layout for a sparse model's FP8 cache
        (FP8 latent, fp32 scales, BF16 RoPE part), else every value in the cache format."""
        kv = precision.kv_cache
        if self.sparse and kv.compute_dtype is DType.FP8:
            scales = -(-self.kv_lora_rank // FLASHMLA_FP8_SCALE_GROUP) * FLASHMLA_SCALE_BYTES
            return self.kv_lora_rank * kv.bytes_per_element + scales + self.qk_rope_head_dim * FLASHMLA_ROPE_BYTES
        return self.latent_width * kv.bytes_per_element

    def _naive_ops(self, span: Span, step: StepShape, precision: Precision, n_l: int, count: int) -> list[Op]:
        """MHA form: expand the latent of every token in context to per-head K (nope) and V."""
        a = precision.activation.bytes_per_element
        expanded = step.batch * step.context_tokens
        kv_sum = causal_kv_sum(step.prior_tokens, step.new_tokens, None, span)
        width = n_l * (self.qk_head_dim + self.v_head_dim)
        return [
            matmul_op(
                "kv_b_proj",
                OpClass.ATTENTION,
                expanded,
                n_l * (self.qk_nope_head_dim + self.v_head_dim),
                self.kv_lora_rank,
                precision,
                count,
            ),  # fmt: skip
            Op(
                name="attention_mha",
                kind=OpKind.ATTENTION,
                op_class=OpClass.ATTENTION,
                dtype=precision.activation,
                flops=step.batch * 2.0 * n_l * (self.qk_head_dim + self.v_head_dim) * kv_sum,
                activation_bytes=(step.tokens * n_l * (self.qk_head_dim + self.v_head_dim) + expanded * width) * a,
                kv_read_bytes=step.batch * step.prior_tokens * self._latent_bytes(precision),
                kv_write_bytes=step.tokens * self._latent_bytes(precision),
                count=count,
                attention=AttentionCall(
                    step.phase,
                    step.batch,
                    step.new_tokens,
                    span.attended(step.context_tokens),
                    n_l,
                    n_l,
                    self.qk_head_dim,
                    self.v_head_dim,
                    True,
                    "mha_expanded",
                    precision.kv_cache,
                ),
            ),
        ]

    def _absorbed_ops(self, span: Span, step: StepShape, precision: Precision, n_l: int, count: int) -> list[Op]:
        """MQA form: per head, q_nope @ W_UK (nope x kv_lora), attention over the latent, then W_UV."""
        t, a, w = step.tokens, precision.activation.bytes_per_element, precision.weight.bytes_per_element
        kv_sum = causal_kv_sum(step.prior_tokens, step.new_tokens, None, span)
        attended = span.attended(step.context_tokens)
        rank, nope, v = self.kv_lora_rank, self.qk_nope_head_dim, self.v_head_dim

        def per_head(name: str, k: int, n: int) -> Op:
            return Op(name=name, kind=OpKind.MATMUL, op_class=OpClass.ATTENTION, dtype=precision.matmul_dtype,
                      flops=2.0 * t * n_l * k * n, weight_bytes=n_l * k * n * w,
                      activation_bytes=t * n_l * (k + n) * a, count=count,
                      shape=MatmulShape(m=t, n=n, k=k, batch=n_l))  # fmt: skip

        core = Op(
            name="attention_mqa",
            kind=OpKind.ATTENTION,
            op_class=OpClass.ATTENTION,
            dtype=precision.activation,
            flops=step.batch * 2.0 * n_l * (self.latent_width + rank) * kv_sum,
            activation_bytes=t * n_l * (self.latent_width + rank) * a,
            kv_read_bytes=step.batch * attended * self._latent_bytes(precision),
            kv_write_bytes=t * self._latent_bytes(precision),
            count=count,
            attention=AttentionCall(
                step.phase,
                step.batch,
                step.new_tokens,
                attended,
                n_l,
                1,
                self.latent_width,
                rank,
                True,
                "mla_sparse" if self.sparse else "mla",
                precision.kv_cache,
            ),
        )
        return [per_head("q_absorb_uk", nope, rank), core, per_head("out_absorb_uv", rank, v)]

    def _indexer_ops(self, step: StepShape, precision: Precision, count: int) -> list[Op]:
        """DSA lightning indexer: FP8 scores of every query against every cached key, then top-k."""
        assert self.index_n_heads and self.index_head_dim and self.index_topk
        t, h, dh = step.tokens, self.index_n_heads, self.index_head_dim
        q_in = self.q_lora_rank or self.hidden_size
        full = causal_kv_sum(step.prior_tokens, step.new_tokens, None)
        scores = Op(
            name="indexer_scores", kind=OpKind.ATTENTION, op_class=OpClass.ATTENTION, dtype=DType.FP8,
            flops=step.batch * 2.0 * h * dh * full,
            kv_read_bytes=step.batch * step.context_tokens * INDEXER_BYTES_PER_KEY,
            kv_write_bytes=t * INDEXER_BYTES_PER_KEY, activation_bytes=t * h * dh * 1.0, count=count,
        )  # fmt: skip
        return [
            matmul_op("indexer_q", OpClass.ATTENTION, t, h * dh, q_in, precision, count),
            matmul_op("indexer_k", OpClass.ATTENTION, t, dh, self.hidden_size, precision, count),
            matmul_op("indexer_weights", OpClass.ATTENTION, t, h, self.hidden_size, precision, count),
            scores,
            elementwise_op(
                "indexer_topk", OpClass.ATTENTION, full * 2, t * self.index_topk * 2, 2.0, precision, count
            ),  # fmt: skip
        ]
