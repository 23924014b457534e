"""`roofline serve`: parse, call roofline.api.serving, render."""

from __future__ import annotations

from pathlib import Path

import typer

from roofline.api import serve
from roofline.api.serving import DEFAULT_DRAFT_ACCEPTANCE, DEFAULT_DRAFT_TOKENS
from roofline.cli import estimate as est
from roofline.cli import tables
from roofline.cli.common import Output, OutputFormat
from roofline.cli.running import QUIET, progress_bar
from roofline.reports.assumptions import engine_inputs, estimate_inputs
from roofline.reports.formats import flatten, to_csv, to_json
from roofline.reports.xlsx_views import write_serve
from roofline.simulator.serving.engine_config import DEFAULT_ENGINE


def serve_command(
    model: str = est.MODEL, hardware: str | None = est.HARDWARE, system: str | None = est.SYSTEM,
    gpus: int | None = est.GPUS, tp: int = est.TP, pp: int = est.PP, ep: int = est.EP, attn_dp: int = est.ATTN_DP,
    moe_imbalance: float = est.IMBALANCE, isl: int = est.ISL, osl: int = est.OSL,
    weight_dtype: str | None = est.WEIGHT_DTYPE, expert_dtype: str | None = est.EXPERT_DTYPE,
    kv_dtype: str | None = est.KV_DTYPE, activation_dtype: str = est.ACT_DTYPE, reserve: str | None = est.RESERVE,
    mtp: int = est.MTP, mtp_acceptance: float = est.MTP_ACCEPT, comm_library: str | None = est.COMM_LIBRARY,
    overlap_ep: bool = est.OVERLAP_EP, cp: int = est.CP, sp: int | None = est.SP,
    max_throughput: bool = typer.Option(False, "--max-throughput", help="offline: every request queued at t = 0"),
    request_rate: str | None = typer.Option(None, "--request-rate", help="Poisson arrivals, requests/s ('inf')"),
    concurrency: int | None = typer.Option(None, "--concurrency", help="closed loop with this many clients"),
    num_requests: int | None = typer.Option(
        None, "--num-requests", help="requests to simulate (default 1000; with --trace: its first N)"),
    isl_spread: float = typer.Option(0.0, "--isl-spread", help="prompt lengths uniform in isl x [1 -/+ spread]"),
    osl_spread: float = typer.Option(0.0, "--osl-spread", help="output lengths uniform in osl x [1 -/+ spread]"),
    trace: Path | None = typer.Option(None, "--trace", help="CSV of arrival_s,isl,osl rows (replaces the load)"),
    seed: int = typer.Option(0, "--seed", help="random seed for arrivals and lengths"),
    prefix_hit: float = typer.Option(0.0, "--prefix-hit", help="fraction of each prompt served by the prefix cache"),
    engine: str = typer.Option(DEFAULT_ENGINE, "--engine", "--runtime", help="trtllm, vllm, sglang, or a YAML"),
    kv_memory_fraction: float | None = typer.Option(None, "--kv-memory-fraction", help="KV share of free memory"),
    max_batch: int | None = typer.Option(
        None, "--max-batch", help="sequences in flight per scheduler (per attention-DP rank)"),
    max_num_tokens: int | None = typer.Option(None, "--max-num-tokens", help="tokens per step (chunk budget)"),
    block_size: int | None = typer.Option(None, "--block-size", help="KV block size in tokens"),
    step_overhead_ms: float | None = typer.Option(None, "--step-overhead-ms", help="host time per engine step"),
    draft_model: str | None = typer.Option(None, "--draft-model", help="speculative decoding with this draft model"),
    draft_tokens: int = typer.Option(
        DEFAULT_DRAFT_TOKENS, "--draft-tokens", help="tokens the draft model proposes per step"),
    draft_acceptance: float = typer.Option(
        DEFAULT_DRAFT_ACCEPTANCE, "--draft-acceptance", help="chance each draft token is accepted"),
    disaggregate: str | None = typer.Option(
        None, "--disaggregate", help="P:D prefill and decode replicas (KV sent between pools over the fabric)"
    ),
    ideal: bool = typer.Option(False, "--ideal", help="pure roofline step times (no efficiencies, no overheads)"),
    settings: list[str] = est.SET, fmt: OutputFormat = est.FORMAT, output: Path | None = est.OUTPUT,
    force: bool = est.FORCE, quiet: bool = QUIET,
) -> None:  # fmt: skip
    """Serve a load: tokens/s, TTFT / TPOT / end-to-end latency percentiles, batch and queueing."""
    out = Output.check(fmt, output, force)
    with progress_bar("serving", quiet, counted=False) as bar:
        report = serve(
            model, hardware, system=system, gpus=gpus, tp=tp, pp=pp, ep=ep, attn_dp=attn_dp,
            moe_imbalance=moe_imbalance, isl=isl, osl=osl, weight_dtype=weight_dtype, expert_dtype=expert_dtype,
            kv_dtype=kv_dtype,
            activation_dtype=activation_dtype, reserve=reserve, mtp=mtp, mtp_acceptance=mtp_acceptance,
            comm_library=comm_library, overlap_ep=overlap_ep, cp=cp, sp=sp, max_throughput=max_throughput,
            request_rate=request_rate, concurrency=concurrency, num_requests=num_requests, isl_spread=isl_spread,
            osl_spread=osl_spread, trace=trace, seed=seed, prefix_hit=prefix_hit, engine=engine,
            kv_memory_fraction=kv_memory_fraction, max_batch=max_batch, max_num_tokens=max_num_tokens,
            block_size=block_size, step_overhead_ms=step_overhead_ms, draft_model=draft_model,
            draft_tokens=draft_tokens, draft_acceptance=draft_acceptance, disaggregate=disaggregate, ideal=ideal,
            set=settings, progress=bar.update if bar else None,
        )  # fmt: skip
    est.show_warnings(report.warnings)
    data = report.to_dict()
    if out.fmt is OutputFormat.json:
        out.text(to_json(data))
    elif out.fmt is OutputFormat.csv:
        out.text(to_csv([flatten(data)]))
    elif out.fmt is OutputFormat.xlsx:
        q, profile = report.query, report.engine_config
        assert q is not None and profile is not None
        inputs = [*estimate_inputs(q.workload, q.cluster, q.scenario, ideal, with_batch=False),
                  *engine_inputs(profile, dict(report.load_inputs))]  # fmt: skip
        out.workbook(lambda path: write_serve(path, data, inputs))
    else:
        out.table(tables.serve_table(report))
