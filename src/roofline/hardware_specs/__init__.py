"""Hardware catalog: accelerators, links and systems as YAML data with sources."""

from roofline.hardware_specs.catalog import HardwareCatalog, get_accelerator, get_link, get_system, load_catalog
from roofline.hardware_specs.cluster import Cluster, fits_system, resolve_cluster
from roofline.hardware_specs.schema import Accelerator, Link, System

__all__ = [
    "Accelerator", "Cluster", "HardwareCatalog", "Link", "System", "fits_system", "get_accelerator", "get_link",
    "get_system", "load_catalog", "resolve_cluster",
]  # fmt: skip
