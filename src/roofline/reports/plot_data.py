"""The numbers behind `roofline plot`: pure data, no matplotlib. SI units throughout.

Each function takes what the estimator takes (workload, cluster, scenario) or its results and
returns frozen values that plots.py draws; tests check them against hand arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from roofline.dtypes import DType
from roofline.hardware_specs import Accelerator, Cluster
from roofline.simulator import Scenario, estimate
from roofline.simulator.memory import memory_result
from roofline.simulator.results import EstimateResult, MemoryResult, OpRow, PhaseResult, op_row_dict
from roofline.workloads import Workload

ROOFLINE_DTYPES = (DType.BF16, DType.FP8, DType.FP4)
KERNEL_MODEL = "per-operator roofline with achievable fractions; kernel time = p-norm of compute and memory"

# operator class -> the group a plot colours it by (scatter) and the coarser group of the breakdown bars
POINT_GROUPS = {"attention": "attention", "mlp": "MLP / experts", "norm": "norm", "lm_head": "LM head",
                "embedding": "other", "sampling": "other", "communication": "communication"}  # fmt: skip
BREAKDOWN_GROUPS = ("attention", "MLP / experts", "communication", "other")


def point_group(op_class: str) -> str:
    return POINT_GROUPS.get(op_class, "other")


def breakdown_group(op_class: str) -> str:
    group = point_group(op_class)
    return group if group in BREAKDOWN_GROUPS else "other"


# ---------------------------------------------------------------- titles and captions


def describe(result: EstimateResult) -> str:
    """Model, hardware, parallelism and formats in one line (the figure title)."""
    par = f"tp={result.tp} pp={result.pp} dp={result.dp}"
    if result.ep > 1 or result.attn_dp > 1:
        par += f" ep={result.ep} attn-dp={result.attn_dp}"
    if result.cp > 1:
        par += f" cp={result.cp}"
    return (f"{result.model} on {result.num_gpus} x {result.hardware} ({result.system}), {par}, "
            f"weights {result.weight_dtype}, KV {result.kv_cache_dtype}")  # fmt: skip


def assumptions(scenario: Scenario, batch: str | None = None) -> str:
    """isl/osl/batch and the engine token budget (the start of every caption)."""
    shown = batch if batch is not None else str(scenario.batch)
    return (f"isl={scenario.isl}, osl={scenario.osl}, batch={shown}; engine token budget "
            f"{scenario.max_num_tokens} tokens/step; {KERNEL_MODEL}")  # fmt: skip


# ---------------------------------------------------------------- roofline


@dataclass(frozen=True)
class Ceiling:
    """A compute ceiling: achievable = peak x the accelerator's matmul fraction for the format."""

    dtype: str
    flops_per_s: float
    peak_flops_per_s: float


@dataclass(frozen=True)
class MemorySlope:
    """A memory roof: achievable = spec bandwidth x the STREAM-like fraction."""

    name: str
    bytes_per_s: float
    peak_bytes_per_s: float


def ridge_flops_per_byte(ceiling: Ceiling, slope: MemorySlope) -> float:
    """Arithmetic intensity where the compute ceiling meets the memory slope."""
    return ceiling.flops_per_s / slope.bytes_per_s


def ceilings(accelerator: Accelerator) -> tuple[Ceiling, ...]:
    """One compute ceiling per format of ROOFLINE_DTYPES the chip has tensor-core math for."""
    out = []
    for dtype in ROOFLINE_DTYPES:
        peak = accelerator.compute.peak_flops_per_s(dtype)
        if peak:
            out.append(Ceiling(dtype.value, peak * accelerator.efficiency.matmul_fraction_for(dtype), peak))
    return tuple(out)


def memory_slopes(accelerator: Accelerator) -> tuple[MemorySlope, ...]:
    """HBM only: the hardware schema has no L2 bandwidth to draw a second slope from."""
    spec = accelerator.memory.bandwidth
    fraction = accelerator.efficiency.memory_bandwidth_fraction
    return (MemorySlope(accelerator.memory.type.split(" ")[0], spec * fraction, spec),)


@dataclass(frozen=True)
class OpPoint:
    """One operator of a phase on the roofline: where it sits and how much of the phase it takes."""

    phase: str
    batch: int
    name: str
    op_class: str
    group: str
    intensity_flops_per_byte: float
    achieved_flops_per_s: float
    time_s: float
    time_share: float  # of the summed operator time of the phase


@dataclass(frozen=True)
class PhasePoints:
    phase: str
    batch: int
    points: tuple[OpPoint, ...]
    omitted: tuple[str, ...]  # communication and operators without FLOPs or bytes: no intensity
    minor: tuple[str, ...] = ()  # under MIN_POINT_SHARE of the phase time


MIN_POINT_SHARE = 0.001  # operators under 0.1% of the phase time stay off the scatter


def row_points(phase: str, batch: int, rows: list[dict[str, Any]]) -> PhasePoints:
    """Operator rows (op_row_dict keys) of one step as roofline points."""
    total_s = sum(r["time_s"] for r in rows) or 1.0
    points, omitted, minor = [], [], []
    for r in rows:
        if r["op_class"] == "communication" or r["flops"] <= 0 or r["bytes"] <= 0 or r["time_s"] <= 0:
            omitted.append(r["name"])
            continue
        if r["time_s"] / total_s < MIN_POINT_SHARE:
            minor.append(r["name"])
            continue
        points.append(OpPoint(phase, batch, r["name"], r["op_class"], point_group(r["op_class"]),
                              r["flops"] / r["bytes"], r["flops"] / r["time_s"], r["time_s"],
                              r["time_s"] / total_s))  # fmt: skip
    return PhasePoints(phase, batch, tuple(points), tuple(dict.fromkeys(omitted)), tuple(dict.fromkeys(minor)))


def op_points(phase: PhaseResult, batch: int) -> PhasePoints:
    return row_points(phase.phase.value, batch, [op_row_dict(r) for r in phase.ops])


@dataclass(frozen=True)
class RooflineData:
    title: str
    caption: str
    ceilings: tuple[Ceiling, ...]
    slopes: tuple[MemorySlope, ...]
    math_dtype: str  # the ceiling the run's matmuls use
    prefill: PhasePoints
    decode: tuple[PhasePoints, ...]  # one per batch
    panel_titles: tuple[str, ...] = ()  # diffusion: one panel per step kind, prefill first, then each decode


def _math_dtype(scenario: Scenario, accelerator: Accelerator, available: tuple[Ceiling, ...]) -> str:
    dtype = scenario.precision.weight.compute_dtype.value
    return dtype if any(c.dtype == dtype for c in available) else DType.BF16.value


def roofline_data(workload: Workload, cluster: Cluster, scenario: Scenario, batches: list[int]) -> RooflineData:
    """Prefill at the first batch; a decode step (the middle one) at every batch."""
    results = [estimate(workload, cluster, replace(scenario, batch=b)) for b in batches]
    acc = cluster.accelerator
    roofs = ceilings(acc)
    decode = tuple(op_points(r.decode, r.batch) for r in results)
    prefill = op_points(results[0].prefill, results[0].batch)
    omitted = sorted({*prefill.omitted, *(n for d in decode for n in d.omitted)})
    minor = sorted({*prefill.minor, *(n for d in decode for n in d.minor)})
    caption = (f"{assumptions(replace(scenario, batch=batches[0]), ','.join(map(str, batches)))}. "
               f"Prefill at batch {batches[0]}; decode = the middle decode step. Point area = share of the phase's "
               f"operator time. Left out: communication and ops without FLOPs (no arithmetic intensity: "
               f"{', '.join(omitted) or 'none'})")  # fmt: skip
    caption += f"; ops under 0.1% of the phase time ({', '.join(minor)})." if minor else "."
    return RooflineData(describe(results[0]), caption, roofs, memory_slopes(acc), _math_dtype(scenario, acc, roofs),
                        prefill, decode)  # fmt: skip


def diffusion_roofline_data(data: dict[str, Any], cluster: Cluster) -> RooflineData:
    """A diffusion estimate's steps on the rooflines: the DiT's denoising step; a diffusion LM's full
    pass and its cached block step (one panel each). `data` is the estimate's dict with its op rows."""
    rows = list(data["step_ops"])
    phases = list(dict.fromkeys(r["phase"] for r in rows))
    kinds = {k["phase"]: k for k in data.get("step_kinds", [])}
    dropped: list[str] = []
    if len(phases) > 2:  # a prefix cache has one step kind per block: the full pass and the costliest other
        costliest = max(phases[1:], key=lambda p: kinds[p]["total_s"] if p in kinds else 0.0)
        dropped = [p for p in phases[1:] if p != costliest]
        phases = [phases[0], costliest]
    panels = [row_points(p, int(data["batch"]), [r for r in rows if r["phase"] == p]) for p in phases]
    titles = tuple(p + (f", x {kinds[p]['steps']} steps" if p in kinds else "") for p in phases)
    omitted = sorted({n for pp in panels for n in pp.omitted})
    acc = cluster.accelerator
    runtime = "torch.compile" if data.get("compiled") else "eager PyTorch"
    caption = (f"{data.get('attention_kernel', '')} attention, {runtime}; {KERNEL_MODEL}. Point area = share of "
               f"the step's operator time. Left out: communication and ops without FLOPs "
               f"({', '.join(omitted) or 'none'}).")  # fmt: skip
    if dropped:
        caption += f" Not drawn: {len(dropped)} other step kinds ({dropped[0]} ... {dropped[-1]})."
    return RooflineData(str(data.get("title", data["model"])), caption, ceilings(acc), memory_slopes(acc),
                        DType.BF16.value, panels[0], tuple(panels[1:]), titles)  # fmt: skip


# ---------------------------------------------------------------- breakdown


@dataclass(frozen=True)
class Breakdown:
    title: str
    caption: str
    phase_time_s: dict[str, float]  # prefill: TTFT, decode: TPOT
    group_time_s: dict[str, dict[str, float]]  # phase -> group -> seconds (scaled to the phase time)
    memory_bytes: dict[str, float]  # weights, KV cache, activations, reserve, free
    capacity_bytes: float


def group_times(ops: tuple[OpRow, ...], phase_time_s: float) -> dict[str, float]:
    """Summed operator time per breakdown group, scaled so the groups add up to the phase time
    (they differ with pipeline stages, and the decode rows are the middle step, TPOT the mean)."""
    raw = dict.fromkeys(BREAKDOWN_GROUPS, 0.0)
    for op in ops:
        raw[breakdown_group(op.op_class)] += op.time_s
    total = sum(raw.values())
    scale = phase_time_s / total if total else 0.0
    return {g: t * scale for g, t in raw.items()}


def memory_parts(memory: MemoryResult) -> dict[str, float]:
    return {
        "weights": memory.weights_bytes,
        "KV cache": memory.kv_cache_bytes,
        "activations": memory.activation_bytes,
        "reserve": memory.reserve_bytes,
        "free": max(memory.margin_bytes, 0.0),
    }


def breakdown_data(result: EstimateResult, scenario: Scenario) -> Breakdown:
    phases = {"prefill": result.ttft_batch_s, "decode": result.tpot_s}
    groups = {"prefill": group_times(result.prefill.ops, result.ttft_batch_s),
              "decode": group_times(result.decode.ops, result.tpot_s)}  # fmt: skip
    fit = "fits" if result.memory.fits else "DOES NOT FIT"
    caption = (f"{assumptions(scenario)}. Time shares from the operator rows (decode: the middle step), "
               f"scaled to TTFT and TPOT. Memory: the most loaded GPU, {fit}.")  # fmt: skip
    return Breakdown(describe(result), caption, phases, groups, memory_parts(result.memory),
                     result.memory.capacity_bytes)  # fmt: skip


# ---------------------------------------------------------------- scaling


@dataclass(frozen=True)
class BatchPoint:
    batch: int
    tpot_s: float
    ttft_batch_s: float  # prefill of the whole batch
    output_tokens_per_s: float
    decode_tokens_per_s_per_gpu: float  # batch / TPOT over all GPUs (with replicas)
    tokens_per_s_per_user: float  # 1 / TPOT
    fits: bool


def batch_sweep(workload: Workload, cluster: Cluster, scenario: Scenario, batches: list[int]) -> list[BatchPoint]:
    out = []
    for b in batches:
        r = estimate(workload, cluster, replace(scenario, batch=b))
        out.append(BatchPoint(b, r.tpot_s, r.ttft_batch_s, r.output_tokens_per_s, r.decode_tokens_per_s / r.num_gpus,
                              1.0 / r.tpot_s, r.memory.fits))  # fmt: skip
    return out


@dataclass(frozen=True)
class PromptPoint:
    isl: int
    ttft_batch_s: float
    fits: bool


def prompt_sweep(workload: Workload, cluster: Cluster, scenario: Scenario, isls: list[int]) -> list[PromptPoint]:
    out = []
    for isl in isls:
        r = estimate(workload, cluster, replace(scenario, isl=isl, osl=1))
        out.append(PromptPoint(isl, r.ttft_batch_s, r.memory.fits))
    return out


@dataclass(frozen=True)
class KVCurve:
    batch: int
    context_tokens: tuple[int, ...]
    kv_cache_bytes: tuple[float, ...]  # per GPU


def kv_curves(workload: Workload, cluster: Cluster, scenario: Scenario, batches: list[int],
              contexts: list[int]) -> tuple[list[KVCurve], float]:  # fmt: skip
    """KV cache per GPU vs context (isl + osl) for a few batches, and the memory left for it
    (MemoryResult.free_bytes, capacity.py's rule, at the scenario's own shape)."""
    curves = []
    for b in batches:
        kv = tuple(memory_result(workload, cluster, replace(scenario, batch=b, isl=c, osl=1)).kv_cache_bytes
                   for c in contexts)  # fmt: skip
        curves.append(KVCurve(b, tuple(c + 1 for c in contexts), kv))
    m = memory_result(workload, cluster, scenario)
    return curves, m.free_bytes


def powers_of_two(low: int, high: int) -> list[int]:
    out, v = [], 1
    while v <= high:
        if v >= low:
            out.append(v)
        v *= 2
    return out


@dataclass(frozen=True)
class ScalingData:
    title: str
    caption: str
    batches: list[BatchPoint]
    prompts: list[PromptPoint]
    kv: list[KVCurve]
    kv_room_bytes: float
    serve: bool
    ttft_batch: int


def scaling_data(workload: Workload, cluster: Cluster, scenario: Scenario, batches: list[int],
                 serve: bool = False) -> ScalingData:  # fmt: skip
    base = estimate(workload, cluster, scenario)
    limit = workload.max_position_embeddings or 131072
    isls = powers_of_two(128, min(limit - 1, 32768))
    contexts = [c - 1 for c in powers_of_two(512, limit)]
    kv_batches = sorted({1, scenario.batch, max(batches)})
    curves, room = kv_curves(workload, cluster, scenario, kv_batches, contexts)
    caption = (f"{assumptions(scenario, ','.join(map(str, batches)))}. TTFT sweep at batch {scenario.batch} "
               "(osl 1); KV curves: context = isl + osl; hollow markers: does not fit in memory.")  # fmt: skip
    return ScalingData(describe(base), caption, batch_sweep(workload, cluster, scenario, batches),
                       prompt_sweep(workload, cluster, scenario, isls), curves, room, serve,
                       scenario.batch)  # fmt: skip


# ---------------------------------------------------------------- compare


@dataclass(frozen=True)
class CompareRow:
    hardware: str
    weight_dtype: str
    num_gpus: int
    ttft_batch_s: float
    tpot_s: float
    output_tokens_per_s_per_gpu: float
    fits: bool


def compare_row(result: EstimateResult) -> CompareRow:
    return CompareRow(result.hardware, result.weight_dtype, result.num_gpus, result.ttft_batch_s, result.tpot_s,
                      result.output_tokens_per_s / result.num_gpus, result.memory.fits)  # fmt: skip


@dataclass(frozen=True)
class CompareData:
    title: str
    caption: str
    rows: list[CompareRow]
    hardware: list[str]
    dtypes: list[str]


def weight_only(accelerator: Accelerator, weight_dtype: str) -> bool:
    """The chip has no math in this weight format: the weights are dequantized to bf16 in the kernel."""
    return not accelerator.compute.peak_flops_per_s(DType(weight_dtype))


def compare_data(results: list[EstimateResult], accelerators: list[Accelerator], scenario: Scenario) -> CompareData:
    """One row per (hardware, weight format) estimate; `accelerators` are the results' chips, in order."""
    rows = [compare_row(r) for r in results]
    dequantized = [f"{r.weight_dtype} on {r.hardware}" for r, acc in zip(results, accelerators, strict=True)
                   if weight_only(acc, r.weight_dtype)]  # fmt: skip
    hardware = list(dict.fromkeys(r.hardware for r in rows))
    dtypes = list(dict.fromkeys(r.weight_dtype for r in rows))
    first = results[0]
    par = f"tp={first.tp} pp={first.pp} dp={first.dp}" + (f" ep={first.ep}" if first.ep > 1 else "")
    title = f"{first.model}: {', '.join(hardware)}; {first.num_gpus} GPUs, {par}, weights {', '.join(dtypes)}"
    caption = (f"{assumptions(scenario)}. Tokens/s per GPU = output tokens over end-to-end latency / GPUs; "
               "hatched bars: does not fit in memory.")  # fmt: skip
    if dequantized:
        caption += f" Weight-only (dequantized to bf16 math, no such tensor cores): {', '.join(dequantized)}."
    return CompareData(title, caption, rows, hardware, dtypes)
