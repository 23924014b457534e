"""Parallel plan and scenario: how a workload is split over GPUs and what it is asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field

from roofline.errors import RooflineError
from roofline.ir import Placement, Precision
from roofline.workloads.base import Workload


@dataclass(frozen=True)
class ParallelPlan:
    tp: int = 1
    pp: int = 1
    dp: int = 1

    def __post_init__(self) -> None:
        for name, value in (("tp", self.tp), ("pp", self.pp), ("dp", self.dp)):
            if value < 1:
                raise RooflineError(f"--{name} must be at least 1, got {value}")

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def num_gpus(self) -> int:
        return self.gpus_per_replica * self.dp

    @classmethod
    def for_gpus(cls, tp: int, pp: int, num_gpus: int | None) -> ParallelPlan:
        """`--gpus N` beyond tp x pp becomes data-parallel replicas."""
        if num_gpus is None:
            return cls(tp=tp, pp=pp)
        if num_gpus < 1 or num_gpus % (tp * pp):
            raise RooflineError(
                f"--gpus {num_gpus} is not a multiple of tp x pp = {tp * pp}; use a multiple or drop --gpus"
            )
        return cls(tp=tp, pp=pp, dp=num_gpus // (tp * pp))


@dataclass(frozen=True)
class Scenario:
    """A batch of `batch` sequences per replica with `isl` prompt and `osl` output tokens."""

    batch: int
    isl: int
    osl: int
    precision: Precision = field(default_factory=Precision)
    plan: ParallelPlan = field(default_factory=ParallelPlan)
    reserve_bytes: float | None = None  # None: the accelerator's runtime_reserve

    def __post_init__(self) -> None:
        for name, value in (("batch", self.batch), ("isl", self.isl), ("osl", self.osl)):
            if value < 1:
                raise RooflineError(f"--{name} must be at least 1, got {value}")

    @property
    def micro_batches(self) -> int:
        """Micro-batches in flight: one per pipeline stage when the batch allows."""
        return min(self.plan.pp, self.batch)

    @property
    def micro_batch(self) -> int:
        return -(-self.batch // self.micro_batches)


def stage_placements(workload: Workload, plan: ParallelPlan) -> list[Placement]:
    """Layers split as evenly as possible over the pipeline stages (earlier stages take the extra
    layer); the first stage holds the embedding, the last the LM head."""
    workload.check_parallel(plan.tp, plan.pp)
    base, extra = divmod(workload.num_layers, plan.pp)
    placements, start = [], 0
    for stage in range(plan.pp):
        layers = base + (1 if stage < extra else 0)
        placements.append(
            Placement(
                tp=plan.tp,
                layer_start=start,
                layer_end=start + layers,
                has_embedding=stage == 0,
                has_lm_head=stage == plan.pp - 1,
            )
        )
        start += layers
    return placements
