"""Kernel rows of scenario ep_dispatch / ep_combine (README of the validation data): one MoE dispatch
or combine timed by the EP collective model (simulator/ep_comm.py), its bandwidth reported the way
the row's source defines it:

- DeepEP normal kernels (V1 and V2), transport nvlink: bytes a rank receives, its own share
  included (tokens x expected destination GPUs x payload) / time;
- DeepEP normal, transport rdma: tokens x expected destination NODES (the local one included) x
  payload / time (tests/test_internode.py counts (token, node) pairs);
- DeepEP low-latency: tokens x topk x payload / time (one copy per expert; FP8 payload plus a 16-byte
  per-token header as the test script counts it);
- TensorRT-LLM one-sided: tokens x min(ep, topk) x bytes per token / time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.ir import CollectiveKind, EpRouting
from roofline.simulator.collectives import CollectiveCost, CollectiveModel, group_topology, load_library
from roofline.simulator.ep_comm import PAYLOAD_BYTES_PER_ELEMENT, units_hit
from roofline.validation.cases import Case
from roofline.validation.predict import Prediction

LIBRARY_OF_MODE = {"normal": "deepep", "low_latency": "deepep", "one_sided": "trtllm"}
LL_HEADER_BYTES = 16  # DeepEP low-latency test: per-token bytes counted beyond the FP8 values and scales
DEEPEP_NODE_GROUPS = 4  # DeepEP internode tests route each token to the top min(nodes, 4) node groups


@dataclass(frozen=True)
class EpRow:
    kind: CollectiveKind
    tokens: int
    hidden: int
    top_k: int
    experts: int
    ep: int
    nodes: int
    mode: str
    transport: str
    sms: int | None

    @classmethod
    def of(cls, case: Case) -> EpRow:
        f = case.load_fields
        mode, transport = f.get("mode", ""), f.get("transport", "")
        if mode not in LIBRARY_OF_MODE:
            raise RooflineError(f"unknown EP kernel mode '{mode}' (known: {', '.join(LIBRARY_OF_MODE)})")
        kind = CollectiveKind.EP_DISPATCH if case.scenario == "ep_dispatch" else CollectiveKind.EP_COMBINE
        sms = case.load_int("sms") if "sms" in f else None
        n = case.load_int
        return cls(kind, n("tokens"), n("hidden"), n("topk"), n("experts"), n("ep"), n("nodes"), mode, transport, sms)


def _payload_bytes_per_token(row: EpRow, case: Case) -> tuple[float, str]:
    """Bytes of one token on the wire, and where that figure comes from."""
    printed = re.search(r"(\d+)\s*B/token", case.notes)
    if printed:
        return float(printed.group(1)), f"{printed.group(1)} B/token as the row's notes print"
    if row.mode == "one_sided":
        return 2.0 * row.hidden, "BF16 payload"
    if row.kind is CollectiveKind.EP_DISPATCH:
        return row.hidden * PAYLOAD_BYTES_PER_ELEMENT["fp8_block"], "FP8 + 1x128 FP32 scales"
    return 2.0 * row.hidden, "BF16"


def _routing(row: EpRow, element_bytes: float) -> tuple[EpRouting, str]:
    if row.mode == "normal" and row.nodes > 1:
        groups = min(row.nodes, DEEPEP_NODE_GROUPS)
        return (EpRouting(row.top_k, row.experts, groups=row.nodes, topk_groups=groups, element_bytes=element_bytes),
                f"node-limited routing: top {groups} of {row.nodes} node groups (DeepEP test_internode)")  # fmt: skip
    return EpRouting(row.top_k, row.experts, element_bytes=element_bytes), "uniform top-k routing"


def _logical_gbps(row: EpRow, routing: EpRouting, payload: float, time_s: float) -> tuple[float, str]:
    """The bandwidth figure the row's source prints, in GB/s."""
    if row.mode == "one_sided":
        return row.tokens * min(row.ep, row.top_k) * payload / time_s / 1e9, "TRT-LLM: tokens x min(ep, topk) x B/token"
    if row.mode == "low_latency":
        per_token = payload + (LL_HEADER_BYTES if row.kind is CollectiveKind.EP_DISPATCH else 0)
        return row.tokens * row.top_k * per_token / time_s / 1e9, "DeepEP low-latency: tokens x topk x B/token"
    units = row.nodes if row.transport == "rdma" else row.ep
    hit = units_hit(units, routing.experts, routing.top_k, routing.groups, routing.topk_groups)
    label = "destination nodes" if row.transport == "rdma" else "destination GPUs"
    return row.tokens * hit * payload / time_s / 1e9, f"DeepEP bottleneck ({row.transport}): tokens x {label} x B/token"


def _cost(row: EpRow, case: Case, routing: EpRouting, message_bytes: float) -> CollectiveCost:
    if not case.hardware:
        raise RooflineError("the row has no hardware id")
    cluster = resolve_cluster(hardware=case.hardware, num_gpus=row.ep)
    topo = group_topology(cluster, row.ep)
    if topo.nodes != row.nodes:
        raise RooflineError(f"{row.ep} GPUs of {case.hardware} span {topo.nodes} domains, the row says {row.nodes}")
    library = load_library(LIBRARY_OF_MODE[row.mode])
    if row.mode == "low_latency" and row.transport == "rdma":  # before DeepEP PR #173: peers in the node over RDMA
        assert library.expert_parallel is not None
        modes = dict(library.expert_parallel.modes)
        modes[row.mode] = modes[row.mode].model_copy(update={"intranode_nvlink": False})
        spec = library.expert_parallel.model_copy(update={"modes": modes})
        library = library.model_copy(update={"expert_parallel": spec})
    model = CollectiveModel(library)
    return model.cost(row.kind, message_bytes, topo, algorithm=row.mode, routing=routing, sms=row.sms)


def ep_all_to_all(case: Case) -> Prediction:
    row = EpRow.of(case)
    payload, payload_note = _payload_bytes_per_token(row, case)
    element_bytes = 2.0 if row.mode != "one_sided" else payload / row.hidden  # DeepEP quantizes BF16 in the kernel
    routing, routing_note = _routing(row, element_bytes)
    cost = _cost(row, case, routing, row.tokens * row.hidden * element_bytes)
    gbps, definition = _logical_gbps(row, routing, payload, cost.time_s)
    note = (f"{row.mode} ({LIBRARY_OF_MODE[row.mode]}), {payload_note}, {routing_note}, "
            f"{'pure RDMA' if row.transport == 'rdma' and row.mode == 'low_latency' else row.transport}; "
            f"gbps = {definition}")  # fmt: skip
    return Prediction({"latency_us": cost.time_s * 1e6, "gbps": gbps}, note)
