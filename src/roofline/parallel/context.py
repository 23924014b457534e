"""Context parallelism (ring attention) as a transform of one GPU's operator list.

Prefill: the prompt is split over `cp` ranks (load-balanced for causal attention), so every
matmul, elementwise op and TP collective sees 1/cp of the tokens and each rank does 1/cp of the
attention; the KV blocks travel around the ring, cp - 1 hops of a block per layer, carried by the
attention op itself so that the cost model overlaps them with the attention compute (an op costs
max(kernel time, communication)).
Decode: a new token cannot be split, so the dense layers run on every rank; the KV cache is
sharded, each rank attends over its 1/cp and the partial outputs (with their softmax scales) are
gathered.
"""

from __future__ import annotations

import math
from dataclasses import replace

from roofline.ir import Collective, CollectiveKind, Op, OpClass, OpKind, Phase, StepShape


def _split(op: Op, cp: int) -> Op:
    shape = op.shape and replace(op.shape, m=max(1, math.ceil(op.shape.m / cp)))
    collective = op.collective and replace(op.collective, message_bytes=op.collective.message_bytes / cp)
    return replace(op, flops=op.flops / cp, activation_bytes=op.activation_bytes / cp,
                   kv_read_bytes=op.kv_read_bytes / cp, kv_write_bytes=op.kv_write_bytes / cp,
                   weight_bytes=op.weight_bytes / cp if op.kind is OpKind.ELEMENTWISE else op.weight_bytes,
                   shape=shape, collective=collective)  # fmt: skip


def _ring(op: Op, cp: int) -> Op:
    """Attention with the KV ring riding on it: cp - 1 blocks of this rank's share pass by."""
    split = _split(op, cp)
    block = split.kv_write_bytes
    ring = Collective(CollectiveKind.SEND_RECV, "cp", block * (cp - 1))
    return replace(split, collective=ring) if block else split


def _shard_kv(op: Op, cp: int, step: StepShape, head_values: float) -> list[Op]:
    split = replace(op, flops=op.flops / cp, kv_read_bytes=op.kv_read_bytes / cp)
    partials = step.tokens * head_values * 4.0 * cp  # fp32 outputs + log-sum-exp, gathered from every rank
    gather = Collective(CollectiveKind.ALL_GATHER, "cp", partials)
    combine = Op(name=f"cp_combine_{op.name}", kind=OpKind.COLLECTIVE, op_class=OpClass.COMMUNICATION,
                 dtype=op.dtype, count=op.count, collective=gather)  # fmt: skip
    return [split, combine]


def context_parallel(ops: list[Op], step: StepShape, cp: int) -> list[Op]:
    if cp == 1:
        return ops
    if step.phase is Phase.PREFILL:
        return [_ring(op, cp) if op.kind is OpKind.ATTENTION else _split(op, cp) for op in ops]
    out: list[Op] = []
    for op in ops:
        if op.kind is OpKind.ATTENTION and op.kv_read_bytes:
            head_values = op.activation_bytes / max(step.tokens, 1) / 2 / 2  # ~ q heads x head dim (q + out, bf16)
            out += _shard_kv(op, cp, step, head_values + 1)
        else:
            out.append(op)
    return out
