"""`roofline estimate` and `roofline memory`: parse, call the API (roofline.api), render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from roofline.api import Estimate, estimate, memory
from roofline.api.diffusion_options import DEFAULT_ISL, DiffusionOptions, is_diffusion
from roofline.cli import launch as launching
from roofline.cli import tables
from roofline.cli.common import Output, OutputFormat, emit, text_format_option, warn
from roofline.errors import RooflineError
from roofline.reports.formats import flatten, to_csv, to_json
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS, DEFAULT_MTP_ACCEPTANCE
from roofline.workloads import get_workload

if TYPE_CHECKING:
    from roofline.api import DiffusionEstimate
    from roofline.deploy import LaunchCommand

MODEL = typer.Option(..., "--model", "-m", help="model id (roofline model list), a model YAML or a HF config.json")
HARDWARE = typer.Option(None, "--hardware", help="accelerator id (roofline hardware list) or YAML path")
SYSTEM = typer.Option(None, "--system", help="system id or YAML path; default: the accelerator's default system")
GPUS = typer.Option(None, "--gpus", help="GPUs in all; beyond tp x pp they are data-parallel replicas")
TP = typer.Option(1, "--tp", help="tensor-parallel degree")
PP = typer.Option(1, "--pp", help="pipeline-parallel degree")
BATCH = typer.Option(1, "--batch", "-b", help="concurrent sequences per replica (attention-DP ranks split it)")
ISL = typer.Option(DEFAULT_ISL, "--isl", help="input (prompt) tokens per sequence")
OSL = typer.Option(128, "--osl", help="output tokens per sequence")
WEIGHT_DTYPE = typer.Option(
    None, "--weight-dtype", help="bf16, fp16, fp8, fp4, mxfp4, int8, int4 (weight-only); default: as the model ships"
)
EXPERT_DTYPE = typer.Option(None, "--expert-dtype", help="expert weights' format; default: as shipped / --weight-dtype")
EP = typer.Option(1, "--ep", help="expert-parallel degree (GPUs the routed experts are spread over)")
CP = typer.Option(1, "--cp", help="context parallelism: split long prompts (ring attention) and the KV cache")
ATTN_DP = typer.Option(1, "--attn-dp", help="attention data-parallel ranks inside the EP group (they split --batch)")
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
COMM_LIBRARY = typer.Option(None, "--comm-library", help="collective library profile: nccl, trtllm, deepep, uccl "
                            "(default: the runtime's all-reduce, else nccl)")  # fmt: skip
RUNTIME = typer.Option(
    None, "--runtime", metavar="ID|FILE",
    help="runtime whose host time to add: trtllm, vllm, sglang, torch-eager, torch-cuda-graph (gpt-fast), "
    "hf-transformers, or a profile YAML (a calibrated one); default: the kernels' device time alone",
)  # fmt: skip
IMBALANCE = typer.Option(1.0, "--moe-imbalance", help="busiest GPU's routed tokens over the mean (>= 1)")
KV_DTYPE = typer.Option(None, "--kv-dtype", help="KV-cache format; default: the weight format, fp8 for 4-6 bit")
ACT_DTYPE = typer.Option("bf16", "--activation-dtype", help="activation format (bf16 or fp16)")
RESERVE = typer.Option(None, "--reserve", help="runtime reserve per GPU, e.g. '4 GiB' (default: hardware YAML)")
MAX_NUM_TOKENS = typer.Option(
    DEFAULT_MAX_NUM_TOKENS, "--max-num-tokens", help="engine token budget per step (prefill chunk size)"
)
SET = typer.Option(
    [], "--set", metavar="KEY=VALUE",
    help="what-if override (repeatable): an accelerator field (memory.bandwidth=4TB/s, compute.bf16=2PFLOP/s), "
    "a link bandwidth per GPU per direction (scale_up.bandwidth_per_gpu=900GB/s, scale_out.bandwidth_per_gpu=50GB/s) "
    "or a model field (model.num_hidden_layers=40)",
)  # fmt: skip
IDEAL = typer.Option(False, "--ideal", help="pure roofline: every achievable fraction 1, no overheads")
IGNORE_MEMORY = typer.Option(
    False, "--ignore-memory", help="time a configuration that does not fit in memory anyway (marked hypothetical)"
)
FORMAT = typer.Option(
    OutputFormat.table, "--format", help="table, json, csv, or xlsx (needs -o FILE.xlsx)", metavar="<format>"
)
OUTPUT = typer.Option(None, "--output", "-o", help="write to FILE instead of stdout (FILE.xlsx: a workbook)")
FORCE = typer.Option(False, "--force", help="overwrite an existing -o file")
# diffusion models (roofline.api.diffusion)
RING = typer.Option(None, "--ring", min=1, metavar="R", help="DiT: ring-attention degree inside --sp (Ulysses: sp/R)")
PRESET = typer.Option(None, "--preset", help="DiT request preset: 512px, 1024px, 1024px-portrait, 2048px, "
                      "480p-5s, 720p-5s, 720p-10s")  # fmt: skip
ATTENTION_KERNEL = typer.Option(None, "--attention-kernel", help="diffusion: attention kernel family, fa2 (PyTorch "
                                "SDPA, the default) or fa3; a family the GPU lacks runs at its default")  # fmt: skip
COMPILE = typer.Option(None, "--compile/--eager", help="diffusion: torch.compile (fused elementwise) or eager "
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


def llm_option_values(pp: int, ep: int, attn_dp: int, moe_imbalance: float, osl: int, expert_dtype: str | None,
                      kv_dtype: str | None, activation_dtype: str, reserve: str | None, max_num_tokens: int, mtp: int,
                      mtp_acceptance: float, comm_library: str | None, overlap_ep: bool, cp: int
                      ) -> dict[str, tuple[object, object]]:  # fmt: skip
    """The language-model-only options of estimate / plot / report with their defaults: {flag: (value, default)}."""
    return {
        "--pp": (pp, 1), "--ep": (ep, 1), "--attn-dp": (attn_dp, 1), "--moe-imbalance": (moe_imbalance, 1.0),
        "--osl": (osl, 128), "--expert-dtype": (expert_dtype, None), "--kv-dtype": (kv_dtype, None),
        "--activation-dtype": (activation_dtype, "bf16"), "--reserve": (reserve, None),
        "--max-num-tokens": (max_num_tokens, DEFAULT_MAX_NUM_TOKENS), "--mtp": (mtp, 0),
        "--mtp-acceptance": (mtp_acceptance, DEFAULT_MTP_ACCEPTANCE), "--comm-library": (comm_library, None),
        "--overlap-ep": (overlap_ep, False), "--cp": (cp, 1),
    }  # fmt: skip


def refuse_llm_options(model: str, values: dict[str, tuple[object, object]]) -> None:
    given = [flag for flag, (value, default) in values.items() if value != default]
    if given:
        raise RooflineError(f"{', '.join(given)}: options of language-model estimates, not of the diffusion model "
                            f"{model} (its options: --resolution / --video / --preset, --steps, --sp, --ring, "
                            "--gen-len, --block-len, --cache, --weight-dtype; roofline estimate --help)")  # fmt: skip


def refuse_diffusion_options(model: str, diffusion: DiffusionOptions) -> None:
    if diffusion.given():
        raise RooflineError(f"{', '.join(diffusion.given())}: diffusion options; {model} is not a diffusion model")


def show_warnings(warnings: tuple[str, ...]) -> None:
    for message in warnings:
        warn(message)


def render_estimate(result: Estimate, out: Output, ops: bool, launched: LaunchCommand | None = None) -> None:
    show_warnings(result.warnings)
    if out.fmt is OutputFormat.json:
        out.text(to_json(launching.with_launch(result.to_dict(ops=ops), launched)))
    elif out.fmt is OutputFormat.csv:
        out.text(to_csv(result.records() if ops and result.timed else [flatten(result.to_dict(ops=False))]))
    elif out.fmt is OutputFormat.xlsx:
        _estimate_workbook(result, out)
    else:
        out.table(tables.estimate_view(result, with_ops=ops))
    launching.show(launched, out.fmt)


def _estimate_workbook(result: Estimate, out: Output) -> None:
    from roofline.reports.assumptions import estimate_inputs  # openpyxl and the serving inputs: xlsx only
    from roofline.reports.xlsx_views import write_estimate

    if result.detail is None or result.query is None:
        raise RooflineError(f"{result.does_not_fit_message()}; no workbook without its latency: add "
                            "--ignore-memory to write one (marked hypothetical)")  # fmt: skip
    q, detail = result.query, result.detail
    inputs = estimate_inputs(q.workload, q.cluster, q.scenario, result.ideal)
    out.workbook(lambda path: write_estimate(path, detail, inputs))


def render_diffusion(result: DiffusionEstimate, out: Output, ops: bool) -> None:
    show_warnings(result.warnings)
    data = result.to_dict(ops=ops)
    if out.fmt is OutputFormat.json:
        out.text(to_json(data))
    elif out.fmt is OutputFormat.csv:
        scalars = {k: v for k, v in data.items() if not isinstance(v, list)}
        out.text(to_csv(result.records() if ops and result.timed else [flatten(scalars)]))
    elif out.fmt is OutputFormat.xlsx:
        from roofline.reports.assumptions import diffusion_inputs  # openpyxl and the serving inputs: xlsx only
        from roofline.reports.xlsx_views import write_diffusion

        titled = {**data, "title": result.title}
        out.workbook(lambda path: write_diffusion(path, titled, diffusion_inputs(titled, result.cluster,
                                                                                 result.ideal)))  # fmt: skip
    else:
        out.table(tables.diffusion_view(result, with_ops=ops))


def estimate_command(
    model: str = MODEL, hardware: str | None = HARDWARE, system: str | None = SYSTEM, gpus: int | None = GPUS,
    tp: int = TP, pp: int = PP, ep: int = EP, attn_dp: int = ATTN_DP, moe_imbalance: float = IMBALANCE,
    batch: int = BATCH, isl: int = ISL, osl: int = OSL,
    weight_dtype: str | None = WEIGHT_DTYPE, expert_dtype: str | None = EXPERT_DTYPE, kv_dtype: str | None = KV_DTYPE,
    activation_dtype: str = ACT_DTYPE, reserve: str | None = RESERVE, max_num_tokens: int = MAX_NUM_TOKENS,
    mtp: int = MTP, mtp_acceptance: float = MTP_ACCEPT, comm_library: str | None = COMM_LIBRARY,
    runtime: str | None = RUNTIME,
    overlap_ep: bool = OVERLAP_EP, cp: int = CP, sp: int | None = SP, ring: int | None = RING,
    preset: str | None = PRESET, attention_kernel: str | None = ATTENTION_KERNEL, compile: bool | None = COMPILE,
    ideal: bool = IDEAL, ignore_memory: bool = IGNORE_MEMORY, settings: list[str] = SET,
    ops: bool = typer.Option(True, "--ops/--no-ops", help="include the per-operator rows"),
    fmt: OutputFormat = FORMAT, output: Path | None = OUTPUT, force: bool = FORCE,
    resolution: str | None = RESOLUTION, video: str | None = VIDEO, steps: int | None = STEPS,
    cfg: bool | None = CFG, cfg_parallel: bool = CFG_PARALLEL, gen_len: int | None = GEN_LEN,
    block_len: int | None = BLOCK_LEN, cache: str | None = CACHE, compare_ar: str | None = COMPARE_AR,
    launch: bool = launching.LAUNCH,
) -> None:  # fmt: skip
    """Prefill and decode latency, throughput and memory for one configuration; for diffusion models
    (DiT image/video, diffusion LMs) the time per image, video or request instead."""
    out = Output.check(fmt, output, force)
    launching.check(launch, out.fmt)
    workload = get_workload(model)
    if is_diffusion(workload):
        values = llm_option_values(
            pp,
            ep,
            attn_dp,
            moe_imbalance,
            osl,
            expert_dtype,
            kv_dtype,
            activation_dtype,
            reserve,
            max_num_tokens,
            mtp,
            mtp_acceptance,
            comm_library,
            overlap_ep,
            cp,
        )
        refuse_llm_options(model, values | {"--runtime": (runtime, None)})
        launching.refuse_for_diffusion(launch, model)
        from roofline.api import estimate_diffusion  # the diffusion estimators load for a diffusion model only

        result = estimate_diffusion(
            workload, hardware, system=system, gpus=gpus, tp=tp, batch=batch, isl=isl, weight_dtype=weight_dtype,
            sp=sp, ring=ring, preset=preset, attention_kernel=attention_kernel, compile=compile, ideal=ideal,
            resolution=resolution, video=video, steps=steps, cfg=cfg, cfg_parallel=cfg_parallel, gen_len=gen_len,
            block_len=block_len, cache=cache, compare_ar=compare_ar, ignore_memory=ignore_memory, set=settings,
        )  # fmt: skip
        render_diffusion(result, out, ops)
        return
    refuse_diffusion_options(model, DiffusionOptions(resolution, video, steps, cfg, cfg_parallel, gen_len, block_len,
                                                     cache, compare_ar, None, ring, preset, attention_kernel,
                                                     compile))  # fmt: skip
    found = estimate(
        workload, hardware, system=system, gpus=gpus, tp=tp, pp=pp, ep=ep, attn_dp=attn_dp,
        moe_imbalance=moe_imbalance, batch=batch, isl=isl, osl=osl, weight_dtype=weight_dtype,
        expert_dtype=expert_dtype, kv_dtype=kv_dtype, activation_dtype=activation_dtype, reserve=reserve,
        max_num_tokens=max_num_tokens, mtp=mtp, mtp_acceptance=mtp_acceptance, comm_library=comm_library,
        overlap_ep=overlap_ep, cp=cp, sp=sp, ideal=ideal, ignore_memory=ignore_memory, set=settings, runtime=runtime,
    )  # fmt: skip
    render_estimate(
        found, out, ops, launching.for_result(launch, found, found.detail.runtime if found.detail else runtime)
    )


def memory_command(
    model: str = MODEL, hardware: str | None = HARDWARE, system: str | None = SYSTEM, gpus: int | None = GPUS,
    tp: int = TP, pp: int = PP, ep: int = EP, attn_dp: int = ATTN_DP, moe_imbalance: float = IMBALANCE,
    batch: int = BATCH, isl: int = ISL, osl: int = OSL,
    weight_dtype: str | None = WEIGHT_DTYPE, expert_dtype: str | None = EXPERT_DTYPE, kv_dtype: str | None = KV_DTYPE,
    activation_dtype: str = ACT_DTYPE, reserve: str | None = RESERVE, max_num_tokens: int = MAX_NUM_TOKENS,
    mtp: int = MTP, cp: int = CP, sp: int | None = SP, settings: list[str] = SET,
    runtime: str | None = typer.Option(None, "--runtime", metavar="ID|FILE",
                                       help="KV capacity at this runtime's memory fraction (vllm: 0.9 ...)"),
    fmt: OutputFormat = text_format_option(),
) -> None:  # fmt: skip
    """Does it fit? Weights, KV cache, activations, reserve; the largest batch and context that fit."""
    report = memory(
        model, hardware, system=system, gpus=gpus, tp=tp, pp=pp, ep=ep, attn_dp=attn_dp, moe_imbalance=moe_imbalance,
        batch=batch, isl=isl, osl=osl, weight_dtype=weight_dtype, expert_dtype=expert_dtype, kv_dtype=kv_dtype,
        activation_dtype=activation_dtype, reserve=reserve, max_num_tokens=max_num_tokens, mtp=mtp, cp=cp, sp=sp,
        set=settings, runtime=runtime,
    )  # fmt: skip
    show_warnings(report.warnings)
    data: dict[str, Any] = report.to_dict()
    if fmt is OutputFormat.json:
        emit(to_json(data))
    elif fmt is OutputFormat.csv:
        emit(to_csv([flatten(data)]))
    else:
        tables.print_renderable(tables.memory_view(report))
