"""`rl.comm` and `rl.comm_sweep`: collective timings as nccl-tests reports them (time, algbw,
busbw), with the algorithm and the links crossed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from roofline.api.query import HardwareArg, SystemArg, cluster_of
from roofline.errors import RooflineError
from roofline.ir import CollectiveKind
from roofline.result import Result, html_table
from roofline.simulator.collectives import CollectiveCost, CollectiveModel, group_topology, load_library
from roofline.units import Dimension, format_bytes, format_rate, format_time, parse_quantity

COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "broadcast", "send-recv")
Size = str | int | float  # '256MiB', '1 GB', or a byte count (256, '256')


def size_bytes(value: Size, option: str) -> float:
    """A message size: with a unit ('256MiB'), or a bare byte count as nccl-tests takes it."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d*)?([eE]\d+)?\s*", value):
        number = float(value)
    else:
        try:
            return parse_quantity(value, Dimension.BYTES)
        except ValueError as exc:
            raise RooflineError(f"{option}: {exc}") from None
    if not number > 0 or number == float("inf"):
        raise RooflineError(f"{option}: a message size must be a positive number of bytes, got {value!r}")
    return number


def collective_kind(collective: str) -> CollectiveKind:
    if collective not in COLLECTIVES:
        from roofline.errors import UnknownIdError

        raise UnknownIdError("collective", collective, list(COLLECTIVES))
    return CollectiveKind(collective.replace("-", "_"))


def cost_row(cost: CollectiveCost) -> dict[str, Any]:
    return {
        "collective": cost.kind.value, "size_bytes": cost.size_bytes, "gpus": cost.group_size,
        "time_s": cost.time_s, "algbw_bytes_per_s": cost.algbw_bytes_per_s,
        "busbw_bytes_per_s": cost.busbw_bytes_per_s, "algorithm": cost.algorithm, "protocol": cost.protocol,
        "levels": list(cost.levels),
    }  # fmt: skip


def _cost(collective: str, size: float, hardware: HardwareArg, system: SystemArg, gpus: int, library: str,
          algorithm: str | None) -> CollectiveCost:  # fmt: skip
    kind = collective_kind(collective)
    if hardware is None and system is None:
        raise RooflineError("name the hardware: --system ID or --hardware ID")
    if gpus < 2 and kind is not CollectiveKind.SEND_RECV:
        raise RooflineError(f"a collective needs at least 2 GPUs, got --gpus {gpus}")
    cluster = cluster_of(hardware, system, gpus)
    topology = group_topology(cluster, 2 if kind is CollectiveKind.SEND_RECV else gpus)
    return CollectiveModel(load_library(library)).cost(kind, size, topology, algorithm)


@dataclass(frozen=True, repr=False)
class CollectiveTiming(Result):
    """One collective: `time_s`, `algbw_bytes_per_s`, `busbw_bytes_per_s`, the algorithm / protocol
    and the links it crossed (`levels`). `library` is the communication library profile."""

    cost: CollectiveCost
    library: str = "nccl"

    @property
    def time_s(self) -> float:
        return self.cost.time_s

    @property
    def busbw_bytes_per_s(self) -> float:
        return self.cost.busbw_bytes_per_s

    @property
    def algbw_bytes_per_s(self) -> float:
        return self.cost.algbw_bytes_per_s

    def to_dict(self) -> dict[str, Any]:
        return cost_row(self.cost)

    def records(self) -> list[dict[str, Any]]:
        return [{k: (";".join(v) if isinstance(v, list) else v) for k, v in self.to_dict().items()}]

    def overview(self) -> list[tuple[str, Any]]:
        c = self.cost
        return [
            ("collective", f"{c.kind.value} over {c.group_size} GPUs ({self.library})"),
            ("size", format_bytes(c.size_bytes, binary=True)),
            ("time", format_time(c.time_s)),
            ("busbw", format_rate(c.busbw_bytes_per_s, "B/s")),
            ("algorithm", f"{c.algorithm}/{c.protocol}"),
        ]


@dataclass(frozen=True, repr=False)
class CollectiveSweep(Result):
    """A size sweep like nccl-tests -b MIN -e MAX -f FACTOR: one CollectiveTiming per size."""

    timings: tuple[CollectiveTiming, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [t.to_dict() for t in self.timings]}

    def records(self) -> list[dict[str, Any]]:
        return [row for t in self.timings for row in t.records()]

    def _repr_html_(self) -> str:
        return html_table("CollectiveSweep", [("sizes", len(self.timings))], self.records())


def comm(
    collective: str, hardware: HardwareArg = None, *, bytes: Size, system: SystemArg = None, gpus: int = 8,
    library: str = "nccl", algorithm: str | None = None,
) -> CollectiveTiming:  # fmt: skip
    """Time, algbw and busbw of one collective (`roofline comm all-reduce ...`): `collective` is one of
    all-reduce, all-gather, reduce-scatter, all-to-all, broadcast, send-recv; `bytes` the message size
    per GPU as nccl-tests counts it ('256MiB', or a byte count)."""
    size = size_bytes(bytes, "--bytes")
    return CollectiveTiming(_cost(collective, size, hardware, system, gpus, library, algorithm), library)


def comm_sweep(
    collective: str, hardware: HardwareArg = None, *, min_bytes: Size = "1KiB", max_bytes: Size = "8GiB",
    factor: int = 2, system: SystemArg = None, gpus: int = 8, library: str = "nccl", algorithm: str | None = None,
) -> CollectiveSweep:  # fmt: skip
    """A size sweep like nccl-tests -b MIN -e MAX -f FACTOR (`roofline comm sweep`)."""
    low, high = size_bytes(min_bytes, "--min-bytes"), size_bytes(max_bytes, "--max-bytes")
    if factor < 2 or high < low:
        raise RooflineError("need 0 < --min-bytes <= --max-bytes and --factor >= 2")
    sizes, size = [], low
    while size <= high:
        sizes.append(size)
        size *= factor
    return CollectiveSweep(tuple(CollectiveTiming(_cost(collective, s, hardware, system, gpus, library, algorithm),
                                                  library) for s in sizes))  # fmt: skip


# ---- expert-parallel dispatch / combine --------------------------------------------------------

EP_COLLECTIVES = ("ep-dispatch", "ep-combine")


@dataclass(frozen=True, repr=False)
class EpTiming(Result):
    """One MoE dispatch or combine (`roofline comm ep-dispatch`): `time_s`, the kernel family
    (`cost.algorithm`) and payload format (`cost.protocol`) the library would run, the expected
    destination GPUs (and scale-up domains) per token, and the token volume per GPU it moved."""

    cost: CollectiveCost
    library: str
    tokens: int
    token_bytes: float  # one token in the activation dtype
    destination_gpus: float
    destination_domains: float

    @property
    def time_s(self) -> float:
        return self.cost.time_s

    def to_dict(self) -> dict[str, Any]:
        c = self.cost
        return {"collective": c.kind.value, "library": self.library, "gpus": c.group_size, "tokens": self.tokens,
                "token_bytes": self.token_bytes, "message_bytes": c.size_bytes, "time_s": c.time_s,
                "mode": c.algorithm, "payload": c.protocol, "destination_gpus_per_token": self.destination_gpus,
                "destination_domains_per_token": self.destination_domains, "levels": list(c.levels)}  # fmt: skip

    def records(self) -> list[dict[str, Any]]:
        return [{k: (";".join(v) if isinstance(v, list) else v) for k, v in self.to_dict().items()}]

    def overview(self) -> list[tuple[str, Any]]:
        c = self.cost
        return [("collective", f"{c.kind.value} over {c.group_size} GPUs ({self.library})"),
                ("tokens per GPU", self.tokens), ("time", format_time(c.time_s)),
                ("kernel", f"{c.algorithm}/{c.protocol}"),
                ("destination GPUs per token", f"{self.destination_gpus:.2f}")]  # fmt: skip


def _positive(value: float, option: str) -> None:
    if not value > 0 or value == float("inf"):
        raise RooflineError(f"{option} must be a positive number, got {value!r}")


def comm_ep(
    collective: str, hardware: HardwareArg = None, *, tokens: int, hidden: int, topk: int, experts: int, ep: int = 8,
    system: SystemArg = None, library: str = "deepep", mode: str | None = None, sms: int | None = None,
    imbalance: float = 1.0, groups: int = 1, topk_groups: int = 1, element_bytes: float = 2.0,
) -> EpTiming:  # fmt: skip
    """One MoE dispatch or combine over `ep` GPUs (`roofline comm ep-dispatch ...`): `tokens` per
    GPU of `hidden` values (`element_bytes` each: the activation dtype), each routed to `topk` of
    `experts` experts (optionally only among `topk_groups` of `groups` expert groups); `library`
    picks the kernels (deepep: normal / low_latency, trtllm: one_sided, nccl: a plain all-to-all),
    `mode` forces one (default: the fastest), `sms` the SMs a DeepEP kernel gets, `imbalance` the
    busiest rank's share of tokens over the mean."""
    from roofline.ir import EpRouting
    from roofline.simulator.ep_comm import units_hit

    if collective not in EP_COLLECTIVES:
        from roofline.errors import UnknownIdError

        raise UnknownIdError("EP collective", collective, list(EP_COLLECTIVES))
    for value, option in ((tokens, "--tokens"), (hidden, "--hidden"), (topk, "--topk"), (experts, "--experts"),
                          (imbalance, "--imbalance"), (element_bytes, "--element-bytes")):  # fmt: skip
        _positive(value, option)
    if ep < 2:
        raise RooflineError(f"an EP dispatch needs at least 2 GPUs, got --ep {ep}")
    if topk > experts or experts % ep:
        raise RooflineError(f"need --topk <= --experts and --experts divisible by --ep (got {topk}, {experts}, {ep})")
    if groups < 1 or not 1 <= topk_groups <= groups or experts % groups:
        raise RooflineError("need 1 <= --topk-groups <= --groups and --experts divisible by --groups")
    if hardware is None and system is None:
        raise RooflineError("name the hardware: --system ID or --hardware ID")
    kind = CollectiveKind.EP_DISPATCH if collective == "ep-dispatch" else CollectiveKind.EP_COMBINE
    topology = group_topology(cluster_of(hardware, system, ep), ep)
    routing = EpRouting(topk, experts, imbalance, groups, topk_groups, element_bytes)
    size = float(tokens) * hidden * element_bytes
    cost = CollectiveModel(load_library(library)).cost(kind, size, topology, mode, routing, sms)
    domains = units_hit(topology.nodes, experts, topk, groups, topk_groups)
    return EpTiming(cost, library, tokens, hidden * element_bytes, units_hit(ep, experts, topk, groups, topk_groups),
                    domains)  # fmt: skip
