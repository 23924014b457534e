"""`roofline plot KIND`: choose what to draw and where to save it; the numbers come from the
estimator (reports.plot_data) and the drawing from reports.plots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from roofline.api import estimate_diffusion
from roofline.api.diffusion_options import DiffusionOptions, is_diffusion
from roofline.api.query import LlmOptions, build_query
from roofline.cli import estimate as est
from roofline.errors import RooflineError, UnknownIdError
from roofline.reports import plot_data
from roofline.simulator import estimate
from roofline.workloads import get_workload

KINDS = ("roofline", "breakdown", "scaling", "compare")
DEFAULT_SWEEP = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RooflineError(f"{flag} takes integers separated by commas, got '{text}'") from None
    if not values or min(values) < 1:
        raise RooflineError(f"{flag} takes positive integers separated by commas, got '{text}'")
    return values


def _items(text: str | None) -> list[str | None]:
    return [v.strip() for v in text.split(",") if v.strip()] if text else [None]


def _one(values: list[int], kind: str) -> int:
    if len(values) > 1:
        raise RooflineError(f"plot {kind} takes one --batch value (lists are for roofline and scaling)")
    return values[0]


def plot_command(
    kind: str = typer.Argument(..., help="roofline, breakdown, scaling or compare"),
    output: Path = typer.Option(..., "--output", "-o", help="image file: .png, .svg or .pdf"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file"),
    model: str = est.MODEL,
    hardware: str | None = typer.Option(None, "--hardware", help="accelerator id; compare: a comma list"),
    system: str | None = est.SYSTEM, gpus: int | None = est.GPUS, tp: int = est.TP, pp: int = est.PP,
    ep: int = est.EP, attn_dp: int = est.ATTN_DP, moe_imbalance: float = est.IMBALANCE,
    batch: str = typer.Option("1", "--batch", "-b", help="sequences per replica; roofline/scaling: a list 1,8,64"),
    isl: int = est.ISL, osl: int = est.OSL,
    weight_dtype: str | None = typer.Option(None, "--weight-dtype", help="weight format; compare: a list bf16,fp8"),
    expert_dtype: str | None = est.EXPERT_DTYPE, kv_dtype: str | None = est.KV_DTYPE,
    activation_dtype: str = est.ACT_DTYPE, reserve: str | None = est.RESERVE,
    max_num_tokens: int = est.MAX_NUM_TOKENS, mtp: int = est.MTP,
    mtp_acceptance: float = est.MTP_ACCEPT, comm_library: str | None = est.COMM_LIBRARY,
    overlap_ep: bool = est.OVERLAP_EP,
    cp: int = est.CP, sp: int | None = est.SP,
    peaks: bool = typer.Option(False, "--peaks", help="roofline: also draw the spec peaks, dashed"),
    serve: bool = typer.Option(False, "--serve", help="scaling: add tokens/s per GPU vs per user (Pareto)"),
    dpi: int = typer.Option(100, "--dpi", min=20, max=1200, help="PNG resolution (20 to 1200)"),
    resolution: str | None = est.RESOLUTION, video: str | None = est.VIDEO, preset: str | None = est.PRESET,
    steps: int | None = est.STEPS, cfg: bool | None = est.CFG, cfg_parallel: bool = est.CFG_PARALLEL,
    ring: int | None = est.RING, gen_len: int | None = est.GEN_LEN, block_len: int | None = est.BLOCK_LEN,
    cache: str | None = est.CACHE, attention_kernel: str | None = est.ATTENTION_KERNEL,
    compile: bool | None = est.COMPILE, settings: list[str] = est.SET,
) -> None:  # fmt: skip
    """Draw a roofline, a time/memory breakdown, scaling curves or a hardware comparison (a diffusion
    model: the roofline of its denoising steps)."""
    from roofline.reports import plots  # matplotlib loads only when a plot is drawn

    if kind not in KINDS:
        raise UnknownIdError("plot kind", kind, list(KINDS))
    if output.exists() and not force:  # before any work
        raise RooflineError(f"'{output}' already exists; pass --force to overwrite it")
    batches = _ints(batch, "--batch")
    diffusion = DiffusionOptions(resolution, video, steps, cfg, cfg_parallel, gen_len, block_len, cache, None, None,
                                 ring, preset, attention_kernel, compile)  # fmt: skip
    workload = get_workload(model)
    if is_diffusion(workload):
        values = est.llm_option_values(
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
        est.refuse_llm_options(model, {**values, "--serve": (serve, False)})
        if kind != "roofline":
            raise RooflineError(f"{model} is a diffusion model: plot roofline draws its steps; breakdown, scaling "
                                "and compare are for language models (numbers: roofline estimate --model "
                                f"{model})")  # fmt: skip
        found = estimate_diffusion(
            workload, hardware, system=system, gpus=gpus, tp=tp, batch=_one(batches, kind), isl=isl,
            weight_dtype=weight_dtype, sp=sp, ring=ring, preset=preset, attention_kernel=attention_kernel,
            compile=compile, resolution=resolution, video=video, steps=steps, cfg=cfg, cfg_parallel=cfg_parallel,
            gen_len=gen_len, block_len=block_len, cache=cache, ignore_memory=True, set=settings,
        )  # fmt: skip
        titled = {**found.to_dict(), "title": found.title}
        plots.save(plots.roofline_figure(plot_data.diffusion_roofline_data(titled, found.cluster), peaks), output,
                   force, dpi)  # fmt: skip
        typer.echo(f"wrote {output}", err=True)
        return
    est.refuse_diffusion_options(model, diffusion)
    hardware_ids, dtypes = _items(hardware), _items(weight_dtype)
    if kind != "compare" and (len(hardware_ids) > 1 or len(dtypes) > 1):
        raise RooflineError("lists of --hardware or --weight-dtype are for `plot compare`")
    options = LlmOptions(workload, hardware_ids[0], system, gpus, tp, pp, ep, attn_dp, moe_imbalance, batches[0], isl,
                         osl, dtypes[0], expert_dtype, kv_dtype, activation_dtype, reserve, max_num_tokens, mtp,
                         mtp_acceptance, comm_library, overlap_ep, cp, sp, settings)  # fmt: skip
    if kind == "compare":
        one = _one(batches, kind)
        queries = [build_query(replace(options, hardware=h, weight_dtype=d, batch=one)) for h in hardware_ids
                   for d in dtypes]  # fmt: skip
        results = [estimate(q.workload, q.cluster, q.scenario) for q in queries]
        accelerators = [q.cluster.accelerator for q in queries]
        fig = plots.compare_figure(plot_data.compare_data(results, accelerators, queries[0].scenario))
    else:
        q = build_query(options)
        est.show_warnings(q.warnings)
        if kind == "roofline":
            fig = plots.roofline_figure(plot_data.roofline_data(q.workload, q.cluster, q.scenario, batches), peaks)
        elif kind == "breakdown":
            q = build_query(replace(options, batch=_one(batches, kind)))
            result = estimate(q.workload, q.cluster, q.scenario)
            fig = plots.breakdown_figure(plot_data.breakdown_data(result, q.scenario))
        else:
            sweep = batches if len(batches) > 1 else sorted({*DEFAULT_SWEEP, batches[0]})
            data = plot_data.scaling_data(q.workload, q.cluster, q.scenario, sweep, serve)
            fig = plots.scaling_figure(data)
    plots.save(fig, output, force, dpi)
    typer.echo(f"wrote {output}", err=True)
