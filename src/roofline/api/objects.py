"""Models and hardware as objects: catalog ids, YAML or config.json paths, or the objects
themselves; `.replace(...)` makes what-if copies validated like YAML."""

from __future__ import annotations

import os

from roofline.hardware_specs import Accelerator, System
from roofline.workloads import Workload, get_workload, model_catalog

Model = Workload  # every workload kind (dense, moe, mla_moe, hybrid, dit, diffusion_lm ...) is a Model
Hardware = Accelerator


def model(model: str | os.PathLike[str] | Workload) -> Workload:
    """A model: a catalog id (`llama-3.1-70b`), a model YAML path, or a Hugging Face config.json path."""
    return get_workload(model)


def hardware(hardware: str | os.PathLike[str] | Accelerator) -> Accelerator:
    """An accelerator: a catalog id (`b200`) or a hardware YAML path."""
    from roofline.hardware_specs.catalog import get_accelerator

    return get_accelerator(hardware)


def system(system: str | os.PathLike[str] | System) -> System:
    """A system (node or rack type): a catalog id (`gb200-nvl72`) or a system YAML path."""
    from roofline.hardware_specs.catalog import get_system

    return get_system(system)


def model_ids() -> list[str]:
    """The catalog's model ids (plus ROOFLINE_MODEL_PATH's)."""
    return sorted(model_catalog())


def hardware_ids() -> list[str]:
    """The catalog's accelerator ids (plus ROOFLINE_HARDWARE_PATH's)."""
    from roofline.hardware_specs import load_catalog

    return sorted(load_catalog().accelerators)


def system_ids() -> list[str]:
    """The catalog's system ids (nodes and racks, plus ROOFLINE_HARDWARE_PATH's)."""
    from roofline.hardware_specs import load_catalog

    return sorted(load_catalog().systems)
