"""Mixture-of-experts operators: router, dispatch/combine all-to-all, routed expert GEMMs,
shared experts and (latent MoE) the projections into and out of the latent space.

Expected routing is uniform: with T tokens choosing k of E experts each, an expert receives
T k / E tokens on average and E (1 - (1 - k/E)^T) experts receive at least one, so a decode step
at small batch reads few experts' weights and a large batch reads all of them. The busiest GPU
gets `moe_imbalance` times the mean share of tokens; the step waits for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
from roofline.workloads.moe_kernels import (
    DEFAULT_SPREAD,
    DEFAULT_VARIANT,
    RankLoad,
    busiest_rank,
    distinct_experts,
    family,
    variant,
)

__all__ = ["MoEShape", "distinct_experts", "moe_ops", "moe_weight_bytes", "routed_expert_ops"]


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
    n_group: int = 1  # grouped top-k (config.json n_group / topk_group, DeepSeek-V3): experts in n_group
    topk_group: int = 1  # groups, top-k taken inside the best topk_group of them

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


@dataclass(frozen=True, slots=True)
class MoEKernelChoice:
    """How the routed experts run: the runtime's kernel variant (simulator/data/moe_kernels.yaml),
    the routing spread (moe_kernels.py) and, for kernel tables, a format finer than the dtype
    (fp8_block, w4a16_mxfp4) that selects the grouped-GEMM efficiency."""

    variant: str = DEFAULT_VARIANT
    spread: str = DEFAULT_SPREAD
    quant: str | None = None


def _grouped_gemm(name: str, load: RankLoad, n: int, k: int, family_name: str, precision: Precision, count: int,
                  quant: str | None, sync: Sync | None = None, local: float = 0.0) -> Op:  # fmt: skip
    """One grouped GEMM over the busiest rank's experts: their weights read once, each expert's rows
    padded to the family's tile in the shape (the FLOPs are the real rows'); `local` the experts
    the GPU holds, empty ones included (their per-expert setup is paid too)."""
    w, a = precision.experts.bytes_per_element, precision.activation.bytes_per_element
    groups = max(1, round(load.experts))
    padded_m = max(1, math.ceil(load.padded_rows / groups - 1e-9))
    grouped = f"{family_name}:{quant}" if quant else family_name
    return Op(
        name=name, kind=OpKind.MATMUL, op_class=OpClass.MLP, dtype=precision.experts,
        flops=2.0 * load.rows * n * k, weight_bytes=load.experts * k * n * w, activation_bytes=load.rows * (k + n) * a,
        count=count, sync=sync,
        shape=MatmulShape(m=padded_m, n=n, k=k, batch=groups, grouped=grouped, local_groups=max(groups, round(local))),
    )  # fmt: skip


def grouped_gemm_op(groups: int, m: int, n: int, k: int, family_name: str, dtype: DType, layout: str = "contiguous",
                    quant: str | None = None) -> Op:  # fmt: skip
    """G GEMMs of m x k times k x n in one grouped launch (a kernel-table row): inputs in `dtype`,
    16-bit output; each group's rows padded to the family's tile (masked layout: the same)."""
    tile_m = family(family_name).tile_m
    padded = groups * math.ceil(m / tile_m) * tile_m
    load = RankLoad(float(groups), float(groups * m), float(padded), float(m))
    op = _grouped_gemm("grouped_gemm", load, n, k, family_name, Precision(dtype, dtype), 1, quant)
    out_bytes = 2.0 * groups * m * n
    return replace(op, activation_bytes=groups * m * k * dtype.bytes_per_element + out_bytes)


def routed_expert_ops(shape: MoEShape, tokens: float, load: RankLoad, precision: Precision, placement: Placement,
                      count: int, choice: MoEKernelChoice, dispatch: Sync | None = None,
                      combine: Sync | None = None, moved_rows: float | None = None) -> list[Op]:  # fmt: skip
    """The kernels of one routed-MoE layer after the router GEMM, as the variant launches them:
    top-k over the logits, the expert-id sort, the permute (tokens copied into expert order, top_k
    copies each), the grouped gate+up GEMM (SwiGLU in its epilogue where fused), the activation,
    the grouped down GEMM, and the un-permute with the weighted top-k sum. `tokens` are the tokens
    this GPU routes; `load` what its experts compute; `moved_rows` the rows the permute and the
    finalize move (default tokens x top_k: the sender's side of an EP exchange; a GPU that keeps
    only its own experts' rows moves load.rows). The dispatch all-to-all follows the permute (or
    the sort when the GEMM gathers), the combine the down GEMM."""
    v = variant(choice.variant)
    f_l = placement.expert_ffn(shape.expert_intermediate)
    up_n = (2 if shape.gated else 1) * f_l
    local = placement.experts(shape.num_experts)
    launches: dict[str, int] = {o.op: o.launches for o in v.ops}
    dispatch_on = "permute" if "permute" in launches else "sort"
    ops: list[Op] = []
    for role in v.roles:
        if role in ("up", "up_act"):
            ops.append(_grouped_gemm("expert_up", load, up_n, shape.expert_width, v.family, precision, count,
                                     choice.quant, local=local))  # fmt: skip
        elif role == "down":
            ops.append(_grouped_gemm("expert_down", load, shape.expert_width, f_l, v.family, precision, count,
                                     choice.quant, combine, local))  # fmt: skip
        else:
            sync = dispatch if role == dispatch_on else None
            ops.append(_routing_op(role, shape, tokens, load, f_l, precision, count, launches[role], sync,
                                   tokens * shape.top_k if moved_rows is None else moved_rows))  # fmt: skip
    return ops


def _routing_op(role: str, shape: MoEShape, tokens: float, load: RankLoad, f_l: int, precision: Precision,
                count: int, kernels: int, sync: Sync | None, picks: float) -> Op:  # fmt: skip
    """The memory-bound kernels around the expert GEMMs (elements counted in activation-format units:
    an fp32 logit or int32 index is two); `picks` the (token, expert) rows permuted and combined."""
    e, width = shape.num_experts, shape.expert_width
    up_n = (2 if shape.gated else 1) * f_l
    routed = tokens * shape.top_k
    if role == "topk":  # logits -> ids + weights; grouped top-k (n_group > 1) reads them twice
        passes = 2 if shape.n_group > 1 else 1
        read, written, flops, name = passes * tokens * e * 2, routed * 4, 4.0, "router_topk"
    elif role == "sort":  # expert ids in; permuted row index, source row and per-expert offsets out
        read, written, flops, name = routed * 2, picks * 4 + e * 2, 1.0, "moe_sort"
    elif role == "permute":  # each token's hidden state copied into expert order, once per pick
        read, written, flops, name = min(tokens, picks) * width + picks * 2, picks * width, 0.0, "moe_permute"
    elif role == "activation":  # SwiGLU: gate and up in, one row out
        read, written, flops, name = load.rows * up_n, load.rows * f_l, 8.0, "expert_activation"
    else:  # finalize: the rows and their weights summed back into every token's output row
        read, written, flops, name = picks * (width + 2), tokens * width, 2.0 * shape.top_k, "expert_combine"
    return elementwise_op(name, OpClass.MLP, read, written, flops, precision, count, kernels=kernels, sync=sync)


def rank_load(shape: MoEShape, group_tokens: float, placement: Placement, choice: MoEKernelChoice,
              masked: bool = False) -> RankLoad:  # fmt: skip
    """The busiest EP rank's routed work; a masked layout (DeepGEMM decode) pads every local expert
    to the most rows any of them gets."""
    v = variant(choice.variant)
    tile_m = family(v.family).tile_m
    load = busiest_rank(group_tokens, shape.num_experts, shape.top_k, placement.ep, choice.spread,
                        placement.moe_imbalance, tile_m)  # fmt: skip
    if masked and v.masked_decode:
        local = placement.experts(shape.num_experts)
        padded = local * math.ceil(max(load.max_rows, 1.0) / tile_m) * tile_m
        return RankLoad(local, load.rows, padded, load.max_rows)
    return load


def moe_ops(shape: MoEShape, step: StepShape, precision: Precision, placement: Placement, count: int,
            group_tokens: int | None = None) -> list[Op]:  # fmt: skip
    """One MoE FFN block on one GPU. `step` is this GPU's attention replica's share; `group_tokens`
    the distinct tokens the whole EP group routes (default: the share times the replicas). Tokens
    travel to their experts after the permute and back after the down projection (EP all-to-alls);
    the last op's output goes back to replicated tokens over TP (`_tp_merge`)."""
    t, d, a = step.tokens, shape.hidden, precision.activation
    if group_tokens is None:
        group_tokens = t * placement.attn_dp
    choice = MoEKernelChoice(placement.moe_kernels, placement.moe_spread)
    load = rank_load(shape, group_tokens, placement, choice, masked=step.phase is Phase.DECODE)
    ops = [
        elementwise_op("mlp_norm", OpClass.NORM, 2.0 * t * d, 2.0 * t * d, 5.0, precision, count),
        matmul_op("router", OpClass.MLP, t, shape.num_experts, d, precision, count,
                  weight_bytes_per_element=a.bytes_per_element),
    ]  # fmt: skip
    if shape.latent:
        ops.append(matmul_op("latent_down_proj", OpClass.MLP, t, shape.latent, d, precision, count,
                             weight_bytes_per_element=a.bytes_per_element))  # fmt: skip
    dispatch, combine = (_all_to_all(name, kind, step, shape, precision, placement)
                         for name, kind in (("moe_dispatch", CollectiveKind.EP_DISPATCH),
                                            ("moe_combine", CollectiveKind.EP_COMBINE)))  # fmt: skip
    merge = _tp_merge(shape, t, precision, placement)  # after the block's last op
    ops += routed_expert_ops(shape, t, load, precision, placement, count, choice, dispatch, combine)
    if not (shape.latent or shape.num_shared):
        ops[-1] = replace(ops[-1], sync=merge)
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
