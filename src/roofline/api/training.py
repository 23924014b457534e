"""`rl.train`: one training (or fine-tuning) layout of a model on a cluster: the step time and
where it goes, tokens/s/GPU, model TFLOP/s/GPU with MFU and HFU, memory per GPU and whether it
fits, and for `tokens=T` the wall time, GPU-hours and cost (roofline.training)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roofline.api.query import HardwareArg, ModelArg, SystemArg, cluster_of, model_of
from roofline.errors import RooflineError
from roofline.result import Result
from roofline.training.config import TrainConfig
from roofline.training.constants import constants
from roofline.training.step import PARTS, TrainStep, train_step
from roofline.units import format_bytes, format_time

HOUR_S = 3600.0


@dataclass(frozen=True, repr=False)
class TrainReport(Result):
    """A training step of one layout. `step` holds the times (seconds) by part and the memory;
    MFU and HFU are against the accelerator's dense bf16 peak, model FLOPs counted as
    `flop_convention` says (Megatron-LM: 3 x forward GEMMs + attention)."""

    model: str
    hardware: str
    system: str
    config: TrainConfig
    step: TrainStep
    tokens: float | None = None
    price_per_gpu_hour: float | None = None

    @property
    def step_time_s(self) -> float:
        return self.step.step_time_s

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.step.tokens_per_s_per_gpu

    @property
    def model_tflops_per_gpu(self) -> float:
        return self.step.model_flops_per_s_per_gpu / 1e12

    @property
    def mfu(self) -> float:
        return self.step.mfu

    @property
    def hfu(self) -> float:
        return self.step.hfu

    @property
    def fits(self) -> bool:
        return self.step.memory.fits

    @property
    def wall_time_s(self) -> float | None:
        if self.tokens is None:
            return None
        return self.tokens / (self.tokens_per_s_per_gpu * self.config.gpus)

    @property
    def gpu_hours(self) -> float | None:
        wall = self.wall_time_s
        return None if wall is None else wall * self.config.gpus / HOUR_S

    @property
    def cost(self) -> float | None:
        hours = self.gpu_hours
        return None if hours is None or self.price_per_gpu_hour is None else hours * self.price_per_gpu_hour

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        layout = {"gpus": c.gpus, "tp": c.tp, "pp": c.pp, "vpp": c.vpp, "cp": c.cp, "ep": c.ep, "etp": c.etp,
                  "dp": c.data_parallel, "sequence_parallel": c.sp, "zero": c.zero, "micro_batch": c.micro_batch,
                  "global_batch": c.global_batch, "micro_batches": c.micro_batches, "seq_len": c.seq_len,
                  "precision": c.precision, "recompute": c.recompute, "optimizer": c.optimizer, "task": c.task,
                  "overlap_grad_reduce": c.overlap_grad_reduce,
                  "overlap_param_gather": c.overlap_param_gather, "schedule": c.schedule,
                  "tp_comm_overlap": c.tp_comm_overlap, "ep_overlap": c.ep_overlap,
                  "grad_reduce_in_fp32": c.grad_reduce_in_fp32, "mtp_layers": c.mtp_layers,
                  "balanced_stages": c.balanced_stages, "recompute_modules": list(c.recompute_modules)}  # fmt: skip
        convention = constants().flop_conventions[c.flop_convention]
        return {"model": self.model, "hardware": self.hardware, "system": self.system, "layout": layout,
                **self.step.to_dict(),
                "flop_convention": {"name": c.flop_convention, "causal_attention": convention.causal_attention,
                                    "source": convention.source, "mfu_peak": "dense bf16"},
                "tokens": self.tokens, "wall_time_s": self.wall_time_s, "gpu_hours": self.gpu_hours,
                "price_per_gpu_hour": self.price_per_gpu_hour, "cost": self.cost}  # fmt: skip

    def overview(self) -> list[tuple[str, Any]]:
        m = self.step.memory
        rows: list[tuple[str, Any]] = [
            ("model", self.model), ("hardware", f"{self.config.gpus} x {self.hardware}"),
            ("step time", format_time(self.step_time_s)), ("tokens/s/GPU", f"{self.tokens_per_s_per_gpu:,.0f}"),
            ("model TFLOP/s/GPU", f"{self.model_tflops_per_gpu:,.0f}"), ("MFU", f"{self.mfu:.1%}"),
            ("HFU", f"{self.hfu:.1%}"),
            ("memory per GPU", f"{format_bytes(m.total_bytes, binary=True)} of "
                               f"{format_bytes(m.capacity_bytes, binary=True)}"),
            ("fits", "yes" if self.fits else "no"),
        ]  # fmt: skip
        memory = (("parameters", m.params_bytes), ("gradients", m.grads_bytes), ("optimizer states", m.optimizer_bytes),
                  (f"activations ({m.in_flight_micro_batches:.3g} micro-batches)", m.activations_bytes),
                  ("reserve", m.reserve_bytes))  # fmt: skip
        rows += [(f"  {name}", format_bytes(size, binary=True)) for name, size in memory]
        rows.append(("step time by part", ""))
        rows += [(f"  {part}", format_time(self.step.parts[part])) for part in PARTS]
        if self.tokens is not None:
            wall_h = (self.wall_time_s or 0.0) / HOUR_S
            rows += [
                ("wall time", f"{wall_h:,.1f} h ({wall_h / 24:,.1f} days)"),
                ("GPU-hours", f"{self.gpu_hours:,.0f}"),
            ]
            if self.cost is not None:
                rows.append(("cost", f"${self.cost:,.0f}"))
        return rows


def train(
    model: ModelArg, hardware: HardwareArg = None, *, system: SystemArg = None, gpus: int = 8, tp: int = 1,
    pp: int = 1, vpp: int = 1, cp: int = 1, ep: int = 1, etp: int = 1, dp: int | None = None,
    sequence_parallel: bool | None = None, zero: int = 1, fsdp: bool = False, global_batch: int = 256,
    micro_batch: int = 1, seq_len: int = 4096, precision: str = "bf16", recompute: str = "none",
    optimizer: str = "adamw", task: str = "pretrain", overlap: bool = True, flop_convention: str = "megatron",
    schedule: str = "1f1b", tp_comm_overlap: bool = False, ep_overlap: bool = False, grad_reduce_in_fp32: bool = True,
    mtp_layers: int = 0, balanced_stages: bool = False, recompute_modules: tuple[str, ...] = (),
    moe_fused_mlp: bool = False,
    tokens: float | None = None,
    price_per_gpu_hour: float | None = None,
) -> TrainReport:  # fmt: skip
    """One training layout (Megatron-LM conventions: dp = gpus / (tp x pp x cp); ZeRO 1 is the
    distributed optimizer; `fsdp` is ZeRO 3 over the data-parallel group; `overlap`: Megatron's
    overlap_grad_reduce and overlap_param_gather; `flop_convention`: whose model-FLOP count MFU uses,
    a key of training/data/training.yaml; `grad_reduce_in_fp32`: an fp32 gradient buffer reduced in
    fp32, else a bf16 one; `mtp_layers`: multi-token-prediction depths trained; `balanced_stages`: a
    pipeline layout that evens the stages' work; `recompute_modules`: Megatron's fine-grained
    recompute modules, e.g. ("mla_up_proj",); `moe_fused_mlp`: Megatron's sync-free fused expert kernels
    (cutedsl_fused_grouped_mlp), without the unfused MoE path's host-synchronised cost)."""
    if tokens is not None and not tokens > 0:
        raise RooflineError(f"--tokens must be positive, got {tokens}")
    if price_per_gpu_hour is not None and not price_per_gpu_hour >= 0:
        raise RooflineError(f"--price-per-gpu-hour must be at least 0, got {price_per_gpu_hour}")
    if fsdp and zero not in (1, 3):
        raise RooflineError("--fsdp is ZeRO-3; drop --zero or give --zero 3")
    config = TrainConfig(gpus=gpus, seq_len=seq_len, global_batch=global_batch, micro_batch=micro_batch, tp=tp, pp=pp,
                         vpp=vpp, cp=cp, ep=ep, etp=etp, dp=dp, sequence_parallel=sequence_parallel,
                         zero=3 if fsdp else zero, precision=precision, recompute=recompute, optimizer=optimizer,
                         task=task, overlap_grad_reduce=overlap, overlap_param_gather=overlap,
                         flop_convention=flop_convention, schedule=schedule, tp_comm_overlap=tp_comm_overlap,
                         ep_overlap=ep_overlap, grad_reduce_in_fp32=grad_reduce_in_fp32, mtp_layers=mtp_layers,
                         balanced_stages=balanced_stages, recompute_modules=tuple(recompute_modules),
                         moe_fused_mlp=moe_fused_mlp)  # fmt: skip
    workload = model_of(model, autoregressive=True)
    cluster = cluster_of(hardware, system, gpus)
    step = train_step(workload, cluster, config)
    return TrainReport(workload.id, cluster.accelerator.id, cluster.system.id, config, step, tokens,
                       price_per_gpu_hour)  # fmt: skip


@dataclass(frozen=True, repr=False)
class TrainSearchReport(Result):
    """The fastest layouts that fit (`layouts`, best tokens/s/GPU first, at most `top`) and the
    Pareto frontier of GPUs against step time (`frontier`: the fastest layout of each GPU count
    that is faster than every smaller count's)."""

    model: str
    hardware: str
    system: str
    layouts: tuple[TrainReport, ...]
    frontier: tuple[TrainReport, ...]
    searched_gpus: tuple[int, ...]

    def records(self) -> list[dict[str, Any]]:
        return [_row(r, "layout") for r in self.layouts] + [_row(r, "frontier") for r in self.frontier]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "hardware": self.hardware, "system": self.system,
                "searched_gpus": list(self.searched_gpus), "layouts": [r.to_dict() for r in self.layouts],
                "frontier": [r.to_dict() for r in self.frontier]}  # fmt: skip

    def overview(self) -> list[tuple[str, Any]]:
        best = self.layouts[0] if self.layouts else None
        return [("model", self.model), ("hardware", self.hardware), ("layouts that fit", len(self.layouts)),
                ("best tokens/s/GPU", f"{best.tokens_per_s_per_gpu:,.0f}" if best else "-")]  # fmt: skip


def _row(r: TrainReport, kind: str) -> dict[str, Any]:
    c = r.config
    return {"kind": kind, "gpus": c.gpus, "tp": c.tp, "pp": c.pp, "vpp": c.vpp, "cp": c.cp, "ep": c.ep,
            "dp": c.data_parallel, "micro_batch": c.micro_batch, "recompute": c.recompute,
            "step_time_s": r.step_time_s, "tokens_per_s_per_gpu": r.tokens_per_s_per_gpu, "mfu": r.mfu,
            "memory_bytes": r.step.memory.total_bytes, "wall_time_s": r.wall_time_s, "cost": r.cost}  # fmt: skip


def search_gpu_counts(gpus: int, node: int) -> tuple[int, ...]:
    """One node's GPUs, doubled up to `gpus` (and `gpus` itself); `gpus` alone when below a node."""
    if gpus <= node:
        return (gpus,)
    counts, n = [], node
    while n < gpus:
        counts.append(n)
        n *= 2
    return (*counts, gpus)


def train_search(
    model: ModelArg, hardware: HardwareArg = None, *, system: SystemArg = None, gpus: int = 8,
    global_batch: int = 256, seq_len: int = 4096, precision: str = "bf16", optimizer: str = "adamw",
    task: str = "pretrain", zero: int = 1, flop_convention: str = "megatron", tokens: float | None = None,
    price_per_gpu_hour: float | None = None, top: int = 10, overlap: bool = True, schedule: str = "1f1b",
    tp_comm_overlap: bool = False, ep_overlap: bool = False, grad_reduce_in_fp32: bool = True, mtp_layers: int = 0,
    balanced_stages: bool = False, recompute_modules: tuple[str, ...] = (), moe_fused_mlp: bool = False,
) -> TrainSearchReport:  # fmt: skip
    """`roofline train --search`: layouts over GPU counts up to `gpus` (a node's worth, doubled),
    the least recompute that fits each, fastest first, and the GPUs-vs-time frontier. The switches
    that are not a layout (overlap, schedule, MTP, fused MoE, recompute modules ...) hold for every
    layout searched, as in `train`."""
    from roofline.training.search import pareto, search

    if top < 1:
        raise RooflineError(f"--top must be at least 1, got {top}")
    workload = model_of(model, autoregressive=True)
    node = cluster_of(hardware, system, 1).system.gpus_per_node
    counts = search_gpu_counts(gpus, node)
    clusters = {n: cluster_of(hardware, system, n) for n in counts}
    base = TrainConfig(gpus=counts[0], seq_len=seq_len, global_batch=global_batch, precision=precision,
                       optimizer=optimizer, task=task, zero=zero, flop_convention=flop_convention, dp=None,
                       overlap_grad_reduce=overlap, overlap_param_gather=overlap, schedule=schedule,
                       tp_comm_overlap=tp_comm_overlap, ep_overlap=ep_overlap, grad_reduce_in_fp32=grad_reduce_in_fp32,
                       mtp_layers=mtp_layers, balanced_stages=balanced_stages,
                       recompute_modules=tuple(recompute_modules), moe_fused_mlp=moe_fused_mlp)  # fmt: skip
    found = search(workload, clusters, base)

    def report(c: Any) -> TrainReport:
        cluster = clusters[c.config.gpus]
        return TrainReport(workload.id, cluster.accelerator.id, cluster.system.id, c.config, c.step, tokens,
                           price_per_gpu_hour)  # fmt: skip

    first = clusters[counts[0]]
    return TrainSearchReport(workload.id, first.accelerator.id, first.system.id,
                             tuple(report(c) for c in found[:top]), tuple(report(c) for c in pareto(found)),
                             counts)  # fmt: skip
