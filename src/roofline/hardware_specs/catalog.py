"""Loads the packaged hardware YAML plus the user's own files.

User files come from `--hardware ./my-gpu.yaml` (a path) or from directories listed in the
environment variable ROOFLINE_HARDWARE_PATH (separated by ':'). A user file with an id that is
already in the catalog replaces the packaged entry. A file that says `base: ID` starts from the
catalog entry ID and gives only the fields it changes (see yaml_io.merge_base).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from roofline.errors import RooflineError, UnknownIdError
from roofline.hardware_specs.schema import Accelerator, HostCpu, Link, System
from roofline.yaml_io import in_base_order, load_model_data, load_model_file, read_yaml, yaml_files

DATA_DIR = Path(__file__).parent / "data"
ENV_VAR = "ROOFLINE_HARDWARE_PATH"
_KINDS: dict[str, type[BaseModel]] = {"accelerator": Accelerator, "link": Link, "system": System, "host_cpu": HostCpu}


@dataclass
class HardwareCatalog:
    accelerators: dict[str, Accelerator] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    systems: dict[str, System] = field(default_factory=dict)
    host_cpus: dict[str, HostCpu] = field(default_factory=dict)

    def add(self, item: BaseModel) -> None:
        if isinstance(item, Accelerator):
            self.accelerators[item.id] = item
        elif isinstance(item, Link):
            self.links[item.id] = item
        elif isinstance(item, System):
            self.systems[item.id] = item
        elif isinstance(item, HostCpu):
            self.host_cpus[item.id] = item

    def copy(self) -> HardwareCatalog:
        """A catalog that can take user files without changing the cached packaged one."""
        return HardwareCatalog(dict(self.accelerators), dict(self.links), dict(self.systems), dict(self.host_cpus))

    def add_file(self, path: Path) -> BaseModel:
        item = load_model_file(path, _KINDS, self.find_base)
        self.add(item)
        return item

    def find_base(self, base_id: str, kind: str | None) -> BaseModel:
        """The entry a file's `base:` names, among the file's kind (any kind when it gives none)."""
        tables: dict[str, dict[str, Any]] = {"accelerator": self.accelerators, "link": self.links,
                                             "system": self.systems, "host_cpu": self.host_cpus}  # fmt: skip
        if kind in tables:
            table = tables[kind]
            if base_id not in table:
                raise UnknownIdError(kind, base_id, list(table))
            item: BaseModel = table[base_id]
            return item
        for table in tables.values():
            if base_id in table:
                return table[base_id]
        raise UnknownIdError("hardware", base_id, [*self.accelerators, *self.systems, *self.links])

    def knows(self, base_id: str) -> bool:
        return any(base_id in table for table in (self.accelerators, self.systems, self.links, self.host_cpus))

    def accelerator(self, accelerator_id: str) -> Accelerator:
        if accelerator_id not in self.accelerators:
            raise UnknownIdError("hardware", accelerator_id, list(self.accelerators))
        return self.accelerators[accelerator_id]

    def link(self, link_id: str) -> Link:
        if link_id not in self.links:
            raise UnknownIdError("link", link_id, list(self.links))
        return self.links[link_id]

    def host_cpu(self, cpu_id: str) -> HostCpu:
        if cpu_id not in self.host_cpus:
            raise UnknownIdError("host CPU", cpu_id, list(self.host_cpus))
        return self.host_cpus[cpu_id]

    def system(self, system_id: str) -> System:
        if system_id not in self.systems:
            raise UnknownIdError("system", system_id, list(self.systems))
        return self.systems[system_id]

    def check_references(self) -> None:
        """Every system names a known accelerator and links; every default system exists."""
        for system in self.systems.values():
            self.accelerator(system.accelerator)
            for attachment in (system.scale_up, system.scale_out, system.host_link):
                if attachment is not None:
                    self.link(attachment.link)
            if system.host_cpu is not None:
                self.host_cpu(system.host_cpu)
        for accelerator in self.accelerators.values():
            # a user accelerator may borrow a packaged node's topology (its default system may
            # hold another accelerator); the packaged pairs are checked in the tests
            if accelerator.default_system is not None:
                self.system(accelerator.default_system)


def _user_dirs() -> list[Path]:
    raw = os.environ.get(ENV_VAR, "")
    dirs = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    for directory in dirs:
        if not directory.is_dir():
            raise RooflineError(f"{ENV_VAR} names '{directory}', which is not a directory; fix or unset it")
    return dirs


@lru_cache(maxsize=8)
def _load(user_dirs: tuple[Path, ...]) -> HardwareCatalog:
    catalog = HardwareCatalog()
    for directory in (DATA_DIR, *user_dirs):
        _add_directory(catalog, directory)
    catalog.check_references()
    return catalog


def _add_directory(catalog: HardwareCatalog, directory: Path) -> None:
    for path, data in in_base_order(yaml_files(directory), catalog.knows):
        catalog.add(load_model_data(data, f"'{path}'", _KINDS, catalog.find_base))


def load_catalog() -> HardwareCatalog:
    """The packaged catalog plus the directories in ROOFLINE_HARDWARE_PATH (cached per setting)."""
    return _load(tuple(_user_dirs()))


# ---- the few packaged entries one cluster needs, read alone (start-up of a single command) ----------------

_KIND_DIRS = {"accelerator": "accelerators", "link": "links", "system": "systems", "host_cpu": "host_cpus"}


@lru_cache(maxsize=128)
def _packaged_alone(kind: str, item_id: str) -> BaseModel | None:
    """The packaged `kind` entry `item_id` from its own file (`data/<kind>s/<id>.yaml`; a test checks
    that every file is named by its id), read alone: the entry the whole catalog would hold. None
    where that takes the catalog (no such file, or a `base:`)."""
    path = DATA_DIR / _KIND_DIRS[kind] / f"{item_id}.yaml"
    if Path(item_id).name != item_id or not path.is_file():
        return None
    data = read_yaml(path)
    if "base" in data or data.get("id") != item_id or data.get("kind") != kind:
        return None
    return load_model_data(data, f"'{path}'", _KINDS)


def _add_alone(catalog: HardwareCatalog, kind: str, item_id: str | None) -> bool:
    """Add the packaged entry read alone; False where it cannot be (the caller then takes the catalog)."""
    if item_id is None:
        return True
    item = _packaged_alone(kind, item_id)
    if item is not None:
        catalog.add(item)
    return item is not None


def _add_system_alone(catalog: HardwareCatalog, system_id: str | None) -> bool:
    """A system with its accelerator, links and host CPU."""
    if system_id is None:
        return True
    if not _add_alone(catalog, "system", system_id):
        return False
    system = catalog.systems[system_id]
    links = [a.link for a in (system.scale_up, system.scale_out, system.host_link) if a is not None]
    return (_add_alone(catalog, "accelerator", system.accelerator) and _add_alone(catalog, "host_cpu", system.host_cpu)
            and all(_add_alone(catalog, "link", link) for link in links))  # fmt: skip


def cluster_catalog(hardware: object, system: object) -> HardwareCatalog:
    """What resolving `hardware` / `system` needs: while only the packaged catalog is in use and it
    has not been read whole, the accelerator, its default system, the given system and their
    accelerators, links and host CPUs read alone from their files (the same entries the whole
    catalog holds, a few files instead of all); else (paths, objects, user directories, an id
    without its own file: the errors that list close matches) the whole catalog."""
    ids = None if _user_dirs() or _load.cache_info().currsize else _ids_alone(hardware, system)
    if ids is None:
        return load_catalog()
    hardware_id, system_id = ids
    catalog = HardwareCatalog()
    if not _add_alone(catalog, "accelerator", hardware_id):
        return load_catalog()
    default = catalog.accelerators[hardware_id].default_system if hardware_id is not None else None
    if (system_id is None and default is None) or not all(_add_system_alone(catalog, s) for s in (default, system_id)):
        return load_catalog()  # a single-device system looks for a host link among all systems
    return catalog


def _ids_alone(*values: object) -> tuple[str | None, ...] | None:
    """The values as packaged ids (None stays None); None when one is not a plain id: a path, a
    string naming a file in the working directory (read as a file), an object."""
    for value in values:
        if value is not None and (
            not isinstance(value, str) or value.endswith((".yaml", ".yml")) or Path(value).exists()
        ):
            return None
    return tuple(value if isinstance(value, str) else None for value in values)


# ---- one entry by id, path or object (what the API and the CLI take) ------------------------------------


def _as_file(value: str | os.PathLike[str]) -> Path | None:
    """The path a value names: any PathLike, a str ending in .yaml/.yml, or a str naming a file."""
    if not isinstance(value, str):
        return Path(value)
    return Path(value) if value.endswith((".yaml", ".yml")) or Path(value).is_file() else None


def _item_from_file(catalog: HardwareCatalog, path: Path, what: str) -> BaseModel:
    if path.is_dir():
        raise RooflineError(f"{what} file '{path}' is a directory; give a YAML file")
    if not path.is_file():
        raise RooflineError(f"{what} file '{path}' does not exist")
    return catalog.add_file(path)


def accelerator_from(catalog: HardwareCatalog, hardware: str | os.PathLike[str] | Accelerator) -> Accelerator:
    """An accelerator by catalog id, YAML path or object; files and objects not in the catalog are
    added to `catalog` (give a copy: the cached catalog must not change)."""
    if isinstance(hardware, Accelerator):
        if catalog.accelerators.get(hardware.id) != hardware:
            catalog.add(hardware)
        return hardware
    path = _as_file(hardware)
    if path is not None:
        item = _item_from_file(catalog, path, "hardware")
        if not isinstance(item, Accelerator):
            raise RooflineError(f"'{path}' describes a {item.kind}, --hardware needs an accelerator")  # type: ignore[attr-defined]
        return item
    assert isinstance(hardware, str)
    if hardware in catalog.systems and hardware not in catalog.accelerators:
        raise RooflineError(f"'{hardware}' is a system, not an accelerator; use --system {hardware}")
    return catalog.accelerator(hardware)


def system_from(catalog: HardwareCatalog, system: str | os.PathLike[str] | System) -> System:
    """A system by catalog id, YAML path or object (added to `catalog` when not in it)."""
    if isinstance(system, System):
        if catalog.systems.get(system.id) != system:
            catalog.add(system)
        return system
    if not isinstance(system, str) or system.endswith((".yaml", ".yml")):
        item = _item_from_file(catalog, Path(system), "system")
        if not isinstance(item, System):
            raise RooflineError(f"'{system}' is not a system file (kind: system)")
        return item
    return catalog.system(system)


def get_accelerator(hardware: str | os.PathLike[str] | Accelerator) -> Accelerator:
    """An accelerator by catalog id (h100-sxm), YAML path (may say `base: ID`) or object."""
    return accelerator_from(load_catalog().copy(), hardware)


def get_system(system: str | os.PathLike[str] | System) -> System:
    """A system by catalog id (dgx-h100), YAML path or object."""
    return system_from(load_catalog().copy(), system)


def get_link(link: str | os.PathLike[str] | Link) -> Link:
    """A link by catalog id (nvlink4), YAML path or object."""
    if isinstance(link, Link):
        return link
    if not isinstance(link, str) or link.endswith((".yaml", ".yml")):
        item = _item_from_file(load_catalog().copy(), Path(link), "link")
        if not isinstance(item, Link):
            raise RooflineError(f"'{link}' is not a link file (kind: link)")
        return item
    return load_catalog().link(link)


def get_hardware_item(item: str | os.PathLike[str]) -> Accelerator | System | Link:
    """An accelerator, system or link by catalog id, or a hardware YAML path of any kind (`base:`
    resolved): what `roofline hardware show` shows."""
    text = os.fspath(item)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise RooflineError(f"hardware file '{text}' does not exist")
        found = load_catalog().copy().add_file(path)
        assert isinstance(found, Accelerator | System | Link)
        return found
    catalog = load_catalog()
    hit = catalog.accelerators.get(text) or catalog.systems.get(text) or catalog.links.get(text)
    return hit if hit is not None else catalog.accelerator(text)  # raises with close matches
