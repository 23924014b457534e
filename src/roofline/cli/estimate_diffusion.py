"""`roofline estimate` for diffusion kinds: parse the diffusion options, run the estimator, report.
`estimate_command` dispatches here on the workload's kind before the LLM path."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from roofline.cli.common import Output, OutputFormat
from roofline.dtypes import DType, parse_dtype
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster, resolve_cluster
from roofline.ir import Precision
from roofline.reports import tables
from roofline.reports.assumptions import diffusion_inputs
from roofline.reports.formats import flatten, to_csv, to_json
from roofline.reports.xlsx_views import write_diffusion
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.diffusion import DitScenario, estimate_dit
from roofline.simulator.diffusion_lm import DlmScenario, estimate_dlm
from roofline.simulator.diffusion_runtime import DiffusionRuntime
from roofline.workloads.base import Workload
from roofline.workloads.diffusion_dit import DiffusionTransformer, Request
from roofline.workloads.diffusion_lm import DiffusionLM
from roofline.workloads.dit_presets import parse_size, preset_request

DEFAULT_ISL = 1024  # estimate's --isl default: for a diffusion LM the prompt length
OP_KEYS = ("step_ops", "once_ops")  # the operator rows of a diffusion estimate's dict
ATTENTION_KERNELS = ("fa2", "fa3")


@dataclass(frozen=True)
class DiffusionOptions:
    resolution: str | None = None
    video: str | None = None
    steps: int | None = None
    cfg: bool | None = None
    cfg_parallel: bool = False
    gen_len: int | None = None
    block_len: int | None = None
    cache: str | None = None
    compare_ar: str | None = None
    sp: int | None = None  # GPUs splitting the tokens; None: no sequence parallelism
    ring: int | None = None  # ring-attention degree inside sp
    preset: str | None = None
    attention_kernel: str | None = None
    compiled: bool | None = None
    weight_dtype: str | None = None  # a language-model option too, so not in given()

    @property
    def runtime(self) -> DiffusionRuntime:
        if self.attention_kernel is not None and self.attention_kernel not in ATTENTION_KERNELS:
            raise RooflineError(f"--attention-kernel must be one of {', '.join(ATTENTION_KERNELS)}, "
                                f"got {self.attention_kernel!r}")  # fmt: skip
        return DiffusionRuntime(self.attention_kernel, bool(self.compiled))

    def given(self) -> list[str]:
        """The diffusion-only options given (--sp is not one: language models take it too)."""
        names = {"resolution": "--resolution", "video": "--video", "steps": "--steps", "cfg": "--cfg/--no-cfg",
                 "gen_len": "--gen-len", "block_len": "--block-len", "cache": "--cache",
                 "compare_ar": "--compare-ar", "ring": "--ring", "preset": "--preset",
                 "attention_kernel": "--attention-kernel", "compiled": "--compile/--eager"}  # fmt: skip
        listed = [flag for attr, flag in names.items() if getattr(self, attr) is not None]
        return listed + (["--cfg-parallel"] if self.cfg_parallel else [])


def is_diffusion(workload: Workload) -> bool:
    return isinstance(workload, DiffusionTransformer | DiffusionLM)


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


def run_dit(dit: DiffusionTransformer, o: DiffusionOptions, hardware: str | None, system: str | None,
            gpus: int | None, batch: int, ideal: bool) -> tuple[dict[str, Any], Cluster]:  # fmt: skip
    _at_least_one(batch=batch, gpus=gpus, steps=o.steps, sp=o.sp, ring=o.ring)
    llm_only = [flag for flag, value in (("--gen-len", o.gen_len), ("--block-len", o.block_len), ("--cache", o.cache),
                                         ("--compare-ar", o.compare_ar)) if value is not None]  # fmt: skip
    if llm_only:
        raise RooflineError(f"{', '.join(llm_only)} apply to diffusion language models, not to {dit.id}")
    cfg = dit.cfg_default if o.cfg is None else o.cfg
    cfg_parallel_gpus = 2 if o.cfg_parallel else 1
    sp, ring = o.sp or 1, o.ring or 1
    steps = dit.default_steps if o.steps is None else o.steps
    scenario = DitScenario(_dit_request(dit, o, batch), steps, cfg, sp, o.cfg_parallel,
                           Precision(weight=_weight_dtype(o, dit.weight_dtype)), ring, o.runtime)  # fmt: skip
    cluster = resolve_cluster(hardware=hardware, system=system,
                              num_gpus=sp * cfg_parallel_gpus if gpus is None else gpus)  # fmt: skip
    data = estimate_dit(dit, cluster, scenario, ideal=ideal).to_dict()
    ring_text = f" (ring {ring})" if ring > 1 else ""
    data["title"] = (f"{dit.id} on {cluster.num_gpus} x {cluster.accelerator.id}, sp={sp}{ring_text}"
                     f"{' cfg-parallel' if o.cfg_parallel else ''}, {'CFG' if cfg else 'no CFG'}")  # fmt: skip
    return data, cluster


def run_dlm(lm: DiffusionLM, o: DiffusionOptions, hardware: str | None, system: str | None, tp: int, isl: int,
            batch: int, ideal: bool, gpus: int | None = None) -> tuple[dict[str, Any], Cluster]:  # fmt: skip
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
    cluster = resolve_cluster(hardware=hardware, system=system, num_gpus=tp)
    result = estimate_dlm(lm, cluster, scenario, ideal=ideal)
    if o.compare_ar:
        from roofline.workloads import get_autoregressive

        ar = estimate(get_autoregressive(o.compare_ar), cluster, Scenario(batch, isl, gen, plan=ParallelPlan(tp=tp)),
                      ideal=ideal)  # fmt: skip
        ar_data = {
            "model": ar.model,
            "latency_s": ar.e2e_latency_s,
            "tokens_per_s": batch * gen / ar.e2e_latency_s,
            "runs_on": "serving-engine kernels",
        }  # the LLM estimator, not eager PyTorch
        result = replace(result, ar=ar_data)
    data = result.to_dict()
    data["title"] = f"{lm.id} on {tp} x {cluster.accelerator.id}, cache {scenario.cache}"
    return data, cluster


def run_diffusion_data(workload: Workload, o: DiffusionOptions, hardware: str | None, system: str | None,
                       gpus: int | None, batch: int, tp: int, isl: int, ideal: bool = False
                       ) -> tuple[dict[str, Any], Cluster]:  # fmt: skip
    """The estimate's dict (with its operator rows) and the cluster it ran on. A DiT takes no --tp
    (it splits with --sp) and no --isl (its text is its encoders' tokens)."""
    if isinstance(workload, DiffusionTransformer):
        if tp != 1:
            raise RooflineError(f"{workload.id}: a DiT splits over GPUs with --sp (sequence parallelism), not --tp")
        if isl != DEFAULT_ISL:
            raise RooflineError(f"--isl is a prompt length; {workload.id}'s text is its encoders' "
                                f"{workload.text_tokens} tokens")  # fmt: skip
        return run_dit(workload, o, hardware, system, gpus, batch, ideal)
    if isinstance(workload, DiffusionLM):
        return run_dlm(workload, o, hardware, system, tp, isl, batch, ideal, gpus)
    raise RooflineError(f"{workload.id}: no diffusion estimator for kind {workload.kind}")  # pragma: no cover


def run_diffusion(workload: Workload, o: DiffusionOptions, hardware: str | None, system: str | None,
                  gpus: int | None, batch: int, ideal: bool, ops: bool, out: Output, tp: int = 1,
                  isl: int = 1024) -> None:  # fmt: skip
    data, cluster = run_diffusion_data(workload, o, hardware, system, gpus, batch, tp, isl, ideal)
    if not ops:
        for key in OP_KEYS:
            data.pop(key, None)
    if out.fmt is OutputFormat.json:
        out.text(to_json({k: v for k, v in data.items() if k != "title"}))
    elif out.fmt is OutputFormat.csv:
        rows = [row for key in OP_KEYS for row in data.get(key, [])]
        scalars = {k: v for k, v in data.items() if k != "title" and not isinstance(v, list)}
        out.text(to_csv(rows or [flatten(scalars)]))
    elif out.fmt is OutputFormat.xlsx:
        out.workbook(lambda path: write_diffusion(path, data, diffusion_inputs(data, cluster, ideal)))
    else:
        out.table(tables.diffusion_view(data))
