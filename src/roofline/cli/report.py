"""`roofline report`: one configuration's estimate as a self-contained HTML page (summary, memory,
per-operator tables, figures, assumptions and the source of every hardware number)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from roofline.api import estimate, estimate_diffusion
from roofline.api.diffusion_options import DiffusionOptions, is_diffusion
from roofline.cli import estimate as est
from roofline.cli.common import write_new_file
from roofline.errors import RooflineError
from roofline.reports.report_page import ReportPage, diffusion_report, estimate_report
from roofline.workloads import get_workload


def _write(output: Path, report: ReportPage, force: bool) -> None:
    est.show_warnings(report.warnings)
    write_new_file(output, report.html, force)
    sys.stderr.write(f"wrote {output}\n")


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
        _write(output, diffusion_report(found, figures, ignore_memory), force)
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
    _write(output, estimate_report(found_llm, figures), force)
