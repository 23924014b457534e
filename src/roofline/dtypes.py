"""Numeric formats and their storage size.

Storage sizes include the block-scale overhead of the micro-scaled formats, since that is what
a kernel reads from memory:
- fp4 is NVFP4 class: 4-bit values + one 8-bit scale per 16 values = 4.5 bits
  (NVIDIA NVFP4; MXFP4 is 4.25 bits with one scale per 32 -- the difference is under 6%).
- mxfp4 is OCP MX FP4: 4-bit values + one 8-bit scale per 32 = 4.25 bits (gpt-oss experts);
  it runs fp4 math where the hardware has it, else is dequantized to bf16 (weight-only).
- int4 is weight-only group quantization (AWQ/GPTQ, group 128, fp16 scale and zero) = 4.25 bits.
- int8 is weight-only too (per-output-channel scales, negligible bytes): W8A16 as gpt-fast,
  torchao and vLLM's Marlin kernels run it; the weights are dequantised to bf16 in the GEMM.
- fp6 is MX-style 6-bit with one 8-bit scale per 32 values = 6.25 bits.
"""

from __future__ import annotations

from enum import StrEnum


class DType(StrEnum):
    FP32 = "fp32"
    TF32 = "tf32"
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    FP6 = "fp6"
    FP4 = "fp4"
    MXFP4 = "mxfp4"
    INT8 = "int8"
    INT4 = "int4"

    @property
    def bytes_per_element(self) -> float:
        return _BYTES[self]

    @property
    def compute_dtype(self) -> DType:
        """The tensor-core format that does the math when this format is stored.

        Weight-only int4 and int8 are dequantized to 16-bit before the matmul (AWQ/GPTQ kernels;
        gpt-fast's `WeightOnlyInt8Linear` multiplies `weight.to(bf16)`), so their matmuls run at bf16
        speed while reading 4.25-bit / 8-bit weights. (W8A8 SmoothQuant int8 math is not modelled.)
        """
        return _COMPUTE[self]  # asked per operator in every sweep: a table, not the rule below

    @property
    def compute_name(self) -> str:
        """`compute_dtype.value`: the name of the peak a matmul in this format runs against."""
        return _COMPUTE_NAMES[self]

    @property
    def weight_only_fallback(self) -> DType | None:
        """Math format used when the hardware lacks this one: low-precision weights are dequantized
        to bf16 in the kernel (W8A16 / W4A16, e.g. vLLM's Marlin kernels on Ampere and Hopper)."""
        return DType.BF16 if self in (DType.MXFP4, DType.FP4, DType.FP8, DType.FP6) else None


def _compute_dtype(dtype: DType) -> DType:
    if dtype in (DType.INT4, DType.INT8):
        return DType.BF16
    return DType.FP4 if dtype is DType.MXFP4 else dtype


_COMPUTE = {dtype: _compute_dtype(dtype) for dtype in DType}
_COMPUTE_NAMES = {dtype: _compute_dtype(dtype).value for dtype in DType}

_BYTES = {
    DType.FP32: 4.0,
    DType.TF32: 4.0,
    DType.BF16: 2.0,
    DType.FP16: 2.0,
    DType.FP8: 1.0,
    DType.FP6: 6.25 / 8,
    DType.FP4: 4.5 / 8,
    DType.MXFP4: 4.25 / 8,
    DType.INT8: 1.0,
    DType.INT4: 4.25 / 8,
}


def default_kv_dtype(weight: DType) -> DType:
    """KV-cache format engines pair with a weight format: the same, fp8 for 4- and 6-bit weights,
    bf16 for weight-only int8 (its activations stay 16-bit)."""
    if weight in (DType.FP4, DType.MXFP4, DType.INT4, DType.FP6):
        return DType.FP8
    return DType.BF16 if weight is DType.INT8 else weight


def parse_dtype(text: str) -> DType:
    from roofline.errors import RooflineError

    try:
        return DType(text.lower())
    except ValueError:
        known = ", ".join(d.value for d in DType)
        raise RooflineError(f"unknown dtype '{text}'; use one of {known}") from None
