"""Expert-parallel dispatch and combine: the MoE all-to-alls as their own collectives.

A GPU holds T tokens (the collective's message: T x width x element bytes, one copy each). Each
token picks top_k of E routed experts spread evenly over the n GPUs of the EP group (d per scale-up
domain, M domains). What crosses the links depends on the kernel family (`sends` of a mode):

- `node` (DeepEP normal / high-throughput kernels): a token crosses the scale-out fabric once per
  destination DOMAIN (RDMA to the GPU of the same local index there), then is forwarded over NVLink
  to each destination GPU of that domain; RDMA and NVLink run concurrently (the slower paces it);
- `gpu` (TensorRT-LLM NVLinkOneSided): written once per destination GPU;
- `expert` (DeepEP low-latency kernels): one copy per (token, expert) pair, to NVLink peers inside
  the domain and over RDMA to the others (or all over RDMA: `intranode_nvlink: false`).

Expected destinations are exact hypergeometric expectations (`units_hit`): with E/U experts per
unit (GPU or domain), a unit is hit unless all k picks miss it: U (1 - C(E - E/U, k) / C(E, k))
(top-8 of 256 over 8 GPUs: 5.29; the (1 - 1/U)^k approximation gives 5.25). DeepSeek's node-limited
routing (top `topk_groups` of `groups` expert groups first) shrinks the pool the k picks come from.
The busiest rank receives `imbalance` x the mean, and the call waits for it.

time = latency[kind] + latency_per_peer x (n - 1) + max(rdma_bytes / (NIC x rdma_fraction),
nvlink_bytes / (NVLink x nvlink_fraction x sm_share)), sm_share = sms / (sms + sm_half_saturation)
(`sum` instead of max where a mode says so). Payload: `fp8_block` = FP8 values plus one FP32 scale
per 128 (1 + 4/128 bytes per element); `activation` = the model's activation dtype; `bf16`;
`expert_input` = the experts' quantized input where the model has one (post-quantization dispatch:
NVFP4 0.5 + 1/16 bytes per value, FP8 with 1x128 scales), else the activation dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from roofline.errors import RooflineError
from roofline.ir import CollectiveKind, EpRouting
from roofline.units import Seconds

if TYPE_CHECKING:
    from roofline.simulator.collectives import GroupTopology, Sizes

EP_KINDS = (CollectiveKind.EP_DISPATCH, CollectiveKind.EP_COMBINE)
PAYLOAD_BYTES_PER_ELEMENT = {"fp8_block": 1.0 + 4.0 / 128.0, "bf16": 2.0, "fp8": 1.0}
EpKindKey = Literal["dispatch", "combine"]
PayloadFormat = Literal["fp8_block", "bf16", "fp8", "activation", "expert_input"]


def _activation_both_ways() -> dict[EpKindKey, PayloadFormat]:
    return {"dispatch": "activation", "combine": "activation"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class EpModeSpec(_Frozen):
    """One dispatch / combine kernel family of a communication library."""

    sends: Literal["node", "gpu", "expert"]
    latency: dict[EpKindKey, Seconds]
    latency_per_peer: Seconds = 0.0
    nvlink_fraction: float = Field(gt=0, le=1)
    rdma_fraction: float = Field(default=1.0, gt=0, le=1)
    overlap: Literal["max", "sum"] = "max"
    intranode_nvlink: bool = True  # False: intra-domain peers over RDMA too (DeepEP low-latency before NVLink)
    single_domain: bool = False  # the kernel works inside one NVLink domain only
    host_sync: bool = False  # the host waits for receive counts: not in a CUDA graph (decode steps)
    sms: int | None = Field(default=None, gt=0)  # SMs the kernel gets by default
    sm_half_saturation: float = Field(default=0.0, ge=0)
    payload: dict[EpKindKey, PayloadFormat] = Field(default_factory=_activation_both_ways)
    fitted_on: list[str] = Field(default_factory=list)
    source: str


class ExpertParallelSpec(_Frozen):
    modes: dict[str, EpModeSpec]
    source: str = ""


# ---- expected destinations ---------------------------------------------------------------------


@lru_cache(maxsize=4096)
def units_hit(units: int, experts: int, top_k: int, groups: int = 1, topk_groups: int = 1) -> float:
    """Expected distinct units (GPUs or domains, each holding experts/units experts) that one token's
    top_k distinct experts land on; with group-limited routing the k picks come from topk_groups of
    `groups` equal expert groups (groups and units nested either way)."""
    if units <= 1 or top_k <= 0:
        return float(min(units, 1))
    k = min(top_k, experts)
    per_unit = experts / units
    if groups <= 1 or topk_groups >= groups:
        return units * _hit(experts, per_unit, k)
    per_group, pool = experts / groups, experts * topk_groups / groups
    if per_group >= per_unit:  # a unit lies inside one group: hit only when its group is picked
        return units * topk_groups / groups * _hit(pool, per_unit, k)
    in_unit = round(per_unit / per_group)  # groups per unit: how many of them were picked, hypergeometric
    total = 0.0
    for j in range(1, min(in_unit, topk_groups) + 1):
        p_j = math.comb(in_unit, j) * math.comb(groups - in_unit, topk_groups - j) / math.comb(groups, topk_groups)
        total += p_j * _hit(pool, j * per_group, k)
    return units * total


def _hit(pool: float, inside: float, k: int) -> float:
    """P(at least one of k distinct picks from `pool` falls among `inside` of them)."""
    return 1.0 - _comb(pool - inside, k) / _comb(pool, k)


def _comb(n: float, k: int) -> float:
    """C(n, k) for a real n (expert counts per unit need not be integers when E % n != 0)."""
    if n < k:
        return 0.0
    return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1))


def destination_gpus(routing: EpRouting, ep: int) -> float:
    return units_hit(ep, routing.experts, routing.top_k, routing.groups, routing.topk_groups)


# ---- traffic and time --------------------------------------------------------------------------


@dataclass(frozen=True)
class EpTraffic:
    """Bytes one GPU (the busiest) moves per byte of its token volume, by link."""

    nvlink: float
    rdma: float


def kind_key(kind: CollectiveKind) -> EpKindKey:
    return "dispatch" if kind is CollectiveKind.EP_DISPATCH else "combine"


def payload_factor(spec: EpModeSpec, kind: CollectiveKind, routing: EpRouting) -> float:
    """Bytes on the wire per byte of the activation-dtype message."""
    fmt = spec.payload[kind_key(kind)]
    if fmt == "expert_input":  # quantized before the dispatch when the experts take a quantized input
        return (routing.quantized_element_bytes or routing.element_bytes) / routing.element_bytes
    return 1.0 if fmt == "activation" else PAYLOAD_BYTES_PER_ELEMENT[fmt] / routing.element_bytes


def traffic(spec: EpModeSpec, routing: EpRouting, topo: GroupTopology) -> EpTraffic:
    """Link bytes per byte of token volume (payload format aside), the busiest rank's share."""
    n, d, m = topo.size, topo.per_node, topo.nodes
    scale = routing.imbalance
    if spec.sends == "expert":
        copies = min(routing.top_k, routing.experts) * scale
        if not spec.intranode_nvlink:
            return EpTraffic(0.0, copies * (n - 1) / n)
        return EpTraffic(copies * (d - 1) / n, copies * (n - d) / n)
    gpus = destination_gpus(routing, n) * scale
    if spec.sends == "gpu":  # every copy written through the same path, the local one included
        return EpTraffic(gpus * d / n, gpus * (n - d) / n)
    nodes = units_hit(m, routing.experts, routing.top_k, routing.groups, routing.topk_groups) * scale
    return EpTraffic(gpus * (d - 1) / d, nodes * (m - 1) / m if m > 1 else 0.0)


def _maximum(a: Sizes, b: Sizes) -> Sizes:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return max(a, b)
    import numpy as np

    return np.maximum(a, b)


@dataclass(frozen=True)
class EpLinks:
    """Nominal per-GPU, per-direction bandwidths (bytes/s) of the scale-up link and the NIC."""

    nvlink_bytes_per_s: float
    rdma_bytes_per_s: float


def mode_time(spec: EpModeSpec, kind: CollectiveKind, size: Sizes, routing: EpRouting, topo: GroupTopology,
              links: EpLinks, ideal: bool = False, sms: int | None = None) -> Sizes:  # fmt: skip
    """Seconds of one dispatch or combine of `size` bytes of token volume per GPU in this mode."""
    if spec.single_domain and topo.nodes > 1:
        raise RooflineError("this EP kernel works inside one NVLink domain only")
    if topo.nodes > 1 and links.rdma_bytes_per_s <= 0:
        raise RooflineError("the EP group spans domains of a system with no scale-out fabric")
    t = traffic(spec, routing, topo)
    wire = size * payload_factor(spec, kind, routing)
    sms = sms or spec.sms
    sm_share = 1.0 if ideal or not sms or not spec.sm_half_saturation else sms / (sms + spec.sm_half_saturation)
    f_nvl, f_rdma = (1.0, 1.0) if ideal else (spec.nvlink_fraction * sm_share, spec.rdma_fraction)
    nvl_s = wire * (t.nvlink / (links.nvlink_bytes_per_s * f_nvl))
    rdma_s = wire * (t.rdma / (links.rdma_bytes_per_s * f_rdma)) if t.rdma else 0.0 * wire
    transfer = nvl_s + rdma_s if spec.overlap == "sum" else _maximum(nvl_s, rdma_s)
    if ideal:
        return transfer
    return spec.latency[kind_key(kind)] + spec.latency_per_peer * (topo.size - 1) + transfer
