"""Kernel rows of GEMMs: `gemm` (one C[M,N] = A[M,K] B[K,N]) and `grouped_gemm` (G GEMMs of one
shape in one launch, MoE experts), timed by the operator cost model."""

from __future__ import annotations

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster
from roofline.ir import MatmulShape, Op, OpClass, OpKind
from roofline.simulator.cost import RooflineCostModel
from roofline.validation.cases import Case
from roofline.validation.predict import Prediction

OUTPUT_BYTES_PER_ELEMENT = 2.0  # a GEMM writes C in 16 bits (BF16 output), whatever its input format


def gemm(case: Case, cluster: Cluster) -> Prediction:
    """One C[M,N] = A[M,K] B[K,N] in the row's format, timed by the operator cost model (peak x
    the MAMF fraction x wave utilization, or HBM time if larger, plus one kernel overhead).
    A and B are read in the format, C is written in 16 bits. From the one time: tflops = 2MNK /
    time, latency_us = time, gbps = (MK + KN) x format bytes + 2MN bytes over time (DeepGEMM's
    MK + KN + 2MN for FP8 inputs, kernels.csv)."""
    m, n, k = case.gemm_shape
    notes = []
    dtype = case.weight_dtype
    if dtype is None:
        dtype = DType.BF16
        notes.append("weight_dtype not published: bf16")
    if cluster.accelerator.compute.peak_flops_per_s(dtype) is None:
        raise RooflineError(f"{cluster.accelerator.id} has no {dtype.value} tensor-core math for a GEMM")
    element = dtype.bytes_per_element
    op = Op(name="gemm", kind=OpKind.MATMUL, op_class=OpClass.MLP, dtype=dtype, flops=2.0 * m * n * k,
            weight_bytes=k * n * element, activation_bytes=m * k * element + m * n * max(element, 2.0),
            shape=MatmulShape(m=m, n=n, k=k))  # fmt: skip
    time_s = RooflineCostModel(cluster).cost(op).total_s
    moved_bytes = (m * k + k * n) * element + m * n * OUTPUT_BYTES_PER_ELEMENT
    values = {"tflops": op.flops / time_s / 1e12, "gbps": moved_bytes / time_s / 1e9, "latency_us": time_s * 1e6}
    return Prediction(values, "; ".join(notes))


def grouped_gemm(case: Case, cluster: Cluster) -> Prediction:
    raise RooflineError("scenario 'grouped_gemm' is not predicted yet")
