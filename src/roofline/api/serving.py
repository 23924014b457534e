"""`rl.serve`: a serving load (offline max-throughput, Poisson rate, closed-loop concurrency or a
trace) simulated through one engine's scheduler against one configuration."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roofline.api.query import HardwareArg, LlmOptions, ModelArg, Query, Settings, SystemArg, build_query, model_of
from roofline.errors import RooflineError
from roofline.result import Result, html_table
from roofline.simulator.plan import DEFAULT_MTP_ACCEPTANCE, MAX_DRAFT_TOKENS
from roofline.simulator.serving import EngineConfig, Load, load_engine
from roofline.simulator.serving import serve as run_serve
from roofline.simulator.serving.disaggregated import serve_disaggregated
from roofline.simulator.serving.engine_config import DEFAULT_ENGINE
from roofline.simulator.serving.requests import read_trace
from roofline.simulator.serving.service import ServeResult
from roofline.simulator.serving.step_model import Draft
from roofline.units import format_time
from roofline.workloads.moe_kernels import variant

DEFAULT_DRAFT_TOKENS = 4
DEFAULT_DRAFT_ACCEPTANCE = 0.7


def load_of(max_throughput: bool, rate: float | str | None, concurrency: int | None, **kw: Any) -> Load:
    """The load from the command's choice of --max-throughput, --request-rate R|inf, --concurrency C
    (none of them with a trace: the trace's own arrival times)."""
    chosen = sum(x is not None and x is not False for x in (max_throughput or None, rate, concurrency))
    if chosen == 0 and kw.get("trace") is not None:
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


def on_engine(q: Query, profile: EngineConfig) -> Query:
    """The query with the engine's MoE kernel variant and vocabulary layout in its plan."""
    variant(profile.moe_kernels)  # an unknown name: one clear error
    plan = dataclasses.replace(q.scenario.plan.with_vocab_layout(profile), moe_kernels=profile.moe_kernels)
    return dataclasses.replace(q, scenario=dataclasses.replace(q.scenario, plan=plan))


def engine_profile(engine: str, kv_memory_fraction: float | None, max_batch: int | None,
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


def _pools(text: str) -> tuple[int, int]:
    try:
        prefill, decode = (int(x) for x in text.split(":"))
    except ValueError:
        raise RooflineError(f"--disaggregate takes P:D replica counts such as 1:3, got '{text}'") from None
    return prefill, decode


@dataclass(frozen=True, repr=False)
class ServeReport(Result):
    """A simulated serving run: tokens/s (all replicas, per GPU, per user), mean and p50 / p90 / p99
    TTFT, TPOT and end-to-end latency of the requests (seconds), the batch the engine ran and its KV
    capacity. TTFT is per request: from its arrival to its first token."""

    model: str
    hardware: str
    system: str
    tp: int
    pp: int
    ep: int
    dp: int
    attn_dp: int
    cp: int
    isl: int
    osl: int
    result: ServeResult = field(repr=False)
    warnings: tuple[str, ...] = ()
    query: Query | None = field(default=None, repr=False, compare=False)
    engine_config: EngineConfig | None = field(default=None, repr=False, compare=False)
    load_inputs: tuple[tuple[str, Any], ...] = field(default=(), repr=False, compare=False)

    def _latency(self) -> dict[str, float]:
        return self.result.latency()

    @property
    def ttft_s(self) -> float:
        return self._latency()["ttft_s"]

    @property
    def ttft_p50_s(self) -> float:
        return self._latency()["ttft_p50_s"]

    @property
    def ttft_p90_s(self) -> float:
        return self._latency()["ttft_p90_s"]

    @property
    def ttft_p99_s(self) -> float:
        return self._latency()["ttft_p99_s"]

    @property
    def tpot_s(self) -> float:
        return self._latency()["tpot_s"]

    @property
    def tpot_p50_s(self) -> float:
        return self._latency()["tpot_p50_s"]

    @property
    def tpot_p90_s(self) -> float:
        return self._latency()["tpot_p90_s"]

    @property
    def tpot_p99_s(self) -> float:
        return self._latency()["tpot_p99_s"]

    @property
    def e2e_s(self) -> float:
        return self._latency()["e2e_s"]

    @property
    def e2e_p99_s(self) -> float:
        return self._latency()["e2e_p99_s"]

    @property
    def output_tokens_per_s(self) -> float:
        return self.result.output_tokens_per_s

    @property
    def output_tokens_per_s_per_gpu(self) -> float:
        return self.output_tokens_per_s / self.result.num_gpus

    @property
    def output_tokens_per_s_per_user(self) -> float:
        tpot = self.tpot_s
        return 1.0 / tpot if tpot > 0 else math.nan

    @property
    def mean_batch(self) -> float:
        return self.result.sim.mean_batch

    @property
    def kv_capacity_tokens(self) -> int:
        return self.result.kv_capacity_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "hardware": self.hardware, "system": self.system, "tp": self.tp, "pp": self.pp,
            "ep": self.ep, "dp": self.dp, "attn_dp": self.attn_dp, "cp": self.cp, "isl": self.isl, "osl": self.osl,
            **self.result.to_dict(), "warnings": list(self.warnings),
        }  # fmt: skip

    def overview(self) -> list[tuple[str, Any]]:
        d = self.to_dict()
        return [("model", self.model), ("load", f"{d['mode']} {d['load']:g}"),
                ("output tokens/s", f"{d['output_tokens_per_s']:,.0f}"),
                ("TTFT mean / p99", f"{format_time(d['ttft_s'])} / {format_time(d['ttft_p99_s'])}"),
                ("TPOT mean / p99", f"{format_time(d['tpot_s'])} / {format_time(d['tpot_p99_s'])}"),
                ("mean batch", f"{d['mean_batch']:,.1f}")]  # fmt: skip

    def _repr_html_(self) -> str:
        return html_table("ServeReport", self.overview())


def _load_inputs(load: Load, trace: str | None, draft: Draft | None, disaggregate: str | None
                 ) -> tuple[tuple[str, Any], ...]:  # fmt: skip
    """The load as the workbook's Inputs list it."""
    drafter = f"{draft.workload.id}, {draft.tokens} tokens, acceptance {draft.acceptance:g}" if draft else "none"
    return (("mode", load.mode), ("value (requests/s or clients)", f"{load.value:g}"),
            ("requests", load.num_requests or "default"), ("isl spread", load.isl_spread),
            ("osl spread", load.osl_spread), ("seed", load.seed), ("prefix hit", load.prefix_hit),
            ("trace", trace or "none"), ("draft model", drafter),
            ("disaggregated prefill:decode replicas", disaggregate or "no"))  # fmt: skip


def serve(
    model: ModelArg, hardware: HardwareArg = None, *, system: SystemArg = None, gpus: int | None = None,
    tp: int = 1, pp: int = 1, ep: int = 1, attn_dp: int = 1, moe_imbalance: float = 1.0, isl: int = 1024,
    osl: int = 128, weight_dtype: str | None = None, expert_dtype: str | None = None, kv_dtype: str | None = None,
    activation_dtype: str = "bf16", reserve: str | float | None = None, mtp: int = 0,
    mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE, comm_library: str | None = None, overlap_ep: bool = False,
    cp: int = 1, sp: int | None = None, max_throughput: bool = False, request_rate: float | str | None = None,
    concurrency: int | None = None, num_requests: int | None = None, isl_spread: float = 0.0,
    osl_spread: float = 0.0, trace: str | os.PathLike[str] | None = None, seed: int = 0, prefix_hit: float = 0.0,
    engine: str = DEFAULT_ENGINE, kv_memory_fraction: float | None = None, max_batch: int | None = None,
    max_num_tokens: int | None = None, block_size: int | None = None, step_overhead_ms: float | None = None,
    draft_model: str | None = None, draft_tokens: int = DEFAULT_DRAFT_TOKENS,
    draft_acceptance: float = DEFAULT_DRAFT_ACCEPTANCE, disaggregate: str | None = None, ideal: bool = False,
    set: Settings = (), progress: Callable[[float], None] | None = None,
) -> ServeReport:  # fmt: skip
    """Serve a load through the engine's scheduler (`roofline serve`): tokens/s and TTFT / TPOT /
    end-to-end latency percentiles. `max_batch` is the engine's limit per scheduler (per attention-DP
    rank); `request_rate` may be 'inf'. `progress(fraction)` is told 0.0 when the simulation starts,
    the fraction of requests finished as it goes (by a percent at least; a disaggregated run reports
    only its ends), and 1.0 when it ends."""
    if not 0 <= prefix_hit < 1:
        raise RooflineError(f"--prefix-hit must be in [0, 1), got {prefix_hit}")
    if num_requests is not None and num_requests < 1:
        raise RooflineError(f"--num-requests must be at least 1, got {num_requests}")
    if seed < 0:
        raise RooflineError(f"--seed must be >= 0, got {seed}")
    profile = engine_profile(engine, kv_memory_fraction, max_batch, max_num_tokens, block_size, step_overhead_ms,
                             ideal)  # fmt: skip
    q = build_query(LlmOptions(model, hardware, system, gpus, tp, pp, ep, attn_dp, moe_imbalance, 1, isl, osl,
                               weight_dtype, expert_dtype, kv_dtype, activation_dtype, reserve, profile.max_num_tokens,
                               mtp, mtp_acceptance, comm_library, overlap_ep, cp, sp, set))  # fmt: skip
    if mtp and not q.workload.mtp_layers:
        raise RooflineError(f"{q.workload.id} ships no MTP layers; drop --mtp (or use --draft-model)")
    q = on_engine(q, profile)
    if draft_model is None and (draft_tokens != DEFAULT_DRAFT_TOKENS or draft_acceptance != DEFAULT_DRAFT_ACCEPTANCE):
        raise RooflineError("--draft-tokens and --draft-acceptance describe a --draft-model; give one or drop them")
    if disaggregate is not None and gpus is not None:
        raise RooflineError("--disaggregate P:D sets the replicas (P + D of tp x pp GPUs each); drop --gpus")
    if trace is not None and (isl_spread or osl_spread):
        raise RooflineError("--trace gives the requests' lengths; drop --isl-spread / --osl-spread")
    load = load_of(max_throughput, request_rate, concurrency, num_requests=num_requests, isl_spread=isl_spread,
                   osl_spread=osl_spread, seed=seed, prefix_hit=prefix_hit,
                   trace=read_trace(Path(trace)) if trace is not None else None)  # fmt: skip
    draft = None
    if draft_model is not None:
        if not 1 <= draft_tokens <= MAX_DRAFT_TOKENS or not 0 < draft_acceptance <= 1:
            raise RooflineError(f"--draft-tokens must be in [1, {MAX_DRAFT_TOKENS}] and --draft-acceptance in (0, 1]")
        if mtp:
            raise RooflineError("choose one drafter: --mtp or --draft-model")
        draft = Draft(model_of(draft_model, autoregressive=True), draft_tokens, draft_acceptance)
    if progress is not None:
        progress(0.0)
    result = _simulate(q, profile, load, draft, disaggregate, ideal, progress)
    if progress is not None:
        progress(1.0)
    plan, trace_name = q.scenario.plan, None if trace is None else os.fspath(trace)
    return ServeReport(q.workload.id, q.cluster.accelerator.id, q.cluster.system.id, plan.tp, plan.pp, plan.ep,
                       plan.dp, plan.attn_dp, plan.cp, isl, osl, result, q.warnings, q, profile,
                       _load_inputs(load, trace_name, draft, disaggregate))  # fmt: skip


def _simulate(q: Query, profile: EngineConfig, load: Load, draft: Draft | None, disaggregate: str | None,
              ideal: bool, progress: Callable[[float], None] | None = None) -> ServeResult:  # fmt: skip
    if disaggregate is not None:
        if draft is not None:
            raise RooflineError("--draft-model is not simulated with --disaggregate; drop one of them")
        prefill, decode = _pools(disaggregate)
        return serve_disaggregated(q.workload, q.cluster, q.scenario, profile, load, prefill, decode, ideal)
    return run_serve(q.workload, q.cluster, q.scenario, profile, load, ideal=ideal, draft=draft, progress=progress)
