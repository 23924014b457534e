"""The assumptions behind one estimate and the source of every hardware number it used, as
(label, value) and (item, values, source) rows in human units, for the workbook and the HTML report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roofline import __version__
from roofline.hardware_specs import Cluster
from roofline.hardware_specs.cluster import Fabric
from roofline.simulator import Scenario, capacity
from roofline.units import format_bytes, format_rate, format_time
from roofline.workloads import Workload

if TYPE_CHECKING:
    from roofline.simulator.serving.engine_config import EngineConfig

GIB = 2.0**30


def parallelism(scenario: Scenario) -> str:
    p = scenario.plan
    return f"tp {p.tp}, pp {p.pp}, dp {p.dp}, ep {p.ep}, attention dp {p.attn_dp}, cp {p.cp}"


def kernel_time_model(cluster: Cluster, ideal: bool) -> str:
    eff = cluster.accelerator.efficiency
    if ideal:
        return "ideal roofline: max(compute, memory) or communication at the peaks, no kernel overhead"
    return (f"(compute^p + memory^p)^(1/p) with p = {eff.overlap_exponent:g}, or communication, "
            f"+ {format_time(eff.kernel_overhead)} kernel overhead per kernel")  # fmt: skip


def _fractions(cluster: Cluster, ideal: bool) -> list[tuple[str, Any]]:
    eff = cluster.accelerator.efficiency
    matmul = ", ".join(f"{name} {value:g}" for name, value in eff.matmul_fraction.items())
    note = " (not used: --ideal)" if ideal else ""
    return [
        ("Achievable memory bandwidth (fraction of peak)" + note, eff.memory_bandwidth_fraction),
        ("Achievable matmul throughput (fraction of dense peak)" + note, matmul),
        ("Achievable attention throughput (fraction of bf16 peak)" + note, eff.attention_fraction),
        ("Kernel overhead (us)" + note, eff.kernel_overhead * 1e6),
    ]


def estimate_inputs(workload: Workload, cluster: Cluster, scenario: Scenario, ideal: bool,
                    with_batch: bool = True) -> list[tuple[str, Any]]:  # fmt: skip
    """Every assumption of one estimate (or of a serving run's step model, without the batch)."""
    acc, p = cluster.accelerator, scenario.precision
    reserve = capacity.reserve_bytes(acc, scenario.reserve_bytes)
    rows: list[tuple[str, Any]] = [
        ("Tool", f"roofline {__version__}"),
        ("Model", f"{workload.id} ({workload.name})"),
        ("Hardware", f"{acc.id} ({acc.name})"),
        ("System", f"{cluster.system.id} ({cluster.system.name})"),
        ("GPUs", scenario.plan.num_gpus),
        ("Parallelism", parallelism(scenario)),
        ("Sequence parallelism", scenario.sequence_parallel),
    ]
    if with_batch:
        rows.append(("Batch (sequences per replica)", scenario.batch))
    rows += [
        ("Input length (tokens)", scenario.isl),
        ("Output length (tokens)", scenario.osl),
        ("Weight format", p.weight.value),
        ("Expert weight format", p.experts.value),
        ("KV-cache format", p.kv_cache.value),
        ("Activation format", p.activation.value),
        ("Engine token budget per step (max_num_tokens)", scenario.max_num_tokens),
        ("Runtime reserve per GPU (GiB)", reserve / GIB),
        ("MTP draft tokens per step", scenario.mtp_drafts),
        ("MTP acceptance", scenario.mtp_acceptance if scenario.mtp_drafts else "n/a"),
        ("Collective library", scenario.comm_library),
        ("Two-batch overlap of EP all-to-alls", scenario.overlap_ep),
        ("Kernel-time model", kernel_time_model(cluster, ideal)),
        *_fractions(cluster, ideal),
    ]
    return rows


DIFFUSION_INPUTS = (
    ("model", "Model"), ("hardware", "Hardware"), ("system", "System"), ("num_gpus", "GPUs"),
    ("gpus_per_request", "GPUs per request"), ("sp", "Sequence-parallel GPUs (sp)"), ("ulysses", "Ulysses degree"),
    ("ring", "Ring-attention degree"), ("cfg", "Classifier-free guidance"), ("cfg_parallel", "CFG parallel"),
    ("width", "Width (pixels)"), ("height", "Height (pixels)"), ("frames", "Frames"), ("tp", "Tensor parallel"),
    ("batch", "Batch (outputs or sequences)"), ("steps", "Denoising steps"), ("prompt_len", "Prompt (tokens)"),
    ("gen_len", "Generated tokens"), ("block_len", "Block length (tokens)"), ("cache", "Cache variant"),
    ("attention_kernel", "Attention kernel"), ("attention_fraction", "Attention fraction charged (of bf16 peak)"),
    ("compiled", "torch.compile (fused elementwise; else eager PyTorch)"),
)  # fmt: skip


def diffusion_inputs(data: dict[str, Any], cluster: Cluster, ideal: bool) -> list[tuple[str, Any]]:
    """The inputs of a diffusion estimate (its dict) and the hardware assumptions behind it."""
    rows: list[tuple[str, Any]] = [("Tool", f"roofline {__version__}")]
    rows += [(label, data[key]) for key, label in DIFFUSION_INPUTS if key in data]
    fractions = [row for row in _fractions(cluster, ideal) if not row[0].startswith("Achievable attention")]
    rows += [("Kernel-time model", kernel_time_model(cluster, ideal)), *fractions]  # attention: the charged one
    if "assumptions" in data:
        rows.append(("Assumptions", data["assumptions"]))
    return rows


def engine_inputs(engine: EngineConfig, load: dict[str, Any]) -> list[tuple[str, Any]]:
    """A serving run's engine knobs and load, after any command-line overrides."""
    return [
        ("Engine", f"{engine.id} ({engine.name})"),
        ("Engine KV memory fraction", engine.kv_memory_fraction),
        ("Engine KV block size (tokens)", engine.kv_block_tokens),
        ("Engine max batch (sequences per replica)", engine.max_batch),
        ("Engine max tokens per step", engine.max_num_tokens),
        ("Engine limits", engine.limits),
        ("Engine reserves KV for the whole sequence", engine.reserve_full_sequence),
        ("Engine host time per step (ms)", engine.step_overhead * 1e3),
        ("Engine host time per sequence per step (us)", engine.per_sequence_overhead * 1e6),
        ("Engine front end per request (ms)", engine.request_overhead * 1e3),
        ("Engine profile source", engine.source),
        *((f"Load: {key}", value) for key, value in load.items()),
    ]


def _peaks(cluster: Cluster) -> str:
    c = cluster.accelerator.compute
    peaks = ((name, getattr(c, name)) for name in ("fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8"))
    return ", ".join(f"{name} {format_rate(value, 'FLOP/s')}" for name, value in peaks if value)


def _fabric(role: str, fabric: Fabric) -> tuple[str, str, str]:
    link = fabric.link
    values = (f"{link.name}: {format_rate(link.bandwidth_per_port, 'B/s')} per port per direction x "
              f"{fabric.ports_per_gpu:g} ports per GPU, {fabric.wiring.value}, {format_time(link.latency)} per hop, "
              f"{link.achievable_fraction:.0%} achievable")  # fmt: skip
    return f"{role} link ({link.id})", values, link.source


def hardware_sources(cluster: Cluster) -> list[tuple[str, str, str]]:
    """(item, the numbers used, their source) for every hardware block behind an estimate."""
    acc, system = cluster.accelerator, cluster.system
    eff = acc.efficiency
    matmul = ", ".join(f"{name} {value:g}" for name, value in eff.matmul_fraction.items())
    tiles = ", ".join(f"{t.m}x{t.n}" for t in eff.matmul_tiles)
    rows = [
        ("Memory", f"{acc.memory.type}, {format_bytes(acc.memory.capacity, binary=True)}, "
                   f"{format_rate(acc.memory.bandwidth, 'B/s')}", acc.memory.source),
        ("Compute (dense peaks)", _peaks(cluster), acc.compute.source),
        ("On-chip memory", f"L2 {format_bytes(acc.sram.l2, binary=True)}, {acc.sram.sm_count} SMs, "
                           f"{format_bytes(acc.sram.shared_memory_per_sm, binary=True)} shared memory per SM",
         acc.sram.source),
        ("Efficiency", f"memory bandwidth {eff.memory_bandwidth_fraction:g}, matmul {matmul}, attention "
                       f"{eff.attention_fraction:g}, kernel overhead {format_time(eff.kernel_overhead)}, "
                       f"overlap exponent {eff.overlap_exponent:g}, GEMM tiles {tiles}", eff.source),
        ("Power", f"TDP {acc.power.tdp:g} W", acc.power.source),
        (f"System ({system.id})", f"{system.name}: {system.gpus_per_node} GPUs per node, "
                                  f"{system.gpus_per_domain} per scale-up domain", system.source),
        _fabric("Scale-up", cluster.scale_up),
    ]  # fmt: skip
    if cluster.scale_out is not None:
        rows.append(_fabric("Scale-out", cluster.scale_out))
    return rows
