"""The operators of one micro-batch on one GPU of a pipeline stage: forward, backward, recompute.

Forward: the workload's prefill-phase graph (`Workload.build_ops`) for the micro-batch's sequences,
with the LM head over every token and the loss instead of sampling the last one, then the same
context- and sequence-parallel transforms serving uses (`parallel.context`, `parallel.sequence`).
Backward, op by op on the same cost model:
- a GEMM C[m,n] = A[m,k] B[k,n] becomes dgrad dA[m,k] = dC[m,n] B^T[n,k] and wgrad
  dB[k,n] = A^T[k,m] dC[m,n] (the wgrad accumulates into the fp32 main gradient: read + write);
  a frozen base (LoRA) has no wgrad;
- the attention core: FlashAttention-2's backward, `attention_backward_flops_ratio` x the forward
  FLOPs and twice the traffic (reads Q, K, V, O, dO; writes dQ, dK, dV); a context-parallel ring
  carries KV and dKV back (twice the bytes);
- elementwise ops: `elementwise_backward_bytes_ratio` x the traffic and FLOPs;
- collectives: the same collective again (an all-gather's backward is a reduce-scatter of the same
  buffer and vice versa; EP dispatch and combine swap).
The last stage adds the LM head's tensor-parallel traffic (the SP all-gather of the final hidden
states, the loss's three fp32 all-reduces per token) and, with --mtp-layers, the MTP module's passes.
Low-precision recipes add the quantise passes of each GEMM input (forward: the activation;
backward: the output gradient), `copies` row-/column-wise copies in the GEMM's format plus an
amax read where the recipe is not fused (constants.PrecisionRecipe)."""

from __future__ import annotations

from dataclasses import replace

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.ir import (
    Collective,
    CollectiveKind,
    MatmulShape,
    Op,
    OpClass,
    OpKind,
    Phase,
    Placement,
    Precision,
    StepShape,
)
from roofline.parallel.context import context_parallel
from roofline.parallel.sequence import sequence_parallel
from roofline.simulator.gemm_efficiency import QUANTIZE_SUFFIX
from roofline.training.config import TrainConfig
from roofline.training.constants import PrecisionRecipe, constants
from roofline.workloads.base import Workload

LOW_PRECISION_CLASSES = (OpClass.ATTENTION, OpClass.MLP)  # block GEMMs; the LM head and router stay bf16
LOSS_FLOPS_PER_LOGIT = 5.0  # max, subtract, exp, sum, pick: softmax cross-entropy per logit (vector units)
HIGH_PRECISION_NAMES = ("router",)
BACKWARD_SUFFIX = ".backward"
SSD_SCAN = "ssm_scan"
MTP_PREFIX = "mtp_"
LM_HEAD_GATHER = "lm_head_all_gather"
LM_HEAD_INPUT_GRAD = "lm_head_input_grad_all_reduce"  # backward only (timed in the forward list's place)
LOSS_ALL_REDUCE = "cross_entropy_all_reduce"
FORWARD_ONLY = (LOSS_ALL_REDUCE,)
BACKWARD_ONLY = (LM_HEAD_INPUT_GRAD,)
WGRAD_SUFFIX = ".wgrad"


def training_precision(config: TrainConfig) -> tuple[Precision, PrecisionRecipe]:
    """The formats the graph is built in: block GEMMs in the recipe's format, activations,
    attention and everything else in bf16."""
    recipe = constants().precisions[config.precision]
    gemm = DType(recipe.gemm_dtype)
    return Precision(weight=gemm, activation=DType.BF16, kv_cache=DType.BF16, fp8_scaling=recipe.scaling), recipe


def forward_ops(workload: Workload, config: TrainConfig, placement: Placement, precision: Precision) -> list[Op]:
    """The forward pass of one micro-batch on this GPU (before the pipeline hand-off)."""
    step = StepShape(Phase.PREFILL, config.micro_batch * placement.attn_dp, config.seq_len, config.seq_len)
    tokens = config.micro_batch * config.seq_len  # this GPU's attention replica, before CP splits it
    served = workload.build_ops(step, precision, placement)
    head = next((op.shape.m for op in served if op.name == "lm_head" and op.shape is not None), 1)
    converted = (_as_training(op, tokens, tokens / head) for op in served)
    ops = [op for op in converted if op is not None and not op.name.endswith(QUANTIZE_SUFFIX)]
    if placement.has_lm_head:
        ops.append(_loss_op(ops, tokens))
        ops += mtp_training_ops(workload, config, placement, precision, tokens)
    ops = context_parallel(ops, step, config.cp)
    ops = sequence_parallel(ops, placement.tp) if config.sp else ops
    if placement.has_lm_head and placement.tp > 1:
        ops = _with_lm_head_comm(ops, tokens / config.cp, config.sp)
    return ops


def _with_lm_head_comm(ops: list[Op], tokens: float, sp: bool) -> list[Op]:
    """The LM head's tensor-parallel traffic (Megatron-LM ColumnParallelLinear over the vocabulary
    and vocab_parallel_cross_entropy): with SP the final hidden states are all-gathered before the
    head (the backward reduce-scatters their gradient), without SP the head's input gradient is
    all-reduced in the backward only; the loss all-reduces three fp32 values per token over the TP
    group (the logits' max, the target logit, the sum of exponentials), in the forward only."""
    head = next(op for op in ops if op.name == "lm_head")
    assert head.shape is not None
    hidden_bytes = tokens * head.shape.k * 2.0
    if sp:
        comm = _tp_collective(LM_HEAD_GATHER, CollectiveKind.ALL_GATHER, hidden_bytes)
    else:
        comm = _tp_collective(LM_HEAD_INPUT_GRAD, CollectiveKind.ALL_REDUCE, hidden_bytes)
    loss = _tp_collective(LOSS_ALL_REDUCE, CollectiveKind.ALL_REDUCE, tokens * 4.0, count=3)
    at = ops.index(head)
    return [*ops[:at], comm, *ops[at:], loss]


def _tp_collective(name: str, kind: CollectiveKind, message_bytes: float, count: int = 1) -> Op:
    return Op(name=name, kind=OpKind.COLLECTIVE, op_class=OpClass.COMMUNICATION, dtype=DType.BF16, count=count,
              collective=Collective(kind, "tp", message_bytes))  # fmt: skip


def mtp_training_ops(workload: Workload, config: TrainConfig, placement: Placement, precision: Precision,
                     tokens: int) -> list[Op]:  # fmt: skip
    """Multi-token prediction trained (Megatron --mtp-num-layers): `config.mtp_layers` passes of the
    model's MTP module (its projection, blocks, the shared final norm and LM head over every token,
    and a loss each) on the last stage. The module's own layers run once per pass (a repeated layer
    runs again, Megatron mtp_use_repeated_layer)."""
    if config.mtp_layers == 0:
        return []
    if workload.mtp_layers == 0:
        raise RooflineError(f"{workload.id} has no MTP module; drop --mtp-layers")
    local = StepShape(Phase.PREFILL, config.micro_batch, config.seq_len, config.seq_len)
    served = workload.mtp_ops(local, precision, placement)
    head = next((op.shape.m for op in served if op.name == f"{MTP_PREFIX}lm_head" and op.shape is not None), 1)
    converted = (_as_training(op, tokens, tokens / head) for op in served)
    ops = [op for op in converted if op is not None and not op.name.endswith(QUANTIZE_SUFFIX)]
    ops.append(replace(_loss_op(ops, tokens, f"{MTP_PREFIX}lm_head"), name=f"{MTP_PREFIX}cross_entropy"))
    return [replace(op, count=op.count * config.mtp_layers) for op in ops]


def _as_training(op: Op, tokens: int, head_scale: float) -> Op | None:
    """The serving op as training runs it: the LM head over every token (`head_scale` x the rows
    serving gives it; no logits gather, no sampling), the block GEMMs in the recipe's format and the
    other GEMMs (LM head, router) in bf16."""
    name = op.name.removeprefix(MTP_PREFIX)
    if op.op_class is OpClass.SAMPLING or name == "logits_all_gather":
        return None
    if name == "final_norm":
        return replace(op, flops=op.flops * head_scale, activation_bytes=op.activation_bytes * head_scale)
    if name == "lm_head" and op.shape is not None:
        s = op.shape
        return replace(op, dtype=DType.BF16, flops=2.0 * tokens * s.n * s.k, shape=MatmulShape(m=tokens, n=s.n, k=s.k),
                       sync=None, activation_bytes=(tokens * s.k + tokens * s.n) * 2.0)  # fmt: skip
    if op.kind is OpKind.MATMUL and (op.op_class not in LOW_PRECISION_CLASSES or op.name in HIGH_PRECISION_NAMES):
        return replace(op, dtype=DType.BF16, shape=op.shape and replace(op.shape, scaling=None))
    return op


def _loss_op(ops: list[Op], tokens: int, head_name: str = "lm_head") -> Op:
    """Vocab-parallel softmax cross-entropy over this GPU's logits slice (fp32 math on bf16 logits)."""
    head = next(op for op in ops if op.name == head_name)
    assert head.shape is not None
    logits = float(tokens) * head.shape.n
    return Op(name="cross_entropy", kind=OpKind.ELEMENTWISE, op_class=OpClass.LM_HEAD, dtype=DType.BF16,
              flops=LOSS_FLOPS_PER_LOGIT * logits, activation_bytes=2.0 * logits * 2.0, kernels=2)  # fmt: skip


def backward_ops(forward: list[Op], frozen_base: bool = False, grad_bytes: float | None = None) -> list[Op]:
    """The backward of each forward op, in reverse order (see the module docstring)."""
    c = constants()
    grad = c.grad_bytes if grad_bytes is None else grad_bytes
    out: list[Op] = []
    for op in reversed(forward):
        if op.name in FORWARD_ONLY:
            continue
        if op.kind is OpKind.MATMUL and op.shape is not None:
            out += _gemm_backward(op, frozen_base, grad)
        elif is_ssd_scan(op):
            out.append(replace(op, name=op.name + BACKWARD_SUFFIX, flops=op.flops * c.ssd_backward_flops_ratio,
                               activation_bytes=2.0 * op.activation_bytes))  # fmt: skip
        elif op.kind is OpKind.ATTENTION:
            ring = op.collective and replace(op.collective, message_bytes=2.0 * op.collective.message_bytes)
            out.append(replace(op, name=op.name + BACKWARD_SUFFIX, flops=op.flops * c.attention_backward_flops_ratio,
                               activation_bytes=2.0 * op.activation_bytes, kv_read_bytes=2.0 * op.kv_read_bytes,
                               kv_write_bytes=2.0 * op.kv_write_bytes, collective=ring))  # fmt: skip
        elif op.kind is OpKind.ELEMENTWISE:
            r = c.elementwise_backward_bytes_ratio
            out.append(replace(op, name=f"{op.name}.backward", flops=op.flops * r,
                               activation_bytes=op.activation_bytes * r, weight_bytes=op.weight_bytes * r))  # fmt: skip
        else:
            out.append(replace(op, name=f"{op.name}.backward"))
    return out


EXPERT_UP = "expert_up"  # the routed experts' first grouped GEMM: one per MoE layer (workloads/moe_blocks.py)


def moe_layers(forward: list[Op]) -> int:
    """The MoE layers one micro-batch's forward runs on this GPU (MTP passes included)."""
    return sum(op.count for op in forward if op.name.removeprefix(MTP_PREFIX) == EXPERT_UP)


def is_ssd_scan(op: Op) -> bool:
    """The Mamba-2 chunked scan (workloads/mamba.py), timed at `ssd_scan_fraction` of the peak."""
    return op.name.split(".")[0] == SSD_SCAN


def _gemm_backward(op: Op, frozen_base: bool, grad_bytes: float) -> list[Op]:
    """dgrad (m x k from m x n times n x k) and, unless the weights are frozen, wgrad (k x n from
    k x m times m x n), accumulated into the gradient buffer (`grad_bytes` per parameter)."""
    s = op.shape
    assert s is not None
    dgrad = replace(op, name=f"{op.name}.dgrad", shape=replace(s, n=s.k, k=s.n), sync=None, collective=None)
    if frozen_base:
        return [dgrad]
    weights = float(s.k) * s.n * s.batch
    wgrad = replace(op, name=op.name + WGRAD_SUFFIX, shape=replace(s, m=s.k, n=s.n, k=s.m), sync=None, collective=None,
                    weight_bytes=weights * 2.0 * grad_bytes)  # fmt: skip
    return [dgrad, wgrad]


def forward_pass(forward: list[Op]) -> list[Op]:
    """The ops the forward runs (the forward list less the backward-only collectives it places)."""
    return [op for op in forward if op.name not in BACKWARD_ONLY]


# The ops a fine-grained recompute module runs again (Megatron-Core recompute_modules): mla_up_proj,
# MLA's query and key/value up-projections (their outputs, the per-head Q, K and V, are discarded
# after the attention core's forward and rebuilt from the latents for its backward).
MODULE_OPS = {"mla_up_proj": ("q_b_proj", "kv_b_proj")}


def recompute_ops(forward: list[Op], policy: str, modules: tuple[str, ...] = ()) -> list[Op]:
    """What the backward runs again: nothing, the attention core (Megatron's selective recompute,
    Korthikanti et al. 2022), or the whole forward (full); plus the ops of the recompute modules."""
    if policy == "full":
        return [replace(op, name=f"{op.name}.recompute") for op in forward_pass(forward)]
    names = {name for module in modules for name in MODULE_OPS[module]}
    again = [op for op in forward if op.name in names or (policy == "selective" and op.kind is OpKind.ATTENTION)]
    return [replace(op, name=f"{op.name}.recompute") for op in again]


def quantize_ops(forward: list[Op], recipe: PrecisionRecipe, frozen_base: bool = False) -> list[Op]:
    """The quantise passes of one micro-batch: each low-precision GEMM's input in the forward and its
    output gradient in the backward (the weight casts are per step: `weight_quantize_ops`)."""
    out: list[Op] = []
    for op in forward:
        if not _low_precision(op, recipe) or op.shape is None:
            continue
        s = op.shape
        rows = float(s.m) * s.batch
        out.append(_quantize(f"{op.name}.quantize", op, rows * s.k, recipe))
        out.append(_quantize(f"{op.name}.grad_quantize", op, rows * s.n, recipe))
    return out


def dequantize_ops(forward: list[Op], base_bytes: float) -> list[Op]:
    """QLoRA: each use of a 4-bit base linear layer first dequantizes its weights to bf16 (read the
    packed weights, write bf16); one pass per forward (and per dgrad, recompute)."""
    return [Op(name=f"{op.name}.dequantize", kind=OpKind.ELEMENTWISE, op_class=op.op_class, dtype=DType.BF16,
               flops=2.0 * op.shape.k * op.shape.n * op.shape.batch,
               activation_bytes=float(op.shape.k) * op.shape.n * op.shape.batch * (base_bytes + 2.0), count=op.count)
            for op in forward if op.kind is OpKind.MATMUL and op.shape is not None and is_block_linear(op)]  # fmt: skip


def is_block_linear(op: Op) -> bool:
    """A linear layer of the transformer blocks (not the LM head or the router)."""
    return op.op_class in LOW_PRECISION_CLASSES and op.name not in HIGH_PRECISION_NAMES


def weight_quantize_ops(forward: list[Op], recipe: PrecisionRecipe) -> list[Op]:
    """Once per step each low-precision GEMM's weights are cast (Transformer Engine keeps the cast
    across the micro-batches of a step)."""
    return [_quantize(f"{op.name}.weight_quantize", op, float(op.shape.k) * op.shape.n * op.shape.batch, recipe)
            for op in forward if _low_precision(op, recipe) and op.shape is not None]  # fmt: skip


def _low_precision(op: Op, recipe: PrecisionRecipe) -> bool:
    return op.kind is OpKind.MATMUL and recipe.copies > 0 and op.dtype is not DType.BF16


def _quantize(name: str, gemm: Op, elements: float, recipe: PrecisionRecipe) -> Op:
    """Read the bf16 tensor (twice when the amax is computed first, once when fused into its
    producer: then only the writes remain), write `copies` copies in the GEMM format."""
    reads = 0.0 if recipe.fused else 2.0 * 2.0
    written = recipe.copies * gemm.dtype.bytes_per_element
    return Op(name=name, kind=OpKind.ELEMENTWISE, op_class=gemm.op_class, dtype=DType.BF16, flops=4.0 * elements,
              activation_bytes=elements * (reads + written), count=gemm.count)  # fmt: skip


def pp_hand_off(message_bytes: float, cp: int, tp: int, sp: bool) -> Op:
    """One micro-batch's activations to the next stage (and its gradient back: `count` 2); with
    CP and SP each GPU sends its slice."""
    per_gpu = message_bytes / cp / (tp if sp else 1)
    return Op(name="pp_send_recv", kind=OpKind.COLLECTIVE, op_class=OpClass.COMMUNICATION, dtype=DType.BF16, count=2,
              collective=Collective(CollectiveKind.SEND_RECV, "pp", per_gpu))  # fmt: skip
