"""GEMM efficiency by shape, per architecture family and math format, as data.

One curve per (family, format) -- format is the math dtype and, for FP8, its scaling mode
(`fp8` = per-tensor scales, `fp8_block` = 128x128 weight / 1x128 activation scales; `fp4` = NVFP4);
a GEMM library measured apart from the runtime's default has keys `<format>@<kernel>`
(`fp8_block@deepgemm`), and `aliases` say which curve a format uses by default. The curves are the
serving runtime's GEMMs (TensorRT-LLM); kernel `blas_best` (a best-case cuBLAS microbenchmark) is
timed with the accelerator's single best-shape `matmul_fraction` instead.
A GEMM C[m, n] = A[m, k] B[k, n] on that family is timed from four numbers:

    compute_s = flops / (peak x fraction x wave utilization x k / (k + k_half))
    floor_s   = k x k_step_s                (a CTA's serial K loop when the output tiles are few)
    kernel_s  = p-norm(max(compute_s, floor_s), memory_s) + kernel overhead + latency_s

- `fraction`: the steady-state share of the dense peak the main loop reaches (large M, N, K);
- `k_half`: the K at which the per-tile prologue/epilogue (accumulator set-up, scale loads, the
  write of C) costs as much as the K loop: the main loop is k / (k + k_half) of a tile's time;
- `k_step_s`: seconds per K element of one CTA's pipeline (load + MMA + scale promotion) -- with
  fewer output tiles than SMs (small M) this serial loop, not HBM bandwidth, sets the time;
- `latency_s`: fixed time per call beyond the accelerator's kernel overhead (prologue, the extra
  launches the runtime's GEMM path makes).

Curves live in `data/gemm/*.yaml`, each file naming the architectures it applies to (matched
against the start of the accelerator's `architecture`); parts with no file keep their YAML
`matmul_fraction`. The fit that writes the files is `roofline.calibration.kernel_table`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs.schema import Accelerator, GemmCurve
from roofline.ir import MatmulShape, Op, OpClass, OpKind
from roofline.yaml_io import read_yaml, validate_into

DATA_DIR = Path(__file__).parent / "data" / "gemm"
SCALING_MODES = ("tensor", "block")  # FP8 per-tensor scales; FP8 128x128/1x128 block scales
FP8_BLOCK_SIDE = 128  # 128 x 128 weight values share one FP32 scale (DeepSeek-V3 FP8 recipe)
FP8_BLOCK_ACTIVATION = 128  # activation values (1 x 128) sharing one FP32 scale
SCALE_BYTES = 4.0  # an FP32 scale
BEST_CASE_KERNEL = "blas_best"  # the vendor BLAS at its best shape/tiles: the accelerator's matmul_fraction (MAMF)

QUANTIZE_SUFFIX = ".quantize"  # an activation-quantise op is named after its GEMM: "<gemm>.quantize"
LOW_PRECISION = (DType.FP8, DType.FP4)  # compute dtypes whose GEMMs take quantised activations

Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class GemmCurveFile(BaseModel):
    """One family's curves (`data/gemm/gemm-<family>.yaml`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["gemm_curves"]
    family: str
    architectures: list[str] = Field(min_length=1)  # accelerator.architecture starts with one of these
    measured_on: list[str] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)  # a format timed as another (fp16 -> bf16)
    formats: dict[str, GemmCurve]
    source: str = Field(min_length=3)
    note: str = ""

    def curve(self, key: str, kernel: str | None = None) -> GemmCurve | None:
        """The curve of a format key; with `kernel`, that library's own curve where the file has one."""
        if kernel is not None and f"{key}@{kernel}" in self.formats:
            return self.formats[f"{key}@{kernel}"]
        return self.formats.get(self.aliases.get(key, key))


def format_key(dtype: DType, scaling: str | None) -> str:
    """The curve a math format and scaling mode use: `fp8_block` for block-scaled FP8, else the
    compute dtype's name (mxfp4 runs on the fp4 curve: the files hold NVFP4 measurements)."""
    name = dtype.compute_name
    return "fp8_block" if name == "fp8" and scaling == "block" else name


def read_curve_file(path: Path) -> GemmCurveFile:
    """One curve file, checked (RooflineError naming the file when it does not fit the schema)."""
    return cast(GemmCurveFile, validate_into(GemmCurveFile, read_yaml(path), f"'{path}'"))


@lru_cache(maxsize=1)
def packaged_curves() -> tuple[GemmCurveFile, ...]:
    return tuple(read_curve_file(p) for p in sorted(DATA_DIR.glob("*.yaml")))


@lru_cache(maxsize=64)
def curves_for(architecture: str) -> GemmCurveFile | None:
    """The packaged family whose `architectures` prefix the accelerator's architecture; None: the
    accelerator keeps its single matmul fractions."""
    for family in packaged_curves():
        if any(architecture.startswith(prefix) for prefix in family.architectures):
            return family
    return None


@lru_cache(maxsize=4096)
def curve_for(architecture: str, dtype: DType, scaling: str | None, kernel: str | None = None) -> GemmCurve | None:
    """The curve of this architecture, math format, scaling mode (and GEMM library, where a curve of
    its own is packaged); None when none is packaged."""
    family = curves_for(architecture)
    if family is None or kernel == BEST_CASE_KERNEL:
        return None
    return family.curve(format_key(dtype, scaling), kernel)


def accelerator_curve(accelerator: Accelerator, dtype: DType, scaling: str | None,
                      kernel: str | None = None) -> GemmCurve | None:  # fmt: skip
    """The curve a GEMM runs on here: the part's own measured curve (efficiency.gemm_curves) where it
    has one for the format (and library), else its architecture family's; None: no curve (best-case
    BLAS rows, or a part that keeps its single matmul fractions)."""
    if kernel == BEST_CASE_KERNEL:
        return None
    own = accelerator.efficiency.gemm_curves
    if own:
        key = format_key(dtype, scaling)
        key = "bf16" if key == "fp16" and "fp16" not in own else key
        curve = own.get(f"{key}@{kernel}") if kernel else None
        if curve is not None or key in own:
            return curve or own[key]
    if not accelerator.efficiency.gemm_curves_family:
        return None
    return curve_for(accelerator.architecture, dtype, scaling, kernel)


def k_efficiency(k: Any, k_half: Any) -> Any:
    """The main loop's share of a tile's time, k / (k + k_half) (numbers or numpy arrays)."""
    return k / (k + k_half)


def weight_scale_bytes(n: float, k: float, dtype: DType, scaling: str | None) -> float:
    """Bytes of FP8 block scales of a [k, n] weight: one FP32 per 128x128 block. (FP4 scales are
    inside its 4.5 / 4.25 bits per value; per-tensor scales are one number.)"""
    if format_key(dtype, scaling) != "fp8_block":
        return 0.0
    return SCALE_BYTES * -(-k // FP8_BLOCK_SIDE) * -(-n // FP8_BLOCK_SIDE)


def activation_scale_bytes(m: float, k: float, dtype: DType, scaling: str | None) -> float:
    """Bytes of FP8 block scales of an [m, k] activation: one FP32 per 1x128 group."""
    if format_key(dtype, scaling) != "fp8_block":
        return 0.0
    return SCALE_BYTES * m * -(-k // FP8_BLOCK_ACTIVATION)


def scale_bytes(m: float, n: float, k: float, dtype: DType, scaling: str | None) -> float:
    """Bytes of FP8 block scales a GEMM C[m, n] = A[m, k] B[k, n] reads beyond its values."""
    return weight_scale_bytes(n, k, dtype, scaling) + activation_scale_bytes(m, k, dtype, scaling)


def gemm_op(m: int, n: int, k: int, dtype: DType, scaling: str | None = None, kernel: str | None = None) -> Op:
    """One C[m, n] = A[m, k] B[k, n] as the cost model times it: A and B read in the format (with
    FP8 block scales), C written in 16 bits."""
    element = dtype.bytes_per_element
    weight_bytes = k * n * element + weight_scale_bytes(n, k, dtype, scaling)
    activation_bytes = m * k * element + m * n * max(element, 2.0) + activation_scale_bytes(m, k, dtype, scaling)
    return Op(name="gemm", kind=OpKind.MATMUL, op_class=OpClass.MLP, dtype=dtype, flops=2.0 * m * n * k,
              weight_bytes=weight_bytes, activation_bytes=activation_bytes,
              shape=MatmulShape(m=m, n=n, k=k, scaling=scaling, kernel=kernel))  # fmt: skip


def is_activation_quantize(op: Op) -> bool:
    """An activation-quantise op (workloads.quantize): elementwise, named "<gemm>.quantize", in the
    GEMM's low-precision format."""
    return (
        op.kind is OpKind.ELEMENTWISE and op.name.endswith(QUANTIZE_SUFFIX) and op.dtype.compute_dtype in LOW_PRECISION
    )


def check_scaling(scaling: str | None) -> str | None:
    if scaling is not None and scaling not in SCALING_MODES:
        raise RooflineError(f"unknown FP8 scaling '{scaling}'; use one of {', '.join(SCALING_MODES)}")
    return scaling
