"""Mixture-of-experts operators: router, dispatch/combine all-to-all, routed expert GEMMs,
shared experts and (latent MoE) the projections into and out of the latent space.

Expected routing is uniform: with T tokens choosing k of E experts each, an expert receives
T k / E tokens on average and E (1 - (1 - k/E)^T) experts receive at least one, so a decode step
at small batch reads few experts' weights and a large batch reads all of them. The busiest GPU
gets `moe_imbalance` times the mean share of tokens; the step waits for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from roofline.dtypes import DType
from roofline.ir import (
    CollectiveKind,
    EpRouting,
    MatmulShape,
    Op,
    OpClass,
    OpKind,
    Phase,
    Placement,
    Precision,
    StepShape,
    Sync,  # fmt: skip
)
from roofline.workloads.layers import elementwise_op, matmul_op, partial_sum


@dataclass(frozen=True)
class MoEShape:
    hidden: int
    num_experts: int
    top_k: int
    expert_intermediate: int
    gated: bool = True
    num_shared: int = 0
    shared_intermediate: int = 0
    latent: int | None = None  # latent MoE: experts run at this width
    router_bias: bool = False

    @property
    def expert_width(self) -> int:
        """Width tokens have inside the experts (and on the wire)."""
        return self.latent or self.hidden

    def expert_params(self, split: int = 1) -> float:
        return (3 if self.gated else 2) * self.expert_width * self.expert_intermediate / split

    def shared_params(self, split: int = 1) -> float:
        return (3 if self.gated else 2) * self.hidden * self.num_shared * self.shared_intermediate / split

    @property
    def router_params(self) -> float:
        return float(self.hidden * self.num_experts + (self.num_experts if self.router_bias else 0))

    @property
    def latent_params(self) -> float:
        return 2.0 * self.hidden * self.latent if self.latent else 0.0

    def total_and_active(self) -> tuple[float, float]:
        common = self.router_params + self.shared_params() + self.latent_params
        return common + self.num_experts * self.expert_params(), common + self.top_k * self.expert_params()


def distinct_experts(tokens: float, num_experts: int, top_k: int) -> float:
    """Expected experts hit by `tokens` tokens routing uniformly to top_k of num_experts."""
    if tokens <= 0:
        return 0.0
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)


def moe_weight_bytes(shape: MoEShape, precision: Precision, placement: Placement) -> float:
    """Per GPU: its 1/ep of the routed experts (each split over expert_tp), shared experts split
    over tp, router and latent projections replicated."""
    w_e, a = precision.experts.bytes_per_element, precision.activation.bytes_per_element
    routed = shape.num_experts / placement.ep * shape.expert_params(placement.expert_tp) * w_e
    shared = shape.shared_params(placement.tp) * w_e
    return routed + shared + (shape.router_params + shape.latent_params) * a


# Bytes per value of the experts' input where their GEMMs quantize it: FP8 with one FP32 scale per 128
# values (DeepSeek-V3 / DeepGEMM block scaling), NVFP4 with one FP8 scale per 16 (TensorRT-LLM tech
# blog 18: 4032 B per 7168-value token). A library that dispatches the quantized tokens sends these.
QUANTIZED_EXPERT_INPUT_BYTES = {DType.FP8: 1.0 + 4.0 / 128.0, DType.FP4: 0.5 + 1.0 / 16.0}


def _all_to_all(name: str, kind: CollectiveKind, step: StepShape, shape: MoEShape, precision: Precision,
                placement: Placement) -> Sync:  # fmt: skip
    """Dispatch or combine over the EP group: the message is the token volume one GPU holds (TP ranks
    split the replicated tokens), one copy of expert_width values each in the activation dtype; the
    collective model (simulator/ep_comm.py) sends each token once per destination GPU (the expected
    distinct GPUs its top_k experts sit on), in the library's payload format (DeepEP: FP8 + scales
    dispatch, BF16 combine), the busiest rank receiving moe_imbalance x the mean. Decode steps run as
    CUDA graphs, which rules out kernels that wait on the host (DeepEP's normal kernels)."""
    a = precision.activation.bytes_per_element
    message = step.tokens / placement.tp * shape.expert_width * a
    routing = EpRouting(shape.top_k, shape.num_experts, placement.moe_imbalance, element_bytes=a,
                        cuda_graph=step.phase is Phase.DECODE,
                        quantized_element_bytes=QUANTIZED_EXPERT_INPUT_BYTES.get(precision.experts, 0.0))  # fmt: skip
    return Sync(name, kind, "ep", message, precision.activation, routing)


def _expert_gemm(name: str, rows: float, n: int, k: int, experts: float, per_expert_rows: float,
                 precision: Precision, count: int, sync: Sync | None = None) -> Op:  # fmt: skip
    """`experts` expert matmuls of per_expert_rows x k times k x n, `rows` rows in all."""
    w, a = precision.experts.bytes_per_element, precision.activation.bytes_per_element
    shape = MatmulShape(m=max(1, math.ceil(per_expert_rows)), n=n, k=k, batch=max(1, round(experts)))
    return Op(
        name=name, kind=OpKind.MATMUL, op_class=OpClass.MLP, dtype=precision.experts,
        flops=2.0 * rows * n * k, weight_bytes=experts * k * n * w, activation_bytes=rows * (k + n) * a,
        count=count, shape=shape, sync=sync,
    )  # fmt: skip


def moe_ops(shape: MoEShape, step: StepShape, precision: Precision, placement: Placement, count: int,
            group_tokens: int | None = None) -> list[Op]:  # fmt: skip
    """One MoE FFN block on one GPU. `step` is this GPU's attention replica's share; `group_tokens`
    the distinct tokens the whole EP group routes (default: the share times the replicas). Tokens
    travel to their experts after the permute and back after the down projection (EP all-to-alls);
    the last op's output goes back to replicated tokens over TP (`_tp_merge`)."""
    t, d, a = step.tokens, shape.hidden, precision.activation
    if group_tokens is None:
        group_tokens = t * placement.attn_dp
    routed_rows = placement.experts(group_tokens * shape.top_k) * placement.moe_imbalance
    local_experts = placement.experts(shape.num_experts)
    touched = min(local_experts, placement.experts(distinct_experts(group_tokens, shape.num_experts, shape.top_k)))
    rows_per_expert = routed_rows / max(touched, 1e-9)
    width, f_l = shape.expert_width, placement.expert_ffn(shape.expert_intermediate)
    up = (2 if shape.gated else 1) * f_l
    ops = [
        elementwise_op("mlp_norm", OpClass.NORM, 2.0 * t * d, 2.0 * t * d, 5.0, precision, count),
        matmul_op("router", OpClass.MLP, t, shape.num_experts, d, precision, count,
                  weight_bytes_per_element=a.bytes_per_element),
    ]  # fmt: skip
    # top-k selection over fp32 router logits, then tokens copied into expert-sorted order
    ops.append(elementwise_op("router_topk", OpClass.MLP, t * shape.num_experts * 2, t * shape.top_k * 2,
                              4.0, precision, count))  # fmt: skip
    if shape.latent:
        ops.append(matmul_op("latent_down_proj", OpClass.MLP, t, shape.latent, d, precision, count,
                             weight_bytes_per_element=a.bytes_per_element))  # fmt: skip
    dispatch, combine = (_all_to_all(name, kind, step, shape, precision, placement)
                         for name, kind in (("moe_dispatch", CollectiveKind.EP_DISPATCH),
                                            ("moe_combine", CollectiveKind.EP_COMBINE)))  # fmt: skip
    merge = _tp_merge(shape, t, precision, placement)  # after the block's last op
    ops += [
        elementwise_op(
            "moe_permute", OpClass.MLP, t * width, t * shape.top_k * width, 0.0, precision, count, sync=dispatch
        ),
        _expert_gemm("expert_up", routed_rows, up, width, touched, rows_per_expert, precision, count),
        elementwise_op("expert_activation", OpClass.MLP, routed_rows * up, routed_rows * f_l, 8.0, precision, count),
        _expert_gemm("expert_down", routed_rows, width, f_l, touched, rows_per_expert, precision, count, combine),
    ]
    ops.append(elementwise_op("expert_combine", OpClass.MLP, t * shape.top_k * width, t * width, 2.0 * shape.top_k,
                              precision, count, sync=None if shape.latent or shape.num_shared else merge))  # fmt: skip
    if shape.latent:
        ops.append(matmul_op("latent_up_proj", OpClass.MLP, t, d, shape.latent, precision, count,
                             weight_bytes_per_element=a.bytes_per_element,
                             sync=None if shape.num_shared else merge))  # fmt: skip
    if shape.num_shared:
        shared_f = placement.ffn(shape.num_shared * shape.shared_intermediate)
        shared_up = (2 if shape.gated else 1) * shared_f
        experts = precision.for_experts()
        ops += [
            matmul_op("shared_expert_up", OpClass.MLP, t, shared_up, d, experts, count),
            elementwise_op("shared_expert_activation", OpClass.MLP, t * shared_up, t * shared_f, 8.0, precision, count),
            matmul_op("shared_expert_down", OpClass.MLP, t, d, shared_f, experts, count, sync=merge),
        ]
    return ops


def _tp_merge(shape: MoEShape, tokens: int, precision: Precision, placement: Placement) -> Sync:
    """Back to replicated tokens across the TP ranks: an all-reduce of partial sums when experts
    (ep == 1) or shared experts are tensor-split; with EP and no shared experts, each TP rank got
    its 1/tp of the tokens from the combine, and an all-gather restores the rest."""
    if placement.ep == 1 or shape.num_shared:
        return partial_sum("moe_all_reduce", tokens, shape.hidden, precision)
    message = tokens * shape.hidden * precision.activation.bytes_per_element
    return Sync("moe_all_gather", CollectiveKind.ALL_GATHER, "tp", message, precision.activation)


def moe_activation_width(shape: MoEShape, step: StepShape, placement: Placement) -> float:
    """Per local token: the routed rows this GPU holds (top_k x imbalance) at the up width, plus shared."""
    f_l = shape.expert_intermediate // placement.expert_tp
    routed = shape.top_k * placement.attn_dp / placement.ep * placement.moe_imbalance * (3 if shape.gated else 2) * f_l
    shared = (3 if shape.gated else 2) * shape.num_shared * shape.shared_intermediate / placement.tp
    return routed + shared
