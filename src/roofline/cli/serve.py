"""`roofline serve`: a serving load (offline max-throughput, Poisson rate, or closed-loop
concurrency) simulated against one configuration and engine profile."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from roofline.cli.common import Output, OutputFormat
from roofline.cli.estimate import (
    ACT_DTYPE,
    ATTN_DP,
    COMM_LIBRARY,
    CP,
    EP,
    EXPERT_DTYPE,
    FORCE,
    FORMAT,
    GPUS,
    HARDWARE,
    IMBALANCE,
    ISL,
    KV_DTYPE,
    MODEL,
    MTP,
    MTP_ACCEPT,
    OSL,
    OUTPUT,
    OVERLAP_EP,
    PP,
    RESERVE,
    SP,
    SYSTEM,
    TP,
    WEIGHT_DTYPE,
    Query,
    QueryOptions,
)  # fmt: skip
from roofline.errors import RooflineError
from roofline.reports import tables
from roofline.reports.assumptions import engine_inputs, estimate_inputs
from roofline.reports.formats import flatten, to_csv, to_json
from roofline.reports.xlsx_views import write_serve
from roofline.simulator.plan import MAX_DRAFT_TOKENS
from roofline.simulator.serving import EngineConfig, Load, load_engine, serve
from roofline.simulator.serving.disaggregated import serve_disaggregated
from roofline.simulator.serving.engine_config import DEFAULT_ENGINE
from roofline.simulator.serving.requests import read_trace
from roofline.simulator.serving.step_model import Draft
from roofline.workloads import get_autoregressive


def _load(max_throughput: bool, rate: str | None, concurrency: int | None, **kw: Any) -> Load:
    chosen = sum(x is not None and x is not False for x in (max_throughput or None, rate, concurrency))
    if chosen == 0 and kw.get("trace") is not None:  # the trace's own arrival times are the load
        return Load("trace", math.nan, **kw)
    if chosen != 1:
        raise RooflineError("choose one load: --max-throughput, --request-rate R (or inf), or --concurrency C")
    if max_throughput:
        return Load("max_throughput", math.inf, **kw)
    if rate is not None:
        try:
            value = float(rate)
        except ValueError:
            raise RooflineError(f"--request-rate must be a number of requests/s or 'inf', got '{rate}'") from None
        return Load("request_rate", value, **kw)
    assert concurrency is not None
    if concurrency < 1:
        raise RooflineError(f"--concurrency must be at least 1, got {concurrency}")
    return Load("concurrency", float(concurrency), **kw)


def _engine_profile(engine: str, kv_memory_fraction: float | None, max_batch: int | None,
                    max_num_tokens: int | None, block_size: int | None, step_overhead_ms: float | None,
                    ideal: bool) -> EngineConfig:  # fmt: skip
    """The engine profile with the command line's knobs, validated by the profile's own schema."""
    checks = {"--kv-memory-fraction": (kv_memory_fraction, "in (0, 1]", lambda v: 0 < v <= 1),
              "--max-batch": (max_batch, "at least 1", lambda v: v >= 1),
              "--max-num-tokens": (max_num_tokens, "at least 1", lambda v: v >= 1),
              "--block-size": (block_size, "at least 1", lambda v: v >= 1),
              "--step-overhead-ms": (step_overhead_ms, ">= 0 and finite", lambda v: 0 <= v < math.inf)}  # fmt: skip
    for option, (value, rule, ok) in checks.items():
        if value is not None and not ok(value):
            raise RooflineError(f"{option} must be {rule}, got {value}")
    knobs: dict[str, Any] = {"kv_memory_fraction": kv_memory_fraction, "max_batch": max_batch,
                             "max_num_tokens": max_num_tokens, "kv_block_tokens": block_size,
                             "step_overhead": None if step_overhead_ms is None else step_overhead_ms / 1e3}  # fmt: skip
    if ideal:
        knobs.update(step_overhead=0.0, per_sequence_overhead=0.0)
    return load_engine(engine).model_copy(update={k: v for k, v in knobs.items() if v is not None})


DEFAULT_DRAFT_TOKENS = 4
DEFAULT_DRAFT_ACCEPTANCE = 0.7


def _pools(text: str) -> tuple[int, int]:
    try:
        prefill, decode = (int(x) for x in text.split(":"))
    except ValueError:
        raise RooflineError(f"--disaggregate takes P:D replica counts such as 1:3, got '{text}'") from None
    return prefill, decode


def serve_command(
    model: str = MODEL, hardware: str | None = HARDWARE, system: str | None = SYSTEM, gpus: int | None = GPUS,
    tp: int = TP, pp: int = PP, ep: int = EP, attn_dp: int = ATTN_DP, moe_imbalance: float = IMBALANCE,
    isl: int = ISL, osl: int = OSL,
    weight_dtype: str | None = WEIGHT_DTYPE, expert_dtype: str | None = EXPERT_DTYPE, kv_dtype: str | None = KV_DTYPE,
    activation_dtype: str = ACT_DTYPE, reserve: str | None = RESERVE,
    mtp: int = MTP, mtp_acceptance: float = MTP_ACCEPT, comm_library: str = COMM_LIBRARY,
    overlap_ep: bool = OVERLAP_EP, cp: int = CP, sp: int | None = SP,
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
    engine: str = typer.Option(DEFAULT_ENGINE, "--engine", help="engine profile: trtllm, vllm, sglang"),
    kv_memory_fraction: float | None = typer.Option(None, "--kv-memory-fraction", help="KV share of free memory"),
    max_batch: int | None = typer.Option(None, "--max-batch", help="sequences in flight per replica"),
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
    fmt: OutputFormat = FORMAT, output: Path | None = OUTPUT, force: bool = FORCE,
) -> None:  # fmt: skip
    """Serve a load: tokens/s, TTFT / TPOT / end-to-end latency percentiles, batch and queueing."""
    out = Output.check(fmt, output, force)
    if not 0 <= prefix_hit < 1:
        raise RooflineError(f"--prefix-hit must be in [0, 1), got {prefix_hit}")
    if num_requests is not None and num_requests < 1:
        raise RooflineError(f"--num-requests must be at least 1, got {num_requests}")
    if seed < 0:
        raise RooflineError(f"--seed must be >= 0, got {seed}")
    profile = _engine_profile(engine, kv_memory_fraction, max_batch, max_num_tokens, block_size, step_overhead_ms,
                              ideal)  # fmt: skip
    options = QueryOptions(model, hardware, system, gpus, tp, pp, ep, attn_dp, moe_imbalance, 1, isl, osl,
                           weight_dtype, expert_dtype, kv_dtype, activation_dtype, reserve, profile.max_num_tokens,
                           mtp, mtp_acceptance, comm_library, overlap_ep, cp, sp)  # fmt: skip
    q = Query.build(options)
    if mtp and not q.workload.mtp_layers:
        raise RooflineError(f"{q.workload.id} ships no MTP layers; drop --mtp (or use --draft-model)")
    if draft_model is None and (draft_tokens != DEFAULT_DRAFT_TOKENS or draft_acceptance != DEFAULT_DRAFT_ACCEPTANCE):
        raise RooflineError("--draft-tokens and --draft-acceptance describe a --draft-model; give one or drop them")
    if disaggregate is not None and gpus is not None:
        raise RooflineError("--disaggregate P:D sets the replicas (P + D of tp x pp GPUs each); drop --gpus")
    if trace is not None and (isl_spread or osl_spread):
        raise RooflineError("--trace gives the requests' lengths; drop --isl-spread / --osl-spread")
    load = _load(max_throughput, request_rate, concurrency, num_requests=num_requests, isl_spread=isl_spread,
                 osl_spread=osl_spread, seed=seed, prefix_hit=prefix_hit,
                 trace=read_trace(trace) if trace is not None else None)  # fmt: skip
    draft = None
    if draft_model is not None:
        if not 1 <= draft_tokens <= MAX_DRAFT_TOKENS or not 0 < draft_acceptance <= 1:
            raise RooflineError(f"--draft-tokens must be in [1, {MAX_DRAFT_TOKENS}] and --draft-acceptance in (0, 1]")
        if mtp:
            raise RooflineError("choose one drafter: --mtp or --draft-model")
        draft = Draft(get_autoregressive(draft_model), draft_tokens, draft_acceptance)
    if disaggregate is not None:
        if draft is not None:
            raise RooflineError("--draft-model is not simulated with --disaggregate; drop one of them")
        prefill, decode = _pools(disaggregate)
        result = serve_disaggregated(q.workload, q.cluster, q.scenario, profile, load, prefill, decode, ideal)
    else:
        result = serve(q.workload, q.cluster, q.scenario, profile, load, ideal=ideal, draft=draft)
    data = {"model": q.workload.id, "hardware": q.cluster.accelerator.id, "system": q.cluster.system.id,
            "tp": q.scenario.plan.tp, "pp": q.scenario.plan.pp, "ep": q.scenario.plan.ep,
            "dp": q.scenario.plan.dp, "isl": isl, "osl": osl, **result.to_dict()}  # fmt: skip
    if out.fmt is OutputFormat.json:
        out.text(to_json(data))
    elif out.fmt is OutputFormat.csv:
        out.text(to_csv([flatten(data)]))
    elif out.fmt is OutputFormat.xlsx:
        inputs = [*estimate_inputs(q.workload, q.cluster, q.scenario, ideal, with_batch=False),
                  *engine_inputs(profile, _load_inputs(load, trace, draft, disaggregate))]  # fmt: skip
        out.workbook(lambda path: write_serve(path, data, inputs))
    else:
        out.table(tables.serve_table(data))


def _load_inputs(load: Load, trace: Path | None, draft: Draft | None, disaggregate: str | None) -> dict[str, Any]:
    """The load as the workbook's Inputs list it."""
    drafter = f"{draft.workload.id}, {draft.tokens} tokens, acceptance {draft.acceptance:g}" if draft else "none"
    return {
        "mode": load.mode, "value (requests/s or clients)": f"{load.value:g}",
        "requests": load.num_requests or "default", "isl spread": load.isl_spread, "osl spread": load.osl_spread,
        "seed": load.seed, "prefix hit": load.prefix_hit, "trace": str(trace) if trace is not None else "none",
        "draft model": drafter, "disaggregated prefill:decode replicas": disaggregate or "no",
    }  # fmt: skip
