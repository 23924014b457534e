"""Kernel rows of scenario attention_kernel (README of the validation data), timed by the cost model.

The ops come from the estimator's own builders: GQA rows from `attention_block_ops` (its RoPE +
KV-append op and the attention core: the measured TensorRT-LLM op applies RoPE and writes the
new K/V into the cache in the same call; a torch SDPA row of our own calibrate run is the core
alone, priced with the runtime kernel `sdpa`), MLA rows from the DeepSeek MLA absorbed-decode core
(`mla_sparse`: DeepSeek-V3.2, FP8 cache in FlashMLA's 656-byte layout). Each op is timed by
`RooflineCostModel.cost`, so by the attention curves where the accelerator has them.
"""

from __future__ import annotations

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster
from roofline.ir import Op, OpKind, Phase, Placement, Precision, StepShape
from roofline.simulator.cost import RooflineCostModel
from roofline.validation.cases import Case
from roofline.validation.harness import timing_overhead_s
from roofline.validation.predict import Prediction
from roofline.workloads.layers import FULL, AttentionShape, Span, attention_block_ops
from roofline.workloads.mla import MLATransformer

GQA_OPS = ("rope", "attention")  # the parts of attention_block_ops that the measured call covers
SDPA_OPS = ("attention",)  # a torch SDPA call alone: no RoPE, no KV-cache write
MLA_MODELS = {"mla": "deepseek-v3", "mla_sparse": "deepseek-v3.2"}  # catalog models with the rows' latent


def _phase(case: Case) -> Phase:
    text = case.load_fields.get("phase", "")
    if text not in ("prefill", "decode"):
        raise RooflineError(f"{case.case_id}: attention load needs phase=prefill or phase=decode, not '{text}'")
    return Phase(text)


def runtime_kernel(case: Case) -> str | None:
    """The attention kernel a row timed: "sdpa" for our own calibrate run's torch SDPA rows (source
    calibration/..., notes "torch SDPA"), None (TensorRT-LLM's attention op) otherwise."""
    return "sdpa" if case.source.startswith("calibration/") and "torch SDPA" in case.notes else None


def kv_format(case: Case) -> DType:
    return case.kv_dtype or case.weight_dtype or DType.BF16


def kernel_ops(case: Case) -> list[Op]:
    """The ops the row's kernel call is, built by the estimator's attention builders."""
    phase, variant = _phase(case), case.load_fields.get("variant", "gqa")
    batch, q_len, kv_len = case.load_int("batch"), case.load_int("q_len"), case.load_int("kv_len")
    heads, kv_heads, head_dim = case.load_int("heads"), case.load_int("kv_heads"), case.load_int("head_dim")
    precision = Precision(weight=DType.BF16, activation=DType.BF16, kv_cache=kv_format(case))
    step = StepShape(phase, batch, q_len, kv_len)
    if variant in ("gqa", "mha"):
        shape = AttentionShape(heads * head_dim, heads, kv_heads, head_dim)
        names = SDPA_OPS if runtime_kernel(case) else GQA_OPS
        return [op for op in attention_block_ops(shape, step, precision, Placement(), 1) if op.name in names]
    if variant not in MLA_MODELS or phase is not Phase.DECODE:
        raise RooflineError(f"{case.case_id}: attention variant '{variant}' in {phase.value} is not predicted")
    from roofline.workloads import get_workload

    model = get_workload(MLA_MODELS[variant])
    assert isinstance(model, MLATransformer)
    if model.latent_width != head_dim or model.kv_lora_rank != case.load_int("head_dim_v", model.kv_lora_rank):
        raise RooflineError(f"{case.case_id}: MLA head dims {head_dim} differ from {model.id}'s latent")
    span = Span("topk", case.load_int("topk")) if variant == "mla_sparse" else FULL
    ops = model._absorbed_ops(span, step, precision, heads, 1)
    return [op for op in ops if op.kind is OpKind.ATTENTION]


def counted_flops(case: Case) -> float:
    """FLOPs as the rows count them: QK^T and PV, half of the square for causal prefill."""
    f = case.load_fields
    b, q, kv, h = case.load_int("batch"), case.load_int("q_len"), case.load_int("kv_len"), case.load_int("heads")
    d = case.load_int("head_dim")
    dv = case.load_int("head_dim_v", d)
    causal = f.get("causal", "0") == "1" and _phase(case) is Phase.PREFILL
    return 2.0 * b * h * q * kv * (d + dv) * (0.5 if causal else 1.0)


def kernel_time_s(case: Case, cluster: Cluster, model: RooflineCostModel | None = None) -> tuple[float, list[Op]]:
    kernel = runtime_kernel(case)
    model = model or RooflineCostModel(cluster, runtime_attention=kernel)
    ops = kernel_ops(case)
    return sum(model.cost(op).total_s for op in ops) + timing_overhead_s(case, kernel or "matmul"), ops


def attention_kernel(case: Case, cluster: Cluster) -> Prediction:
    """latency_us = the ops' time (+ what the row's timing method adds); tflops = the row's FLOP
    count / time; gbps = KV-cache bytes read / time."""
    model = RooflineCostModel(cluster, runtime_attention=runtime_kernel(case))
    time_s, ops = kernel_time_s(case, cluster, model)
    kv_bytes = sum(op.kv_read_bytes for op in ops)
    notes = [model.cost(op).detail for op in ops if op.kind is OpKind.ATTENTION]
    if case.kv_dtype is None:
        notes.append(f"kv_dtype not published: {kv_format(case).value}")
    tflops = counted_flops(case) / time_s / 1e12
    values = {"latency_us": time_s * 1e6, "tflops": tflops, "gbps": kv_bytes / time_s / 1e9}
    return Prediction(values, "; ".join(n for n in notes if n))
