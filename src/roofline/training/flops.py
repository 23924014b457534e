"""Model FLOPs as the published training tables count them (Megatron-LM
`num_floating_point_operations`): 3 x the forward FLOPs of every weight GEMM (1 forward + 2
backward), the LM head included, the embedding lookup and the MoE router not, plus 3 x the
attention core (QK^T and PV), causal (half the score matrix, Megatron-LM since 2024) or full (NeMo
1.x). For dense GQA/SwiGLU models this is exactly 6 x N_matmul x tokens + the attention term
(12 x L x s x q_dim, halved when causal). A frozen base (LoRA, QLoRA) does no weight-gradient
GEMMs: 2 passes instead of 3; DPO adds the reference model's forward (4 passes). Some published
tables leave the attention term out for fine-tuning tasks (data/training.yaml `attention_tasks`).
The count is read off the model's own forward graph (one sequence, one GPU), so MoE (top-k experts
+ shared), MLA and Mamba layers are counted as they run, except where a convention's formula
counts otherwise (data/training.yaml: Megatron's fixed Mamba width, Megatron-Bridge 0.4's
SiLU-only GLU and missing window term)."""

from __future__ import annotations

from dataclasses import replace

from roofline.ir import Op, OpKind, Placement
from roofline.training.config import TrainConfig
from roofline.training.constants import FlopConvention, constants
from roofline.training.graph import forward_ops, training_precision
from roofline.workloads.base import Workload
from roofline.workloads.mamba import MambaShape

EXCLUDED_GEMMS = ("router",)  # Megatron's count leaves out the router's GEMM
GLU_UP_GEMMS = ("gate_up_proj", "expert_up", "shared_expert_up")  # gate and up projections in one GEMM
MAMBA_OPS = ("mamba_in_proj", "mamba_out_proj", "ssm_scan")
SILU = "silu"


def model_flops_per_sequence(workload: Workload, config: TrainConfig) -> float:
    """Model FLOPs of one training sequence (forward + backward) under the config's convention."""
    one = replace(config, gpus=1, tp=1, pp=1, vpp=1, cp=1, ep=1, etp=1, dp=None, micro_batch=1, global_batch=1,
                  sequence_parallel=False, zero=0, schedule="1f1b")  # fmt: skip
    convention = constants().flop_conventions[config.flop_convention]
    counted = _counted_workload(workload, convention)
    precision, _ = training_precision(one)
    whole = Placement(tp=1, layer_start=0, layer_end=counted.num_layers, has_embedding=True, has_lm_head=True)
    ops = forward_ops(counted, one, whole, precision)
    mamba = _mamba_flops(counted, ops, config.seq_len) if convention.mamba == "megatron" else None
    if mamba is not None:
        ops = [op for op in ops if op.name not in MAMBA_OPS]
    glu_scale = _glu_up_scale(counted, convention)
    gemm = sum(op.flops * op.count * (glu_scale if op.name in GLU_UP_GEMMS else 1.0)
               for op in ops if op.kind is OpKind.MATMUL and op.name not in EXCLUDED_GEMMS)  # fmt: skip
    gemm += mamba or 0.0
    attention = sum(op.flops * op.count for op in ops if op.kind is OpKind.ATTENTION)
    if not convention.causal_attention:
        attention *= 2.0  # the engine's attention op is causal; the full matrix is twice it
    task = "lora" if config.frozen_base else "sft" if config.task == "dpo" else config.task
    if task not in convention.attention_tasks:
        attention = 0.0
    passes = 2.0 if config.frozen_base else 3.0
    if config.task == "dpo":
        passes += 1.0  # the frozen reference model's forward
    return passes * (gemm + attention)


def _counted_workload(workload: Workload, convention: FlopConvention) -> Workload:
    """The workload as the convention sees it: without its sliding windows where the formula has no
    window term."""
    if convention.sliding_window or getattr(workload, "sliding_window", None) is None:
        return workload
    return workload.model_copy(update={"sliding_window": None, "sliding_window_layers": None})


def _glu_up_scale(workload: Workload, convention: FlopConvention) -> float:
    """1/2 where the convention counts a non-SiLU gated MLP as two projections (h -> ffn, ffn -> h):
    the fused gate+up GEMM (2 x ffn wide) then counts as one ffn-wide projection."""
    gated = getattr(workload, "mlp", "plain") == "gated"
    if convention.glu_requires_silu and gated and getattr(workload, "hidden_act", SILU) != SILU:
        return 0.5
    return 1.0


def megatron_mamba_layer_flops(shape: MambaShape, tokens: float) -> float:
    """Forward FLOPs of one Mamba layer in Megatron's hybrid formula (`mamba_layer_flops`): the inner
    width taken as 2 x hidden whatever the model's heads x head_dim; in_proj (z, x, B, C, dt), the
    scan at 7 FLOPs per inner channel and state element, out_proj."""
    d_inner = 2 * shape.hidden
    in_proj = 2.0 * shape.hidden * (2 * d_inner + 2 * shape.n_groups * shape.state_size + shape.num_heads)
    scan = 7.0 * d_inner * shape.state_size
    out_proj = 2.0 * d_inner * shape.hidden
    return tokens * (in_proj + scan + out_proj)


def _mamba_flops(workload: Workload, ops: list[Op], tokens: float) -> float | None:
    """The forward FLOPs of every Mamba layer of the graph by Megatron's formula (None: no Mamba)."""
    shape = getattr(workload, "mamba", None)
    layers = sum(op.count for op in ops if op.name == MAMBA_OPS[0])
    if not isinstance(shape, MambaShape) or not layers:
        return None
    return layers * megatron_mamba_layer_flops(shape, tokens)
