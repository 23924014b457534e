"""A resolved cluster: a system (node type), its accelerator and links, and how many GPUs."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from roofline.errors import RooflineError
from roofline.hardware_specs.catalog import HardwareCatalog, accelerator_from, cluster_catalog, system_from
from roofline.hardware_specs.schema import Accelerator, Attachment, HostCpu, Link, System, Wiring


@dataclass(frozen=True)
class Fabric:
    """One fabric as a GPU sees it: per-direction bandwidth per GPU and per-hop latency."""

    link: Link
    ports_per_gpu: float
    wiring: Wiring
    sockets: int = 1
    cross_socket_fraction: float = 1.0

    @property
    def bandwidth_per_gpu_bytes_per_s(self) -> float:
        return self.link.bandwidth_per_port * self.ports_per_gpu

    @property
    def latency_s(self) -> float:
        return self.link.latency


@dataclass(frozen=True)
class Cluster:
    system: System
    accelerator: Accelerator
    scale_up: Fabric
    scale_out: Fabric | None
    num_gpus: int
    host_cpu: HostCpu | None = None  # None: the reference host CPU (speed 1.0)

    @property
    def host_speed(self) -> float:
        """Single-thread speed of the host CPU relative to the reference one."""
        return self.host_cpu.single_thread_speed if self.host_cpu is not None else 1.0

    @property
    def num_nodes(self) -> int:
        return math.ceil(self.num_gpus / self.system.gpus_per_node)

    @property
    def domain_size(self) -> int:
        """GPUs that share one scale-up domain (capped by the cluster size)."""
        return min(self.system.gpus_per_domain, self.num_gpus)

    def describe(self) -> str:
        nodes = f"{self.num_nodes} x {self.system.id}" if self.num_nodes > 1 else self.system.id
        return f"{self.num_gpus} x {self.accelerator.id} ({nodes})"


def _fabric(catalog: HardwareCatalog, attachment: Attachment) -> Fabric:
    link = catalog.link(attachment.link)
    return Fabric(link=link, ports_per_gpu=attachment.ports_per_gpu, wiring=attachment.wiring or link.wiring,
                  sockets=attachment.sockets, cross_socket_fraction=attachment.cross_socket_fraction)  # fmt: skip


PLACEHOLDER_LINK = "pcie5"  # a one-device system never crosses it; System needs a scale-up attachment


def _single_device_system(catalog: HardwareCatalog, accelerator: Accelerator) -> System:
    """One device on its own (a calibrated host CPU, a user's accelerator without a node type).

    Nothing crosses a link with one device, but a System needs a scale-up attachment: the host
    link of a catalog system that holds this accelerator, else PCIe Gen5 as a placeholder.
    """
    host_links = [s.host_link for s in catalog.systems.values() if s.accelerator == accelerator.id and s.host_link]
    attachment = host_links[0] if host_links else Attachment(link=PLACEHOLDER_LINK, ports_per_gpu=1)
    return System(
        kind="system", id=f"{accelerator.id}-single", name=f"one {accelerator.name}", accelerator=accelerator.id,
        gpus_per_node=1, gpus_per_domain=1, scale_up=attachment,
        source="synthetic: one device with no scale-up or scale-out traffic (resolve_cluster, no default_system)",
    )  # fmt: skip


def resolve_cluster(
    hardware: str | os.PathLike[str] | Accelerator | None = None,
    system: str | os.PathLike[str] | System | None = None,
    num_gpus: int = 1,
    catalog: HardwareCatalog | None = None,
) -> Cluster:
    """Pick the system for `--hardware ID [--gpus N]` or `--system ID`.

    Each may be a catalog id, a YAML path or an object (a `replace()` copy, a file with `base:`).
    With only an accelerator, its `default_system` is used and as many nodes as the GPU count
    needs (h100-sxm with 16 GPUs = two DGX H100 nodes). An accelerator without one (a calibrated
    host profile) runs alone: one device, a synthetic single-device system. A custom accelerator
    sits on its default system's links (see `fits_system` for the ones `--system` accepts).
    """
    given = catalog or cluster_catalog(hardware, system)
    catalog = given.copy()  # files given by path and objects stay out of the shared cache
    if num_gpus < 1:
        raise RooflineError(f"--gpus must be at least 1, got {num_gpus}")
    if hardware is None and system is None:
        raise RooflineError("name the hardware: --hardware ID (see `roofline hardware list`) or --system ID")
    for flag, value in (("--hardware", hardware), ("--system", system)):
        if isinstance(value, str) and not value.strip():
            raise RooflineError(f"{flag} is empty; give an id (roofline hardware list) or a YAML path")
    accelerator = accelerator_from(catalog, hardware) if hardware is not None else None
    if system is not None:
        chosen = system_from(catalog, system)
        if accelerator is not None and not fits_system(catalog, accelerator, chosen):
            raise RooflineError(_misfit_message(given, accelerator, chosen))
    else:
        assert accelerator is not None
        if accelerator.default_system is not None:
            chosen = catalog.system(accelerator.default_system)
        elif num_gpus == 1:
            chosen = _single_device_system(catalog, accelerator)
        else:
            raise RooflineError(_no_node_message(catalog, accelerator, num_gpus))
    accelerator = accelerator or catalog.accelerator(chosen.accelerator)
    scale_out = _fabric(catalog, chosen.scale_out) if chosen.scale_out else None
    if num_gpus > chosen.gpus_per_node and scale_out is None:
        raise RooflineError(
            f"system '{chosen.id}' has no scale-out fabric, so it cannot span {num_gpus} GPUs "
            f"(max {chosen.gpus_per_node}); use fewer GPUs or another system"
        )
    return Cluster(
        system=chosen,
        accelerator=accelerator,
        scale_up=_fabric(catalog, chosen.scale_up),
        scale_out=scale_out,
        num_gpus=num_gpus,
        host_cpu=catalog.host_cpu(chosen.host_cpu) if chosen.host_cpu else None,
    )


def fits_system(catalog: HardwareCatalog, accelerator: Accelerator, system: System) -> bool:
    """Whether `--system` may hold this accelerator.

    A system holds the accelerator it names. An accelerator also fits its own `default_system`, and
    every system built for the accelerator its default system holds: it stands in for that part
    (a `base: h100-sxm` file or an `h100.replace(...)` copy inherits default_system dgx-h100, so it
    fits dgx-h100 and any other node of H100 SXMs, but not a node of B200s).
    """
    if system.accelerator == accelerator.id or accelerator.default_system == system.id:
        return True
    default = catalog.systems.get(accelerator.default_system or "")
    return default is not None and default.accelerator == system.accelerator


def _misfit_message(catalog: HardwareCatalog, accelerator: Accelerator, system: System) -> str:
    message = (f"system '{system.id}' holds {system.accelerator}, not {accelerator.id}; "
               "drop --hardware or pick another system")  # fmt: skip
    if catalog.accelerators.get(accelerator.id) == accelerator:
        return message  # a catalog accelerator: the message it always had
    return (
        f"{message}, or let '{accelerator.id}' stand in for {system.accelerator}: add "
        f"`default_system: {system.id}` (or `base: {system.accelerator}`) to its YAML"
    )


def _no_node_message(catalog: HardwareCatalog, accelerator: Accelerator, num_gpus: int) -> str:
    """What to add to an accelerator without a default system that is asked for several GPUs."""
    twin = _closest_catalog_accelerator(catalog, accelerator)
    fix = f" or add `default_system: {twin.default_system}` (or `base: {twin.id}`) to its YAML," if twin else ""
    return (
        f"'{accelerator.id}' has no default_system; give one with --system ID,{fix} "
        f"so its {num_gpus} GPUs have a node to sit in"
    )


def _closest_catalog_accelerator(catalog: HardwareCatalog, accelerator: Accelerator) -> Accelerator | None:
    """The catalog accelerator with a node type most like this one: same architecture, then same
    vendor, then the nearest memory bandwidth and capacity."""

    def distance(other: Accelerator) -> tuple[bool, bool, float]:
        pairs = ((other.memory.bandwidth, accelerator.memory.bandwidth),
                 (other.memory.capacity or 1.0, accelerator.memory.capacity or 1.0))  # fmt: skip
        spread = sum(abs(math.log(a / b)) for a, b in pairs)
        return other.architecture != accelerator.architecture, other.vendor != accelerator.vendor, spread

    placed = [a for a in catalog.accelerators.values() if a.default_system and a.id != accelerator.id]
    return min(placed, key=lambda a: (*distance(a), a.id), default=None)
