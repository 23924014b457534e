"""The collectives of the operator graph: each op tagged with a `Sync` is followed by its
collective when the group it names has more than one GPU (TP all-reduces and gathers, EP
all-to-alls, a DiT's Ulysses all-to-alls, ring K/V passes and CFG gather); with one GPU the tag
costs nothing."""

from __future__ import annotations

from roofline.ir import Collective, Op, OpClass, OpKind, Placement, Sync


def collective_op(sync: Sync, count: int) -> Op:
    return Op(name=sync.name, kind=OpKind.COLLECTIVE, op_class=OpClass.COMMUNICATION, dtype=sync.dtype, count=count,
              collective=Collective(sync.kind, sync.group, sync.message_bytes, sync.routing))  # fmt: skip


def with_collectives(ops: list[Op], placement: Placement) -> list[Op]:
    """The graph's ops with the collectives its tags call for on this placement."""
    if placement.tp == 1 and placement.ep == 1 and placement.sequence_split == 1 and placement.cfg_split == 1:
        return ops  # every group the tags name has one GPU
    out: list[Op] = []
    for op in ops:
        out.append(op)
        sync = op.sync
        while sync is not None:
            if placement.group_size(sync.group) > 1:
                out.append(collective_op(sync, op.count))
            sync = sync.then
    return out
