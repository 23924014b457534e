"""The one entry point from a parallel plan to the operators one GPU of a pipeline stage runs.

The workload's graph at this placement's dimension sizes with its TP / EP collectives
(`Workload.build_ops`), then context parallelism and sequence parallelism over it, the MTP
head's draft passes on the last stage, and the pipeline hand-off to the next stage."""

from __future__ import annotations

from dataclasses import dataclass, replace

from roofline.ir import Collective, CollectiveKind, Op, OpClass, OpKind, Phase, Placement, Precision, StepShape
from roofline.parallel.context import context_parallel
from roofline.parallel.sequence import sequence_parallel
from roofline.workloads.base import Workload
from roofline.workloads.quantize import with_activation_quantize


@dataclass(frozen=True)
class StageParallelism:
    """What of the plan a stage's operators depend on beyond its placement."""

    pp: int = 1
    cp: int = 1
    sequence_parallel: bool = False
    mtp_drafts: int = 0


def stage_ops(workload: Workload, step: StepShape, precision: Precision, placement: Placement,
              par: StageParallelism) -> list[Op]:  # fmt: skip
    ops = with_activation_quantize(workload.build_ops(step, precision, placement), precision.activation)
    ops = context_parallel(ops, step, par.cp)
    if par.sequence_parallel:
        ops = sequence_parallel(ops, placement.tp)
    if step.phase is Phase.DECODE and par.mtp_drafts and placement.has_lm_head:
        # the MTP head proposes `drafts` tokens one at a time for each sequence
        draft = StepShape(Phase.DECODE, placement.local_batch(step.batch), 1, step.context_tokens)
        mtp = with_activation_quantize(workload.mtp_ops(draft, precision, placement), precision.activation)
        ops += [replace(op, count=op.count * par.mtp_drafts) for op in mtp]
    if par.pp > 1 and not placement.has_lm_head:
        ops.append(_pp_send_recv(workload.stage_boundary_bytes(step, precision), precision))
    return ops


def _pp_send_recv(message_bytes: float, precision: Precision) -> Op:
    hand_off = Collective(CollectiveKind.SEND_RECV, "pp", message_bytes)
    return Op(name="pp_send_recv", kind=OpKind.COLLECTIVE, op_class=OpClass.COMMUNICATION,
              dtype=precision.activation, collective=hand_off)  # fmt: skip
