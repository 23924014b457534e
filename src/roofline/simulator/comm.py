"""Which GPUs a parallel group spans, for the collective model (collectives.py).

Layout, innermost first: tp, attention replicas (the EP group spans tp x attn_dp), pipeline
stages, model replicas; a group fills a scale-up domain before spilling to the next.
"""

from __future__ import annotations

from roofline.hardware_specs.cluster import Cluster
from roofline.simulator.collectives import GroupTopology, group_topology
from roofline.simulator.plan import ParallelPlan


def topology_for(cluster: Cluster, group: str, plan: ParallelPlan) -> GroupTopology:
    if group == "tp":
        return group_topology(cluster, plan.tp)
    if group == "ep":
        return group_topology(cluster, plan.stage_gpus)
    if group == "cp":  # cp GPUs strided by the stage's tp x attn_dp
        span = plan.stage_gpus * plan.cp
        nodes = min(plan.cp, -(-span // cluster.system.gpus_per_domain))
        return GroupTopology(plan.cp, max(1, plan.cp // nodes), nodes, cluster.scale_up, cluster.scale_out,
                             cluster.system.scale_up.in_switch_reduction and nodes == 1,
                             cluster.system.gpus_per_domain)  # fmt: skip
    if group == "pp":  # a stage hands its activations to the next: one pair, across nodes if the replica is
        crosses = plan.gpus_per_replica > cluster.system.gpus_per_domain and cluster.scale_out is not None
        return GroupTopology(2, 1 if crosses else 2, 2 if crosses else 1, cluster.scale_up, cluster.scale_out,
                             False)  # fmt: skip
    raise ValueError(f"unknown parallel group {group!r}")
