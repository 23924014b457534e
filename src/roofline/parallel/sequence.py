"""Sequence parallelism (Megatron-SP) as a transform of one GPU's operator list: every TP
all-reduce becomes a reduce-scatter (after the block) and an all-gather (before the next one) of
the same buffer, and the norms between them run on 1/tp of the tokens."""

from __future__ import annotations

from dataclasses import replace

from roofline.ir import Collective, CollectiveKind, Op, OpClass


def sequence_parallel(ops: list[Op], tp: int) -> list[Op]:
    if tp == 1:
        return ops
    out: list[Op] = []
    for op in ops:
        c = op.collective
        if c is not None and c.group == "tp" and c.kind is CollectiveKind.ALL_REDUCE:
            base = op.name.replace("all_reduce", "")
            out += [
                replace(op, name=f"{base}reduce_scatter", collective=Collective(CollectiveKind.REDUCE_SCATTER, "tp",
                                                                                c.message_bytes)),
                replace(op, name=f"{base}all_gather", collective=Collective(CollectiveKind.ALL_GATHER, "tp",
                                                                            c.message_bytes)),
            ]  # fmt: skip
        elif op.op_class is OpClass.NORM:
            out.append(replace(op, flops=op.flops / tp, activation_bytes=op.activation_bytes / tp))
        else:
            out.append(op)
    return out
