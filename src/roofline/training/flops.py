"""Model FLOPs as the published training tables count them (Megatron-LM
`num_floating_point_operations`): 3 x the forward FLOPs of every weight GEMM (1 forward + 2
backward), the LM head included, the embedding lookup and the MoE router not, plus 3 x the
attention core (QK^T and PV), causal (half the score matrix, Megatron-LM since 2024) or full (NeMo
1.x). For dense GQA/SwiGLU models this is exactly 6 x N_matmul x tokens + the attention term
(12 x L x s x q_dim, halved when causal). A frozen base (LoRA, QLoRA) does no weight-gradient
GEMMs: 2 passes instead of 3; DPO adds the reference model's forward (4 passes). Some published
tables leave the attention term out for fine-tuning tasks (data/training.yaml `attention_tasks`).
The count is read off the model's own forward graph (one sequence, one GPU), so MoE (top-k experts
+ shared), MLA and Mamba layers are counted as they run."""

from __future__ import annotations

from dataclasses import replace

from roofline.ir import OpKind, Placement
from roofline.training.config import TrainConfig
from roofline.training.constants import constants
from roofline.training.graph import forward_ops, training_precision
from roofline.workloads.base import Workload

EXCLUDED_GEMMS = ("router",)  # Megatron's count leaves out the router's GEMM


def model_flops_per_sequence(workload: Workload, config: TrainConfig) -> float:
    """Model FLOPs of one training sequence (forward + backward) under the config's convention."""
    one = replace(config, gpus=1, tp=1, pp=1, vpp=1, cp=1, ep=1, etp=1, dp=None, micro_batch=1, global_batch=1,
                  sequence_parallel=False, zero=0, schedule="1f1b")  # fmt: skip
    precision, _ = training_precision(one)
    whole = Placement(tp=1, layer_start=0, layer_end=workload.num_layers, has_embedding=True, has_lm_head=True)
    ops = forward_ops(workload, one, whole, precision)
    gemm = sum(op.flops * op.count for op in ops if op.kind is OpKind.MATMUL and op.name not in EXCLUDED_GEMMS)
    attention = sum(op.flops * op.count for op in ops if op.kind is OpKind.ATTENTION)
    convention = constants().flop_conventions[config.flop_convention]
    if not convention.causal_attention:
        attention *= 2.0  # the engine's attention op is causal; the full matrix is twice it
    task = "lora" if config.frozen_base else "sft" if config.task == "dpo" else config.task
    if task not in convention.attention_tasks:
        attention = 0.0
    passes = 2.0 if config.frozen_base else 3.0
    if config.task == "dpo":
        passes += 1.0  # the frozen reference model's forward
    return passes * (gemm + attention)
