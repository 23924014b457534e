"""The device at hand: its identity (torch, NVML, the OS), the catalog entry it matches, and how
the two differ. Detection takes the torch module as an argument; the rest is torch-free."""

from __future__ import annotations

import os
import platform
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs.schema import Accelerator
from roofline.units import format_bytes, format_rate


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cpu" or "cuda"
    name: str
    memory_bytes: float  # device memory (GPU) or RAM (host)
    free_memory_bytes: float
    compute_units: int  # SMs, or the CPU threads the calibration runs on
    cache_bytes: float  # L2 (GPU) or last-level cache (host)
    unit_cache_bytes: float  # shared memory per SM (GPU) or L2 per core (host)
    architecture: str
    torch_version: str
    matmul_dtypes: tuple[DType, ...]
    model_dtype: DType  # format of the model-level runs and of the non-matmul kernels
    device_count: int = 1
    clock_hz: float | None = None  # max SM clock
    memory_clock_hz: float | None = None
    power_limit_w: float | None = None
    cuda_version: str | None = None
    driver_version: str | None = None

    def identity(self) -> list[tuple[str, str]]:
        rows = [
            ("device", f"{self.name} ({self.kind})"),
            ("architecture", self.architecture),
            ("memory", f"{format_bytes(self.memory_bytes, binary=True)} "
                       f"({format_bytes(self.free_memory_bytes, binary=True)} free)"),
            ("SMs" if self.kind == "cuda" else "threads", str(self.compute_units)),
            ("L2 cache" if self.kind == "cuda" else "last-level cache", format_bytes(self.cache_bytes, binary=True)),
            ("devices visible", str(self.device_count)),
            ("torch", self.torch_version),
        ]  # fmt: skip
        optional = (("CUDA", self.cuda_version), ("driver", self.driver_version),
                    ("max SM clock", format_rate(self.clock_hz, "Hz") if self.clock_hz else None),
                    ("max memory clock", format_rate(self.memory_clock_hz, "Hz") if self.memory_clock_hz else None),
                    ("power limit", f"{self.power_limit_w:g} W" if self.power_limit_w else None))  # fmt: skip
        return rows + [(k, v) for k, v in optional if v]


# ---- catalog matching ---------------------------------------------------------------------------------

# name fragment (upper case, '-' as ' ') -> catalog id; first match wins, so longer names come first
_NAME_RULES: tuple[tuple[str, str], ...] = (
    ("GB300", "gb300"),
    ("GB200", "gb200"),
    ("B300", "b300"),
    ("B200", "b200"),
    ("H200", "h200-sxm"),
    ("H800", "h800"),
    ("H100 PCIE", "h100-pcie"),
    ("H100", "h100-sxm"),
    ("A100", "a100-sxm-80gb"),
    ("L40S", "l40s"),
    ("MI355X", "mi355x"),
    ("MI325X", "mi325x"),
    ("MI300X", "mi300x"),
)


def match_catalog(name: str, memory_bytes: float, known: Collection[str]) -> str | None:
    """The catalog accelerator a device name stands for ('NVIDIA H100 80GB HBM3' -> h100-sxm)."""
    upper = name.upper().replace("-", " ")
    if "GH200" in upper:
        candidate = "gh200-144gb" if memory_bytes > 110e9 else "gh200-96gb"
        return candidate if candidate in known else None
    for fragment, accelerator_id in _NAME_RULES:
        if fragment in upper and accelerator_id in known:
            return accelerator_id
    return None


def catalog_differences(accelerator: Accelerator, device: DeviceInfo) -> list[str]:
    """Where the device is not what the catalog entry says (memory beyond 2%, SM count, clock)."""
    notes = []
    catalog_memory = accelerator.memory.capacity
    if abs(device.memory_bytes - catalog_memory) > 0.02 * catalog_memory:
        notes.append(
            f"memory: device {format_bytes(device.memory_bytes, binary=True)}, "
            f"catalog {format_bytes(catalog_memory, binary=True)}"
        )
    if device.compute_units != accelerator.sram.sm_count:
        notes.append(f"SMs: device {device.compute_units}, catalog {accelerator.sram.sm_count}")
    clock = accelerator.compute.clock
    if device.clock_hz and clock and device.clock_hz < 0.95 * clock:
        notes.append(
            f"max SM clock: device {format_rate(device.clock_hz, 'Hz')}, catalog {format_rate(clock, 'Hz')} "
            "(tensor-core spec clock)"
        )
    return notes


# ---- detection (needs torch) -----------------------------------------------------------------------


def detect(torch: Any, requested: str, threads: int | None = None) -> DeviceInfo:
    """`requested`: cuda, cpu or auto (cuda when a GPU is visible)."""
    if requested not in ("cuda", "cpu", "auto"):
        raise RooflineError(f"--device must be cuda, cpu or auto, got '{requested}'")
    has_cuda = bool(torch.cuda.is_available())
    if requested == "cuda" and not has_cuda:
        raise RooflineError(
            "--device cuda: torch sees no CUDA GPU (torch.cuda.is_available() is False); use --device cpu"
        )
    if requested == "cuda" or (requested == "auto" and has_cuda):
        return _detect_cuda(torch)
    return _detect_cpu(torch, threads)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _sysconf(name: str) -> float | None:
    try:
        value = os.sysconf(name)
    except (ValueError, OSError, AttributeError):
        return None
    return float(value) if value > 0 else None


def host_memory_bytes() -> tuple[float, float]:
    """(total, available) RAM from the OS."""
    page = _sysconf("SC_PAGE_SIZE") or 4096.0
    total = (_sysconf("SC_PHYS_PAGES") or 0.0) * page
    free = (_sysconf("SC_AVPHYS_PAGES") or 0.0) * page
    return total, free or total


def _cpu_caches() -> dict[int, float]:
    """Cache size per level (the largest data/unified cache of each level) from Linux sysfs."""
    sizes: dict[int, float] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        factor = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes[level] = max(sizes.get(level, 0.0), float(digits) * factor)
    return sizes


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "host CPU"


def _detect_cpu(torch: Any, threads: int | None) -> DeviceInfo:
    cores = available_cores()
    threads = threads or cores
    if threads < 1:
        raise RooflineError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    total, free = host_memory_bytes()
    caches = _cpu_caches()
    last_level = caches[max(caches)] if caches else 32 * 2**20
    return DeviceInfo(
        kind="cpu", name=_cpu_name(), memory_bytes=total, free_memory_bytes=free, compute_units=threads,
        cache_bytes=last_level, unit_cache_bytes=caches.get(2, caches.get(1, 1024**2)),
        architecture=f"{platform.machine()} CPU ({cores} cores available)", torch_version=str(torch.__version__),
        matmul_dtypes=(DType.FP32, DType.BF16), model_dtype=DType.FP32,
    )  # fmt: skip


def _detect_cuda(torch: Any) -> DeviceInfo:
    props = torch.cuda.get_device_properties(0)
    capability = (int(props.major), int(props.minor))
    free, total = torch.cuda.mem_get_info(0)
    dtypes = [DType.FP32, DType.FP16]
    if capability >= (8, 0):
        dtypes.insert(1, DType.BF16)
    if capability >= (8, 9) and hasattr(torch, "_scaled_mm") and hasattr(torch, "float8_e4m3fn"):
        dtypes.append(DType.FP8)
    nvml = _nvml()
    driver_api = getattr(torch._C, "_cuda_getDriverVersion", None)
    driver = nvml.get("driver") or (f"CUDA driver API {driver_api()}" if callable(driver_api) else None)
    return DeviceInfo(
        kind="cuda", name=str(props.name), memory_bytes=float(total), free_memory_bytes=float(free),
        compute_units=int(props.multi_processor_count), cache_bytes=float(getattr(props, "L2_cache_size", 0) or 0),
        unit_cache_bytes=float(getattr(props, "shared_memory_per_multiprocessor", 0) or 0),
        architecture=f"sm_{capability[0]}{capability[1]}", torch_version=str(torch.__version__),
        matmul_dtypes=tuple(dtypes), model_dtype=DType.BF16 if DType.BF16 in dtypes else DType.FP16,
        device_count=int(torch.cuda.device_count()), clock_hz=nvml.get("sm_clock_hz"),
        memory_clock_hz=nvml.get("memory_clock_hz"), power_limit_w=nvml.get("power_limit_w"),
        cuda_version=torch.version.cuda, driver_version=driver,
    )  # fmt: skip


def _nvml() -> dict[str, Any]:
    """Driver version, max clocks and power limit of GPU 0 from NVML, when pynvml is importable."""
    try:
        import pynvml
    except ImportError:
        return {}
    info: dict[str, Any] = {}
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        driver = pynvml.nvmlSystemGetDriverVersion()
        info["driver"] = driver.decode() if isinstance(driver, bytes) else str(driver)
        info["sm_clock_hz"] = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM) * 1e6
        info["memory_clock_hz"] = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM) * 1e6
        info["power_limit_w"] = pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000.0
    except Exception:  # NVML missing or refusing a query: keep what was read
        pass
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return info
