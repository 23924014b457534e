"""Kernel rows of scenario moe_experts (README of the validation data), timed by the cost model.

The ops come from the estimator's own builder (`moe_blocks.routed_expert_ops`) and are timed one by
one; the row's time is their sum plus what its timing method adds per launched kernel
(`harness.timing_overhead_s`).

- kernels-h200.csv (`torch._grouped_mm` in notes): the two grouped GEMMs of the `torch_grouped_mm`
  variant only, every one of the E experts with max(T K // E, 1) rows (the harness's spread).
- kernels-aic.csv (`kernel_source=` in notes): one TensorRT-LLM fused-MoE forward, the `trtllm`
  variant (CUTLASS) or `deepgemm` (kernel_source deepgemm): top-k, sort, permute, gate+up with
  SwiGLU, down, finalize; no router GEMM, shared experts or all-to-all. With `tp`/`ep` the GPU
  holds E/ep experts of width I/tp and routes all T tokens (top-k over all of them); it permutes,
  computes and combines only its own experts' rows; spread `even` or `power_law_<s>`.
"""

from __future__ import annotations

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster, resolve_cluster
from roofline.ir import Op, Placement, Precision
from roofline.simulator.cost import RooflineCostModel
from roofline.validation.cases import Case
from roofline.validation.harness import timing_overhead_s
from roofline.validation.predict import Prediction
from roofline.workloads.moe_blocks import MoEKernelChoice, MoEShape, rank_load, routed_expert_ops
from roofline.workloads.moe_kernels import RankLoad, family, variant

# AIC moe_dtype (notes `quant=`) -> (expert weight format, grouped-GEMM efficiency key or None)
_AIC_QUANT = {
    "bfloat16": (DType.BF16, None),
    "fp8": (DType.FP8, None),
    "fp8_block": (DType.FP8, "fp8_block"),
    "nvfp4": (DType.FP4, None),
    "w4a16_mxfp4": (DType.INT4, "w4a16_mxfp4"),  # MXFP4 weights dequantised to bf16 math
}


def _note(case: Case, key: str) -> str | None:
    for part in case.notes.split(";"):
        name, _, value = part.strip().partition("=")
        if name == key:
            return value.strip()
    return None


def row_ops(case: Case) -> tuple[list[Op], str]:
    """The ops one moe_experts row runs, and a note of the assumptions."""
    f = case.load_fields
    tokens, experts, top_k = case.load_int("tokens"), case.load_int("experts"), case.load_int("topk")
    shape = MoEShape(hidden=case.load_int("hidden"), num_experts=experts, top_k=top_k,
                     expert_intermediate=case.load_int("intermediate"))  # fmt: skip
    tp, ep = case.load_int("tp", 1), case.load_int("ep", 1)
    placement = Placement(tp=tp, ep=ep, attn_dp=ep)  # E/ep experts per GPU, each of width I/tp
    spread = f.get("spread", "even")
    if "torch._grouped_mm" in case.notes:
        return _torch_rows(case, shape, tokens, placement)
    source = _note(case, "kernel_source")
    if source is None:
        raise RooflineError("moe_experts row without kernel_source or torch._grouped_mm in notes: harness unknown")
    quant = _note(case, "quant") or "bfloat16"
    if quant not in _AIC_QUANT:
        raise RooflineError(f"moe_experts: unknown quant '{quant}'")
    dtype, key = _AIC_QUANT[quant]
    name = _variant_name(source, quant, case.hardware)
    choice = MoEKernelChoice(name, spread, key or None)
    load = rank_load(shape, tokens, placement, choice)
    ops = routed_expert_ops(shape, tokens, load, Precision(dtype), placement, 1, choice, moved_rows=load.rows)
    note = (f"{name} fused MoE ({variant(name).family}), {quant}, spread {spread}; busiest of ep {ep}: "
            f"{load.experts:.0f} experts, {load.rows:.0f} rows")  # fmt: skip
    return ops, note


def _variant_name(source: str, quant: str, hardware: str) -> str:
    """AIC's collector picks the backend per format and GPU (collector/trtllm/collect_moe.py):
    DeepGEMM for fp8_block on Blackwell; for MXFP4 weights (gpt-oss) Triton on Hopper and
    trtllm-gen on Blackwell (kernel_source `moe_torch_flow`); CUTLASS otherwise."""
    if "deepgemm" in source:
        return "deepgemm"
    if quant == "w4a16_mxfp4" and "cutlass" not in source:
        arch = resolve_cluster(hardware=hardware).accelerator.architecture.lower()
        return "trtllm_triton" if arch.startswith("hopper") else "trtllm_gen"
    return "trtllm"


def _torch_rows(case: Case, shape: MoEShape, tokens: int, placement: Placement) -> tuple[list[Op], str]:
    """The harness gives every expert max(T K // E, 1) rows and times the two grouped GEMMs only."""
    rows = max(tokens * shape.top_k // shape.num_experts, 1)
    tile_m = family(variant("torch_grouped_mm").family).tile_m
    e = shape.num_experts
    load = RankLoad(float(e), float(e * rows), float(e * -(-rows // tile_m) * tile_m), float(rows))
    dtype = case.weight_dtype or DType.BF16
    ops = routed_expert_ops(shape, tokens, load, Precision(dtype), placement, 1, MoEKernelChoice("torch_grouped_mm"))
    gemms = [o for o in ops if o.name in ("expert_up", "expert_down")]
    return gemms, f"torch._grouped_mm gate+up and down only, {e} experts x {rows} rows"


def moe_experts(case: Case, cluster: Cluster) -> Prediction:
    ops, note = row_ops(case)
    model = RooflineCostModel(cluster)
    time_s = sum(model.cost(op).total_s for op in ops)
    time_s += timing_overhead_s(case) * sum(op.kernels * op.count for op in ops)
    return Prediction({"latency_us": time_s * 1e6}, note)
