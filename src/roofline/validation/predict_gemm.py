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


def grouped_gemm_ops(case: Case) -> list[Op]:
    """A `grouped_gemm` row (DeepGEMM, kernels.csv) as the estimator's grouped-GEMM op: G experts of
    m rows each, padded to the deepgemm family's tile (moe_blocks._grouped_gemm)."""
    from roofline.workloads.moe_blocks import grouped_gemm_op

    groups, m, n, k = (case.load_int(key) for key in ("groups", "m", "n", "k"))
    dtype = case.weight_dtype or DType.FP8
    return [grouped_gemm_op(groups, m, n, k, "deepgemm", dtype, case.load_fields.get("layout", "contiguous"))]


def grouped_gemm(case: Case, cluster: Cluster) -> Prediction:
    """G GEMMs of one shape in one launch (DeepGEMM grouped, contiguous or masked layout), timed by
    the cost model's grouped-GEMM path (simulator/grouped_gemm.py); tflops = 2GmNK / time, gbps =
    G(mK + KN + 2mN) bytes / time (DeepGEMM's definition, FP8 in, BF16 out)."""
    (op,) = grouped_gemm_ops(case)
    time_s = RooflineCostModel(cluster).cost(op).total_s
    g, m, n, k = (case.load_int(key) for key in ("groups", "m", "n", "k"))
    moved = g * (m * k + k * n + 2 * m * n)
    values = {"tflops": 2.0 * g * m * n * k / time_s / 1e12, "gbps": moved / time_s / 1e9, "latency_us": time_s * 1e6}
    return Prediction(values, "deepgemm grouped GEMM, rows per group padded to its 128-row tile")
