"""One predictor per predicted scenario of the measurements schema, in the registry `PREDICTORS`.

A predictor takes a `Case` and returns the predicted value of every metric its run yields (a
serving run gives throughput, TTFT and TPOT at once; a GEMM its TFLOP/s, bandwidth and latency),
with a note stating each assumption it had to make. It raises RooflineError when it cannot predict
the row (unknown id, unsupported combination); the caller lists such rows as skipped with that
message. `not_predicted` says, before any model runs, why a row is outside what is predicted (a
scenario or metric without a predictor, a training row, a serving row of another engine).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from roofline.dtypes import DType, default_kv_dtype
from roofline.errors import RooflineError
from roofline.hardware_specs import Cluster, resolve_cluster
from roofline.ir import CollectiveKind, Precision
from roofline.simulator import ParallelPlan, Scenario
from roofline.simulator.collectives import CollectiveModel, group_topology, load_library
from roofline.simulator.serving import EngineConfig, Load, load_engine, serve
from roofline.validation.cases import PHASE_SCENARIOS, SCENARIO_METRICS, SERVING_SCENARIOS, TRAINING, Case
from roofline.validation.predict_runtimes import (
    catalog_workload,
    layout,
    runtime_kv_dtype,
    runtime_profile,
    unknown_runtime,
)
from roofline.workloads import Workload
from roofline.yaml_io import read_yaml, validate_into

SETUPS_FILE = Path(__file__).resolve().parent / "benchmark_setups.yaml"
# A simulation choice, not a benchmark fact: the throughput of a long queue of identical requests
# settles within the first few thousand, so larger datasets (128/128: 30000) are cut to this many.
SIMULATED_REQUESTS_CAP = 3000


class ScenarioSetup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str | None = Field(default=None, description="engine profile for this scenario; default: the file's")
    engine_overrides: dict[str, float | int | bool | str] = Field(default_factory=dict)
    runtime_overrides: dict[str, dict[str, float | int | bool | str]] = Field(
        default_factory=dict, description="runtime profile id -> engine fields of rows that name that runtime"
    )
    num_requests: dict[str, int] = Field(default_factory=dict, description="'isl/osl' -> requests in the run")
    default_num_requests: int = Field(gt=0)
    min_requests_per_client: int = Field(default=1, gt=0)

    def requests_for(self, isl: int, osl: int) -> int:
        return self.num_requests.get(f"{isl}/{osl}", self.default_num_requests)


class BenchmarkSetups(BaseModel):
    """How the published serving rows were run (benchmark_setups.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    engine: str
    max_throughput: ScenarioSetup
    request_rate: ScenarioSetup
    concurrency: ScenarioSetup


@lru_cache(maxsize=1)
def load_setups(path: Path = SETUPS_FILE) -> BenchmarkSetups:
    setups = validate_into(BenchmarkSetups, read_yaml(path), f"'{path}'")
    assert isinstance(setups, BenchmarkSetups)
    return setups


@dataclass(frozen=True)
class Options:
    max_requests: int | None = None  # cap on simulated requests per serving run (fast checks)
    setups: BenchmarkSetups = field(default_factory=load_setups)


@dataclass(frozen=True)
class Prediction:
    values: dict[str, float]  # metric -> predicted value
    note: str = ""


Predictor = Callable[[Case, Options], Prediction]


def _hardware(case: Case) -> str:
    if not case.hardware:
        raise RooflineError("the row has no hardware id")
    return case.hardware


# ---- serving scenarios ------------------------------------------------------------------------


def _precision(case: Case, workload: Workload, notes: list[str]) -> Precision:
    """As `roofline estimate` builds it: a given weight format brings its usual KV format."""
    if case.weight_dtype is None:
        notes.append(f"weight_dtype not published: {workload.weight_dtype.value} as the model ships")
        weight, experts = workload.weight_dtype, workload.expert_weight_dtype
        kv = case.kv_dtype or workload.kv_cache_dtype
    else:
        weight, experts = case.weight_dtype, None
        kv = case.kv_dtype or default_kv_dtype(weight)
    activation = DType.FP16 if weight is DType.FP16 else DType.BF16
    return Precision(weight=weight, activation=activation, kv_cache=kv, expert_weight=experts,
                     fp8_scaling=workload.fp8_scaling)  # fmt: skip


def _plan(case: Case, workload: Workload, notes: list[str]) -> ParallelPlan:
    """Empty tp/pp/ep: pp = 1, tp = the GPUs left over by pp, ep = 1 (TensorRT-LLM's default:
    experts split tensor-parallel)."""
    pp = case.pp or 1
    if case.pp is None:
        notes.append("pp not published: 1")
    tp = case.tp or max(1, case.num_gpus // pp)
    if case.tp is None:
        notes.append(f"tp not published: num_gpus / pp = {tp}")
    ep = case.ep or 1
    if case.ep is None and getattr(workload, "num_experts", None):
        notes.append("ep not published: 1 (experts tensor-parallel, TensorRT-LLM's default)")
    return ParallelPlan.for_gpus(tp, pp, case.num_gpus, ep)


def _num_requests(case: Case, setup: ScenarioSetup, options: Options, notes: list[str]) -> int:
    assert case.isl is not None and case.osl is not None
    published = setup.requests_for(case.isl, case.osl)
    if case.scenario == "concurrency" and isinstance(case.load_value, float):
        published = max(published, setup.min_requests_per_client * int(case.load_value))
    simulated = min(published, SIMULATED_REQUESTS_CAP)
    if simulated < published:
        notes.append(f"simulated {simulated} of the benchmark's {published} requests (steady state)")
    if options.max_requests is not None and options.max_requests < simulated:
        simulated = options.max_requests
        notes.append(f"capped at {simulated} requests (max_requests)")
    return simulated


def _engine(engine_id: str, overrides: dict[str, float | int | bool | str]) -> EngineConfig:
    unknown = sorted(set(overrides) - set(EngineConfig.model_fields))
    if unknown:
        raise RooflineError(f"'{SETUPS_FILE}': engine_overrides has unknown engine fields {', '.join(unknown)}")
    return load_engine(engine_id).model_copy(update=overrides)


def _profile(case: Case, options: Options) -> str:
    """The runtime profile of a serving row: an empty `runtime` replays the setup of the public tables
    (benchmark_setups.yaml `engine`); a named runtime, its own profile."""
    if not case.runtime.strip():
        return options.setups.engine
    return runtime_profile(case) or options.setups.engine


def _replay_engine(case: Case, setup: ScenarioSetup, options: Options, notes: list[str]) -> EngineConfig:
    """TensorRT-LLM rows: the engine as its published benchmarks ran it (benchmark_setups.yaml);
    rows of another runtime: that runtime's profile with its documented defaults, and the scenario's
    `runtime_overrides` for it (the 1.0 tables' trtllm-bench settings)."""
    profile = _profile(case, options)
    if profile == options.setups.engine:
        return _engine(setup.engine or options.setups.engine, setup.engine_overrides)
    overrides = setup.runtime_overrides.get(profile, {})
    notes.append(f"{profile} profile with {'the benchmark' if overrides else 'its'} defaults")
    return _engine(profile, overrides)


def _replayed_moe_kernels(case: Case, workload: Workload, plan: ParallelPlan, engine: EngineConfig,
                          options: Options, notes: list[str]) -> ParallelPlan:  # fmt: skip
    """TensorRT-LLM rows run the MoE kernels of the release that measured them (benchmark_setups.yaml
    engine_overrides: v0.17's MoE plugin for the max-throughput tables); rows of other runtimes keep
    the plan's default variant."""
    if _profile(case, options) != options.setups.engine:
        return plan
    if getattr(workload, "num_experts", None) and engine.moe_kernels != plan.moe_kernels:
        notes.append(f"MoE kernels: {engine.moe_kernels} (moe_kernels.yaml), the release that measured the row")
    return replace(plan, moe_kernels=engine.moe_kernels)


@dataclass(frozen=True)
class _Deployment:
    """Where a serving row runs: its plan on `gpus` GPUs; `per_unit` turns the deployment's
    throughput into the row's (num_gpus / gpus: a per-GPU or per-node figure)."""

    plan: ParallelPlan
    gpus: int
    precision: Precision

    def per_unit(self, case: Case) -> float:
        return case.num_gpus / self.gpus


def _deployment(case: Case, workload: Workload, options: Options, notes: list[str]) -> _Deployment:
    """TensorRT-LLM rows: the published group (tp x pp x ep on num_gpus). Other runtimes: an empty KV
    format is the runtime's `auto` (bf16); their MoE rows run DP attention over the EP group
    (predict_runtimes.layout), the figure normalised per num_gpus."""
    precision = _precision(case, workload, notes)
    profile = _profile(case, options)
    if profile == options.setups.engine:
        return _Deployment(_plan(case, workload, notes), case.num_gpus, precision)
    kv = runtime_kv_dtype(case, profile, notes)
    if kv is not None:
        precision = replace(precision, kv_cache=DType(kv))
    if not getattr(workload, "num_experts", None):
        return _Deployment(_plan(case, workload, notes), case.num_gpus, precision)
    shape = layout(case, workload, notes)
    plan = ParallelPlan(tp=shape.tp, ep=shape.ep, attn_dp=shape.attn_dp)
    if shape.gpus != case.num_gpus:
        notes.append(f"{shape.gpus}-GPU deployment, published per {case.num_gpus} GPU(s)")
    return _Deployment(plan, shape.gpus, precision)


def _serving(case: Case, options: Options) -> Prediction:
    if not case.model:
        raise RooflineError(f"scenario {case.scenario} needs a model id; the row has none")
    assert case.isl is not None and case.osl is not None
    notes: list[str] = []
    workload = catalog_workload(case.model)
    where = _deployment(case, workload, options, notes)
    cluster = resolve_cluster(hardware=_hardware(case), num_gpus=where.gpus)
    setup: ScenarioSetup = getattr(options.setups, case.scenario)
    engine = _replay_engine(case, setup, options, notes)
    value = math.inf if case.load_value is None else float(case.load_value)  # type: ignore[arg-type]
    load = Load(case.scenario, value, num_requests=_num_requests(case, setup, options, notes))
    # batch: serve() schedules its own; the TP all-reduce is the engine's (its profile's kernels.allreduce)
    plan = _replayed_moe_kernels(case, workload, where.plan, engine, options, notes)
    scenario = Scenario(1, case.isl, case.osl, where.precision, plan, comm_library=engine.kernels.allreduce)
    result = serve(workload, cluster, scenario, engine, load).to_dict()
    output_tokens_per_s = result["output_tokens_per_s"] * where.per_unit(case)
    values = {
        "output_tokens_per_s": output_tokens_per_s,
        # fixed-length requests: every output token comes with isl / osl prompt tokens
        "total_tokens_per_s": output_tokens_per_s * (case.isl + case.osl) / case.osl,
        "ttft_ms": result["ttft_s"] * 1e3,  # the measurements' metric unit
        "tpot_ms": result["tpot_s"] * 1e3,
    }
    return Prediction(values, "; ".join(dict.fromkeys(notes)))


# ---- kernel scenarios -------------------------------------------------------------------------


def _one_gpu(case: Case) -> Cluster:
    if case.num_gpus != 1:
        raise RooflineError(f"scenario {case.scenario} is measured on one GPU; the row has num_gpus {case.num_gpus}")
    return resolve_cluster(hardware=_hardware(case))


def _memory_copy(case: Case, options: Options) -> Prediction:
    """STREAM bandwidth: HBM spec bandwidth x the accelerator's achievable memory fraction (one
    figure for copy and triad: both stream at the same rate once arrays dwarf the caches)."""
    acc = _one_gpu(case).accelerator
    bytes_per_s = acc.memory.bandwidth * acc.efficiency.memory_bandwidth_fraction
    return Prediction({"gbps": bytes_per_s / 1e9})


# Rows whose notes name the library that ran them (kernels-aic.csv: TensorRT-LLM's own AllReduce);
# any other all-reduce row is nccl-tests, timed with NCCL.
ALLREDUCE_LIBRARIES = {"trt-llm allreduce": "trtllm"}


def _allreduce_library(case: Case) -> str:
    notes = case.notes.lower()
    return next((library for marker, library in ALLREDUCE_LIBRARIES.items() if marker in notes), "nccl")


def _allreduce(case: Case, options: Options) -> Prediction:
    """An all-reduce of `load` bytes over num_gpus GPUs of one node, timed by the collective model
    with the library that ran it (NCCL for nccl-tests rows, TensorRT-LLM's custom kernels where the
    row says so): nccl-tests' bus bandwidth, and the time itself (latency_us)."""
    assert isinstance(case.load_value, float)
    n = case.num_gpus
    if n < 2:
        raise RooflineError("an all-reduce needs at least 2 GPUs; the row has num_gpus 1")
    cluster = resolve_cluster(hardware=_hardware(case), num_gpus=n)
    library = _allreduce_library(case)
    model = CollectiveModel(load_library(library))
    cost = model.cost(CollectiveKind.ALL_REDUCE, case.load_value, group_topology(cluster, n))
    values = {"busbw_gbps": cost.busbw_bytes_per_s / 1e9, "latency_us": cost.time_s * 1e6}
    return Prediction(values, f"{library}: {cost.algorithm}/{cost.protocol}")


def _gemm(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_gemm import gemm

    return gemm(case, _one_gpu(case))


def _grouped_gemm(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_gemm import grouped_gemm

    return grouped_gemm(case, _one_gpu(case))


def _attention_kernel(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_attention import attention_kernel

    return attention_kernel(case, _one_gpu(case))


def _moe_experts(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_moe import moe_experts

    return moe_experts(case, _one_gpu(case))


def _single_stream(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_runtimes import single_stream

    value, note = single_stream(case)
    return Prediction({"output_tokens_per_s": value}, note)


def _disagg_prefill(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_runtimes import disagg_prefill

    value, note = disagg_prefill(case)
    return Prediction({"input_tokens_per_s": value}, note)


def _disagg_decode(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_runtimes import disagg_decode

    value, note = disagg_decode(case)
    return Prediction({"output_tokens_per_s": value}, note)


def _ep_all_to_all(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_ep import ep_all_to_all

    return ep_all_to_all(case)


def _training(case: Case, options: Options) -> Prediction:
    from roofline.validation.predict_training import training

    values, note = training(case)
    return Prediction(values, note)


PREDICTORS: dict[str, Predictor] = {
    "training": _training,
    "max_throughput": _serving,
    "request_rate": _serving,
    "concurrency": _serving,
    "single_stream": _single_stream,
    "disagg_prefill": _disagg_prefill,
    "disagg_decode": _disagg_decode,
    "gemm": _gemm,
    "memory_copy": _memory_copy,
    "allreduce": _allreduce,
    "grouped_gemm": _grouped_gemm,
    "attention_kernel": _attention_kernel,
    "moe_experts": _moe_experts,
    "ep_dispatch": _ep_all_to_all,
    "ep_combine": _ep_all_to_all,
}
assert set(PREDICTORS) == {*SCENARIO_METRICS, TRAINING}, "every scenario of the schema needs a predictor"


def _training_outside(case: Case) -> str | None:
    from roofline.validation.predict_training import TRAINING_METRICS, training_workload

    if case.metric not in TRAINING_METRICS:
        return f"metric '{case.metric}' is not predicted for training (predicted: {', '.join(TRAINING_METRICS)})"
    try:
        training_workload(case.model)
    except RooflineError as exc:
        return str(exc)
    return None


def not_predicted(case: Case) -> str | None:
    """Why the row is outside what the predictors cover (it is skipped with this reason), or None."""
    if case.scenario == TRAINING:
        return _training_outside(case)
    if case.scenario not in PREDICTORS:
        return f"scenario '{case.scenario}' is not predicted yet (predicted: {', '.join(PREDICTORS)})"
    metrics = SCENARIO_METRICS[case.scenario]
    if case.metric not in metrics:
        return f"metric '{case.metric}' is not predicted for scenario {case.scenario} (predicted: {', '.join(metrics)})"
    model_level = case.scenario in (*SERVING_SCENARIOS, *PHASE_SCENARIOS)
    if model_level and runtime_profile(case) is None:
        return unknown_runtime(case)
    if model_level and "/" in case.model:  # a Hugging Face id: predicted only where the catalog has it
        try:
            catalog_workload(case.model)
        except RooflineError as exc:
            return str(exc)
    return None


def metric_value(prediction: Prediction, case: Case) -> float:
    value = prediction.values.get(case.metric)
    if value is None or not math.isfinite(value) or value <= 0:
        raise RooflineError(f"the {case.scenario} model gave no usable {case.metric} ({value})")
    return value
