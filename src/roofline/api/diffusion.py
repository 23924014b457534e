"""`rl.estimate_diffusion`: the time per image, video or sample of a diffusion model (DiT image /
video models, diffusion language models). `roofline estimate` dispatches here on the model's kind."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from roofline.api.diffusion_options import DEFAULT_ISL, DiffusionOptions
from roofline.api.query import HardwareArg, ModelArg, Settings, SystemArg, cluster_of, model_of
from roofline.dtypes import DType, parse_dtype
from roofline.errors import DoesNotFitError, RooflineError
from roofline.hardware_specs import Cluster
from roofline.ir import Precision
from roofline.result import Result, html_table
from roofline.simulator import ParallelPlan, Scenario
from roofline.simulator import estimate as run_estimate
from roofline.simulator.diffusion import DitResult, DitScenario, estimate_dit
from roofline.simulator.diffusion_lm import DlmResult, DlmScenario, estimate_dlm
from roofline.units import format_bytes, format_time
from roofline.workloads.diffusion_dit import DiffusionTransformer, Request
from roofline.workloads.diffusion_lm import DiffusionLM
from roofline.workloads.dit_presets import parse_size, preset_request

OP_KEYS = ("step_ops", "once_ops")  # the operator rows of a diffusion estimate's dict
GIB = 2**30


def _dit_request(dit: DiffusionTransformer, o: DiffusionOptions, batch: int) -> Request:
    given = [flag for flag, value in (("--resolution", o.resolution), ("--video", o.video), ("--preset", o.preset))
             if value]  # fmt: skip
    if len(given) > 1:
        raise RooflineError(f"give one of --resolution (image WxH), --video (WxHxF) or --preset, not "
                            f"{' and '.join(given)}")  # fmt: skip
    if o.preset:
        return preset_request(dit, o.preset, batch)
    if o.video:
        width, height, frames = parse_size(o.video, "--video", 3)
    elif o.resolution:
        (width, height), frames = parse_size(o.resolution, "--resolution", 2), dit.default_frames
    else:
        (width, height), frames = dit.default_resolution, dit.default_frames
    if frames > 1 and not dit.is_video:
        raise RooflineError(f"{dit.id} makes images: use --resolution WxH, not --video")
    return Request(width=width, height=height, frames=frames, batch=batch)


def _weight_dtype(o: DiffusionOptions, shipped: DType) -> DType:
    return parse_dtype(o.weight_dtype) if o.weight_dtype else shipped


def _at_least_one(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise RooflineError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


@dataclass(frozen=True)
class _Where:
    hardware: HardwareArg
    system: SystemArg
    settings: Settings


def _run_dit(dit: DiffusionTransformer, o: DiffusionOptions, where: _Where, gpus: int | None, batch: int,
             ideal: bool) -> tuple[DitResult, Cluster, str]:  # fmt: skip
    _at_least_one(batch=batch, gpus=gpus, steps=o.steps, sp=o.sp, ring=o.ring)
    llm_only = [flag for flag, value in (("--gen-len", o.gen_len), ("--block-len", o.block_len), ("--cache", o.cache),
                                         ("--compare-ar", o.compare_ar)) if value is not None]  # fmt: skip
    if llm_only:
        raise RooflineError(f"{', '.join(llm_only)} apply to diffusion language models, not to {dit.id}")
    cfg = dit.cfg_default if o.cfg is None else o.cfg
    sp, ring = o.sp or 1, o.ring or 1
    steps = dit.default_steps if o.steps is None else o.steps
    scenario = DitScenario(_dit_request(dit, o, batch), steps, cfg, sp, o.cfg_parallel,
                           Precision(weight=_weight_dtype(o, dit.weight_dtype)), ring, o.runtime)  # fmt: skip
    num_gpus = sp * (2 if o.cfg_parallel else 1) if gpus is None else gpus
    cluster = cluster_of(where.hardware, where.system, num_gpus, where.settings)
    result = estimate_dit(dit, cluster, scenario, ideal=ideal)
    ring_text = f" (ring {ring})" if ring > 1 else ""
    title = (f"{dit.id} on {cluster.num_gpus} x {cluster.accelerator.id}, sp={sp}{ring_text}"
             f"{' cfg-parallel' if o.cfg_parallel else ''}, {'CFG' if cfg else 'no CFG'}")  # fmt: skip
    return result, cluster, title


def _run_dlm(lm: DiffusionLM, o: DiffusionOptions, where: _Where, tp: int, isl: int, batch: int, ideal: bool,
             gpus: int | None) -> tuple[DlmResult, Cluster, str]:  # fmt: skip
    dit_only = [flag for flag, value in (("--resolution", o.resolution), ("--video", o.video), ("--cfg", o.cfg),
                                         ("--sp", o.sp), ("--ring", o.ring), ("--preset", o.preset))
                if value is not None]  # fmt: skip
    if dit_only or o.cfg_parallel:
        raise RooflineError(f"{', '.join(dit_only) or '--cfg-parallel'}: options of diffusion transformers, not of "
                            f"the diffusion language model {lm.id} (its GPUs: --tp)")  # fmt: skip
    _at_least_one(batch=batch, tp=tp, isl=isl, gen_len=o.gen_len, steps=o.steps, block_len=o.block_len)
    if gpus is not None and gpus != tp:
        raise RooflineError(f"{lm.id} runs on its --tp GPUs ({tp}); --gpus {gpus} does not apply (one request, no "
                            "replicas)")  # fmt: skip
    gen = lm.default_gen_len if o.gen_len is None else o.gen_len
    precision = Precision(weight=_weight_dtype(o, lm.weight_dtype), kv_cache=lm.kv_cache_dtype)
    steps = gen if o.steps is None else o.steps
    scenario = DlmScenario(isl, gen, steps, gen if o.block_len is None else o.block_len, o.cache or "none", batch,
                           tp, precision, o.runtime)  # fmt: skip
    cluster = cluster_of(where.hardware, where.system, tp, where.settings)
    result = estimate_dlm(lm, cluster, scenario, ideal=ideal)
    if o.compare_ar:
        ar = run_estimate(model_of(o.compare_ar, autoregressive=True), cluster,
                          Scenario(batch, isl, gen, plan=ParallelPlan(tp=tp)), ideal=ideal)  # fmt: skip
        ar_data = {"model": ar.model, "latency_s": ar.e2e_batch_s, "tokens_per_s": batch * gen / ar.e2e_batch_s,
                   "runs_on": "serving-engine kernels"}  # the LLM estimator, not eager PyTorch  # fmt: skip
        result = replace(result, ar=ar_data)
    return result, cluster, f"{lm.id} on {tp} x {cluster.accelerator.id}, cache {scenario.cache}"


_TIME_SUFFIXES = ("_s", "_per_s", "per_s_per_gpu", "per_hour_per_gpu", "speedup_ratio")


def _untimed(data: dict[str, Any]) -> dict[str, Any]:
    """The document without its times (a configuration that does not fit, timed only on request)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in OP_KEYS or key == "step_kinds":
            out[key] = []
        elif isinstance(value, dict) and key != "memory":
            out[key] = _untimed(value)
        else:
            out[key] = None if key.endswith(_TIME_SUFFIXES) and not isinstance(value, bool) else value
    return out


@dataclass(frozen=True, repr=False)
class DiffusionEstimate(Result):
    """One request of a diffusion model: `latency_s` (text encoders + denoising steps + VAE for a
    DiT; the sampling steps of a diffusion LM), memory per GPU, and the operator rows of each step
    kind. `detail` is the estimator's own result (DitResult or DlmResult)."""

    detail: DitResult | DlmResult
    cluster: Cluster
    title: str
    ideal: bool = False
    timed: bool = True  # False: it does not fit and its times were not asked for
    warnings: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "dit" if isinstance(self.detail, DitResult) else "diffusion_lm"

    @property
    def model(self) -> str:
        return self.detail.model

    @property
    def hardware(self) -> str:
        return self.detail.hardware

    @property
    def num_gpus(self) -> int:
        return self.detail.num_gpus

    @property
    def memory_bytes(self) -> float:
        return self.detail.memory_bytes

    @property
    def capacity_bytes(self) -> float:
        return self.detail.capacity_bytes

    @property
    def fits(self) -> bool:
        return self.detail.fits  # capacity.py's rule

    @property
    def hypothetical(self) -> bool:
        return self.timed and not self.fits

    @property
    def latency_s(self) -> float:
        if not self.timed:
            raise DoesNotFitError(f"does not fit: {self.model} needs {self.memory_bytes / GIB:,.1f} GiB per GPU, "
                                  f"{self.hardware} has {self.capacity_bytes / GIB:,.1f} GiB; its latency is "
                                  "computed only on request: pass ignore_memory=True (--ignore-memory)")  # fmt: skip
        return self.detail.latency_s

    def to_dict(self, ops: bool = True) -> dict[str, Any]:
        data = {**self.detail.to_dict(with_ops=ops), "fits": self.fits, "timed": self.timed,
                "hypothetical": self.hypothetical, "warnings": list(self.warnings)}  # fmt: skip
        return data if self.timed else _untimed(data)

    def records(self) -> list[dict[str, Any]]:
        data = self.to_dict()
        rows = [row for key in OP_KEYS for row in data.get(key, [])]
        return rows or super().records()

    def overview(self) -> list[tuple[str, Any]]:
        latency = format_time(self.detail.latency_s) if self.timed else "not timed: does not fit"
        return [("model", f"{self.model} ({self.kind})"), ("hardware", f"{self.num_gpus} x {self.hardware}"),
                ("latency" + (" (hypothetical)" if self.hypothetical else ""), latency),
                ("memory per GPU", format_bytes(self.memory_bytes, binary=True)),
                ("capacity", format_bytes(self.capacity_bytes, binary=True))]  # fmt: skip

    def _repr_html_(self) -> str:
        return html_table(self.title, self.overview())


def estimate_diffusion(
    model: ModelArg, hardware: HardwareArg = None, *, system: SystemArg = None, gpus: int | None = None,
    tp: int = 1, batch: int = 1, isl: int = DEFAULT_ISL, weight_dtype: str | None = None, sp: int | None = None,
    ring: int | None = None, preset: str | None = None, attention_kernel: str | None = None,
    compile: bool | None = None, ideal: bool = False, resolution: str | None = None, video: str | None = None,
    steps: int | None = None, cfg: bool | None = None, cfg_parallel: bool = False, gen_len: int | None = None,
    block_len: int | None = None, cache: str | None = None, compare_ar: str | None = None,
    ignore_memory: bool = False, set: Settings = (),
) -> DiffusionEstimate:  # fmt: skip
    """The time per image, video or sample of a diffusion model (`roofline estimate` for kinds dit
    and diffusion_lm). A DiT splits over GPUs with `sp` (and `ring`), a diffusion LM with `tp`."""
    workload = model_of(model, set)
    o = DiffusionOptions(resolution, video, steps, cfg, cfg_parallel, gen_len, block_len, cache, compare_ar, sp, ring,
                         preset, attention_kernel, compile, weight_dtype)  # fmt: skip
    where = _Where(hardware, system, set)
    if isinstance(workload, DiffusionTransformer):
        if tp != 1:
            raise RooflineError(f"{workload.id}: a DiT splits over GPUs with --sp (sequence parallelism), not --tp")
        if isl != DEFAULT_ISL:
            raise RooflineError(f"--isl is a prompt length; {workload.id}'s text is its encoders' "
                                f"{workload.text_tokens} tokens")  # fmt: skip
        detail: DitResult | DlmResult
        detail, cluster, title = _run_dit(workload, o, where, gpus, batch, ideal)
    elif isinstance(workload, DiffusionLM):
        detail, cluster, title = _run_dlm(workload, o, where, tp, isl, batch, ideal, gpus)
    else:
        raise RooflineError(f"{workload.id} is not a diffusion model (kind {workload.kind}); use estimate()")
    result = DiffusionEstimate(detail, cluster, title, ideal)
    return result if result.fits or ignore_memory else replace(result, timed=False)
