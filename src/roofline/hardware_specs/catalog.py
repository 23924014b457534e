"""Loads the packaged hardware YAML plus the user's own files.

User files come from `--hardware ./my-gpu.yaml` (a path) or from directories listed in the
environment variable ROOFLINE_HARDWARE_PATH (separated by ':'). A user file with an id that is
already in the catalog replaces the packaged entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from roofline.errors import RooflineError, UnknownIdError
from roofline.hardware_specs.schema import Accelerator, Link, System
from roofline.yaml_io import load_model_file, yaml_files

DATA_DIR = Path(__file__).parent / "data"
ENV_VAR = "ROOFLINE_HARDWARE_PATH"
_KINDS: dict[str, type[BaseModel]] = {"accelerator": Accelerator, "link": Link, "system": System}


@dataclass
class HardwareCatalog:
    accelerators: dict[str, Accelerator] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    systems: dict[str, System] = field(default_factory=dict)

    def add(self, item: BaseModel) -> None:
        if isinstance(item, Accelerator):
            self.accelerators[item.id] = item
        elif isinstance(item, Link):
            self.links[item.id] = item
        elif isinstance(item, System):
            self.systems[item.id] = item

    def copy(self) -> HardwareCatalog:
        """A catalog that can take user files without changing the cached packaged one."""
        return HardwareCatalog(dict(self.accelerators), dict(self.links), dict(self.systems))

    def add_file(self, path: Path) -> BaseModel:
        item = load_model_file(path, _KINDS)
        self.add(item)
        return item

    def accelerator(self, accelerator_id: str) -> Accelerator:
        if accelerator_id not in self.accelerators:
            raise UnknownIdError("hardware", accelerator_id, list(self.accelerators))
        return self.accelerators[accelerator_id]

    def link(self, link_id: str) -> Link:
        if link_id not in self.links:
            raise UnknownIdError("link", link_id, list(self.links))
        return self.links[link_id]

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
        for path in yaml_files(directory):
            catalog.add_file(path)
    catalog.check_references()
    return catalog


def load_catalog() -> HardwareCatalog:
    """The packaged catalog plus the directories in ROOFLINE_HARDWARE_PATH (cached per setting)."""
    return _load(tuple(_user_dirs()))
