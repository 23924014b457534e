"""Kernel rows of GEMMs: `gemm` (one C[M,N] = A[M,K] B[K,N]) and `grouped_gemm` (G GEMMs of one
shape in one launch, MoE experts), timed by the operator cost model."""

from __future__ import annotations

from roofline.calibration.kernel_table import input_quantize_s, kernel_of, scaling_of
from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster
from roofline.ir import Op
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.gemm_efficiency import curves_for, format_key, gemm_op
from roofline.validation.cases import Case
from roofline.validation.harness import timing_overhead_s
from roofline.validation.predict import Prediction

OUTPUT_BYTES_PER_ELEMENT = 2.0  # a GEMM writes C in 16 bits (BF16 output), whatever its input format


def gemm(case: Case, cluster: Cluster) -> Prediction:
    """One C[M,N] = A[M,K] B[K,N] in the row's format, timed by the operator cost model: the
    architecture's GEMM curve for the format and FP8 scaling (simulator.gemm_efficiency; parts
    without one: peak x the MAMF fraction x wave utilization), p-normed with HBM time, plus the
    kernel overhead, the bf16-input quantise pass where the timed call includes it (AIC rows time
    TensorRT-LLM's Linear.forward) and what the row's timing method adds (validation.harness).
    A and B are read in the format (FP8 block scales added), C is written in 16 bits. From the one
    time: tflops = 2MNK / time, latency_us = time, gbps = (MK + KN) x format bytes + 2MN bytes over
    time (DeepGEMM's MK + KN + 2MN for FP8 inputs, kernels.csv)."""
    m, n, k = case.gemm_shape
    notes = []
    dtype = case.weight_dtype
    if dtype is None:
        dtype = DType.BF16
        notes.append("weight_dtype not published: bf16")
    if cluster.accelerator.compute.peak_flops_per_s(dtype) is None:
        raise RooflineError(f"{cluster.accelerator.id} has no {dtype.value} tensor-core math for a GEMM")
    scaling = scaling_of(case)
    op = gemm_op(m, n, k, dtype, scaling, kernel_of(case))
    model = RooflineCostModel(cluster)
    notes.append(_curve_note(model, op))
    quantize_s = input_quantize_s(case, op, cluster.accelerator)
    if quantize_s:
        notes.append(f"+{quantize_s * 1e6:.1f} us bf16-input quantise pass (TensorRT-LLM Linear.forward)")
    harness_s = timing_overhead_s(case)
    if harness_s:
        notes.append(f"+{harness_s * 1e6:.1f} us isolated eager-call dispatch (timing_harness.yaml)")
    time_s = model.cost(op).total_s + quantize_s + harness_s
    element = dtype.bytes_per_element
    moved_bytes = (m * k + k * n) * element + m * n * OUTPUT_BYTES_PER_ELEMENT
    values = {"tflops": op.flops / time_s / 1e12, "gbps": moved_bytes / time_s / 1e9, "latency_us": time_s * 1e6}
    return Prediction(values, "; ".join(notes))


def _curve_note(model: RooflineCostModel, op: Op) -> str:
    """Which efficiency the GEMM was timed with, and whether the curve transfers to this part."""
    acc = model.cluster.accelerator
    family = curves_for(acc.architecture)
    if family is None or model.gemm_curve(op) is None:
        why = "best-case BLAS benchmark" if op.shape is not None and op.shape.kernel else "no GEMM curve"
        return f"{acc.id} {op.dtype.value}: single best-shape matmul fraction ({why})"
    assert op.shape is not None
    key = format_key(model.math_dtype(op.dtype), op.shape.scaling)
    if op.shape.kernel and family.curve(key, op.shape.kernel) is not family.curve(key):
        key = f"{key}@{op.shape.kernel}"
    transfer = "" if acc.id in family.measured_on else f", transferred from {'/'.join(family.measured_on)}"
    return f"{family.family} {key} GEMM curve{transfer}"


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
