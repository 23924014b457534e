"""Hardware catalog: accelerators, links and systems as YAML data with sources."""

from roofline.hardware_specs.catalog import HardwareCatalog, load_catalog
from roofline.hardware_specs.cluster import Cluster, resolve_cluster
from roofline.hardware_specs.schema import Accelerator, Link, System

__all__ = ["Accelerator", "Cluster", "HardwareCatalog", "Link", "System", "load_catalog", "resolve_cluster"]
