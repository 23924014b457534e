"""Grids of configurations: parsing lists and ranges, formats as the CLI chooses them, hardware."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

from roofline.dtypes import DType, default_kv_dtype, parse_dtype
from roofline.errors import RooflineError
from roofline.hardware_specs import Accelerator, Cluster, resolve_cluster
from roofline.hardware_specs.catalog import load_catalog
from roofline.ir import Precision
from roofline.workloads.base import Workload

_RANGE = re.compile(r"^(\d+):(\d+)(?::([x*+])(\d+))?$")
MAX_VALUES = 10_000  # values one axis may take


def parse_ints(text: str, option: str) -> list[int]:
    """'1,2,4,8' or ranges 'START:STOP' (step 1), 'START:STOP:+STEP', 'START:STOP:xFACTOR' (inclusive)."""
    values: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        match = _RANGE.match(item)
        if item.isdigit():
            values.append(int(item))
        elif match:
            start, stop, op, step = int(match[1]), int(match[2]), match[3] or "+", int(match[4] or 1)
            if start < 1 or stop < start or step < 1 or (op in "x*" and step < 2):
                raise RooflineError(f"{option}: range '{item}' needs 1 <= START <= STOP and a step >= 1 (factor >= 2)")
            value = start
            while value <= stop:
                if len(values) >= MAX_VALUES:
                    raise RooflineError(f"{option}: more than {MAX_VALUES:,} values; use a coarser step "
                                        "(e.g. xFACTOR)")  # fmt: skip
                values.append(value)
                value = value * step if op in "x*" else value + step
        else:
            raise RooflineError(f"{option}: cannot read '{item}'; use e.g. 1,2,4 or 1:256:x2 or 1024:4096:+1024")
    if not values or min(values) < 1:
        raise RooflineError(f"{option}: values must be positive integers")
    return list(dict.fromkeys(values))


def parse_names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise RooflineError(f"empty list '{text}'")
    return list(dict.fromkeys(names))


def precision_for(workload: Workload, weight_dtype: str | None, kv_dtype: str | None = None) -> Precision:
    """Formats as `roofline estimate` picks them: as shipped unless a weight format is named, which
    then brings its usual KV format (estimate.Query.build)."""
    weight = parse_dtype(weight_dtype) if weight_dtype else workload.weight_dtype
    experts = None if weight_dtype else workload.expert_weight_dtype
    if kv_dtype:
        kv = parse_dtype(kv_dtype)
    else:
        kv = default_kv_dtype(weight) if weight_dtype else workload.kv_cache_dtype
    return Precision(weight=weight, activation=DType.BF16, kv_cache=kv, expert_weight=experts,
                     fp8_scaling=workload.fp8_scaling)  # fmt: skip


def dtype_label(precision: Precision) -> str:
    """'fp8', or 'bf16+mxfp4' when the experts ship in another format."""
    experts = precision.expert_weight
    if experts is None or experts == precision.weight:
        return precision.weight.value
    return f"{precision.weight.value}+{experts.value}"


def default_hardware() -> list[str]:
    """Released accelerators that name a default system."""
    accs = load_catalog().accelerators.values()
    return sorted(a.id for a in accs if a.status == "released" and a.default_system)


def clusters_for(hardware: Sequence[str | Accelerator]) -> list[Cluster]:
    """One cluster per accelerator (its default system); the GPU count only matters for validation."""
    return [resolve_cluster(hardware=h) for h in hardware]


def powers_of_two(limit: int) -> list[int]:
    return [1 << i for i in range(limit.bit_length()) if 1 << i <= limit]


def product_rows(axes: Mapping[str, Sequence[int]]) -> list[dict[str, int]]:
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(axes[n] for n in names))]
