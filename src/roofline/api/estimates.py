"""`rl.estimate` and `rl.memory`: one configuration of an autoregressive model.

A configuration that does not fit in memory is an answer, not an error: `fits` is False, the memory
document says by how much, and its latency is only computed on request (`ignore_memory=True`,
marked `hypothetical`); asking a non-fitting estimate for its latency raises DoesNotFitError."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from roofline.api.query import HardwareArg, LlmOptions, ModelArg, Query, Settings, SystemArg, build_query
from roofline.errors import DoesNotFitError
from roofline.result import Result, html_table
from roofline.simulator.engine import estimate as run_estimate
from roofline.simulator.memory import memory_result
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS, DEFAULT_MTP_ACCEPTANCE, ParallelPlan
from roofline.simulator.results import EstimateResult, MemoryResult, OpRow, PhaseResult, op_row_dict
from roofline.units import format_bytes, format_time

if TYPE_CHECKING:
    import pandas as pd

OP_COLUMNS = (*(f.name for f in fields(OpRow)), "arithmetic_intensity_flops_per_byte")
HEADLINE = "per operator max((compute^p + memory^p)^(1/p), communication) + kernel overhead"
GIB = 2**30


@dataclass(frozen=True, repr=False)
class MemoryReport(Result):
    """Memory per GPU of one configuration (the most loaded pipeline stage) and whether it fits.
    `batch` is the concurrent sequences of one replica (tp x pp x cp x attn-dp GPUs; attention-DP
    ranks split it); `dp` replicas run one each."""

    model: str
    hardware: str
    system: str
    num_gpus: int
    tp: int
    pp: int
    dp: int
    ep: int
    attn_dp: int
    cp: int
    batch: int
    isl: int
    osl: int
    weight_dtype: str
    expert_dtype: str
    activation_dtype: str
    kv_cache_dtype: str
    memory: MemoryResult
    warnings: tuple[str, ...] = ()
    fit_hint: str = ""  # when it does not fit: a layout that would, if one is found
    query: Query | None = field(default=None, repr=False, compare=False)  # the simulator's inputs

    @property
    def fits(self) -> bool:
        return self.memory.fits

    @property
    def kv_cache_bytes(self) -> float:
        return self.memory.kv_cache_bytes

    @property
    def weights_bytes(self) -> float:
        return self.memory.weights_bytes

    @property
    def total_bytes(self) -> float:
        return self.memory.total_bytes

    @property
    def shortfall_bytes(self) -> float:
        return max(0.0, -self.memory.margin_bytes)

    def does_not_fit_message(self) -> str:
        m = self.memory
        hint = f"; {self.fit_hint}" if self.fit_hint else ""
        return (f"does not fit: {self.model} needs {m.total_bytes / GIB:,.1f} GiB per GPU on {self.num_gpus} x "
                f"{self.hardware}, which has {m.capacity_bytes / GIB:,.1f} GiB (short by "
                f"{self.shortfall_bytes / GIB:,.1f} GiB){hint}")  # fmt: skip

    def header(self) -> dict[str, Any]:
        return {
            "model": self.model, "hardware": self.hardware, "system": self.system, "num_gpus": self.num_gpus,
            "parallel": {"tp": self.tp, "pp": self.pp, "dp": self.dp, "ep": self.ep, "attn_dp": self.attn_dp,
                         "cp": self.cp},
            "batch": self.batch, "batch_scope": "sequences per replica", "isl": self.isl, "osl": self.osl,
            "precision": {"weight": self.weight_dtype, "experts": self.expert_dtype,
                          "activation": self.activation_dtype, "kv_cache": self.kv_cache_dtype},
        }  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {**self.header(), "fits": self.fits, "memory": self.memory.to_dict(), "warnings": list(self.warnings)}

    def overview(self) -> list[tuple[str, Any]]:
        m = self.memory
        return [("model", self.model), ("hardware", f"{self.num_gpus} x {self.hardware}"),
                ("fits", "yes" if self.fits else self.does_not_fit_message()),
                ("total per GPU", format_bytes(m.total_bytes, binary=True)),
                ("capacity", format_bytes(m.capacity_bytes, binary=True)),
                ("weights", format_bytes(m.weights_bytes, binary=True)),
                ("KV cache", format_bytes(m.kv_cache_bytes, binary=True)), ("max batch", m.max_batch),
                ("max context", m.max_context_tokens)]  # fmt: skip


_TIMED = ("ttft_s", "ttft_batch_s", "tpot_s", "e2e_s", "e2e_batch_s", "output_tokens_per_s",
          "output_tokens_per_s_per_gpu", "decode_tokens_per_s", "decode_tokens_per_s_per_gpu",
          "prefill_tokens_per_s")  # fmt: skip


@dataclass(frozen=True, repr=False)
class Estimate(MemoryReport):
    """Prefill and decode of one configuration. `ttft_s`: mean time to first token of the batch's
    requests arriving together; `ttft_batch_s`: the prefill of the whole batch (the last request's);
    `tpot_s`: the mean decode step; `detail`: the operator-level result (None when not timed)."""

    ideal: bool = False
    detail: EstimateResult | None = None
    hypothetical: bool = False  # timed although it does not fit (ignore_memory=True)

    def _timed(self) -> EstimateResult:
        if self.detail is None:
            raise DoesNotFitError(f"{self.does_not_fit_message()}; its latency is computed only on request: "
                                  "pass ignore_memory=True (--ignore-memory)")  # fmt: skip
        return self.detail

    @property
    def timed(self) -> bool:
        return self.detail is not None

    @property
    def ttft_s(self) -> float:
        return self._timed().ttft_s

    @property
    def ttft_batch_s(self) -> float:
        return self._timed().ttft_batch_s

    @property
    def tpot_s(self) -> float:
        return self._timed().tpot_s

    @property
    def e2e_s(self) -> float:
        return self._timed().e2e_s

    @property
    def e2e_batch_s(self) -> float:
        return self._timed().e2e_batch_s

    @property
    def output_tokens_per_s(self) -> float:
        return self._timed().output_tokens_per_s

    @property
    def output_tokens_per_s_per_gpu(self) -> float:
        return self.output_tokens_per_s / self.num_gpus

    @property
    def decode_tokens_per_s(self) -> float:
        return self._timed().decode_tokens_per_s

    @property
    def decode_tokens_per_s_per_gpu(self) -> float:
        return self.decode_tokens_per_s / self.num_gpus

    @property
    def prefill_tokens_per_s(self) -> float:
        return self._timed().prefill_tokens_per_s

    @property
    def prefill(self) -> PhaseResult:
        return self._timed().prefill

    @property
    def decode(self) -> PhaseResult:
        return self._timed().decode

    @property
    def ops(self) -> tuple[OpRow, ...]:
        """Every operator of the prefill and of a decode step (the middle one of the generation)."""
        detail = self._timed()
        return (*detail.prefill.ops, *detail.decode.ops)

    def to_dict(self, ops: bool = True) -> dict[str, Any]:
        """The document `roofline estimate --format json` prints (`ops=False`: --no-ops)."""
        d = self.detail
        data: dict[str, Any] = {**self.header(), "ideal": self.ideal, "fits": self.fits, "timed": self.timed,
                                "hypothetical": self.hypothetical}  # fmt: skip
        data.update({key: getattr(self, key) if d is not None else None for key in _TIMED})
        data["runtime"] = d.runtime if d else None
        data["host"] = (
            {
                "prefill_host_s": d.prefill.host_s,
                "prefill_device_s": d.prefill.device_s,
                "decode_host_s": d.decode.host_s,
                "decode_device_s": d.decode.device_s,
            }
            if d
            else None
        )
        data["bounds"] = {
            "headline": HEADLINE,
            "ttft_batch_no_overlap_s": d.ttft_batch_no_overlap_s if d else None,
            "tpot_no_overlap_s": d.tpot_no_overlap_s if d else None,
        }
        data["prefill"] = d.prefill.to_dict() if d else None
        data["decode"] = d.decode.to_dict() if d else None
        data.update(memory=self.memory.to_dict(), kv_cache_bytes=self.kv_cache_bytes,
                    weights_bytes=self.weights_bytes, warnings=list(self.warnings))  # fmt: skip
        if ops:
            data["ops"] = [op_row_dict(row) for row in self.ops] if d else []
        return data

    def records(self) -> list[dict[str, Any]]:
        """One row per operator (prefill, then a decode step); none when not timed."""
        return [op_row_dict(row) for row in self.ops] if self.detail is not None else []

    def to_frame(self) -> pd.DataFrame:
        """The operator rows (their columns even when there are none: a configuration not timed)."""
        import pandas as pd

        return pd.DataFrame(self.records(), columns=list(OP_COLUMNS))

    def overview(self) -> list[tuple[str, Any]]:
        if self.detail is None:
            return super().overview()
        d = self.detail
        mark = " (hypothetical: does not fit)" if self.hypothetical else ""
        return [("model", self.model), ("hardware", f"{self.num_gpus} x {self.hardware}"),
                ("parallel", f"tp {self.tp} pp {self.pp} dp {self.dp} ep {self.ep} attn-dp {self.attn_dp}"),
                ("batch x isl / osl", f"{self.batch} x {self.isl} / {self.osl}"),
                ("runtime", d.runtime or "none (kernels' device time only; --runtime adds host time)"),
                ("TTFT (mean request)" + mark, format_time(d.ttft_s)),
                ("prefill of the batch", format_time(d.ttft_batch_s) + _split(d.prefill)),
                ("TPOT" + mark, format_time(d.tpot_s) + _split(d.decode)),
                ("output tokens/s", f"{d.output_tokens_per_s:,.0f}"),
                ("fits", "yes" if self.fits else self.does_not_fit_message())]  # fmt: skip

    def _repr_html_(self) -> str:
        ops = [op_row_dict(r) for r in sorted(self.ops, key=lambda r: -r.time_s)] if self.detail else []
        keep = ("phase", "name", "count", "time_s", "bound")
        return html_table("Estimate", self.overview(), [{k: r[k] for k in keep} for r in ops])


def _split(phase: PhaseResult) -> str:
    """' (device X + host Y)' when a runtime's host side is in the phase's time."""
    if phase.host_s <= 0:
        return ""
    return f" (device {format_time(phase.device_s)} + host {format_time(phase.host_s)})"


def _report_fields(q: Query) -> dict[str, Any]:
    plan, p = q.scenario.plan, q.scenario.precision
    return dict(model=q.workload.id, hardware=q.cluster.accelerator.id, system=q.cluster.system.id,
                num_gpus=plan.num_gpus, tp=plan.tp, pp=plan.pp, dp=plan.dp, ep=plan.ep, attn_dp=plan.attn_dp,
                cp=plan.cp, batch=q.scenario.batch, isl=q.scenario.isl, osl=q.scenario.osl,
                weight_dtype=p.weight.value, expert_dtype=p.experts.value, activation_dtype=p.activation.value,
                kv_cache_dtype=p.kv_cache.value, warnings=q.warnings, query=q)  # fmt: skip


def fit_hint(q: Query) -> str:
    """A layout that fits, when the given one does not: more tensor parallelism inside the scale-up
    domain, then pipeline stages across it (memory only; cheap)."""
    from roofline.errors import RooflineError
    from roofline.hardware_specs import resolve_cluster

    plan, domain = q.scenario.plan, q.cluster.system.gpus_per_domain
    tried: list[tuple[int, int]] = [(tp, plan.pp) for tp in (2, 4, 8, 16, 32, 64, 72) if plan.tp < tp <= domain]
    tried += [(max(plan.tp, domain), pp) for pp in (2, 4, 8, 16) if pp > plan.pp]
    for tp, pp in tried:
        try:
            new = ParallelPlan(tp=tp, pp=pp, ep=tp * plan.attn_dp if plan.ep > 1 else 1, attn_dp=plan.attn_dp,
                               moe_imbalance=plan.moe_imbalance, cp=plan.cp)  # fmt: skip
            scenario = replace(q.scenario, plan=new)
            cluster = resolve_cluster(hardware=q.cluster.accelerator, system=q.cluster.system,
                                      num_gpus=new.num_gpus)  # fmt: skip
            if memory_result(q.workload, cluster, scenario).fits:
                return f"it fits with --tp {tp}" + (f" --pp {pp}" if pp > 1 else "") + f" ({new.num_gpus} GPUs)"
        except RooflineError:
            continue
    return ""


def estimate(
    model: ModelArg, hardware: HardwareArg = None, *, system: SystemArg = None, gpus: int | None = None,
    tp: int = 1, pp: int = 1, ep: int = 1, attn_dp: int = 1, moe_imbalance: float = 1.0, batch: int = 1,
    isl: int = 1024, osl: int = 128, weight_dtype: str | None = None, expert_dtype: str | None = None,
    kv_dtype: str | None = None, activation_dtype: str = "bf16", reserve: str | float | None = None,
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS, mtp: int = 0, mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE,
    comm_library: str | None = None, overlap_ep: bool = False, cp: int = 1, sp: int | None = None,
    ideal: bool = False, ignore_memory: bool = False, set: Settings = (), runtime: str | None = None,
) -> Estimate:  # fmt: skip
    """Prefill and decode latency, throughput and memory of one configuration of an autoregressive
    model (`roofline estimate`). Parameters are the command's options (`--attn-dp` -> `attn_dp`).
    `runtime` (trtllm, vllm, sglang, torch-eager, torch-cuda-graph, hf-transformers, or a profile's
    YAML path) adds that runtime's host time per step and picks its all-reduce library; None times
    the kernels alone. A diffusion model: use `estimate_diffusion`."""
    from roofline.api.diffusion_options import refuse_diffusion_for_estimate

    refuse_diffusion_for_estimate(model)
    q = build_query(LlmOptions(model, hardware, system, gpus, tp, pp, ep, attn_dp, moe_imbalance, batch, isl, osl,
                               weight_dtype, expert_dtype, kv_dtype, activation_dtype, reserve, max_num_tokens,
                               mtp, mtp_acceptance, comm_library, overlap_ep, cp, sp, set, runtime))  # fmt: skip
    return estimate_query(q, ideal, ignore_memory)


def estimate_query(q: Query, ideal: bool = False, ignore_memory: bool = False) -> Estimate:
    memory = memory_result(q.workload, q.cluster, q.scenario)
    timed = memory.fits or ignore_memory
    detail = run_estimate(q.workload, q.cluster, q.scenario, ideal=ideal, memory=memory) if timed else None
    hint = "" if memory.fits else fit_hint(q)
    return Estimate(**_report_fields(q), memory=memory, fit_hint=hint, ideal=ideal, detail=detail,
                    hypothetical=timed and not memory.fits)  # fmt: skip


def memory(
    model: ModelArg, hardware: HardwareArg = None, *, system: SystemArg = None, gpus: int | None = None,
    tp: int = 1, pp: int = 1, ep: int = 1, attn_dp: int = 1, moe_imbalance: float = 1.0, batch: int = 1,
    isl: int = 1024, osl: int = 128, weight_dtype: str | None = None, expert_dtype: str | None = None,
    kv_dtype: str | None = None, activation_dtype: str = "bf16", reserve: str | float | None = None,
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS, mtp: int = 0, cp: int = 1, sp: int | None = None,
    set: Settings = (), runtime: str | None = None,
) -> MemoryReport:  # fmt: skip
    """Does it fit? Weights, KV cache, activations and reserve per GPU; the largest batch and context
    that fit (`roofline memory`); with a `runtime`, the KV capacity at its memory fraction."""
    q = build_query(LlmOptions(model, hardware, system, gpus, tp, pp, ep, attn_dp, moe_imbalance, batch, isl, osl,
                               weight_dtype, expert_dtype, kv_dtype, activation_dtype, reserve, max_num_tokens,
                               mtp, cp=cp, sp=sp, set=set, runtime=runtime))  # fmt: skip
    m = memory_result(q.workload, q.cluster, q.scenario)
    return MemoryReport(**_report_fields(q), memory=m, fit_hint="" if m.fits else fit_hint(q))
