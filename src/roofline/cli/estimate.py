"""`roofline estimate` and `roofline memory`: what-if queries for one configuration."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer

from roofline.cli.common import Output, OutputFormat, emit, text_format_option
from roofline.cli.estimate_diffusion import DEFAULT_ISL, DiffusionOptions, is_diffusion, run_diffusion
from roofline.dtypes import DType, default_kv_dtype, parse_dtype
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster, resolve_cluster
from roofline.ir import Precision
from roofline.reports import tables
from roofline.reports.assumptions import estimate_inputs
from roofline.reports.formats import flatten, to_csv, to_json
from roofline.reports.xlsx_views import write_estimate
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.memory import memory_result
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS, DEFAULT_MTP_ACCEPTANCE
from roofline.units import Dimension, parse_quantity
from roofline.workloads import Workload, get_autoregressive, get_workload

MODEL = typer.Option(..., "--model", "-m", help="model id (roofline model list) or a model YAML path")
HARDWARE = typer.Option(None, "--hardware", help="accelerator id (roofline hardware list) or YAML path")
SYSTEM = typer.Option(None, "--system", help="system id or YAML path; default: the accelerator's default system")
GPUS = typer.Option(None, "--gpus", help="GPUs in all; beyond tp x pp they are data-parallel replicas")
TP = typer.Option(1, "--tp", help="tensor-parallel degree")
PP = typer.Option(1, "--pp", help="pipeline-parallel degree")
BATCH = typer.Option(1, "--batch", "-b", help="concurrent sequences per replica")
ISL = typer.Option(DEFAULT_ISL, "--isl", help="input (prompt) tokens per sequence")
OSL = typer.Option(128, "--osl", help="output tokens per sequence")
WEIGHT_DTYPE = typer.Option(
    None, "--weight-dtype", help="bf16, fp16, fp8, fp4, mxfp4, int8, int4 (weight-only); default: as the model ships"
)
EXPERT_DTYPE = typer.Option(None, "--expert-dtype", help="expert weights' format; default: as shipped / --weight-dtype")
EP = typer.Option(1, "--ep", help="expert-parallel degree (GPUs the routed experts are spread over)")
CP = typer.Option(1, "--cp", help="context parallelism: split long prompts (ring attention) and the KV cache")
ATTN_DP = typer.Option(1, "--attn-dp", help="attention data-parallel replicas inside the EP group")
MTP = typer.Option(0, "--mtp", help="speculative decoding: draft tokens per step from the model's MTP layers")
MTP_ACCEPT = typer.Option(
    DEFAULT_MTP_ACCEPTANCE, "--mtp-acceptance", help="chance each MTP draft is accepted (DeepSeek-V3: 0.85-0.9)"
)
SP = typer.Option(
    None, "--sp", min=1, metavar="N",
    help="sequence parallelism over N GPUs. LLMs: Megatron-SP over the TP group (N = --tp; all-reduces become "
    "reduce-scatter + all-gather). DiTs: N GPUs split the tokens (Ulysses, with --ring)",
)  # fmt: skip
OVERLAP_EP = typer.Option(False, "--overlap-ep", help="two-batch overlap: EP all-to-alls run under compute")
COMM_LIBRARY = typer.Option("nccl", "--comm-library", help="collective library profile: nccl, deepep, uccl")
IMBALANCE = typer.Option(1.0, "--moe-imbalance", help="busiest GPU's routed tokens over the mean (>= 1)")
KV_DTYPE = typer.Option(None, "--kv-dtype", help="KV-cache format; default: the weight format, fp8 for 4-6 bit")
ACT_DTYPE = typer.Option("bf16", "--activation-dtype", help="activation format (bf16 or fp16)")
RESERVE = typer.Option(None, "--reserve", help="runtime reserve per GPU, e.g. '4 GiB' (default: hardware YAML)")
MAX_NUM_TOKENS = typer.Option(
    DEFAULT_MAX_NUM_TOKENS, "--max-num-tokens", help="engine token budget per step (prefill chunk size)"
)
FORMAT = typer.Option(
    OutputFormat.table, "--format", help="table, json, csv, or xlsx (needs -o FILE.xlsx)", metavar="<format>"
)
OUTPUT = typer.Option(None, "--output", "-o", help="write to FILE instead of stdout (FILE.xlsx: a workbook)")
FORCE = typer.Option(False, "--force", help="overwrite an existing -o file")
# diffusion models (roofline.cli.estimate_diffusion)
RING = typer.Option(None, "--ring", min=1, metavar="R", help="DiT: ring-attention degree inside --sp (Ulysses: sp/R)")
PRESET = typer.Option(None, "--preset", help="DiT request preset: 512px, 1024px, 1024px-portrait, 2048px, "
                      "480p-5s, 720p-5s, 720p-10s")  # fmt: skip
ATTENTION_KERNEL = typer.Option(None, "--attention-kernel", help="diffusion: attention kernel family, fa2 (PyTorch "
                                "SDPA, the default) or fa3; a family the GPU lacks runs at its default")  # fmt: skip
COMPILED = typer.Option(None, "--compile/--eager", help="diffusion: torch.compile (fused elementwise) or eager "
                        "PyTorch (the default)")  # fmt: skip
RESOLUTION = typer.Option(None, "--resolution", help="diffusion image: WxH, e.g. 1024x1024")
VIDEO = typer.Option(None, "--video", help="diffusion video: WxHxF (frames), e.g. 1280x720x81")
STEPS = typer.Option(None, "--steps", help="diffusion denoising steps (default: the model's)")
CFG = typer.Option(None, "--cfg/--no-cfg", help="classifier-free guidance (default: the model's)")
CFG_PARALLEL = typer.Option(False, "--cfg-parallel", help="DiT: cond and uncond on two GPU groups")
GEN_LEN = typer.Option(None, "--gen-len", help="diffusion LM: tokens to generate")
BLOCK_LEN = typer.Option(None, "--block-len", help="diffusion LM: semi-autoregressive block length")
CACHE = typer.Option(None, "--cache", help="diffusion LM: none, prefix or dual (Fast-dLLM)")
COMPARE_AR = typer.Option(None, "--compare-ar", help="diffusion LM: also run this autoregressive model")


def llm_only_given(values: dict[str, tuple[object, object]]) -> list[str]:
    """The language-model options among `values` ({flag: (value, default)}) given a non-default value."""
    return [flag for flag, (value, default) in values.items() if value != default]


def llm_option_values(pp: int, ep: int, attn_dp: int, moe_imbalance: float, osl: int, expert_dtype: str | None,
                      kv_dtype: str | None, activation_dtype: str, reserve: str | None, max_num_tokens: int, mtp: int,
                      mtp_acceptance: float, comm_library: str, overlap_ep: bool, cp: int
                      ) -> dict[str, tuple[object, object]]:  # fmt: skip
    """The language-model-only options of estimate / plot with their defaults: {flag: (value, default)}."""
    return {
        "--pp": (pp, 1), "--ep": (ep, 1), "--attn-dp": (attn_dp, 1), "--moe-imbalance": (moe_imbalance, 1.0),
        "--osl": (osl, 128), "--expert-dtype": (expert_dtype, None), "--kv-dtype": (kv_dtype, None),
        "--activation-dtype": (activation_dtype, "bf16"), "--reserve": (reserve, None),
        "--max-num-tokens": (max_num_tokens, DEFAULT_MAX_NUM_TOKENS), "--mtp": (mtp, 0),
        "--mtp-acceptance": (mtp_acceptance, DEFAULT_MTP_ACCEPTANCE), "--comm-library": (comm_library, "nccl"),
        "--overlap-ep": (overlap_ep, False), "--cp": (cp, 1),
    }  # fmt: skip


def refuse_llm_options(model: str, values: dict[str, tuple[object, object]]) -> None:
    given = llm_only_given(values)
    if given:
        raise RooflineError(f"{', '.join(given)}: options of language-model estimates, not of the diffusion model "
                            f"{model} (its options: --resolution / --video / --preset, --steps, --sp, --ring, "
                            "--gen-len, --block-len, --cache, --weight-dtype; roofline estimate --help)")  # fmt: skip


def megatron_sp(sp: int | None, tp: int) -> bool:
    """`--sp N` for a language model: Megatron sequence parallelism spans the TP group, so N = tp."""
    if sp is None or sp == 1:
        return False
    if sp != tp:
        raise RooflineError(f"--sp {sp}: for a language model sequence parallelism runs over the tensor-parallel "
                            f"group, so --sp must equal --tp ({tp})")  # fmt: skip
    return True


def _reserve_bytes(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_quantity(text, Dimension.BYTES)
    except ValueError as exc:
        raise RooflineError(f"--reserve: {exc}") from None


@dataclass(frozen=True)
class Query:
    workload: Workload
    cluster: Cluster
    scenario: Scenario

    @classmethod
    def build(cls, o: QueryOptions) -> Query:
        workload = get_autoregressive(o.model)
        shipped_weight, shipped_experts = workload.weight_dtype, workload.expert_weight_dtype
        weight = parse_dtype(o.weight_dtype) if o.weight_dtype else shipped_weight
        if o.expert_dtype:
            experts: DType | None = parse_dtype(o.expert_dtype)
        else:
            experts = None if o.weight_dtype else shipped_experts
        activation = parse_dtype(o.activation_dtype)
        if activation not in (DType.BF16, DType.FP16):
            raise RooflineError(f"--activation-dtype must be bf16 or fp16, got {activation.value}")
        if o.kv_dtype:
            kv = parse_dtype(o.kv_dtype)
        else:  # an explicit weight format brings its usual KV format (TensorRT-LLM FP8 builds: FP8 KV)
            kv = default_kv_dtype(weight) if o.weight_dtype else workload.kv_cache_dtype
        precision = Precision(weight=weight, activation=activation, kv_cache=kv, expert_weight=experts)
        plan = ParallelPlan.for_gpus(o.tp, o.pp, o.gpus, o.ep, o.attn_dp, o.moe_imbalance, o.cp)
        scenario = Scenario(o.batch, o.isl, o.osl, precision, plan, _reserve_bytes(o.reserve), o.max_num_tokens,
                            o.mtp_drafts, o.mtp_acceptance, o.comm_library, o.overlap_ep,
                            megatron_sp(o.sp, o.tp))  # fmt: skip
        limit = workload.max_position_embeddings
        if limit is not None and o.isl + o.osl > limit:
            typer.echo(
                f"warning: isl + osl = {o.isl + o.osl} exceeds {workload.id}'s context window ({limit})", err=True
            )
        cluster = resolve_cluster(hardware=o.hardware, system=o.system, num_gpus=plan.num_gpus)
        return cls(workload, cluster, scenario)


@dataclass(frozen=True)
class QueryOptions:
    model: str
    hardware: str | None
    system: str | None
    gpus: int | None
    tp: int
    pp: int
    ep: int
    attn_dp: int
    moe_imbalance: float
    batch: int
    isl: int
    osl: int
    weight_dtype: str | None
    expert_dtype: str | None
    kv_dtype: str | None
    activation_dtype: str
    reserve: str | None
    max_num_tokens: int
    mtp_drafts: int = 0
    mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE
    comm_library: str = "nccl"
    overlap_ep: bool = False
    cp: int = 1
    sp: int | None = None  # --sp N: Megatron-SP when N = tp


def estimate_command(
    model: str = MODEL, hardware: str | None = HARDWARE, system: str | None = SYSTEM, gpus: int | None = GPUS,
    tp: int = TP, pp: int = PP, ep: int = EP, attn_dp: int = ATTN_DP, moe_imbalance: float = IMBALANCE,
    batch: int = BATCH, isl: int = ISL, osl: int = OSL,
    weight_dtype: str | None = WEIGHT_DTYPE, expert_dtype: str | None = EXPERT_DTYPE, kv_dtype: str | None = KV_DTYPE,
    activation_dtype: str = ACT_DTYPE, reserve: str | None = RESERVE, max_num_tokens: int = MAX_NUM_TOKENS,
    mtp: int = MTP, mtp_acceptance: float = MTP_ACCEPT, comm_library: str = COMM_LIBRARY,
    overlap_ep: bool = OVERLAP_EP, cp: int = CP, sp: int | None = SP, ring: int | None = RING,
    preset: str | None = PRESET, attention_kernel: str | None = ATTENTION_KERNEL, compiled: bool | None = COMPILED,
    ideal: bool = typer.Option(False, "--ideal", help="pure roofline: every achievable fraction 1, no overheads"),
    ops: bool = typer.Option(True, "--ops/--no-ops", help="include the per-operator rows"),
    fmt: OutputFormat = FORMAT, output: Path | None = OUTPUT, force: bool = FORCE,
    resolution: str | None = RESOLUTION, video: str | None = VIDEO, steps: int | None = STEPS,
    cfg: bool | None = CFG, cfg_parallel: bool = CFG_PARALLEL, gen_len: int | None = GEN_LEN,
    block_len: int | None = BLOCK_LEN, cache: str | None = CACHE, compare_ar: str | None = COMPARE_AR,
) -> None:  # fmt: skip
    """Prefill and decode latency, throughput and memory for one configuration; for diffusion models
    (DiT image/video, diffusion LMs) the time per image, video or request instead."""
    out = Output.check(fmt, output, force)
    diffusion = DiffusionOptions(resolution, video, steps, cfg, cfg_parallel, gen_len, block_len, cache, compare_ar,
                                 sp, ring, preset, attention_kernel, compiled)  # fmt: skip
    workload = get_workload(model)
    if is_diffusion(workload):
        refuse_llm_options(model, llm_option_values(pp, ep, attn_dp, moe_imbalance, osl, expert_dtype, kv_dtype,
                                                    activation_dtype, reserve, max_num_tokens, mtp, mtp_acceptance,
                                                    comm_library, overlap_ep, cp))  # fmt: skip
        run_diffusion(workload, replace(diffusion, weight_dtype=weight_dtype), hardware, system, gpus, batch, ideal,
                      ops, out, tp, isl)  # fmt: skip
        return
    if diffusion.given():
        raise RooflineError(f"{', '.join(diffusion.given())}: diffusion options; {model} is not a diffusion model")
    options = QueryOptions(model, hardware, system, gpus, tp, pp, ep, attn_dp, moe_imbalance, batch, isl, osl,
                           weight_dtype, expert_dtype, kv_dtype, activation_dtype, reserve, max_num_tokens,
                           mtp, mtp_acceptance, comm_library, overlap_ep, cp, sp)  # fmt: skip
    q = Query.build(options)
    result = estimate(q.workload, q.cluster, q.scenario, ideal=ideal)
    if out.fmt is OutputFormat.json:
        out.text(to_json(result.to_dict(with_ops=ops)))
    elif out.fmt is OutputFormat.csv:
        rows: list[dict[str, Any]] = result.to_dict()["ops"] if ops else [flatten(result.to_dict(with_ops=False))]
        out.text(to_csv(rows))
    elif out.fmt is OutputFormat.xlsx:
        inputs = estimate_inputs(q.workload, q.cluster, q.scenario, ideal)
        out.workbook(lambda path: write_estimate(path, result, inputs))
    else:
        out.table(tables.estimate_view(result, with_ops=ops))


def memory_command(
    model: str = MODEL, hardware: str | None = HARDWARE, system: str | None = SYSTEM, gpus: int | None = GPUS,
    tp: int = TP, pp: int = PP, ep: int = EP, attn_dp: int = ATTN_DP, moe_imbalance: float = IMBALANCE,
    batch: int = BATCH, isl: int = ISL, osl: int = OSL,
    weight_dtype: str | None = WEIGHT_DTYPE, expert_dtype: str | None = EXPERT_DTYPE, kv_dtype: str | None = KV_DTYPE,
    activation_dtype: str = ACT_DTYPE, reserve: str | None = RESERVE, max_num_tokens: int = MAX_NUM_TOKENS,
    mtp: int = MTP, fmt: OutputFormat = text_format_option(),
) -> None:  # fmt: skip
    """Does it fit? Weights, KV cache, activations, reserve; the largest batch and context that fit."""
    options = QueryOptions(model, hardware, system, gpus, tp, pp, ep, attn_dp, moe_imbalance, batch, isl, osl,
                           weight_dtype, expert_dtype, kv_dtype, activation_dtype, reserve, max_num_tokens,
                           mtp)  # fmt: skip
    q = Query.build(options)
    memory = memory_result(q.workload, q.cluster, q.scenario)
    plan = q.scenario.plan
    data = {
        "model": q.workload.id, "hardware": q.cluster.accelerator.id, "system": q.cluster.system.id,
        "num_gpus": plan.num_gpus,
        "parallel": {"tp": plan.tp, "pp": plan.pp, "dp": plan.dp, "ep": plan.ep, "attn_dp": plan.attn_dp,
                     "cp": plan.cp},
        "batch": batch, "isl": isl, "osl": osl, **memory.to_dict(),
    }  # fmt: skip
    if fmt is OutputFormat.json:
        emit(to_json(data))
    elif fmt is OutputFormat.csv:
        emit(to_csv([flatten(data)]))
    else:
        tables.print_renderable(tables.memory_table(memory))
