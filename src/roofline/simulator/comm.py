"""Collective cost: a ring alpha-beta model over the fabric a parallel group spans.

This is the foundation issue's simple model; the communication issue replaces it with
topology-aware algorithms. Message sizes follow nccl-tests: all-reduce and all-gather sizes
are the full buffer on each GPU.

    all-reduce (ring):  base + 2(n-1) hop + 2(n-1)/n * S / (B * f)
    all-gather, reduce-scatter: base + (n-1) hop + (n-1)/n * S / (B * f)
    send/recv:          base + hop + S / (B * f)

with B the per-GPU per-direction bandwidth of the fabric and f its achievable fraction
(NCCL's bus bandwidth arithmetic, nccl-tests PERFORMANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from roofline.hardware_specs.cluster import Cluster, Fabric
from roofline.hardware_specs.schema import Wiring
from roofline.ir import Collective, CollectiveKind
from roofline.simulator.plan import ParallelPlan
from roofline.units import Seconds
from roofline.yaml_io import read_yaml, validate_into

DATA_DIR = Path(__file__).parent / "data"


class CommLibrary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    base_latency: Seconds
    hop_latency: dict[str, Seconds]
    source: str


@lru_cache(maxsize=4)
def load_library(library_id: str = "nccl") -> CommLibrary:
    path = DATA_DIR / f"{library_id}.yaml"
    item = validate_into(CommLibrary, read_yaml(path), f"'{path}'")
    assert isinstance(item, CommLibrary)
    return item


@dataclass(frozen=True)
class GroupLayout:
    """GPUs per parallel group and the fabric the group's slowest hop crosses."""

    size: int
    fabric: Fabric


def group_layout(cluster: Cluster, group: str, plan: ParallelPlan) -> GroupLayout:
    """GPUs of a group and the fabric its slowest hop crosses. Layout, innermost first: tp,
    attention replicas (the EP group spans both), pipeline stages, model replicas. A group that
    does not fit in one scale-up domain crosses the scale-out fabric."""
    size, span = {
        "tp": (plan.tp, plan.tp),
        "ep": (plan.stage_gpus, plan.stage_gpus),
        "pp": (plan.pp, plan.gpus_per_replica),
    }.get(group, (1, 1))
    inside = span <= cluster.system.gpus_per_domain
    fabric = cluster.scale_up if inside or cluster.scale_out is None else cluster.scale_out
    return GroupLayout(size=size, fabric=fabric)


def collective_time_s(collective: Collective, layout: GroupLayout, library: CommLibrary, ideal: bool = False) -> float:
    n = layout.size
    if n <= 1 and collective.kind is not CollectiveKind.SEND_RECV:
        return 0.0
    fabric = layout.fabric
    fraction = 1.0 if ideal else fabric.link.achievable_fraction
    bandwidth = fabric.bandwidth_per_gpu_bytes_per_s * fraction
    if fabric.wiring is Wiring.POINT_TO_POINT:
        # direct links, one per peer: a group of n uses at most n - 1 of a GPU's links
        bandwidth = fabric.link.bandwidth_per_port * min(fabric.ports_per_gpu, max(n - 1, 1)) * fraction
    hop = 0.0 if ideal else library.hop_latency.get(fabric.link.family, fabric.latency_s)
    base = 0.0 if ideal else library.base_latency
    size = collective.message_bytes
    if collective.kind is CollectiveKind.ALL_REDUCE:
        return base + 2 * (n - 1) * hop + 2 * (n - 1) / n * size / bandwidth
    if collective.kind in (CollectiveKind.ALL_GATHER, CollectiveKind.REDUCE_SCATTER, CollectiveKind.ALL_TO_ALL):
        return base + (n - 1) * hop + (n - 1) / n * size / bandwidth
    return base + hop + size / bandwidth  # send/recv
