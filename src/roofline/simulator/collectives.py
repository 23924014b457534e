"""Collective communication over a topology: which links a group crosses, which algorithm and
protocol a library would pick, and how long it takes.

A group of n GPUs lands on `per_node` GPUs in each of `nodes` scale-up domains. Candidates:
- ring: 2(n-1) steps for all-reduce (n-1 for gathers); steps between nodes pay the network hop;
  its bandwidth is the slowest link a GPU drives (NVLink inside, its NIC across nodes);
- tree (multi-node): intra-node chain + binary tree across nodes: log2(nodes) network hops;
- nvls: in-switch reduction on NVSwitch systems that have it (all-reduce in one domain);
- hierarchical (multi-node): reduce-scatter inside the domain, all-reduce of 1/per_node of the data
  across nodes, all-gather inside;
each with the library's protocols (LL / LL128 / Simple), the fastest chosen as NCCL's tuner does,
or the one the user forces. time = latency + transfer + 2k sqrt(latency x transfer), transfer = bytes
moved / bandwidth; the last term is the chunked pipeline's fill and drain, which keeps mid-size
messages below the bus bandwidth (k: `pipeline_overhead` in the library YAML). algbw = size / time and
busbw = algbw x the nccl-tests factor (2(n-1)/n for all-reduce, (n-1)/n for gathers and all-to-all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster, Fabric
from roofline.hardware_specs.schema import Wiring
from roofline.ir import CollectiveKind, EpRouting
from roofline.simulator.ep_comm import EP_KINDS, EpLinks, ExpertParallelSpec, destination_gpus, kind_key, mode_time
from roofline.units import Bytes, Seconds
from roofline.yaml_io import FittedOn, read_yaml, validate_into

DATA_DIR = Path(__file__).parent / "data" / "comm"
HOP_FAMILY = {"nvlink": "nvlink", "c2c": "nvlink", "xgmi": "nvlink", "pcie": "pcie", "infiniband": "network",
              "ethernet": "network"}  # fmt: skip


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class AlgorithmSpec(_Frozen):
    base_latency: dict[str, Seconds]
    hop_latency: dict[str, dict[str, Seconds]]
    algbw_fraction: dict[str, float] | None = Field(default=None, description="by link id, with 'default'")


class AllToAllSpec(_Frozen):
    base_latency: Seconds
    hop_latency: dict[str, Seconds]
    bandwidth_fraction: float = Field(default=1.0, gt=0, le=1)


class CustomAllReduceSpec(_Frozen):
    """One-shot and two-shot all-reduce kernels over peer-mapped memory of one NVLink domain
    (TensorRT-LLM's custom AllReduce; vLLM and SGLang ship the same design), used for messages up
    to `max_bytes` (the IPC workspace); larger ones go to the base library. Per link id ('default'
    for the others): a launch-and-barrier latency, a latency per peer (flags polled per peer), and
    the fraction of the per-GPU NVLink bandwidth each kernel reaches.

    one-shot: each GPU reads every peer's whole buffer and reduces it:
        time = launch + (n - 1) peer + (n - 1) size / (bandwidth x oneshot fraction)
    two-shot: reduce-scatter then all-gather through peer memory, two barriers:
        time = launch + 2 (n - 1) peer + 2 (n - 1) / n x size / (bandwidth x twoshot fraction)
    """

    max_bytes: Bytes
    launch_latency: dict[str, Seconds]
    peer_latency: dict[str, Seconds]
    oneshot_fraction: dict[str, float]
    twoshot_fraction: dict[str, float]
    source: str
    fitted_on: FittedOn = Field(default_factory=list)

    @staticmethod
    def for_link(table: dict[str, float], link_id: str) -> float:
        if link_id in table:
            return table[link_id]
        if "default" not in table:
            raise RooflineError(f"custom_all_reduce has no value for link {link_id} and no 'default'")
        return table["default"]


class CommLibrary(_Frozen):
    id: str
    name: str
    base: str | None = None
    protocols: dict[str, float] = Field(default_factory=dict)
    algorithms: dict[str, AlgorithmSpec] = Field(default_factory=dict)
    all_to_all: AllToAllSpec | None = None
    custom_all_reduce: CustomAllReduceSpec | None = None
    expert_parallel: ExpertParallelSpec | None = None  # EP dispatch / combine kernels (ep_comm.py)
    scale_out_fraction: float = Field(default=1.0, gt=0)
    pipeline_overhead: float = Field(default=0.0, ge=0)
    source: str
    fitted_on: FittedOn = Field(default_factory=list, description="measurement rows constants were fitted on")


def library_ids() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))


@lru_cache(maxsize=8)
def load_library(library_id: str = "nccl") -> CommLibrary:
    path = DATA_DIR / f"{library_id}.yaml"
    if not path.is_file():
        raise RooflineError(f"unknown communication library '{library_id}'; known: {', '.join(library_ids())}")
    item = validate_into(CommLibrary, read_yaml(path), f"'{path}'")
    assert isinstance(item, CommLibrary)
    if item.base is None:
        return item
    parent = load_library(item.base)  # a profile states only what differs from its base
    return parent.model_copy(update={k: getattr(item, k) for k in item.model_fields_set if k != "base"})


# ---- topology ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupTopology:
    """n GPUs: `per_node` in each of `nodes` scale-up domains."""

    size: int
    per_node: int
    nodes: int
    intra: Fabric
    inter: Fabric | None
    in_switch_reduction: bool
    domain: int = 0  # GPUs in one scale-up domain of the system (0: unknown)

    @property
    def levels(self) -> tuple[str, ...]:
        names = [self.intra.link.id] if self.per_node > 1 else []
        if self.nodes > 1 and self.inter is not None:
            names.append(self.inter.link.id)
        return tuple(names)


def group_topology(cluster: Cluster, size: int) -> GroupTopology:
    """A group of consecutive GPUs: it fills one scale-up domain before spilling to the next."""
    domain = cluster.system.gpus_per_domain
    per_node = min(size, domain)
    nodes = math.ceil(size / domain)
    if nodes > 1 and cluster.scale_out is None:
        raise RooflineError(
            f"a group of {size} GPUs spans {nodes} domains of {cluster.system.id}, which has no scale-out fabric"
        )
    return GroupTopology(size, per_node, nodes, cluster.scale_up, cluster.scale_out,
                         cluster.system.scale_up.in_switch_reduction, domain)  # fmt: skip


# ---- costs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectiveCost:
    kind: CollectiveKind
    size_bytes: float
    group_size: int
    time_s: float
    algorithm: str
    protocol: str
    levels: tuple[str, ...]

    @property
    def algbw_bytes_per_s(self) -> float:
        return self.size_bytes / self.time_s if self.time_s else math.inf

    @property
    def busbw_bytes_per_s(self) -> float:
        return self.algbw_bytes_per_s * bus_factor(self.kind, self.group_size)


def bus_factor(kind: CollectiveKind, n: int) -> float:
    """nccl-tests PERFORMANCE.md: busbw = algbw x this factor."""
    if n <= 1:
        return 1.0
    if kind is CollectiveKind.ALL_REDUCE:
        return 2.0 * (n - 1) / n
    if kind in (CollectiveKind.ALL_GATHER, CollectiveKind.REDUCE_SCATTER, CollectiveKind.ALL_TO_ALL):
        return (n - 1) / n
    return 1.0


def _bandwidth(fabric: Fabric, peers: int, ideal: bool, extra_fraction: float = 1.0, domain: int = 0) -> float:
    """Per-GPU per-direction bandwidth toward `peers` other GPUs over this fabric.

    Root-complex wiring (PCIe without NVLink): GPUs hang off the CPU sockets' root ports, so a group
    of more GPUs than one socket holds (`domain` / sockets) has pairs whose peer traffic crosses the
    inter-socket link, and the slowest pair paces a ring."""
    fraction = 1.0 if ideal else min(1.0, fabric.link.achievable_fraction * extra_fraction)
    if fabric.wiring is Wiring.POINT_TO_POINT:  # one link per peer: a small group uses few of them
        return fabric.link.bandwidth_per_port * min(fabric.ports_per_gpu, max(peers, 1)) * fraction
    if fabric.wiring is Wiring.ROOT_COMPLEX and domain and peers + 1 > domain // fabric.sockets and not ideal:
        fraction *= fabric.cross_socket_fraction
    return fabric.bandwidth_per_gpu_bytes_per_s * fraction


if TYPE_CHECKING:  # numpy loads only where arrays of sizes are asked for (the estimate never does)
    import numpy as np

    Sizes = float | np.ndarray  # one message size (bytes) or an array of them; times follow the same shape


class CollectiveModel:
    def __init__(self, library: CommLibrary | None = None, ideal: bool = False) -> None:
        self.library, self.ideal = library or load_library(), ideal

    def _hop(self, spec: AlgorithmSpec, fabric: Fabric, protocol: str) -> float:
        family = HOP_FAMILY[fabric.link.family]
        return 0.0 if self.ideal else spec.hop_latency.get(family, {}).get(protocol, fabric.latency_s)

    def _base(self, spec: AlgorithmSpec, protocol: str) -> float:
        return 0.0 if self.ideal else spec.base_latency[protocol]

    def _pipelined(self, latency_s: float, transfer_s: Sizes) -> Sizes:
        """Latency + transfer + the pipeline's fill and drain: 2k sqrt(latency x transfer)."""
        k = 0.0 if self.ideal else self.library.pipeline_overhead
        if isinstance(transfer_s, (int, float)):
            return latency_s + transfer_s + 2.0 * k * math.sqrt(latency_s * transfer_s)
        import numpy as np

        return latency_s + transfer_s + 2.0 * k * np.sqrt(latency_s * transfer_s)

    def _proto(self, protocol: str) -> float:
        return 1.0 if self.ideal else self.library.protocols.get(protocol, 1.0)

    def _bottleneck(self, topo: GroupTopology) -> float:
        bandwidth = _bandwidth(topo.intra, topo.per_node - 1, self.ideal, domain=topo.domain)
        if topo.nodes > 1 and topo.inter is not None:
            nic = _bandwidth(topo.inter, topo.nodes - 1, self.ideal, self.library.scale_out_fraction)
            bandwidth = min(bandwidth, nic)
        return bandwidth

    # each candidate returns time in seconds
    def _ring(self, kind: CollectiveKind, size: Sizes, topo: GroupTopology, protocol: str) -> Sizes:
        spec, n = self.library.algorithms["ring"], topo.size
        steps = {CollectiveKind.ALL_REDUCE: 2 * (n - 1), CollectiveKind.BROADCAST: n - 1}.get(kind, n - 1)
        # NCCL tuning.cc: nInterSteps = 2(nNodes - 1) for all-reduce, nNodes - 1 otherwise; never more than all
        inter_steps = 0 if topo.nodes == 1 else (2 if kind is CollectiveKind.ALL_REDUCE else 1) * (topo.nodes - 1)
        inter_steps = min(inter_steps, steps)
        latency = self._base(spec, protocol) + (steps - inter_steps) * self._hop(spec, topo.intra, protocol)
        if inter_steps and topo.inter is not None:
            latency += inter_steps * self._hop(spec, topo.inter, protocol)
        moved = size * (bus_factor(kind, n) if kind is not CollectiveKind.BROADCAST else 1.0)
        return self._pipelined(latency, moved / (self._bottleneck(topo) * self._proto(protocol)))

    def _tree(self, size: Sizes, topo: GroupTopology, protocol: str) -> Sizes:
        spec = self.library.algorithms["tree"]
        assert topo.inter is not None
        intra_hops = (topo.per_node - 1) * self._hop(spec, topo.intra, protocol)
        inter_hops = math.log2(topo.nodes) * self._hop(spec, topo.inter, protocol)
        latency = self._base(spec, protocol) + 2 * (intra_hops + inter_hops)
        # each node sends and receives the whole buffer once over its NICs (NCCL tree: up then down)
        nic = _bandwidth(topo.inter, topo.nodes - 1, self.ideal, self.library.scale_out_fraction) * topo.per_node
        intra = _bandwidth(topo.intra, topo.per_node - 1, self.ideal, domain=topo.domain)
        bandwidth = min(intra, nic) * self._proto(protocol)
        return self._pipelined(latency, 2.0 * size / bandwidth)

    def _nvls(self, size: Sizes, topo: GroupTopology) -> Sizes:
        spec = self.library.algorithms["nvls"]
        fractions = spec.algbw_fraction or {}
        fraction = 1.0 if self.ideal else fractions.get(topo.intra.link.id, fractions.get("default", 1.0))
        algbw = topo.intra.bandwidth_per_gpu_bytes_per_s * fraction
        return self._pipelined(self._base(spec, "Simple") + self._hop(spec, topo.intra, "Simple"), size / algbw)

    def _hierarchical(self, size: Sizes, topo: GroupTopology) -> Sizes:
        intra = GroupTopology(topo.per_node, topo.per_node, 1, topo.intra, None, topo.in_switch_reduction, topo.domain)
        inter = GroupTopology(topo.nodes, 1, topo.nodes, topo.intra, topo.inter, False)
        gather = self._time(CollectiveKind.REDUCE_SCATTER, size, intra)
        across = self._time(CollectiveKind.ALL_REDUCE, size / topo.per_node, inter)
        return 2 * gather + across

    def _custom_all_reduce(self, size: Sizes, topo: GroupTopology) -> dict[tuple[str, str], Sizes]:
        """One-shot and two-shot peer-memory all-reduces (CustomAllReduceSpec); sizes above the
        workspace get an infinite time (the base library's algorithms take them)."""
        spec = self.library.custom_all_reduce
        assert spec is not None
        link, n = topo.intra.link.id, topo.size
        bandwidth = _bandwidth(topo.intra, n - 1, True)  # the fractions below are this library's own
        launch = 0.0 if self.ideal else spec.for_link(spec.launch_latency, link)
        peer = 0.0 if self.ideal else spec.for_link(spec.peer_latency, link)
        one = 1.0 if self.ideal else spec.for_link(spec.oneshot_fraction, link)
        two = 1.0 if self.ideal else spec.for_link(spec.twoshot_fraction, link)
        oneshot = launch + (n - 1) * peer + (n - 1) * size / (bandwidth * one)
        twoshot = launch + 2 * (n - 1) * peer + 2.0 * (n - 1) / n * size / (bandwidth * two)
        if isinstance(size, (int, float)):
            if size > spec.max_bytes:
                return {}
            return {("oneshot", "custom"): oneshot, ("twoshot", "custom"): twoshot}
        import numpy as np

        over = np.asarray(size) > spec.max_bytes
        return {
            ("oneshot", "custom"): np.where(over, np.inf, oneshot),
            ("twoshot", "custom"): np.where(over, np.inf, twoshot),
        }

    def _time(self, kind: CollectiveKind, size: Sizes, topo: GroupTopology) -> Sizes:
        if isinstance(size, (int, float)):
            return self.cost(kind, size, topo).time_s
        return self.times(kind, size, topo)

    def _all_to_all(self, size: Sizes, topo: GroupTopology) -> Sizes:
        spec = self.library.all_to_all
        assert spec is not None
        fraction = 1.0 if self.ideal else spec.bandwidth_fraction
        n, d = topo.size, topo.per_node
        intra_bytes, inter_bytes = size * (d - 1) / n, size * (n - d) / n
        intra_bw = _bandwidth(topo.intra, d - 1, self.ideal, domain=topo.domain) * fraction
        time = intra_bytes / intra_bw if d > 1 else 0.0 * size
        hop: Sizes = spec.hop_latency.get(HOP_FAMILY[topo.intra.link.family], 0.0)
        if topo.inter is not None and n > d:  # the bytes that leave the domain pace it, at the NIC's hop
            out = _bandwidth(topo.inter, n - d, self.ideal, self.library.scale_out_fraction) * fraction
            out_hop = spec.hop_latency.get(HOP_FAMILY[topo.inter.link.family], hop)
            if not isinstance(inter_bytes, (int, float)):
                import numpy as np

                leaves = inter_bytes != 0
                time = np.where(leaves, np.maximum(time, inter_bytes / out), time)
                hop = np.where(leaves, out_hop, hop)
            elif inter_bytes:
                time, hop = max(time, inter_bytes / out), out_hop
        return time + (0.0 if self.ideal else spec.base_latency + hop)

    def _ep_links(self, topo: GroupTopology) -> EpLinks:
        nvlink = _bandwidth(topo.intra, topo.per_node - 1, ideal=True)
        rdma = _bandwidth(topo.inter, topo.size - topo.per_node, ideal=True) if topo.inter is not None else 0.0
        return EpLinks(nvlink, rdma)

    def _expert_parallel(self, kind: CollectiveKind, size: Sizes, topo: GroupTopology, routing: EpRouting | None,
                         sms: int | None = None) -> dict[tuple[str, str], Sizes]:  # fmt: skip
        """EP dispatch / combine: each kernel family of the library that runs on this group; a
        library with none sends each token once per destination GPU through its all-to-all."""
        spec = self.library.expert_parallel
        if routing is None or spec is None or not spec.modes:
            copies = 1.0 if routing is None else destination_gpus(routing, topo.size) * routing.imbalance
            return {("all_to_all", "p2p"): self._all_to_all(size * copies, topo)}
        links, key = self._ep_links(topo), kind_key(kind)
        options: dict[tuple[str, str], Sizes] = {}
        for name, mode in spec.modes.items():
            if (mode.single_domain and topo.nodes > 1) or (mode.host_sync and routing.cuda_graph):
                continue
            options[name, mode.payload[key]] = mode_time(mode, kind, size, routing, topo, links, self.ideal, sms)
        if not options:
            raise RooflineError(f"no EP kernel of {self.library.id} runs on a group over {topo.nodes} domains")
        return options

    def candidates(self, kind: CollectiveKind, size: Sizes, topo: GroupTopology, routing: EpRouting | None = None,
                   sms: int | None = None) -> dict[tuple[str, str], Sizes]:  # fmt: skip
        """Time of each (algorithm, protocol) that applies, for one size or an array of sizes."""
        if kind is CollectiveKind.ALL_TO_ALL:
            return {("all_to_all", "p2p"): self._all_to_all(size, topo)}
        if kind in EP_KINDS:
            return self._expert_parallel(kind, size, topo, routing, sms)
        options: dict[tuple[str, str], Sizes] = {}
        for protocol in self.library.algorithms["ring"].base_latency:
            options["ring", protocol] = self._ring(kind, size, topo, protocol)
        if kind is CollectiveKind.ALL_REDUCE and topo.nodes > 1 and "tree" in self.library.algorithms:
            for protocol in self.library.algorithms["tree"].base_latency:
                options["tree", protocol] = self._tree(size, topo, protocol)
            if topo.per_node > 1:  # the inter-node step itself has one GPU per node
                options["hierarchical", "mixed"] = self._hierarchical(size, topo)
        nvls_ok = topo.in_switch_reduction and topo.nodes == 1 and topo.size > 1
        if kind is CollectiveKind.ALL_REDUCE and nvls_ok and "nvls" in self.library.algorithms:
            options["nvls", "Simple"] = self._nvls(size, topo)
        custom_ok = topo.nodes == 1 and topo.size > 1 and topo.intra.link.family == "nvlink"
        if kind is CollectiveKind.ALL_REDUCE and custom_ok and self.library.custom_all_reduce is not None:
            options.update(self._custom_all_reduce(size, topo))
        return options

    def cost(self, kind: CollectiveKind, size: float, topo: GroupTopology, algorithm: str | None = None,
             routing: EpRouting | None = None, sms: int | None = None) -> CollectiveCost:  # fmt: skip
        """The fastest (or the forced `algorithm`) way to run it; EP dispatch / combine take the
        routing (`routing`) and optionally the SMs their kernel gets (`sms`)."""
        if topo.size <= 1 and kind is not CollectiveKind.SEND_RECV:
            return CollectiveCost(kind, size, 1, 0.0, "none", "none", ())
        if kind is CollectiveKind.SEND_RECV:
            return self._send_recv(size, topo)
        options = self.candidates(kind, size, topo, routing, sms)
        if algorithm is not None:
            options = {k: v for k, v in options.items() if k[0] == algorithm}
            if not options:
                raise RooflineError(f"algorithm '{algorithm}' does not apply to {kind.value} on this group")
        (name, protocol), time = min(options.items(), key=lambda kv: kv[1])
        return CollectiveCost(kind, size, topo.size, float(time), name, protocol, topo.levels)

    def times(self, kind: CollectiveKind, sizes: np.ndarray, topo: GroupTopology, routing: EpRouting | None = None
              ) -> np.ndarray:  # fmt: skip
        """`cost(kind, s, topo).time_s` for every s of `sizes`, in one pass of array arithmetic (the
        same formulas: the fastest candidate per size)."""
        import numpy as np

        sizes = np.asarray(sizes, dtype=float)
        if topo.size <= 1 and kind is not CollectiveKind.SEND_RECV:
            return np.zeros_like(sizes)
        if kind is CollectiveKind.SEND_RECV:
            latency_s, bandwidth, _ = self._send_recv_terms(topo)
            return latency_s + sizes / bandwidth
        options = list(self.candidates(kind, sizes, topo, routing).values())
        return np.minimum.reduce([np.broadcast_to(o, sizes.shape) for o in options])

    def _send_recv_terms(self, topo: GroupTopology) -> tuple[float, float, Fabric]:
        """Latency, bandwidth and fabric of a point-to-point transfer (a pipeline hand-off)."""
        spec = self.library.algorithms["ring"]
        fabric = topo.inter if topo.nodes > 1 and topo.inter is not None else topo.intra
        latency = self._base(spec, "Simple") + self._hop(spec, fabric, "Simple")
        return latency, _bandwidth(fabric, 1, self.ideal), fabric

    def _send_recv(self, size: float, topo: GroupTopology) -> CollectiveCost:
        latency, bandwidth, fabric = self._send_recv_terms(topo)
        return CollectiveCost(CollectiveKind.SEND_RECV, size, 2, latency + size / bandwidth, "p2p", "Simple",
                              (fabric.link.id,))  # fmt: skip
