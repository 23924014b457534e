"""Rows of other runtimes (README of the validation data, "Other runtimes (runtimes.csv)").

The `runtime` column names the software that produced a number; `runtime_profile` maps it to a
runtime (engine) profile of the simulator. Three scenarios are one phase or one user of a
deployment, predicted with `rl.estimate(..., runtime=profile)` (device and host time) on the
deployment's layout:

- `single_stream`: one request at a time (batch 1); output tokens/s as the user sees it,
  osl / (TTFT + (osl - 1) x TPOT). gpt-fast's generate.py times the whole `generate()` call
  (prefill, then osl - 1 decode steps) and prints `tokens_generated / t`.
- `disagg_prefill`: prompt tokens per second of a prefill-only worker: `load` prompt tokens per GPU
  in one forward batch (empty: the runtime's max batched tokens), whole prompts of isl tokens.
- `disagg_decode`: output tokens per second of a decode-only worker at `load` running sequences per
  GPU (empty: the largest batch whose KV fits the runtime's KV capacity), each step at the mean
  context isl + osl / 2.

Not modelled, said here once: a power cap (gpt-fast's A100s ran at 330 W; the accelerator YAML has
a TDP but no power-limited clocks) and a node topology other than the catalog system's (gpt-fast's
"hybrid cube mesh" vs the NVSwitch dgx-a100).

Figures published per GPU or per node (num_gpus = 1 or 8 while tp / ep give the deployment) are
predicted per GPU of the deployment and multiplied by num_gpus. MoE rows run DeepSeek-style: DP
attention over the EP group (attn_dp = ep / tp), whole experts per GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.simulator.serving import load_engine
from roofline.simulator.serving.engine_config import engine_ids, runtime_id
from roofline.validation.cases import PHASE_SCENARIOS, SERVING_SCENARIOS, Case
from roofline.workloads import Workload, get_autoregressive

if TYPE_CHECKING:
    from roofline.api.estimates import Estimate, MemoryReport

# What the `runtime` column may say -> the runtime profile that models it (simulator/data/engines).
# gpt-fast runs decode as torch.compile(mode="reduce-overhead"): CUDA graphs, the torch-cuda-graph class.
RUNTIME_PROFILES = {
    "trtllm": "trtllm",
    "gpt-fast": "torch-cuda-graph",
    "torch-compile": "torch-cuda-graph",
    "sglang": "sglang",
    "vllm": "vllm",
    "hf-transformers": "hf-transformers",
}
DEFAULT_RUNTIME = "trtllm-cpp"  # an empty `runtime`: the public tables' engine (benchmark_setups.yaml `engine`)
NO_RUNTIME = "-"  # kernel rows with no runtime given: a microbenchmark, not an engine
# Markers in a row's notes naming the MoE all-to-all library of the deployment (as ALLREDUCE_LIBRARIES).
EP_LIBRARIES = {"deepep": "deepep"}
# A row's notes naming TensorRT-LLM's attention data parallelism: its tp ranks are attention-DP ranks.
ATTENTION_DP_MARKER = "enable_attention_dp"


def runtime_label(case: Case, model_level: bool) -> str:
    """The runtime a row's error is summarised under: the column, lower-case; empty: the file's
    default for model-level rows (trtllm), '-' for kernel rows."""
    text = case.runtime.strip().lower()
    return text or (DEFAULT_RUNTIME if model_level else NO_RUNTIME)


def runtime_profile(case: Case) -> str | None:
    """The runtime profile id of a model-level row (a name of the table above, or a packaged profile's
    id or alias), or None when no profile models its runtime."""
    label = runtime_label(case, True)
    return RUNTIME_PROFILES.get(label) or runtime_id(label)


def with_default_runtime(cases: list[Case], runtime: str | None) -> list[Case]:
    """`validate --runtime`: rows whose `runtime` column is empty run on `runtime` (a packaged
    profile's id or alias) instead of the file's default; rows that name their runtime keep it."""
    if runtime is None:
        return cases
    if runtime_id(runtime) is None:
        raise RooflineError(f"unknown runtime '{runtime}'; known: {', '.join(engine_ids())}")
    model_level = (*SERVING_SCENARIOS, *PHASE_SCENARIOS)
    return [replace(c, runtime=runtime) if c.scenario in model_level and not c.runtime.strip() else c for c in cases]


def unknown_runtime(case: Case) -> str:
    known = ", ".join(sorted(RUNTIME_PROFILES))
    return f"runtime '{case.runtime}' has no runtime profile (known: {known})"


@dataclass(frozen=True)
class Layout:
    """The deployment one row's number came from: its GPUs and parallel degrees."""

    gpus: int
    tp: int
    ep: int
    attn_dp: int

    def kwargs(self) -> dict[str, int]:
        return {"gpus": self.gpus, "tp": self.tp, "ep": self.ep, "attn_dp": self.attn_dp}


def catalog_workload(model: str) -> Workload:
    """The catalog model of a row; a Hugging Face id (owner/name) outside the catalog is named as such."""
    try:
        return get_autoregressive(model)
    except RooflineError as exc:
        if "/" not in model:
            raise
        raise RooflineError(f"model '{model}' is a Hugging Face id with no catalog entry and no shipped config "
                            f"(not predicted; {exc})") from None  # fmt: skip


def _experts(workload: Workload) -> int:
    return int(getattr(workload, "num_experts", 0) or 0)


def default_ep(experts: int, hardware: str) -> int:
    """EP not published: the largest divisor of the expert count that fits one NVLink domain."""
    domain = resolve_cluster(hardware=hardware).system.gpus_per_domain
    return max(d for d in range(1, min(experts, domain) + 1) if experts % d == 0)


def layout(case: Case, workload: Workload, notes: list[str]) -> Layout:
    """Dense models: tp GPUs (pp must be 1). MoE models: DP attention over the EP group, whole
    experts per GPU (attn_dp = ep / tp), the layout of the DeepSeek deployments in the file; a row
    that publishes tp but no ep ran plain tensor parallelism (experts split over the tp GPUs, as
    vLLM and SGLang do without their expert-parallel switch)."""
    if (case.pp or 1) != 1:
        raise RooflineError("pipeline parallelism is not predicted for this scenario")
    tp = case.tp or 1
    if case.tp is None:
        notes.append("tp not published: 1 (DP attention)" if _experts(workload) else "tp not published: 1")
    experts = _experts(workload)
    if not experts:
        return Layout(tp, tp, 1, 1)
    ep = case.ep
    if ATTENTION_DP_MARKER in case.notes.lower():
        return _attention_dp_over_tp(tp, ep, notes)
    if ep is None and case.tp is not None:
        notes.append(f"ep not published, tp {tp}: plain tensor parallelism (experts split over the tp GPUs)")
        return Layout(tp, tp, 1, 1)
    if ep is None:
        ep = default_ep(experts, case.hardware)
        notes.append(f"ep not published: {ep} (largest divisor of the {experts} experts in one NVLink domain)")
    if ep % tp:
        raise RooflineError(f"ep {ep} is not a multiple of tp {tp}")
    notes.append(f"DP attention {ep // tp} x tp {tp}, EP {ep}")
    return Layout(ep, tp, ep, ep // tp)


def _attention_dp_over_tp(tp: int, ep: int | None, notes: list[str]) -> Layout:
    """TensorRT-LLM with `enable_attention_dp` (the row's notes say so): each of the tp_size ranks is an
    attention data-parallel rank (attention tp 1) and the experts run expert-parallel over the same
    ranks, whole experts per GPU (`--ep` = tp; an ep below tp would split experts as well, not modelled)."""
    if ep is not None and ep != tp:
        raise RooflineError(f"attention DP over tp {tp} with ep {ep}: only ep = tp (whole experts per GPU) is modelled")
    if ep is None:
        notes.append(f"ep not published: {tp}, the attention-DP ranks (whole experts per GPU)")
    notes.append(f"attention DP {tp} (enable_attention_dp), EP {tp}")
    return Layout(tp, 1, tp, tp)


def runtime_kv_dtype(case: Case, profile: str, notes: list[str]) -> str | None:
    """The row's KV format; empty: TensorRT-LLM's pairing with the weight format (rl.estimate's
    default), or for vLLM / SGLang their `kv_cache_dtype auto`: the model's activation dtype."""
    if case.kv_dtype is not None:
        return case.kv_dtype.value
    if profile in ("vllm", "sglang"):
        notes.append("kv_dtype not published: bf16 (kv_cache_dtype auto)")
        return DType.BF16.value
    return None


def _ep_library(case: Case, notes: list[str]) -> str | None:
    """The all-to-all library the row's notes name (DeepEP), or None: the runtime's (or the estimate's) default."""
    notes_text = case.notes.lower()
    library = next((lib for marker, lib in EP_LIBRARIES.items() if marker in notes_text), None)
    if library is not None:
        notes.append(f"{library} all-to-all (notes)")
    return library


@dataclass(frozen=True)
class Run:
    """What every estimate of one row shares."""

    case: Case
    profile: str
    layout: Layout
    kv_dtype: str | None
    comm_library: str | None

    @classmethod
    def of(cls, case: Case, notes: list[str]) -> Run:
        if not case.model:
            raise RooflineError(f"scenario {case.scenario} needs a model id; the row has none")
        profile = runtime_profile(case)
        if profile is None:
            raise RooflineError(unknown_runtime(case))
        workload = catalog_workload(case.model)
        return cls(case, profile, layout(case, workload, notes), runtime_kv_dtype(case, profile, notes),
                   _ep_library(case, notes))  # fmt: skip

    def _options(self, batch: int, isl: int, osl: int) -> dict[str, Any]:
        c = self.case
        options: dict[str, Any] = {
            **self.layout.kwargs(), "batch": batch, "isl": isl, "osl": osl, "kv_dtype": self.kv_dtype,
            "weight_dtype": c.weight_dtype.value if c.weight_dtype else None, "runtime": self.profile,
        }  # fmt: skip
        return options

    def estimate(self, batch: int, isl: int, osl: int, notes: list[str], max_num_tokens: int | None = None) -> Estimate:
        from roofline.api.estimates import estimate

        extra: dict[str, Any] = {}
        if self.comm_library is not None:
            extra["comm_library"] = self.comm_library
        if max_num_tokens is not None:
            extra["max_num_tokens"] = max_num_tokens
        result = estimate(self.case.model, self.case.hardware, ignore_memory=True, **self._options(batch, isl, osl),
                          **extra)  # fmt: skip
        if not result.fits:
            notes.append(f"does not fit by the memory model ({result.does_not_fit_message()}); timed anyway")
        return result

    def memory(self, batch: int, isl: int, osl: int) -> MemoryReport:
        from roofline.api.estimates import memory

        return memory(self.case.model, self.case.hardware, **self._options(batch, isl, osl))

    def holds(self, batch: int, isl: int, osl: int) -> bool:
        """The batch fits memory and its KV fits the runtime's KV capacity (its memory fraction)."""
        report = self.memory(batch, isl, osl)
        return report.fits and batch <= report.memory.max_batch

    def per_unit(self, per_gpu: float) -> float:
        """A per-GPU figure of the deployment as the row publishes it: for its num_gpus GPUs."""
        return per_gpu * self.case.num_gpus


def single_stream(case: Case) -> tuple[float, str]:
    """Output tokens/s of one user: osl / (TTFT + (osl - 1) x TPOT), batch 1 on tp GPUs."""
    assert case.isl is not None and case.osl is not None
    notes: list[str] = []
    run = Run.of(case, notes)
    if run.layout.gpus != case.num_gpus:
        raise RooflineError(f"single_stream on {case.num_gpus} GPUs with tp {run.layout.tp}: one replica expected")
    if case.weight_dtype is DType.INT4:
        notes.append(f"int4 weight-only at {DType.INT4.bytes_per_element * 8:g} bits per weight (dtypes.py: group "
                     "128); a group-32 checkpoint with bf16 scale and zero stores 5")  # fmt: skip
    e = run.estimate(1, case.isl, case.osl, notes)
    seconds = e.ttft_s + (case.osl - 1) * e.tpot_s
    return case.osl / seconds, "; ".join(dict.fromkeys(notes))


def disagg_prefill(case: Case) -> tuple[float, str]:
    """Prompt tokens/s of a prefill worker: batches of `load` tokens per GPU (whole prompts)."""
    assert case.isl is not None
    notes: list[str] = []
    run = Run.of(case, notes)
    tokens_per_gpu = _prefill_tokens(case, run.profile, notes)
    prompts_per_rank = max(1, tokens_per_gpu // case.isl)
    batch = prompts_per_rank * run.layout.attn_dp
    notes.append(f"{prompts_per_rank} prompt(s) of {case.isl} tokens per GPU per batch")
    e = run.estimate(batch, case.isl, 1, notes, max_num_tokens=max(prompts_per_rank * case.isl, case.isl))
    per_gpu = batch * case.isl / e.ttft_batch_s / run.layout.gpus
    return run.per_unit(per_gpu), "; ".join(dict.fromkeys(notes))


def _prefill_tokens(case: Case, profile: str, notes: list[str]) -> int:
    if isinstance(case.load_value, float):
        return int(case.load_value)
    tokens = load_engine(profile).max_num_tokens
    notes.append(f"tokens per GPU per batch not published: {tokens} ({profile} max batched tokens)")
    return tokens


def disagg_decode(case: Case) -> tuple[float, str]:
    """Output tokens/s of a decode worker: `load` sequences per GPU (empty: the largest batch the
    runtime's KV capacity holds), at mean context isl + osl / 2."""
    assert case.isl is not None
    notes: list[str] = []
    run = Run.of(case, notes)
    osl = case.osl or 1
    if case.osl is None:
        notes.append("osl not published: 1 (context = isl)")
    per_rank = int(case.load_value) if isinstance(case.load_value, float) else _fitting_batch(run, case.isl, osl, notes)
    batch = per_rank * run.layout.attn_dp
    e = run.estimate(batch, case.isl, osl, notes)
    per_gpu = batch / e.tpot_s / run.layout.gpus
    return run.per_unit(per_gpu), "; ".join(dict.fromkeys(notes))


def _fitting_batch(run: Run, isl: int, osl: int, notes: list[str]) -> int:
    """Sequences per attention rank: the most whose full isl + osl KV fits the runtime's KV capacity
    (its memory fraction of what weights and activations leave; bisection on the memory model). The
    runtime's cap on running sequences is not applied: the file's notes say the batch was sized to
    fill memory, which means raising that cap."""
    ranks = run.layout.attn_dp
    first = run.memory(ranks, isl, osl)
    if not run.holds(ranks, isl, osl):
        raise RooflineError(f"one sequence per GPU does not fit: {first.does_not_fit_message()}")
    low, high = 1, max(1, first.memory.max_batch // ranks) + 1  # holds(low); high: the bound at batch 1 per rank
    while high - low > 1:
        middle = (low + high) // 2
        if run.holds(middle * ranks, isl, osl):
            low = middle
        else:
            high = middle
    notes.append(f"running sequences per GPU not published: {low} (the most that fit the {run.profile} KV capacity)")
    return low
