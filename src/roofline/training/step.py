"""One training step of a layout, timed on the one cost model.

Per micro-batch, on each pipeline stage's GPU: the forward, backward and recompute ops
(`graph`), the TP / EP collectives they carry and the part of a context-parallel KV ring the
attention kernel does not hide, costed by `simulator.cost.RooflineCostModel` like any serving op.
The slowest stage sets the pipeline's rate; a step is m micro-batches plus the 1F1B bubble,
(pp - 1) / vpp micro-batch times (Narayanan et al. 2021, interleaved schedule). Then the
data-parallel gradient reduce-scatter (all-reduce without a distributed optimizer) and parameter
all-gather over the gradient's DP group (dense: dp x cp; experts: the expert-DP group), of which
only the last bucket is exposed when Megatron's overlap_grad_reduce / overlap_param_gather are on
(unless the traffic outlasts the backward / forward it hides under), and the optimizer's one
memory-bound pass over the local shard. The pipeline hand-off is exposed only without interleaving
(Megatron overlaps the P2P of the interleaved schedule).

The MoE dispatch and combine are timed by the EP modes of the communication library that
`ep_comm_library` names (Megatron's flex dispatcher on DeepEP: once per destination node over the
scale-out fabric); with EP overlap they hide under another micro-batch's compute, which then runs
on the SMs the EP kernels leave. The Mamba-2 scan runs at `ssd_scan_fraction` of the bf16 peak. A
balanced pipeline layout runs the mean stage's work on every stage instead of the slowest's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.hardware_specs.schema import Accelerator
from roofline.ir import CollectiveKind, Op, OpKind, Phase, Placement, Precision, StepShape
from roofline.simulator import capacity as cap
from roofline.simulator.collectives import GroupTopology, load_library
from roofline.simulator.cost import OpCost, RooflineCostModel
from roofline.simulator.plan import ParallelPlan, stage_placements
from roofline.training import graph
from roofline.training.config import TrainConfig
from roofline.training.constants import PrecisionRecipe, constants
from roofline.training.flops import model_flops_per_sequence
from roofline.training.memory import (
    StageParams,
    TrainMemory,
    activation_bytes,
    in_flight,
    optimizer_pass_bytes,
    state_bytes,
)
from roofline.workloads.base import Workload

PARTS = ("forward", "backward", "recompute", "reference", "moe_host_sync", "tp_comm", "cp_comm", "ep_comm", "pp_comm",
         "pp_bubble", "dp_comm_exposed", "optimizer")  # fmt: skip


@dataclass
class MicroBatchTime:
    """One micro-batch on one stage's GPU, by part (seconds)."""

    parts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))
    flops: float = 0.0  # executed (hardware) FLOPs
    wgrad_s: float = 0.0  # the weight-gradient GEMMs' share of the backward (what zero-bubble schedules move)
    gemm_s: float = 0.0  # the GEMMs' share of forward, backward and recompute (what TP overlap hides under)
    ssd_flops_per_s: float = math.inf  # the rate of the Mamba-2 chunked scan (constants.ssd_scan_fraction)

    @property
    def total_s(self) -> float:
        return sum(self.parts.values())


@dataclass(frozen=True)
class TrainStep:
    """A training step: its time by part, its rates, and the memory per GPU."""

    step_time_s: float
    parts: dict[str, float]
    tokens_per_step: int
    model_flops_per_step: float
    hardware_flops_per_gpu: float
    num_gpus: int
    peak_flops_per_s: float  # the accelerator's dense bf16 peak: MFU and HFU are against it
    memory: TrainMemory
    notes: tuple[str, ...] = ()

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.tokens_per_step / self.step_time_s / self.num_gpus

    @property
    def model_flops_per_s_per_gpu(self) -> float:
        return self.model_flops_per_step / self.step_time_s / self.num_gpus

    @property
    def mfu(self) -> float:
        return self.model_flops_per_s_per_gpu / self.peak_flops_per_s

    @property
    def hfu(self) -> float:
        return self.hardware_flops_per_gpu / self.step_time_s / self.peak_flops_per_s

    def to_dict(self) -> dict[str, Any]:
        return {"step_time_s": self.step_time_s, "parts_s": dict(self.parts),
                "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu,
                "model_tflops_per_gpu": self.model_flops_per_s_per_gpu / 1e12, "mfu": self.mfu, "hfu": self.hfu,
                "model_flops_per_step": self.model_flops_per_step, "memory": self.memory.to_dict()}  # fmt: skip


def placement_plan(workload: Workload, config: TrainConfig) -> ParallelPlan:
    """The serving engine's plan for this layout: TP inside a stage; with expert parallelism the ep x
    etp GPUs of the expert group are tp x attn_dp (each attention replica one DP/CP rank's micro-batch)."""
    group = config.ep * config.etp
    if config.ep > 1 and group % config.tp:
        raise RooflineError(f"--ep {config.ep} x --etp {config.etp} must be a multiple of --tp {config.tp}")
    if config.ep > 1 and config.etp > 1:
        raise RooflineError("expert tensor parallelism with --ep above 1 is not modelled; use --etp 1")
    attn_dp = group // config.tp if config.ep > 1 else 1
    return ParallelPlan(tp=config.tp, pp=config.pp, ep=config.ep, attn_dp=attn_dp, cp=config.cp,
                        moe_kernels=constants().moe_kernels)  # fmt: skip


def _runs(acc: Accelerator, recipe: PrecisionRecipe) -> bool:
    if acc.compute.peak_flops_per_s(DType(recipe.gemm_dtype)) is None:
        return False
    return not recipe.architectures or any(acc.architecture.startswith(a) for a in recipe.architectures)


def check_precision(cluster: Cluster, config: TrainConfig) -> None:
    """RooflineError when the accelerator cannot run the recipe's GEMMs (naming those it can)."""
    acc = cluster.accelerator
    recipes = constants().precisions
    if not _runs(acc, recipes[config.precision]):
        can = [name for name, recipe in recipes.items() if _runs(acc, recipe)]
        raise RooflineError(f"{acc.id} ({acc.architecture.split('(')[0].strip()}) cannot run --precision "
                            f"{config.precision}; it runs {', '.join(can)}")  # fmt: skip


def train_step(workload: Workload, cluster: Cluster, config: TrainConfig) -> TrainStep:
    check_precision(cluster, config)
    plan = placement_plan(workload, config)
    model = RooflineCostModel(cluster, plan, library=load_library(constants().ep_comm_library))
    precision, recipe = graph.training_precision(config)
    placements = stage_placements(workload, plan)
    stages = [_stage(workload, config, p, precision, recipe, model) for p in placements]
    slowest = max(range(len(stages)), key=lambda i: stages[i][0].total_s)
    mb, forward = stages[slowest]
    if config.balanced_stages and len(stages) > 1:
        mb = _mean_stage([t for t, _ in stages])
    _overlap(mb, config, ep_sm_share(model, cluster), cluster.accelerator.sram.sm_count)
    m = config.micro_batches
    parts = {name: value * m for name, value in mb.parts.items()}
    parts["pp_bubble"] = pipeline_bubble_s(config, mb)
    parts["forward"] += _weight_cast_s(forward, recipe, model)
    params = _stage_params(workload, placements[slowest], precision, forward, config.mtp_layers > 0)
    parts["dp_comm_exposed"] = _dp_exposed_s(params, config, cluster, model, mb)
    parts["optimizer"] = optimizer_pass_bytes(params, config) / _hbm_rate(cluster)
    memory = _memory(workload, config, cluster, placements, precision)
    flops = model_flops_per_sequence(workload, config) * config.global_batch
    step_s = sum(parts.values())
    peak = cluster.accelerator.compute.peak_flops_per_s(DType.BF16)
    if peak is None:
        raise RooflineError(f"{cluster.accelerator.id} has no bf16 peak; MFU is against it")
    return TrainStep(step_s, parts, config.tokens_per_step, flops, mb.flops * m, config.gpus, peak, memory)


def _mean_stage(stages: list[MicroBatchTime]) -> MicroBatchTime:
    """A pipeline whose layout evens the stages out (Megatron pipeline_model_parallel_layout: the
    embedding, MTP and loss placed as layers of their own): each stage runs the mean stage's work."""
    n = len(stages)
    mean = MicroBatchTime(ssd_flops_per_s=stages[0].ssd_flops_per_s)
    mean.parts = {name: sum(t.parts[name] for t in stages) / n for name in PARTS}
    mean.flops = sum(t.flops for t in stages) / n
    mean.wgrad_s = sum(t.wgrad_s for t in stages) / n
    mean.gemm_s = sum(t.gemm_s for t in stages) / n
    return mean


def tp_overlap_exposed_s(comm_s: float, gemm_s: float, tp: int, sm_count: int) -> float:
    """What TE userbuffers overlap leaves of the SP collectives (`tp_overlap` in training.yaml): the
    first of tp chunks (ring exchange) or of `pipeline_splits` chunks (pipeline) of each collective
    is exposed, the rest runs under the GEMMs as long as they last; the pipeline collectives' SMs
    slow the GEMM under them by share / (1 - share)."""
    c = constants().tp_overlap
    ring, pipe = c.ring_exchange_share, 1.0 - c.ring_exchange_share
    first = comm_s * (ring / max(tp, 1) + pipe / c.pipeline_splits)
    hidden = min(comm_s - first, gemm_s)
    share = c.pipeline_sms / sm_count if sm_count else 0.0
    return first + (comm_s - first - hidden) + hidden * pipe * share / (1.0 - share)


def _overlap(mb: MicroBatchTime, config: TrainConfig, comm_sm_share: float = 0.0, sm_count: int = 0) -> None:
    """The communication the overlap switches hide: with TP overlap the SP collectives run under the
    GEMMs (only what outlasts them shows); with EP overlap the all-to-alls of one micro-batch run
    under the compute of another (1F1B's forward of one and backward of the next), and while they
    run the dispatch / combine kernels hold `comm_sm_share` of the SMs, so the compute under them
    runs at 1 - share of its rate (the extra time is charged to ep_comm)."""
    if config.tp_comm_overlap:
        mb.parts["tp_comm"] = tp_overlap_exposed_s(mb.parts["tp_comm"], mb.gemm_s, config.tp, sm_count)
    if config.ep_overlap:
        compute = mb.parts["forward"] + mb.parts["backward"] + mb.parts["recompute"]
        hidden = min(mb.parts["ep_comm"], compute)
        mb.parts["ep_comm"] = mb.parts["ep_comm"] - hidden + hidden * comm_sm_share / (1.0 - comm_sm_share)


def ep_sm_share(model: RooflineCostModel, cluster: Cluster) -> float:
    """The share of the SMs the EP library's dispatch / combine kernels occupy (DeepEP normal
    kernels: `sms` of its mode, 24 in its tests; DeepSeek-V3 report section 3.2.2: 20 of 132)."""
    spec = model.collectives.library.expert_parallel
    sms = max((mode.sms or 0 for mode in spec.modes.values()), default=0) if spec is not None else 0
    return min(0.5, sms / cluster.accelerator.sram.sm_count)


def pipeline_bubble_s(config: TrainConfig, mb: MicroBatchTime) -> float:
    """The schedule's bubble (DeepSeek-V3 technical report, table 2; F forward, B full backward, W
    weight backward of one micro-batch on the slowest stage): 1F1B (pp - 1)(F + B), interleaved over
    vpp chunks (pp - 1)/vpp (F + B) (Narayanan et al. 2021); ZB1P (pp - 1)(F + B - 2W) (Qi et al.
    2023); DualPipe (pp/2 - 1)(F&B + B - 3W), F&B taken as F + B."""
    step = mb.total_s
    if config.pp == 1:
        return 0.0
    if config.schedule == "zb1p":
        return (config.pp - 1) * max(0.0, step - 2.0 * mb.wgrad_s)
    if config.schedule == "dualpipe":
        backward = mb.parts["backward"] + mb.parts["recompute"]
        return (config.pp / 2 - 1) * max(0.0, step + backward - 3.0 * mb.wgrad_s)
    return (config.pp - 1) / config.vpp * step


def _stage(workload: Workload, config: TrainConfig, placement: Placement, precision: Precision,
           recipe: PrecisionRecipe, model: RooflineCostModel) -> tuple[MicroBatchTime, list[Op]]:  # fmt: skip
    forward = graph.forward_ops(workload, config, placement, precision)
    frozen = config.frozen_base
    quantize = graph.quantize_ops(forward, recipe, frozen)
    dequantize = graph.dequantize_ops(forward, constants().qlora_base_bytes) if config.task == "qlora" else []
    recompute = graph.recompute_ops(forward, config.recompute, config.recompute_modules)
    t = MicroBatchTime(ssd_flops_per_s=model.peak_flops_per_s(DType.BF16) * constants().ssd_scan_fraction)
    run = graph.forward_pass(forward)
    _add(t, "forward", [model.cost(op) for op in run + quantize[::2] + dequantize])
    backward = graph.backward_ops(forward, frozen, config.grad_bytes)
    _add(t, "backward", [model.cost(op) for op in backward + quantize[1::2] + dequantize])
    _add(t, "recompute", [model.cost(op) for op in recompute + (dequantize if config.recompute == "full" else [])])
    t.parts["moe_host_sync"] += moe_host_sync_s(forward, config)
    if config.task == "dpo":  # the frozen reference model's forward on the same sequences
        _add(t, "reference", [model.cost(op) for op in run + quantize[::2]])
    if config.pp > 1 and not placement.has_lm_head:
        hand_off = graph.pp_hand_off(workload.stage_boundary_bytes(_micro_batch_step(config), precision),
                                     config.cp, config.tp, config.sp)  # fmt: skip
        if config.vpp == 1:
            t.parts["pp_comm"] += model.cost(hand_off).total_s
    return t, forward


def moe_host_sync_s(forward: list[Op], config: TrainConfig) -> float:
    """What the unfused Megatron-Core MoE path costs one micro-batch beyond its kernels: the
    host-synchronised layer (tokens per expert read on the host) pays `moe_unfused_layer_s` per MoE
    layer of the stage (MTP passes included), forward and backward together; nothing with the
    fused, sync-free expert kernels (`moe_fused_mlp`) or a MoE kernel variant other than Megatron's."""
    c = constants()
    if config.moe_fused_mlp or c.moe_kernels != "megatron":
        return 0.0
    return graph.moe_layers(forward) * c.moe_unfused_layer_s


def _micro_batch_step(config: TrainConfig) -> StepShape:
    """One micro-batch as the serving graph's prefill step (what a stage hands to the next)."""
    return StepShape(Phase.PREFILL, config.micro_batch, config.seq_len, config.seq_len)


COMM_PART = {"tp": "tp_comm", "ep": "ep_comm", "cp": "cp_comm", "pp": "pp_comm"}


def _add(t: MicroBatchTime, part: str, costs: Sequence[OpCost]) -> None:
    """Each op's time into its part: a collective into its group's, an attention op's KV ring (the
    part the kernel does not hide) into cp_comm, the rest into `part`. The attention backward runs
    at `attention_backward_efficiency` of the forward kernel's rate; the Mamba-2 scan at its own rate."""
    for c in costs:
        n = c.op.count
        t.flops += c.op.flops * n
        if c.op.kind is OpKind.COLLECTIVE and c.op.collective is not None:
            t.parts[COMM_PART.get(c.op.collective.group, "tp_comm")] += c.total_s
            continue
        kernel_s = c.kernel_s
        if graph.is_ssd_scan(c.op):
            kernel_s = max(c.memory_s, c.op.flops / t.ssd_flops_per_s)
        elif c.op.kind is OpKind.ATTENTION and c.op.name.endswith(graph.BACKWARD_SUFFIX):
            kernel_s /= constants().attention_backward_efficiency
        t.parts[part] += (kernel_s + c.overhead_s) * n
        if c.op.kind is OpKind.MATMUL:
            t.gemm_s += (kernel_s + c.overhead_s) * n
        if c.op.name.endswith(graph.WGRAD_SUFFIX):
            t.wgrad_s += (kernel_s + c.overhead_s) * n
        t.parts["cp_comm"] += max(0.0, c.comm_s - kernel_s) * n  # the KV ring the kernel does not hide


def _weight_cast_s(forward: list[Op], recipe: PrecisionRecipe, model: RooflineCostModel) -> float:
    return sum(model.cost(op).total_s for op in graph.weight_quantize_ops(forward, recipe))


def _stage_params(workload: Workload, placement: Placement, precision: Precision, forward: list[Op],
                  mtp: bool = False) -> StageParams:  # fmt: skip
    """Parameters one GPU of the stage holds: the workload's weights at bf16, experts apart; with
    MTP trained the last stage also holds the MTP module (its own estimate, counted as dense)."""
    total = workload.weight_bytes(Precision(), placement) / 2.0
    if mtp and placement.has_lm_head:
        total += workload.mtp_weight_bytes(Precision(), placement) / 2.0
    matmuls = [op for op in forward if op.kind is OpKind.MATMUL and op.shape is not None
               and not op.name.startswith(graph.MTP_PREFIX)]  # fmt: skip

    def weights(ops: list[Op]) -> float:
        return sum(float(op.shape.k) * op.shape.n * op.shape.batch * op.count for op in ops if op.shape is not None)

    expert = weights([op for op in matmuls if op.shape is not None and op.shape.grouped])
    linear = weights([op for op in matmuls if graph.is_block_linear(op)])
    return StageParams(dense=max(0.0, total - expert), expert=expert, linear=linear)


def _hbm_rate(cluster: Cluster) -> float:
    acc = cluster.accelerator
    return acc.memory.bandwidth * acc.efficiency.memory_bandwidth_fraction


def dp_topology(cluster: Cluster, size: int, stride: int) -> GroupTopology:
    """A data-parallel group: `size` GPUs `stride` apart (Megatron's rank order tp-cp-ep-dp-pp puts
    the model-parallel GPUs of a stage between two DP ranks)."""
    domain = cluster.system.gpus_per_domain
    per_node = max(1, min(size, domain // max(1, stride)))
    nodes = math.ceil(size / per_node)
    if nodes > 1 and cluster.scale_out is None:
        raise RooflineError(f"the data-parallel group spans {nodes} domains of {cluster.system.id}, which has no "
                            "scale-out fabric")  # fmt: skip
    return GroupTopology(size, per_node, nodes, cluster.scale_up, cluster.scale_out,
                         cluster.system.scale_up.in_switch_reduction and nodes == 1, domain)  # fmt: skip


@dataclass(frozen=True)
class DpTraffic:
    """The data-parallel collectives of one pass over this GPU's parameters (seconds): the
    gradient reduce (all-reduce at ZeRO 0, else reduce-scatter) and the parameter all-gather, in
    all and for one bucket."""

    reduce_s: float = 0.0
    gather_s: float = 0.0
    reduce_bucket_s: float = 0.0
    gather_bucket_s: float = 0.0


def dp_traffic(params: StageParams, config: TrainConfig, cluster: Cluster, model: RooflineCostModel) -> DpTraffic:
    """Dense parameters over the gradient's DP group (dp x cp GPUs, tp apart), expert parameters
    over the expert-DP group (ep x etp apart)."""
    c = constants()
    groups = ((params.dense, config.data_parallel * config.cp, config.tp),
              (params.expert, config.expert_dp, config.ep * config.etp))  # fmt: skip
    bucket = max(c.bucket_params, c.bucket_params_per_dp_rank * config.data_parallel)
    reduce = CollectiveKind.ALL_REDUCE if config.zero == 0 else CollectiveKind.REDUCE_SCATTER
    out = DpTraffic()
    for count, size, stride in groups:
        if count <= 0 or size <= 1:
            continue
        topo = dp_topology(cluster, size, stride)
        cost = model.collectives.cost
        gather = (cost(CollectiveKind.ALL_GATHER, count * c.param_gather_bytes, topo).time_s,
                  cost(CollectiveKind.ALL_GATHER, min(count, bucket) * c.param_gather_bytes, topo).time_s)  # fmt: skip
        if config.zero == 0:
            gather = (0.0, 0.0)
        out = DpTraffic(out.reduce_s + cost(reduce, count * config.grad_bytes, topo).time_s,
                        out.gather_s + gather[0],
                        out.reduce_bucket_s + cost(reduce, min(count, bucket) * config.grad_bytes, topo).time_s,
                        out.gather_bucket_s + gather[1])  # fmt: skip
    return out


def _dp_exposed_s(params: StageParams, config: TrainConfig, cluster: Cluster, model: RooflineCostModel,
                  mb: MicroBatchTime) -> float:  # fmt: skip
    """What of the DP collectives a step leaves exposed. ZeRO 0-2: the gradients are reduced once,
    in the last micro-batch's backward, and the parameters gathered once, in the first forward
    (Megatron's overlap_grad_reduce / overlap_param_gather: the last bucket shows, or what outlasts
    the compute). ZeRO 3 / FSDP: every micro-batch gathers the parameters for its forward and again
    for its backward and reduce-scatters its gradients, prefetched under that micro-batch's compute."""
    if config.frozen_base:
        return 0.0
    t = dp_traffic(params, config, cluster, model)
    if config.zero == 3:
        comm = 2.0 * t.gather_s + t.reduce_s
        if not (config.overlap_grad_reduce and config.overlap_param_gather):
            return comm * config.micro_batches
        hidden = mb.parts["forward"] + mb.parts["backward"]
        return config.micro_batches * max(t.gather_bucket_s + t.reduce_bucket_s, comm - hidden)
    reduce = max(t.reduce_bucket_s, t.reduce_s - mb.parts["backward"]) if config.overlap_grad_reduce else t.reduce_s
    gather = max(t.gather_bucket_s, t.gather_s - mb.parts["forward"]) if config.overlap_param_gather else t.gather_s
    return reduce + gather


def _memory(workload: Workload, config: TrainConfig, cluster: Cluster, placements: list[Placement],
            precision: Precision) -> TrainMemory:  # fmt: skip
    """The first stage's memory (it holds the most micro-batches), or the last's when larger."""
    best: TrainMemory | None = None
    acc = cluster.accelerator
    for placement in (placements[0], placements[-1]):
        forward = graph.forward_ops(workload, config, placement, precision)
        params = _stage_params(workload, placement, precision, forward, config.mtp_layers > 0)
        weights, grads, optimizer = state_bytes(params, config)
        hidden = int(getattr(workload, "hidden_size", 0))
        per_mb = activation_bytes(forward, config, placement.num_layers, hidden)
        flight = in_flight(config) if placement is placements[0] else 1.0
        mem = TrainMemory(weights, grads, optimizer, per_mb * flight, cap.reserve_bytes(acc), acc.memory.capacity,
                          flight, per_mb)  # fmt: skip
        if best is None or mem.total_bytes > best.total_bytes:
            best = mem
    assert best is not None
    return best
