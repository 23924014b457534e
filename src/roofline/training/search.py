"""`roofline train --search`: the fastest layouts that fit, per GPU count, and the Pareto frontier
of GPUs against time.

Candidates per GPU count: tp over the powers of two up to the scale-up domain (at most 8), pp over
the powers of two up to 16 (and the layers), vpp 1 or 2 where the stage's layers split evenly, cp
1 or 2 (sequences of 8192 tokens and more), ep over the powers of two that divide the experts and
fit inside dp x tp x cp (MoE models), micro-batches of 1 and 2; for each, the least recompute that
fits (none, then selective, then full). Layouts the model or the batch refuses are left out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.training.config import RECOMPUTE, TrainConfig
from roofline.training.step import TrainStep, train_step
from roofline.workloads.base import Workload

MAX_TP = 8
MAX_PP = 16
MAX_EP = 256


@dataclass(frozen=True)
class Candidate:
    config: TrainConfig
    step: TrainStep


def _powers(limit: int) -> list[int]:
    out, p = [], 1
    while p <= limit:
        out.append(p)
        p *= 2
    return out


def _layouts(workload: Workload, base: TrainConfig, gpus: int, domain: int) -> Iterator[TrainConfig]:
    layers = workload.num_layers
    experts = int(getattr(workload, "num_experts", 0) or 0)
    for tp in _powers(min(MAX_TP, domain, gpus)):
        for pp in _powers(min(MAX_PP, layers, gpus // tp)):
            for cp in (1, 2) if base.seq_len >= 8192 else (1,):
                if gpus % (tp * pp * cp):
                    continue
                dp = gpus // (tp * pp * cp)
                eps = [e for e in _powers(min(MAX_EP, experts, dp * tp * cp)) if experts % e == 0] if experts else [1]
                vpps = [1, 2] if pp > 1 and (layers // pp) % 2 == 0 else [1]
                for ep in eps:
                    for vpp in vpps:
                        for micro in (1, 2):
                            try:
                                yield replace(base, gpus=gpus, tp=tp, pp=pp, vpp=vpp, cp=cp, ep=ep, etp=1, dp=None,
                                              micro_batch=micro, recompute="none")  # fmt: skip
                            except RooflineError:  # the batch or the experts refuse this split
                                continue


def _fitting(workload: Workload, cluster: Cluster, config: TrainConfig) -> Candidate | None:
    """The layout with the least recompute that fits, or None (refused or never fits)."""
    for recompute in RECOMPUTE:
        try:
            trial = replace(config, recompute=recompute)
            step = train_step(workload, cluster, trial)
        except RooflineError:
            return None
        if step.memory.fits:
            return Candidate(trial, step)
    return None


def search(workload: Workload, clusters: dict[int, Cluster], base: TrainConfig) -> list[Candidate]:
    """Every fitting layout over the GPU counts (`clusters`: count -> cluster), fastest first."""
    found: list[Candidate] = []
    for gpus, cluster in clusters.items():
        for config in _layouts(workload, base, gpus, cluster.system.gpus_per_domain):
            candidate = _fitting(workload, cluster, config)
            if candidate is not None:
                found.append(candidate)
    return sorted(found, key=lambda c: -c.step.tokens_per_s_per_gpu)


def pareto(candidates: list[Candidate]) -> list[Candidate]:
    """The frontier of GPUs against step time (per global batch): no other layout is faster on as
    few GPUs."""
    best: dict[int, Candidate] = {}
    for c in candidates:
        if c.config.gpus not in best or c.step.step_time_s < best[c.config.gpus].step.step_time_s:
            best[c.config.gpus] = c
    frontier, fastest = [], float("inf")
    for gpus in sorted(best):
        c = best[gpus]
        if c.step.step_time_s < fastest:
            frontier.append(c)
            fastest = c.step.step_time_s
    return frontier
