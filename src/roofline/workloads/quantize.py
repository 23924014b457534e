"""The activation-quantise pass of low-precision GEMMs, as ops of their own.

A block-scaled FP8 or an FP4 GEMM multiplies low-precision activations, so its bf16 input is first
quantised: an elementwise kernel reads the bf16 values, finds the amax of each scale group, and
writes the values in the GEMM's format plus their scales. Where a runtime fuses that pass into the
kernel producing the input it costs nothing; which formats have a standalone pass is data
(simulator/data/quantize/activation_quantize.yaml). On hardware without tensor-core math in the
format the GEMM runs weight-only on bf16 activations and the pass does not run: the cost model
prices these ops at zero there (cost.RooflineCostModel, gemm_efficiency.is_activation_quantize).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import cast

from pydantic import BaseModel, ConfigDict, Field

from roofline.dtypes import DType
from roofline.ir import Op, OpKind
from roofline.simulator.gemm_efficiency import LOW_PRECISION, QUANTIZE_SUFFIX, activation_scale_bytes, format_key
from roofline.yaml_io import read_yaml, validate_into

DATA_FILE = Path(__file__).parents[1] / "simulator" / "data" / "quantize" / "activation_quantize.yaml"


QUANTIZED = frozenset(d for d in DType if d.compute_dtype in LOW_PRECISION)  # formats whose GEMMs quantise


class QuantizeFormat(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    standalone: bool
    source: str = Field(min_length=3)


class QuantizeTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    flops_per_element: float = Field(ge=0.0)
    formats: dict[str, QuantizeFormat]


@lru_cache(maxsize=1)
def quantize_table() -> QuantizeTable:
    return cast(QuantizeTable, validate_into(QuantizeTable, read_yaml(DATA_FILE), f"'{DATA_FILE}'"))


def quantize_op(gemm: Op, activation: DType = DType.BF16, fused_too: bool = False) -> Op | None:
    """The standalone quantise op before this GEMM, or None (not a low-precision GEMM, a batched
    or expert GEMM -- the MoE sequence quantises once per token -- or a format whose pass is fused;
    `fused_too`: the op even then, for a GEMM timed from a bf16 input as TensorRT-LLM's Linear is)."""
    shape = gemm.shape
    if shape is None or gemm.dtype not in QUANTIZED or gemm.kind is not OpKind.MATMUL or shape.batch != 1:
        return None
    entry = quantize_table().formats.get(format_key(gemm.dtype, shape.scaling))
    if entry is None or not (entry.standalone or fused_too):
        return None
    elements = float(shape.m) * shape.k
    written = elements * gemm.dtype.bytes_per_element + activation_scale_bytes(shape.m, shape.k, gemm.dtype,
                                                                                shape.scaling)  # fmt: skip
    return Op(name=gemm.name + QUANTIZE_SUFFIX, kind=OpKind.ELEMENTWISE, op_class=gemm.op_class, dtype=gemm.dtype,
              flops=quantize_table().flops_per_element * elements,
              activation_bytes=elements * activation.bytes_per_element + written, count=gemm.count)  # fmt: skip


def with_activation_quantize(ops: list[Op], activation: DType = DType.BF16) -> list[Op]:
    """The ops with a quantise op before each low-precision GEMM whose pass is standalone."""
    out: list[Op] = []
    for op in ops:
        quantize = quantize_op(op, activation)
        if quantize is not None:
            out.append(quantize)
        out.append(op)
    return out
