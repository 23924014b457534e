"""`roofline report`: one configuration's estimate as a self-contained HTML page (summary, memory,
per-operator tables, figures, assumptions and the source of every hardware number)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from roofline import __version__
from roofline.api import estimate, estimate_diffusion
from roofline.api.diffusion_options import DiffusionOptions, is_diffusion
from roofline.api.query import Query
from roofline.cli import estimate as est
from roofline.cli.common import write_new_file
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster
from roofline.reports import html
from roofline.reports.assumptions import diffusion_inputs, estimate_inputs, hardware_sources, parallelism
from roofline.simulator.results import EstimateResult
from roofline.workloads import get_workload

SCALING_BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def _figures(q: Query, result: EstimateResult) -> list[html.Figure]:
    """PNG figures from reports.plots when this installation has it; none (and a note) otherwise."""
    try:
        from roofline.reports import plot_data, plots

        batches = sorted({*SCALING_BATCHES, q.scenario.batch})
        drawn = [
            ("Operators on the roofline (prefill and a decode step)",
             lambda: plots.roofline_figure(plot_data.roofline_data(q.workload, q.cluster, q.scenario,
                                                                   [q.scenario.batch]))),
            ("Where the time and the memory go",
             lambda: plots.breakdown_figure(plot_data.breakdown_data(result, q.scenario))),
            ("Scaling with batch, prompt length and context",
             lambda: plots.scaling_figure(plot_data.scaling_data(q.workload, q.cluster, q.scenario, batches))),
        ]  # fmt: skip
        return [(title, html.figure_png(draw())) for title, draw in drawn]
    except (ImportError, AttributeError, TypeError) as exc:
        typer.echo(f"warning: no figures in the report ({type(exc).__name__}: {exc})", err=True)
        return []


def _diffusion_figures(data: dict[str, Any], cluster: Cluster) -> list[html.Figure]:
    try:
        from roofline.reports import plot_data, plots

        fig = plots.roofline_figure(plot_data.diffusion_roofline_data(data, cluster))
        return [("Operators of each step on the roofline", html.figure_png(fig))]
    except (ImportError, AttributeError, TypeError) as exc:
        typer.echo(f"warning: no figures in the report ({type(exc).__name__}: {exc})", err=True)
        return []


def _diffusion_header(data: dict[str, Any], cluster: Cluster) -> list[tuple[str, Any]]:
    acc = cluster.accelerator
    return [
        ("model", f"{data['model']} ({data['kind']})"),
        ("hardware", f"{acc.id} ({acc.name})"),
        ("system", f"{cluster.describe()}: {cluster.system.name}"),
        ("attention", f"{data['attention_kernel']}, {'torch.compile' if data['compiled'] else 'eager PyTorch'}"),
        ("tool", f"roofline {__version__}"),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]


def _header(q: Query, result: EstimateResult) -> list[tuple[str, Any]]:
    p, acc = q.scenario.precision, q.cluster.accelerator
    return [
        ("model", f"{q.workload.id} ({q.workload.name})"),
        ("hardware", f"{acc.id} ({acc.name})"),
        ("system", f"{q.cluster.describe()}: {q.cluster.system.name}"),
        ("parallelism", parallelism(q.scenario)),
        ("formats", f"weights {p.weight.value}, experts {p.experts.value}, KV cache {p.kv_cache.value}, "
                    f"activations {p.activation.value}"),
        ("batch x isl / osl", f"{result.batch} x {result.isl} / {result.osl}" + (" (ideal roofline)" if result.ideal
                                                                                 else "")),
        ("tool", f"roofline {__version__}"),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]  # fmt: skip


def report_command(
    output: Path = typer.Option(..., "--output", "-o", help="the HTML file to write (FILE.html)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file"),
    model: str = est.MODEL, hardware: str | None = est.HARDWARE, system: str | None = est.SYSTEM,
    gpus: int | None = est.GPUS, tp: int = est.TP, pp: int = est.PP, ep: int = est.EP, attn_dp: int = est.ATTN_DP,
    moe_imbalance: float = est.IMBALANCE, batch: int = est.BATCH, isl: int = est.ISL, osl: int = est.OSL,
    weight_dtype: str | None = est.WEIGHT_DTYPE, expert_dtype: str | None = est.EXPERT_DTYPE,
    kv_dtype: str | None = est.KV_DTYPE, activation_dtype: str = est.ACT_DTYPE, reserve: str | None = est.RESERVE,
    max_num_tokens: int = est.MAX_NUM_TOKENS, mtp: int = est.MTP, mtp_acceptance: float = est.MTP_ACCEPT,
    comm_library: str | None = est.COMM_LIBRARY, overlap_ep: bool = est.OVERLAP_EP, cp: int = est.CP,
    sp: int | None = est.SP,
    ideal: bool = est.IDEAL, ignore_memory: bool = est.IGNORE_MEMORY, settings: list[str] = est.SET,
    figures: bool = typer.Option(True, "--figures/--no-figures", help="draw the figures (a few seconds)"),
    resolution: str | None = est.RESOLUTION, video: str | None = est.VIDEO, preset: str | None = est.PRESET,
    steps: int | None = est.STEPS, cfg: bool | None = est.CFG, cfg_parallel: bool = est.CFG_PARALLEL,
    ring: int | None = est.RING, gen_len: int | None = est.GEN_LEN, block_len: int | None = est.BLOCK_LEN,
    cache: str | None = est.CACHE, compare_ar: str | None = est.COMPARE_AR,
    attention_kernel: str | None = est.ATTENTION_KERNEL, compile: bool | None = est.COMPILE,
) -> None:  # fmt: skip
    """Write one estimate as a self-contained HTML page with figures and the source of every hardware number."""
    if output.suffix.lower() not in (".html", ".htm"):
        raise RooflineError(f"-o {output}: the report is HTML; the file name must end in .html")
    if output.exists() and not force:  # before any work
        raise RooflineError(f"'{output}' already exists; pass --force to overwrite it")
    workload = get_workload(model)
    if is_diffusion(workload):
        est.refuse_llm_options(model, est.llm_option_values(pp, ep, attn_dp, moe_imbalance, osl, expert_dtype,
                                                            kv_dtype, activation_dtype, reserve, max_num_tokens, mtp,
                                                            mtp_acceptance, comm_library, overlap_ep, cp))  # fmt: skip
        found = estimate_diffusion(
            workload, hardware, system=system, gpus=gpus, tp=tp, batch=batch, isl=isl, weight_dtype=weight_dtype,
            sp=sp, ring=ring, preset=preset, attention_kernel=attention_kernel, compile=compile, ideal=ideal,
            resolution=resolution, video=video, steps=steps, cfg=cfg, cfg_parallel=cfg_parallel, gen_len=gen_len,
            block_len=block_len, cache=cache, compare_ar=compare_ar, ignore_memory=True, set=settings,
        )  # fmt: skip
        if not found.fits and not ignore_memory:
            raise RooflineError(f"{found.model} does not fit on {found.hardware}; add --ignore-memory to report its "
                                "latency anyway (marked hypothetical)")  # fmt: skip
        data = {**found.to_dict(), "title": found.title}
        page = html.diffusion_page(data, _diffusion_header(data, found.cluster),
                                   diffusion_inputs(data, found.cluster, ideal), hardware_sources(found.cluster),
                                   _diffusion_figures(data, found.cluster) if figures else [])  # fmt: skip
        write_new_file(output, page, force)
        sys.stderr.write(f"wrote {output}\n")
        return
    est.refuse_diffusion_options(model, DiffusionOptions(resolution, video, steps, cfg, cfg_parallel, gen_len,
                                                         block_len, cache, compare_ar, None, ring, preset,
                                                         attention_kernel, compile))  # fmt: skip
    found_llm = estimate(
        workload, hardware, system=system, gpus=gpus, tp=tp, pp=pp, ep=ep, attn_dp=attn_dp,
        moe_imbalance=moe_imbalance, batch=batch, isl=isl, osl=osl, weight_dtype=weight_dtype,
        expert_dtype=expert_dtype, kv_dtype=kv_dtype, activation_dtype=activation_dtype, reserve=reserve,
        max_num_tokens=max_num_tokens, mtp=mtp, mtp_acceptance=mtp_acceptance, comm_library=comm_library,
        overlap_ep=overlap_ep, cp=cp, sp=sp, ideal=ideal, ignore_memory=ignore_memory, set=settings,
    )  # fmt: skip
    est.show_warnings(found_llm.warnings)
    if found_llm.detail is None or found_llm.query is None:
        raise RooflineError(f"{found_llm.does_not_fit_message()}; add --ignore-memory to report its latency anyway "
                            "(marked hypothetical)")  # fmt: skip
    q, result = found_llm.query, found_llm.detail
    header = _header(q, result) + ([("memory", "DOES NOT FIT: the latency is hypothetical (--ignore-memory)")]
                                   if found_llm.hypothetical else [])  # fmt: skip
    page = html.estimate_page(result, header, estimate_inputs(q.workload, q.cluster, q.scenario, ideal),
                              hardware_sources(q.cluster), _figures(q, result) if figures else [],
                              result.to_dict(with_ops=False)["bounds"]["headline"])  # fmt: skip
    write_new_file(output, page, force)
    sys.stderr.write(f"wrote {output}\n")
