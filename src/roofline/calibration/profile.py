"""The calibrated accelerator profile: a full `kind: accelerator` YAML with the fitted efficiency
block, loadable by the catalog (`roofline estimate --hardware DIR/<id>-calibrated.yaml`).

- GPU: the matching catalog entry with its datasheet peaks and bandwidth, the device's own
  memory capacity and SM count, and the fitted efficiencies (fractions of those peaks).
- Host CPU: a `host` profile whose peaks are the MEASURED best matmul FLOP/s per format and the
  best measured stream bandwidth, capacity from the OS, one "SM" per thread, one matmul tile;
  its efficiencies then say how far typical shapes are from that best.
"""

from __future__ import annotations

from typing import Any

import yaml

from roofline.calibration.device import DeviceInfo
from roofline.dtypes import DType
from roofline.hardware_specs.schema import Accelerator, EfficiencySpec, MatmulTile

COMPUTE_FORMATS = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8")

# Before fitting, a host profile is the plain roofline on its measured peaks: every fraction 1
# (the peaks are the best the host reached), no kernel overhead, the package's default p = 2.
HOST_PRIOR_EFFICIENCY: dict[str, Any] = {
    "memory_bandwidth_fraction": 1.0,
    "matmul_fraction": {"default": 1.0},
    "attention_fraction": 1.0,
    "kernel_overhead": "0 us",
    "matmul_tiles": [{"m": 1, "n": 1}],
    "overlap_exponent": 2.0,
    "source": "prior of a host profile: the roofline on the measured peaks (fractions 1, no overhead)",
}


# ---- quantities back to YAML strings (inverse of roofline.units parsing) --------------------------------


def _bytes(value: float) -> str:
    for unit, factor in (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if value >= factor:
            return f"{value / factor:.9g} {unit}"
    return f"{value:.9g} B"


def _rate(value: float, unit: str) -> str:
    for prefix, factor in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= factor:
            return f"{value / factor:.9g} {prefix}{unit}"
    return f"{value:.9g} {unit}"


def _seconds(value: float) -> str:
    return f"{value * 1e6:.6g} us"


def efficiency_dict(eff: EfficiencySpec, source: str) -> dict[str, Any]:
    data = _efficiency_fields(eff, source)
    if eff.gemm_curves:
        data["gemm_curves"] = {key: curve.model_dump(exclude_none=True) for key, curve in eff.gemm_curves.items()}
    if not eff.gemm_curves_family:
        data["gemm_curves_family"] = False
    return data


def _efficiency_fields(eff: EfficiencySpec, source: str) -> dict[str, Any]:
    return {
        "memory_bandwidth_fraction": round(eff.memory_bandwidth_fraction, 4),
        "matmul_fraction": {k: round(v, 4) for k, v in sorted(eff.matmul_fraction.items())},
        "attention_fraction": round(eff.attention_fraction, 4),
        "kernel_overhead": _seconds(eff.kernel_overhead),
        "matmul_tiles": [{"m": t.m, "n": t.n} for t in eff.matmul_tiles],
        "overlap_exponent": round(eff.overlap_exponent, 3),
        **_host_fields(eff),
        "source": source,
    }


def _host_fields(eff: EfficiencySpec) -> dict[str, Any]:
    """The knobs only a host's fit sets (matrix-vector products, decode attention as a KV stream)."""
    out: dict[str, Any] = {}
    if eff.gemv_below_m:
        out |= {"gemv_below_m": eff.gemv_below_m, "gemv_output_overhead": _seconds(eff.gemv_output_overhead)}
    if eff.decode_attention_memory_fraction is not None:
        out["decode_attention_memory_fraction"] = round(eff.decode_attention_memory_fraction, 4)
    return out


def accelerator_dict(acc: Accelerator) -> dict[str, Any]:
    """An accelerator as the YAML a user would write (quantities with their units)."""
    compute: dict[str, Any] = {}
    for name in COMPUTE_FORMATS:
        peak = getattr(acc.compute, name)
        compute[name] = "n/a" if peak is None else _rate(peak, "FLOP/s")
    if acc.compute.clock is not None:
        compute["clock"] = _rate(acc.compute.clock, "Hz")
    compute["source"] = acc.compute.source
    data: dict[str, Any] = {
        "kind": "accelerator",
        "id": acc.id,
        "name": acc.name,
        "vendor": acc.vendor,
        "architecture": acc.architecture,
        "status": acc.status,
    }
    if acc.default_system is not None:
        data["default_system"] = acc.default_system
    data |= {
        "memory": {"type": acc.memory.type, "capacity": _bytes(acc.memory.capacity),
                   "bandwidth": _rate(acc.memory.bandwidth, "B/s"), "source": acc.memory.source},
        "compute": compute,
        "sram": {"l2": _bytes(acc.sram.l2), "shared_memory_per_sm": _bytes(acc.sram.shared_memory_per_sm),
                 "sm_count": acc.sram.sm_count, "source": acc.sram.source},
        "efficiency": efficiency_dict(acc.efficiency, acc.efficiency.source),
        "power": {"tdp": f"{acc.power.tdp:g} W", "source": acc.power.source},
        "runtime_reserve": _bytes(acc.runtime_reserve),
        "notes": acc.notes,
    }  # fmt: skip
    return data


def to_yaml(acc: Accelerator, header: str = "") -> str:
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.safe_dump(accelerator_dict(acc), sort_keys=False, allow_unicode=True, width=120)


# ---- building the profiles ---------------------------------------------------------------------------


def measured_by(device: DeviceInfo, date: str) -> str:
    versions = [f"torch {device.torch_version}"]
    if device.cuda_version:
        versions.append(f"CUDA {device.cuda_version}")
    if device.driver_version:
        versions.append(f"driver {device.driver_version}")
    return f"measured by `roofline calibrate` on {date} on {device.name} ({', '.join(versions)})"


def host_accelerator(
    device: DeviceInfo, profile_id: str, peak_flops_per_s: dict[DType, float], bandwidth_bytes_per_s: float,
    bandwidth_kernel: str, date: str,
) -> Accelerator:  # fmt: skip
    """The host as an accelerator with its measured peaks and the prior (unfitted) efficiencies."""
    by = measured_by(device, date)
    formats = {d.value: _rate(v, "FLOP/s") for d, v in peak_flops_per_s.items()}
    compute = {name: formats.get(name, "n/a") for name in COMPUTE_FORMATS}
    compute["source"] = f"MEASURED best matmul FLOP/s per format over the benchmark shapes, {by}"
    data = {
        "kind": "accelerator",
        "id": profile_id,
        "name": f"{device.name} host, {device.compute_units} thread{'s' if device.compute_units > 1 else ''}",
        "vendor": "other",
        "architecture": device.architecture,
        "memory": {"type": "host DRAM", "capacity": _bytes(device.memory_bytes),
                   "bandwidth": _rate(bandwidth_bytes_per_s, "B/s"),
                   "source": f"capacity: the OS (sysconf); bandwidth: MEASURED best {bandwidth_kernel}, {by}"},
        "compute": compute,
        "sram": {"l2": _bytes(device.cache_bytes), "shared_memory_per_sm": _bytes(device.unit_cache_bytes),
                 "sm_count": device.compute_units,
                 "source": "last-level and per-core cache from Linux sysfs; one 'SM' per calibration thread"},
        "efficiency": HOST_PRIOR_EFFICIENCY,
        "power": {"tdp": "0 W", "source": "not measured: roofline calibrate does not read a host CPU's power"},
        "runtime_reserve": "1 GiB",
        "notes": "host profile written by roofline calibrate; runtime_reserve is a rough allowance for the "
                 "OS, Python and torch",
    }  # fmt: skip
    return Accelerator.model_validate(data)


def single_fractions(acc: Accelerator) -> Accelerator:
    """The part with its matmuls at `matmul_fraction` (the single fractions the PyTorch runs fit),
    not its architecture family's GEMM curves (gemm_efficiency)."""
    return acc.model_copy(update={"efficiency": acc.efficiency.model_copy(update={"gemm_curves_family": False})})


def calibrated_accelerator(
    base: Accelerator, efficiency: EfficiencySpec, device: DeviceInfo, date: str, fit_note: str,
    differences: list[str],
) -> Accelerator:  # fmt: skip
    """The profile to write: `base` with the fitted efficiencies and, on a GPU, the device's own
    memory capacity and SM count. Its id is `<base id>-calibrated`."""
    by = measured_by(device, date)
    data = accelerator_dict(base)
    data["id"] = f"{base.id}-calibrated" if not base.id.endswith("-calibrated") else base.id
    data["efficiency"] = efficiency_dict(efficiency, f"fitted to microbenchmarks {by}; {fit_note}")
    data["efficiency"]["gemm_curves_family"] = False  # the fitted single fractions, not the family's curves
    if device.kind == "cuda":
        data["name"] = f"{base.name} (calibrated {date})"
        data["memory"]["capacity"] = _bytes(device.memory_bytes)
        data["memory"]["source"] = f"capacity: torch.cuda.mem_get_info on the device ({date}); {base.memory.source}"
        data["sram"]["sm_count"] = device.compute_units
        data["sram"]["source"] = f"sm_count: torch.cuda.get_device_properties ({date}); {base.sram.source}"
        data["notes"] = "; ".join(
            [f"calibrated from catalog entry {base.id}"] + [f"differs from the catalog: {d}" for d in differences]
        )
    return Accelerator.model_validate(data)


def tiles_text(tiles: list[MatmulTile]) -> str:
    return ", ".join(f"{t.m}x{t.n}" for t in tiles)
