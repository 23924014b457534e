"""Operator builders shared by workload kinds: attention (MHA/GQA/MQA, windows), dense MLP,
norms, embedding, LM head and sampling.

Each builder writes its part of the operator graph once: the size of every parallel dimension
(heads, KV heads, FFN width, vocabulary) comes from the `Placement` (`placement.heads(n)`, ...;
rules in roofline.parallel.dims), and an op whose output the TP ranks must combine carries a
`Sync` tag (`partial_sum`, ...) that roofline.parallel.collectives turns into the collective.

Conventions: T = tokens in the step on this GPU's micro-batch, d = hidden size, `_l` = the
local (per-GPU) share of a parallel dimension, a/w/kv = bytes per element of activations,
weights and KV cache. Matmul FLOPs = 2 m n k.
"""

from __future__ import annotations

from dataclasses import dataclass

from roofline.dtypes import DType
from roofline.ir import (
    AttentionCall,
    CollectiveKind,
    MatmulShape,
    Op,
    OpClass,
    OpKind,
    Phase,
    Placement,
    Precision,
    StepShape,
    Sync,
)
from roofline.parallel.dims import split_heads, split_kv_heads
from roofline.simulator.gemm_efficiency import activation_scale_bytes, weight_scale_bytes


@dataclass(frozen=True)
class Span:
    """How far back a layer's attention reaches: everything, a sliding window of the last
    `size` tokens, or the tokens of the current `size`-token chunk (Llama 4 chunked attention)."""

    kind: str = "full"  # full | window | chunk | topk (attends size entries, stores all)
    size: int | None = None

    def stored(self, context_tokens: int) -> int:
        """KV entries a layer keeps at this context (windows and chunks cap it; top-k does not)."""
        if self.kind in ("window", "chunk") and self.size is not None:
            return min(context_tokens, self.size)
        return context_tokens

    def attended(self, context_tokens: int) -> int:
        """KV entries the newest token at this context attends to (and a decode step reads)."""
        if self.size is None or self.kind == "full":
            return context_tokens
        if self.kind == "chunk":
            return (context_tokens - 1) % self.size + 1
        return min(context_tokens, self.size)

    @property
    def label(self) -> str:
        return "" if self.kind == "full" else f"[{self.kind}={self.size}]"


FULL = Span()


def _chunk_prefix_sum(n: int, chunk: int) -> float:
    """sum_{s=1}^{n} (((s - 1) mod chunk) + 1)."""
    whole, rest = divmod(n, chunk)
    return whole * chunk * (chunk + 1) / 2.0 + rest * (rest + 1) / 2.0


def causal_kv_sum(prior_tokens: int, new_tokens: int, window: int | None, span: Span | None = None) -> float:
    """Sum over the new tokens of how many KV entries each attends to (itself included).

    Token i (1-based) of the new ones sits at position s = prior + i and sees s entries, capped at
    the window W (min(s, W)), or the ((s - 1) mod C) + 1 entries of its chunk.
    """
    first, last = prior_tokens + 1, prior_tokens + new_tokens
    if span is not None and span.kind == "chunk":
        assert span.size is not None
        return _chunk_prefix_sum(last, span.size) - _chunk_prefix_sum(first - 1, span.size)
    if span is not None and span.kind in ("window", "topk"):
        window = span.size
    if window is None or last <= window:
        return (first + last) * new_tokens / 2.0
    if first > window:
        return float(window) * new_tokens
    uncapped = (first + window) * (window - first + 1) / 2.0
    return uncapped + float(window) * (last - window)


def local_heads(num_heads: int, tp: int, what: str) -> int:
    """Heads per GPU of a `tp`-way group (memory accounting; builders ask the placement)."""
    return split_heads(num_heads, tp, what)


def local_kv_heads(num_kv_heads: int, tp: int) -> int:
    """KV heads per GPU; when tp exceeds the KV heads, each GPU keeps one (replicated)."""
    return split_kv_heads(num_kv_heads, tp)


def partial_sum(name: str, tokens: int, hidden: int, precision: Precision) -> Sync:
    """A row-parallel output: each TP rank holds partial sums of the [tokens, hidden] result."""
    message = tokens * hidden * precision.activation.bytes_per_element
    return Sync(name, CollectiveKind.ALL_REDUCE, "tp", message, precision.activation)


def matmul_op(
    name: str,
    op_class: OpClass,
    m: int,
    n: int,
    k: int,
    precision: Precision,
    count: int,
    weight_bytes_per_element: float | None = None,
    sync: Sync | None = None,
) -> Op:
    """A weight matmul: activations [m, k] times weights [k, n]. FP8 GEMMs carry the precision's
    scaling mode; block-scaled ones also read their FP32 scales (gemm_efficiency.scale_bytes)."""
    w = precision.weight.bytes_per_element if weight_bytes_per_element is None else weight_bytes_per_element
    a = precision.activation.bytes_per_element
    dtype = precision.matmul_dtype if weight_bytes_per_element is None else precision.activation
    scaling = (precision.fp8_scaling or "tensor") if dtype.compute_dtype is DType.FP8 else None
    weight_bytes, activation_bytes = k * n * w, (m * k + m * n) * a
    if scaling == "block":
        weight_bytes += weight_scale_bytes(n, k, dtype, scaling)
        activation_bytes += activation_scale_bytes(m, k, dtype, scaling)
    return Op(
        name=name,
        kind=OpKind.MATMUL,
        op_class=op_class,
        dtype=dtype,
        flops=2.0 * m * n * k,
        weight_bytes=weight_bytes,
        activation_bytes=activation_bytes,
        count=count,
        shape=MatmulShape(m=m, n=n, k=k, scaling=scaling),
        sync=sync,
    )


def elementwise_op(
    name: str,
    op_class: OpClass,
    elements_read: float,
    elements_written: float,
    flops_per_element: float,
    precision: Precision,
    count: int,
    kernels: int = 1,
    sync: Sync | None = None,
) -> Op:
    a = precision.activation.bytes_per_element
    return Op(
        name=name,
        kind=OpKind.ELEMENTWISE,
        op_class=op_class,
        dtype=precision.activation,
        flops=flops_per_element * elements_written,
        activation_bytes=(elements_read + elements_written) * a,
        count=count,
        kernels=kernels,
        sync=sync,
    )


@dataclass(frozen=True)
class AttentionShape:
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    qk_norm: bool = False

    def kv_elements_per_token(self, tp: int) -> int:
        return 2 * local_kv_heads(self.num_kv_heads, tp) * self.head_dim

    def weight_elements(self, tp: int) -> float:
        q_l = local_heads(self.num_heads, tp, "attention heads")
        kv_l = local_kv_heads(self.num_kv_heads, tp)
        qkv = self.hidden_size * (q_l + 2 * kv_l) * self.head_dim
        out = q_l * self.head_dim * self.hidden_size
        return float(qkv + out)


def attention_block_ops(
    shape: AttentionShape,
    step: StepShape,
    precision: Precision,
    placement: Placement,
    count: int,
    span: Span = FULL,
) -> list[Op]:
    """Pre-norm attention block: norm, QKV, RoPE + KV append, attention core, output proj (row-parallel)."""
    d, dh, t = shape.hidden_size, shape.head_dim, step.tokens
    q_l = placement.heads(shape.num_heads)
    kv_l = placement.kv_heads(shape.num_kv_heads)
    kv_b = precision.kv_cache.bytes_per_element
    a = precision.activation.bytes_per_element
    kv_sum = causal_kv_sum(step.prior_tokens, step.new_tokens, None, span)
    kv_len = span.attended(step.context_tokens)
    core = Op(
        name=f"attention{span.label}",
        kind=OpKind.ATTENTION,
        op_class=OpClass.ATTENTION,
        dtype=precision.activation,
        flops=step.batch * 2.0 * q_l * (dh + dh) * kv_sum,
        activation_bytes=2.0 * t * q_l * dh * a,
        kv_read_bytes=step.batch * kv_len * 2.0 * kv_l * dh * kv_b,
        kv_write_bytes=t * 2.0 * kv_l * dh * kv_b,
        count=count,
        attention=AttentionCall(
            step.phase, step.batch, step.new_tokens, kv_len, q_l, kv_l, dh, dh, True, "gqa", precision.kv_cache
        ),
    )
    return [
        elementwise_op("attn_norm", OpClass.NORM, 2.0 * t * d, 2.0 * t * d, 5.0, precision, count),
        matmul_op("qkv_proj", OpClass.ATTENTION, t, (q_l + 2 * kv_l) * dh, d, precision, count),
        elementwise_op("rope", OpClass.ATTENTION, t * (q_l + kv_l) * dh, t * (q_l + kv_l) * dh, 6.0, precision, count),
        core,
        matmul_op("o_proj", OpClass.ATTENTION, t, d, q_l * dh, precision, count,
                  sync=partial_sum("attn_all_reduce", t, d, precision)),
    ]  # fmt: skip


def dense_mlp_ops(
    hidden: int,
    intermediate: int,
    gated: bool,
    step: StepShape,
    precision: Precision,
    placement: Placement,
    count: int,
) -> list[Op]:
    """Pre-norm MLP block: norm, up (and gate) projection (column-parallel), activation, down projection
    (row-parallel)."""
    t, f_l = step.tokens, placement.ffn(intermediate)
    up_width = 2 * f_l if gated else f_l
    return [
        elementwise_op("mlp_norm", OpClass.NORM, 2.0 * t * hidden, 2.0 * t * hidden, 5.0, precision, count),
        matmul_op("gate_up_proj" if gated else "up_proj", OpClass.MLP, t, up_width, hidden, precision, count),
        elementwise_op("activation", OpClass.MLP, t * up_width, t * f_l, 8.0, precision, count),
        matmul_op("down_proj", OpClass.MLP, t, hidden, f_l, precision, count,
                  sync=partial_sum("mlp_all_reduce", t, hidden, precision)),
    ]  # fmt: skip


def embedding_ops(hidden: int, step: StepShape, precision: Precision, vocab_parallel: bool = True) -> list[Op]:
    """Vocab-parallel embedding lookup (each TP rank looks up the rows of its vocabulary slice,
    zeros elsewhere: partial sums); a replicated table (`vocab_parallel` False) needs no all-reduce."""
    t, a = step.tokens, precision.activation.bytes_per_element
    lookup = Op(
        name="embedding",
        kind=OpKind.ELEMENTWISE,
        op_class=OpClass.EMBEDDING,
        dtype=precision.activation,
        weight_bytes=t * hidden * a,
        activation_bytes=t * hidden * a,
        sync=partial_sum("embedding_all_reduce", t, hidden, precision) if vocab_parallel else None,
    )
    return [lookup]


def lm_head_ops(hidden: int, vocab: int, step: StepShape, precision: Precision, placement: Placement) -> list[Op]:
    """Final norm, LM head (vocab-parallel) on the last token of each sequence, logits gather, sampling.

    The LM head stays in the activation format (quantized checkpoints keep it 16-bit) unless the
    placement says the runtime quantized it too; a replicated LM head (placement.vocab_parallel
    False) computes every logit on every GPU: no gather.
    """
    # prefill needs the last position of each prompt; a decode step every new position (MTP verification)
    rows, v_l = (step.batch if step.phase is Phase.PREFILL else step.tokens), placement.vocab(vocab)
    logits_bytes = rows * v_l * placement.vocab_tp * 4.0  # fp32 logits, the whole gathered buffer (nccl-tests size)
    gather = Sync("logits_all_gather", CollectiveKind.ALL_GATHER, "tp", logits_bytes, precision.activation)
    # quantized: priced as the layers' own weight-only GEMMs (None: matmul_op's weight format)
    head_bytes = None if placement.lm_head_quantized else precision.activation.bytes_per_element
    ops = [
        elementwise_op("final_norm", OpClass.NORM, 2.0 * rows * hidden, rows * hidden, 5.0, precision, 1),
        matmul_op(
            "lm_head",
            OpClass.LM_HEAD,
            rows,
            v_l,
            hidden,
            precision,
            1,
            weight_bytes_per_element=head_bytes,
            sync=gather if placement.vocab_parallel else None,
        ),
    ]
    sampling = Op(
        name="sampling",
        kind=OpKind.ELEMENTWISE,
        op_class=OpClass.SAMPLING,
        dtype=DType.FP32,
        flops=5.0 * rows * vocab,
        activation_bytes=2.0 * rows * vocab * 4.0,
        kernels=2,
    )
    return [*ops, sampling]
