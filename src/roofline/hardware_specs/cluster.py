"""A resolved cluster: a system (node type), its accelerator and links, and how many GPUs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from roofline.errors import RooflineError
from roofline.hardware_specs.catalog import HardwareCatalog, load_catalog
from roofline.hardware_specs.schema import Accelerator, Attachment, Link, System, Wiring


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


def _accelerator_for(catalog: HardwareCatalog, hardware: str) -> Accelerator:
    path = Path(hardware)
    if hardware.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise RooflineError(f"hardware file '{hardware}' does not exist")
        item = catalog.add_file(path)
        if not isinstance(item, Accelerator):
            raise RooflineError(f"'{hardware}' describes a {item.kind}, --hardware needs an accelerator")  # type: ignore[attr-defined]
        return item
    if hardware in catalog.systems and hardware not in catalog.accelerators:
        raise RooflineError(f"'{hardware}' is a system, not an accelerator; use --system {hardware}")
    return catalog.accelerator(hardware)


def _system_for(catalog: HardwareCatalog, system: str) -> System:
    path = Path(system)
    if system.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise RooflineError(f"system file '{system}' does not exist")
        item = catalog.add_file(path)
        if not isinstance(item, System):
            raise RooflineError(f"'{system}' is not a system file (kind: system)")
        return item
    return catalog.system(system)


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
    hardware: str | None = None,
    system: str | None = None,
    num_gpus: int = 1,
    catalog: HardwareCatalog | None = None,
) -> Cluster:
    """Pick the system for `--hardware ID [--gpus N]` or `--system ID`.

    With only an accelerator, its `default_system` is used and as many nodes as the GPU count
    needs (h100-sxm with 16 GPUs = two DGX H100 nodes). An accelerator without one (a calibrated
    host profile) runs alone: one device, a synthetic single-device system.
    """
    catalog = (catalog or load_catalog()).copy()  # files given by path stay out of the shared cache
    if num_gpus < 1:
        raise RooflineError(f"--gpus must be at least 1, got {num_gpus}")
    if hardware is None and system is None:
        raise RooflineError("name the hardware: --hardware ID (see `roofline hardware list`) or --system ID")
    for flag, value in (("--hardware", hardware), ("--system", system)):
        if value is not None and not value.strip():
            raise RooflineError(f"{flag} is empty; give an id (roofline hardware list) or a YAML path")
    accelerator = _accelerator_for(catalog, hardware) if hardware else None
    if system is not None:
        chosen = _system_for(catalog, system)
        if accelerator is not None and chosen.accelerator != accelerator.id:
            raise RooflineError(
                f"system '{chosen.id}' holds {chosen.accelerator}, not {accelerator.id}; "
                "drop --hardware or pick another system"
            )
    else:
        assert accelerator is not None
        if accelerator.default_system is not None:
            chosen = catalog.system(accelerator.default_system)
        elif num_gpus == 1:
            chosen = _single_device_system(catalog, accelerator)
        else:
            raise RooflineError(f"'{accelerator.id}' has no default_system; give one with --system ID")
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
    )
