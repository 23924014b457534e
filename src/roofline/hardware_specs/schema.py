"""Pydantic schema of the hardware YAML files.

Every file has `kind: accelerator | link | system` and an `id`. Every block of numbers carries a
`source:`. Quantities carry units in the YAML ("3.35 TB/s", "80 GiB", "989.4 TFLOP/s"); they are
SI floats once loaded. Peaks are dense (no 2:4 sparsity); link bandwidths are per direction.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    WrapSerializer,
    model_validator,
)

from roofline.dtypes import DType
from roofline.overrides import replace_fields
from roofline.units import EXACT_UNITS, Bytes, BytesPerSecond, FlopsPerSecond, Hertz, Seconds, Watts
from roofline.yaml_io import FittedOn

Fraction = Annotated[float, Field(gt=0.0, le=1.0)]
Source = Annotated[str, Field(min_length=3)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    def replace(self, **changes: Any) -> Self:
        """A what-if copy, validated like a YAML file: `h100.replace(memory_bandwidth="4.8 TB/s")`.

        Keys: a field (`runtime_reserve`), a nested field with underscores (`compute_bf16`) or dots
        (`**{"memory.bandwidth": ...}`). Values: strings with units as in YAML, or plain numbers in
        SI units (`memory_bandwidth=4.8e12`). Bad values raise a one-line RooflineError.
        """
        return replace_fields(self, changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field in SI units (enums as their values): `roofline hardware show ID --format json`."""
        return plain(self.model_dump(mode="python"))


def plain(data: Any) -> Any:
    """model_dump(mode='python') keeps SI floats; enums become their values."""
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return getattr(data, "value", data)


def _not_available(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip().lower() in {"n/a", "na", "none"} else value


def _write_not_available(value: Any, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
    """A missing format is written `n/a` in exact (YAML) output, as the catalog files write it."""
    exact = isinstance(info.context, dict) and info.context.get(EXACT_UNITS)
    return "n/a" if value is None and exact else handler(value)


OptionalPeak = Annotated[
    FlopsPerSecond | None, BeforeValidator(_not_available), WrapSerializer(_write_not_available, when_used="json")
]


class MemorySpec(Frozen):
    """Device memory. `capacity` is what the driver exposes (nvidia-smi), binary where it is."""

    type: str
    capacity: Bytes
    bandwidth: BytesPerSecond
    source: Source


class ComputeSpec(Frozen):
    """Dense peak throughput per format; `n/a` where the hardware has no support."""

    fp32: OptionalPeak
    tf32: OptionalPeak
    bf16: OptionalPeak
    fp16: OptionalPeak
    fp8: OptionalPeak
    fp6: OptionalPeak
    fp4: OptionalPeak
    int8: OptionalPeak
    clock: Hertz | None = None
    source: Source

    def peak_flops_per_s(self, dtype: DType) -> float | None:
        peak: float | None = getattr(self, dtype.compute_name, None)
        return peak


class SramSpec(Frozen):
    l2: Bytes
    shared_memory_per_sm: Bytes
    sm_count: int = Field(gt=0, description="SMs (NVIDIA) or CUs (AMD) enabled on the part")
    source: Source


class MatmulTile(Frozen):
    """An output tile a GEMM kernel can use; the engine picks the one that wastes the least."""

    m: int = Field(gt=0)
    n: int = Field(gt=0)


class GemmCurve(Frozen):
    """GEMM efficiency by shape for one math format (simulator.gemm_efficiency): the steady-state
    share of the peak, the K of the per-tile prologue/epilogue, a CTA's serial K-loop time per K
    element, a fixed latency per call; with the rows it was fitted on."""

    fraction: Fraction
    k_half: float = Field(ge=0.0)
    k_step_s: float = Field(ge=0.0)
    latency_s: float = Field(ge=0.0)
    rms_log_error: float | None = Field(default=None, ge=0.0)  # of the fit, on the rows it was fitted on
    fitted_on: list[str] = Field(default_factory=list)
    held_out: list[str] = Field(default_factory=list)


class EfficiencySpec(Frozen):
    """Achievable fractions of the peaks, from public microbenchmarks (priors, not calibrated here).

    - memory_bandwidth_fraction: STREAM-like copy/triad bandwidth over the spec bandwidth;
    - matmul_fraction: best-shape GEMM throughput (MAMF) over the dense peak, per format; formats
      not listed use `default`;
    - attention_fraction: fused attention throughput over the bf16 peak with the best kernel the
      serving engines use on this part (FlashAttention-3 class on Hopper);
    - attention_kernels: the same fraction for named kernel families ("fa2", "fa3") where a
      stack picks one (PyTorch SDPA's flash backend is FlashAttention-2); families not listed
      run at attention_fraction;
    - kernel_overhead: fixed time per kernel (launch gap, prologue/epilogue, tail) that a
      well-fed stream of kernels pays even under CUDA graphs;
    - matmul_tiles: output tiles GEMM kernels choose from; with the SM count they give the wave
      quantization that makes small or odd-shaped matmuls slower than the peak;
    - gemm_curves: GEMM efficiency by shape measured on this very part (`roofline calibrate
      --kernel-table`), keyed like the family curve files (bf16, fp8, fp8_block, fp4, ...); they
      take precedence over the architecture family's packaged curves;
    - gemm_curves_family: false: matmuls without a curve of the part's own run at `matmul_fraction`
      instead of the architecture family's curves (profiles written by the PyTorch runs of
      `roofline calibrate`, whose single fractions were fitted on the device itself);
    - gemv_below_m: a matmul of fewer rows than this runs as matrix-vector products, one pass over
      the weights per row and no row tile (a host BLAS below its packed-GEMM path: MKL fp32 on
      x86 streams the weights once for M = 1 and twice for M = 2, packs them from M = 4); 0: none
      (GPUs; profiles written by `roofline calibrate` on a CPU fit it);
    - decode_attention_memory_fraction: on a part without by-shape attention curves, decode attention
      (one new token per sequence over the KV cache) streams its bytes at this fraction of the
      memory bandwidth, its math at attention_fraction (a host: PyTorch SDPA's decode path is a
      pair of skinny matmuls over the cache, nothing like its prefill kernel); None: as any kernel;
    - gemv_output_overhead: time per output element of such a matrix-vector product (each is a dot
      product with its own reduction and store: short rows of K run below the stream bandwidth);
    - overlap_exponent: how a kernel overlaps its math with its memory traffic: time =
      (compute^p + memory^p)^(1/p). p -> infinity is the textbook max(); a kernel near the ridge
      point reaches neither ceiling (p = 2: 1.41 x max at the ridge, < 3% off once one side is 4x
      the other). p = 2 cuts the error on every independent group of published rows at once
      (max-throughput 13% -> 9% on a 29-row sample, request-rate TTFT 13% -> 7%, TPOT 15% -> 11%,
      GEMM 8.2% -> 7.7%), so it is the default.
    """

    memory_bandwidth_fraction: Fraction
    matmul_fraction: dict[str, Fraction]
    attention_fraction: Fraction
    kernel_overhead: Seconds
    matmul_tiles: list[MatmulTile] = Field(min_length=1)
    attention_kernels: dict[str, Fraction] = Field(default_factory=dict)
    overlap_exponent: float = Field(default=2.0, ge=1.0)
    gemv_below_m: int = Field(default=0, ge=0)
    gemv_output_overhead: Seconds = 0.0
    decode_attention_memory_fraction: Fraction | None = None
    gemm_curves: dict[str, GemmCurve] = Field(default_factory=dict)
    gemm_curves_family: bool = True
    source: Source
    fitted_on: FittedOn = Field(default_factory=list, description="measurement rows these fractions were fitted on")

    @model_validator(mode="after")
    def _check_formats(self) -> EfficiencySpec:
        known = {d.value for d in DType} | {"default"}
        unknown = set(self.matmul_fraction) - known
        if unknown:
            raise ValueError(f"matmul_fraction has unknown formats {sorted(unknown)}; use {sorted(known)}")
        if "default" not in self.matmul_fraction:
            raise ValueError("matmul_fraction needs a 'default' entry for formats not listed")
        return self

    def matmul_fraction_for(self, dtype: DType) -> float:
        return self.matmul_fraction.get(dtype.compute_name, self.matmul_fraction["default"])

    def attention_fraction_for(self, kernel: str | None) -> float:
        """The attention fraction of a kernel family; None or a family not listed: the default."""
        return self.attention_kernels.get(kernel, self.attention_fraction) if kernel else self.attention_fraction


class PowerSpec(Frozen):
    tdp: Watts
    source: Source


class Accelerator(Frozen):
    kind: Literal["accelerator"]
    id: str
    name: str
    vendor: Literal["nvidia", "amd", "google", "other"]
    architecture: str
    status: Literal["released", "pre-release"] = "released"
    default_system: str | None = Field(default=None, description="system id used when only the accelerator is named")
    memory: MemorySpec
    compute: ComputeSpec
    sram: SramSpec
    efficiency: EfficiencySpec
    power: PowerSpec
    runtime_reserve: Bytes = Field(
        description="memory the runtime keeps for itself: CUDA context, library workspaces, allocator slack"
    )
    notes: str = ""


class Wiring(StrEnum):
    SWITCHED = "switched"  # every GPU reaches every other at full per-GPU bandwidth (NVSwitch, IB fabric)
    POINT_TO_POINT = "point_to_point"  # direct links; a GPU's bandwidth is split among its peers (xGMI mesh)
    ROOT_COMPLEX = "root_complex"  # GPU-to-GPU traffic through the PCIe root complex / host bridge


class Link(Frozen):
    kind: Literal["link"]
    id: str
    name: str
    family: Literal["nvlink", "pcie", "infiniband", "ethernet", "c2c", "xgmi"]
    bandwidth_per_port: BytesPerSecond = Field(
        description="per direction, for one port (one NVLink, one x16 slot, one NIC)"
    )
    wiring: Wiring
    latency: Seconds = Field(description="one hop, end to end, small message")
    achievable_fraction: Fraction = Field(description="of the per-direction line rate, large messages")
    fitted_on: FittedOn = Field(default_factory=list, description="measurement rows the fraction was fitted on")
    source: Source
    notes: str = ""


class Attachment(Frozen):
    """How GPUs of a system attach to a fabric: which link and how many ports each GPU has."""

    link: str
    ports_per_gpu: float = Field(gt=0)
    wiring: Wiring | None = Field(default=None, description="overrides the link's wiring for this system")
    in_switch_reduction: bool = Field(
        default=False, description="the switches reduce in-network (NVLink SHARP / NVLS on NVSwitch gen3+)"
    )
    sockets: int = Field(default=1, ge=1, description="root_complex wiring: CPU sockets the GPUs are split over")
    cross_socket_fraction: Fraction = Field(
        default=1.0, description="root_complex wiring: peer bandwidth across the inter-socket link, of same-socket"
    )


class HostCpu(Frozen):
    """The CPU that drives the GPUs: Python dispatch, engine schedulers and sampling run on one of its
    cores, so host time per step scales with its single-thread speed."""

    kind: Literal["host_cpu"]
    id: str
    name: str
    single_thread_speed: float = Field(gt=0, description="per-core speed relative to the reference host CPU (1.0)")
    source: Source
    notes: str = ""


class System(Frozen):
    kind: Literal["system"]
    id: str
    name: str
    accelerator: str
    gpus_per_node: int = Field(gt=0, description="GPUs in one node (one scale-up domain unless stated)")
    gpus_per_domain: int = Field(gt=0, description="GPUs in one scale-up (NVLink / xGMI) domain")
    scale_up: Attachment
    scale_out: Attachment | None = None
    host_link: Attachment | None = None
    host_cpu: str | None = Field(default=None, description="host CPU id (data/host_cpus); None: the reference")
    status: Literal["released", "pre-release"] = "released"
    source: Source
    notes: str = ""

    @model_validator(mode="after")
    def _domain_holds_nodes(self) -> System:
        if self.gpus_per_domain % self.gpus_per_node and self.gpus_per_node % self.gpus_per_domain:
            raise ValueError("gpus_per_domain and gpus_per_node must divide one another")
        return self
