"""Memory per GPU of a training layout: parameters, gradients, optimizer states, activations, the
runtime reserve, and whether it fits (the capacity rule serving uses: capacity - reserve).

DPO holds a frozen reference model's weights too; LoRA / QLoRA only the (4-bit for QLoRA) frozen
base. State bytes per parameter come from data/training.yaml (Megatron mixed precision): bf16 weights,
fp32 main gradients, fp32 master weights and Adam states. ZeRO stages shard over the gradient's
data-parallel group (dense parameters: dp x cp; experts: the expert-DP group): 1 (Megatron's
distributed optimizer) the master weights and states, 2 the gradients too, 3 (FSDP) the weights.
Activations are what the backward needs, read off the forward graph (Korthikanti et al. 2022 count
the same tensors by hand): each GEMM's input (in the low-precision copy where the recipe makes
one), the attention core's inputs and output, each elementwise op's input: a norm its input alone
(2sbh per LayerNorm in Korthikanti et al. 2022: a quarter of the fused residual-add + norm's
traffic), an index gather (the MoE permute) nothing but its index map. Selective recompute
drops the attention core's (recomputed); full recompute keeps only each layer's input. The first
pipeline stage holds the most micro-batches in flight: pp under 1F1B, times 1 + (pp-1)/(pp x vpp)
interleaved (Narayanan et al. 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roofline.dtypes import DType
from roofline.ir import Op, OpClass, OpKind
from roofline.simulator import capacity as capacity_rule
from roofline.training.config import TrainConfig
from roofline.training.constants import constants

# A gather by index keeps only the index map for its backward (Megatron-Core moe_permute saves
# row_id_map, not the tokens): nothing of the activation-sized buffers stays.
INDEX_ONLY = ("moe_permute",)


@dataclass(frozen=True)
class StageParams:
    """Parameters one GPU of a stage holds: dense (replicated over dp x cp) and expert ones;
    `linear`: those of the blocks' linear layers (what QLoRA stores in 4 bits)."""

    dense: float
    expert: float
    linear: float = 0.0

    @property
    def total(self) -> float:
        return self.dense + self.expert


@dataclass(frozen=True)
class TrainMemory:
    params_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    reserve_bytes: float
    capacity_bytes: float
    in_flight_micro_batches: float
    activations_per_micro_batch_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.params_bytes + self.grads_bytes + self.optimizer_bytes + self.activations_bytes + self.reserve_bytes

    @property
    def fits(self) -> bool:
        return bool(capacity_rule.fits(self.total_bytes, self.capacity_bytes))  # the one capacity rule

    def to_dict(self) -> dict[str, Any]:
        return {"params_bytes": self.params_bytes, "grads_bytes": self.grads_bytes,
                "optimizer_bytes": self.optimizer_bytes, "activations_bytes": self.activations_bytes,
                "activations_per_micro_batch_bytes": self.activations_per_micro_batch_bytes,
                "in_flight_micro_batches": self.in_flight_micro_batches, "reserve_bytes": self.reserve_bytes,
                "total_bytes": self.total_bytes, "capacity_bytes": self.capacity_bytes, "fits": self.fits}  # fmt: skip


def state_bytes(params: StageParams, config: TrainConfig) -> tuple[float, float, float]:
    """(weights, gradients, optimizer states) bytes on one GPU."""
    c = constants()
    dense_shard, expert_shard = config.data_parallel * config.cp, config.expert_dp

    def sharded(per_param: float, stage: int) -> float:
        if config.zero < stage:
            return per_param * params.total
        return per_param * (params.dense / dense_shard + params.expert / expert_shard)

    per_param = c.param_bytes
    if config.task == "qlora" and params.total > 0:  # the blocks' linear layers in 4-bit NormalFloat
        linear = min(params.linear, params.total)
        per_param = (linear * c.qlora_base_bytes + (params.total - linear) * c.param_bytes) / params.total
    weights = sharded(per_param, 3)
    if config.schedule == "dualpipe" and config.pp > 1:  # each rank holds two stages' parameters (table 2: 2x)
        weights *= 2.0
    if config.task == "dpo":  # the frozen reference model, laid out like the policy
        weights *= 2.0
    if config.frozen_base:  # no gradients or optimizer states for the base (the adapters are small)
        return weights, 0.0, 0.0
    optimizer = c.optimizers[config.optimizer]
    return weights, sharded(config.grad_bytes, 2), sharded(optimizer.master_bytes + optimizer.state_bytes, 1)


def optimizer_pass_bytes(params: StageParams, config: TrainConfig) -> float:
    """HBM traffic of one AdamW step on this GPU's shard: read the fp32 gradient, read and write the
    master weights and both states, write the bf16 weights."""
    if config.frozen_base:
        return 0.0
    c = constants()
    o = c.optimizers[config.optimizer]
    shard = params.total if config.zero == 0 else params.dense / (config.data_parallel * config.cp) + \
        params.expert / config.expert_dp  # fmt: skip
    return shard * (config.grad_bytes + 2.0 * (o.master_bytes + o.state_bytes) + c.param_bytes)


def saved_bytes(op: Op, recompute: str, modules: tuple[str, ...] = ()) -> float:
    """Bytes of one op instance the backward needs (see the module docstring). With the mla_up_proj
    recompute module the expanded MLA attention keeps only its output O of Q, K, V and O."""
    if op.kind is OpKind.MATMUL and op.shape is not None:
        s = op.shape
        return float(s.m) * s.k * s.batch * (op.dtype.bytes_per_element if op.dtype is not DType.BF16 else 2.0)
    if op.kind is OpKind.ATTENTION:
        if recompute == "selective":
            return 0.0
        call = op.attention
        if "mla_up_proj" in modules and call is not None and call.variant == "mha_expanded":
            return op.activation_bytes * call.head_dim_v / (2.0 * (call.head_dim + call.head_dim_v))
        return op.activation_bytes
    if op.kind is OpKind.ELEMENTWISE:
        if op.name in INDEX_ONLY:
            return 0.0
        if op.op_class is OpClass.NORM:
            return op.activation_bytes / 4.0
        return op.activation_bytes / 2.0
    return 0.0


def activation_bytes(forward: list[Op], config: TrainConfig, layers: int, hidden: int) -> float:
    """Activations one micro-batch leaves for its backward on this GPU."""
    if config.recompute == "full":
        tokens = config.micro_batch * config.seq_len / config.cp / (config.tp if config.sp else 1)
        return layers * tokens * hidden * 2.0
    return sum(saved_bytes(op, config.recompute, config.recompute_modules) * op.count for op in forward)


def in_flight(config: TrainConfig) -> float:
    """Micro-batches whose activations the first stage holds at once."""
    if config.pp == 1:
        return 1.0
    if config.schedule == "dualpipe":  # DeepSeek-V3 table 2: PP + 1
        return float(config.pp + 1)
    held = float(min(config.pp, config.micro_batches))
    return held * (1.0 + (config.pp - 1) / (config.pp * config.vpp)) if config.vpp > 1 else held
