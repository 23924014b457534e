"""`roofline train`: parse, call roofline.api.train, render the step time by part, the rates and
the memory per GPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from roofline.api.post_training import RL_ALGORITHMS, RlIterationReport, train_rl
from roofline.api.training import TrainReport, TrainSearchReport, train, train_search
from roofline.cli import tables
from roofline.cli.common import OutputFormat, emit, text_format_option
from roofline.errors import RooflineError
from roofline.reports.formats import to_csv, to_json
from roofline.units import format_bytes, format_time


def _table(report: TrainReport) -> Table:
    table = Table(title=f"training step: {report.model} on {report.config.gpus} x {report.hardware}",
                  title_justify="left")  # fmt: skip
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for label, value in report.overview()[1:]:
        table.add_row(label, str(value))
    return table


def _search_table(report: TrainSearchReport) -> Table:
    table = Table(title=f"fastest layouts that fit: {report.model} on {report.hardware} (GPUs searched: "
                        f"{', '.join(map(str, report.searched_gpus))}; * = on the GPUs-vs-time frontier)",
                  title_justify="left")  # fmt: skip
    for column in ("GPUs", "tp", "pp", "vpp", "cp", "ep", "dp", "micro", "recompute", "step", "tokens/s/GPU", "MFU",
                   "memory"):  # fmt: skip
        table.add_column(column, justify="left" if column == "recompute" else "right")
    frontier = {id(r.step) for r in report.frontier}
    for r in (*report.layouts, *(f for f in report.frontier if f not in report.layouts)):
        c = r.config
        mark = "*" if id(r.step) in frontier else ""
        table.add_row(f"{c.gpus}{mark}", str(c.tp), str(c.pp), str(c.vpp), str(c.cp), str(c.ep), str(c.data_parallel),
                      str(c.micro_batch), c.recompute, format_time(r.step_time_s), f"{r.tokens_per_s_per_gpu:,.0f}",
                      f"{r.mfu:.1%}", format_bytes(r.step.memory.total_bytes, binary=True))  # fmt: skip
    return table


def train_command(
    model: str = typer.Option(..., "--model", "-m", help="model id or YAML / config.json path"),
    hardware: str | None = typer.Option(None, "--hardware", help="accelerator id; its default system is used"),
    system: str | None = typer.Option(None, "--system", help="system id (roofline hardware list)"),
    gpus: int = typer.Option(8, "--gpus", help="GPUs in the run"),
    tp: int = typer.Option(1, "--tp", help="tensor parallel degree"),
    pp: int = typer.Option(1, "--pp", help="pipeline stages"),
    vpp: int = typer.Option(1, "--vpp", help="virtual pipeline stages per GPU (interleaved 1F1B)"),
    schedule: str = typer.Option(
        "1f1b", "--schedule", help="pipeline schedule: 1f1b (interleaved with --vpp), zb1p (zero-bubble) or dualpipe"
    ),
    cp: int = typer.Option(1, "--cp", help="context parallel degree"),
    ep: int = typer.Option(1, "--ep", help="expert parallel degree (inside dp x tp x cp)"),
    etp: int = typer.Option(1, "--etp", help="expert tensor parallel degree"),
    dp: int | None = typer.Option(None, "--dp", help="data parallel degree (default: gpus / (tp x pp x cp))"),
    sequence_parallel: bool | None = typer.Option(
        None,
        "--sequence-parallel/--no-sequence-parallel",
        help="Megatron sequence parallelism (default: on when tp > 1)",
    ),
    zero: int = typer.Option(1, "--zero", help="ZeRO stage 0-3 (1: Megatron's distributed optimizer)"),
    fsdp: bool = typer.Option(False, "--fsdp", help="FSDP: ZeRO-3 over the data-parallel group"),
    global_batch: int = typer.Option(256, "--global-batch", help="sequences per step"),
    micro_batch: int = typer.Option(1, "--micro-batch", help="sequences per micro-batch"),
    seq_len: int = typer.Option(4096, "--seq-len", help="tokens per sequence"),
    precision: str = typer.Option("bf16", "--precision", help="bf16, fp8-cs, fp8-ds, mxfp8 or nvfp4"),
    recompute: str = typer.Option("none", "--recompute", help="activation recompute: none, selective or full"),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw or adamw-8bit"),
    task: str = typer.Option(
        "pretrain",
        "--task",
        help="pretrain, sft, lora, qlora (frozen base), dpo (+ reference "
        "forward; --global-batch counts sequences), or grpo / ppo (one RL iteration)",
    ),
    prompts: int = typer.Option(64, "--prompts", help="grpo/ppo: prompts per iteration"),
    group_size: int = typer.Option(8, "--group-size", help="grpo/ppo: responses per prompt"),
    prompt_len: int = typer.Option(512, "--prompt-len", help="grpo/ppo: prompt tokens"),
    response_len: int = typer.Option(2048, "--response-len", help="grpo/ppo: response tokens"),
    rollout_tp: int = typer.Option(1, "--rollout-tp", help="grpo/ppo: GPUs per rollout engine replica"),
    rollout_gpus: int | None = typer.Option(
        None,
        "--rollout-gpus",
        help="grpo/ppo: a separate rollout pool of this many GPUs (default: colocated on the training GPUs)",
    ),
    rollout_runtime: str = typer.Option("vllm", "--rollout-runtime", help="grpo/ppo: the rollout engine's runtime"),
    rollout_memory_fraction: float | None = typer.Option(
        None,
        "--rollout-memory-fraction",
        help="grpo/ppo colocated: the share of each GPU the rollout engine claims (default 0.5, verl's)",
    ),
    grad_reduce_in_fp32: bool = typer.Option(
        True,
        "--grad-reduce-in-fp32/--bf16-grads",
        help="fp32 gradient buffer reduced in fp32 (Megatron-LM with bf16), or a bf16 one (Megatron-Bridge recipes)",
    ),
    mtp_layers: int = typer.Option(0, "--mtp-layers", help="multi-token-prediction depths trained (Megatron)"),
    recompute_modules: str = typer.Option(
        "", "--recompute-modules", help="fine-grained recompute modules, comma-separated (Megatron): mla_up_proj"
    ),
    balanced_stages: bool = typer.Option(
        False, "--balanced-stages", help="a pipeline layout that evens the stages' work (Megatron pp layout)"
    ),
    tp_comm_overlap: bool = typer.Option(
        False, "--tp-comm-overlap", help="TP/SP collectives under the GEMMs (Transformer Engine userbuffers)"
    ),
    ep_overlap: bool = typer.Option(
        False, "--ep-overlap", help="EP all-to-alls under another micro-batch's compute (Megatron moe_a2a_overlap)"
    ),
    moe_fused_mlp: bool = typer.Option(
        False, "--moe-fused-mlp", help="sync-free fused MoE expert kernels (Megatron cutedsl_fused_grouped_mlp)"
    ),
    overlap: bool = typer.Option(
        True, "--overlap/--no-overlap", help="overlap the DP gradient reduce and parameter gather (Megatron default)"
    ),
    flop_convention: str = typer.Option(
        "megatron",
        "--flop-convention",
        help="model-FLOP count for MFU: megatron, megatron-bridge, megatron-bridge-0.4, torchtitan or nemo",
    ),
    tokens: float | None = typer.Option(None, "--tokens", help="training tokens: wall time, GPU-hours and cost"),
    price: float | None = typer.Option(None, "--price-per-gpu-hour", help="$ per GPU-hour for the cost"),
    search: bool = typer.Option(
        False,
        "--search",
        help="the fastest layouts that fit over GPU counts up to --gpus, "
        "and the GPUs-vs-time frontier (layout options are searched, not taken)",
    ),
    top: int = typer.Option(10, "--top", help="--search: layouts to list"),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="also draw the step-time breakdown and memory (with "
        "--search: the layouts and the frontier) to this .png, .svg or .pdf",
    ),
    force: bool = typer.Option(False, "--force", help="overwrite an existing --plot file"),
    fmt: OutputFormat = text_format_option(),
) -> None:
    """Training step time by part, tokens/s/GPU, model TFLOP/s and MFU, memory per GPU; time and cost for --tokens."""
    if plot is not None and plot.exists() and not force:  # before any work
        raise RooflineError(f"'{plot}' already exists; pass --force to overwrite it")
    if task in RL_ALGORITHMS:
        rl_report = train_rl(model, hardware, system=system, gpus=gpus, algorithm=task, prompts=prompts,
                             group_size=group_size, prompt_len=prompt_len, response_len=response_len,
                             rollout_tp=rollout_tp, rollout_gpus=rollout_gpus, rollout_runtime=rollout_runtime, tp=tp,
                             pp=pp, vpp=vpp, cp=cp, ep=ep, zero=zero, fsdp=fsdp, micro_batch=micro_batch,
                             precision=precision, recompute=recompute, optimizer=optimizer,
                             rollout_memory_fraction=rollout_memory_fraction)  # fmt: skip
        _emit_rl(rl_report, fmt)
        return
    if search:
        found = train_search(model, hardware, system=system, gpus=gpus, global_batch=global_batch, seq_len=seq_len,
                             precision=precision, optimizer=optimizer, task=task, zero=3 if fsdp else zero,
                             flop_convention=flop_convention, tokens=tokens, price_per_gpu_hour=price,
                             top=top, overlap=overlap, schedule=schedule, tp_comm_overlap=tp_comm_overlap,
                             ep_overlap=ep_overlap, grad_reduce_in_fp32=grad_reduce_in_fp32, mtp_layers=mtp_layers,
                             balanced_stages=balanced_stages, moe_fused_mlp=moe_fused_mlp,
                             recompute_modules=_modules(recompute_modules))  # fmt: skip
        if fmt is OutputFormat.json:
            emit(to_json(found.to_dict()))
        elif fmt is OutputFormat.csv:
            emit(to_csv(found.records()))
        else:
            tables.print_renderable(_search_table(found))
        if plot is not None and (found.layouts or found.frontier):
            _draw(plot, force, lambda figures: figures.search_figure(found.layouts, found.frontier))
        return
    report = train(model, hardware, system=system, gpus=gpus, tp=tp, pp=pp, vpp=vpp, cp=cp, ep=ep, etp=etp, dp=dp,
                   sequence_parallel=sequence_parallel, zero=zero, fsdp=fsdp, global_batch=global_batch,
                   micro_batch=micro_batch, seq_len=seq_len, precision=precision, recompute=recompute,
                   optimizer=optimizer, task=task, overlap=overlap, flop_convention=flop_convention, schedule=schedule,
                   tp_comm_overlap=tp_comm_overlap, ep_overlap=ep_overlap, grad_reduce_in_fp32=grad_reduce_in_fp32,
                   mtp_layers=mtp_layers, balanced_stages=balanced_stages, moe_fused_mlp=moe_fused_mlp,
                   recompute_modules=_modules(recompute_modules), tokens=tokens,
                   price_per_gpu_hour=price)  # fmt: skip
    if fmt is OutputFormat.json:
        emit(to_json(report.to_dict()))
    elif fmt is OutputFormat.csv:
        emit(to_csv(report.records()))
    else:
        tables.print_renderable(_table(report))
    if plot is not None:
        _draw(plot, force, lambda figures: figures.train_figure(report))


def _emit_rl(report: RlIterationReport, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        emit(to_json(report.to_dict()))
    elif fmt is OutputFormat.csv:
        emit(to_csv(report.records()))
    else:
        table = Table(title=f"{report.algorithm} iteration: {report.model}", title_justify="left")
        table.add_column("quantity")
        table.add_column("value", justify="right")
        for label, value in report.overview()[1:]:
            table.add_row(label, str(value))
        tables.print_renderable(table)


def _draw(path: Path, force: bool, make: Callable[[Any], Any]) -> None:
    from roofline.reports import plots, training_plots  # matplotlib loads only when a plot is drawn

    plots.save(make(training_plots), path, force)


def _modules(text: str) -> tuple[str, ...]:
    """'mla_up_proj, moe_act' -> ('mla_up_proj', 'moe_act')."""
    return tuple(m.strip() for m in text.split(",") if m.strip())
