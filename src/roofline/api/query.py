"""From the API's parameters (the CLI's options, named alike) to the simulator's inputs: the
workload, the cluster and the scenario, with `--set` overrides applied and warnings collected
(the library never prints; the CLI shows them)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from roofline.dtypes import DType, default_kv_dtype, parse_dtype
from roofline.errors import RooflineError
from roofline.hardware_specs import Accelerator, Cluster, System, resolve_cluster
from roofline.ir import Precision
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS, DEFAULT_MTP_ACCEPTANCE, ParallelPlan, Scenario
from roofline.units import Dimension, parse_quantity
from roofline.workloads import Workload, get_autoregressive, get_workload

if TYPE_CHECKING:
    from roofline.simulator.serving.engine_config import EngineConfig

ModelArg = str | os.PathLike[str] | Workload
HardwareArg = str | os.PathLike[str] | Accelerator | None
SystemArg = str | os.PathLike[str] | System | None
Settings = str | Sequence[str]  # --set KEY=VALUE items (one item as a plain string)


def items(value: str | Sequence[str]) -> tuple[str, ...]:
    """A repeatable option's values: one string is one item, not its characters."""
    return (value,) if isinstance(value, str) else tuple(value)


def model_of(model: ModelArg, settings: Settings = (), autoregressive: bool = False) -> Workload:
    """A catalog id, a model YAML or config.json path, or a Workload; `model.`-keys of --set applied.
    `autoregressive`: the serving commands' refusal of diffusion kinds, with the command to use."""
    from roofline.overrides import parse_settings, replace_fields

    workload = (get_autoregressive if autoregressive else get_workload)(model)
    changes = parse_settings(items(settings)).model  # text, as in YAML: quantities need their units
    return replace_fields(workload, changes, si_numbers=False) if changes else workload


def cluster_of(hardware: HardwareArg, system: SystemArg, num_gpus: int, settings: Settings = ()) -> Cluster:
    """The cluster for `--hardware` / `--system` and the GPU count, with the accelerator's --set
    overrides applied (a what-if copy of the catalog entry) and the links' (scale_up.bandwidth_per_gpu)."""
    from roofline.hardware_specs.catalog import get_accelerator, get_system
    from roofline.overrides import apply_link_settings, parse_settings, replace_fields

    parsed = parse_settings(items(settings))
    changes = parsed.hardware  # text, as in YAML: quantities need their units
    if changes and hardware is not None:
        hardware = replace_fields(get_accelerator(hardware), changes, si_numbers=False)
    elif changes and system is not None:  # the system's own accelerator, changed
        hardware = replace_fields(get_accelerator(get_system(system).accelerator), changes, si_numbers=False)
    return apply_link_settings(resolve_cluster(hardware=hardware, system=system, num_gpus=num_gpus), parsed.links)


def reserve_bytes(text: str | float | None) -> float | None:
    """--reserve: '4 GiB' (a number is bytes in Python)."""
    if text is None:
        return None
    if isinstance(text, int | float):
        if not 0 <= text < float("inf"):
            raise RooflineError(f"--reserve must be a finite, non-negative number of bytes, got {text}")
        return float(text)
    try:
        return parse_quantity(text, Dimension.BYTES)
    except ValueError as exc:
        raise RooflineError(f"--reserve: {exc}") from None


def megatron_sp(sp: int | None, tp: int) -> bool:
    """`--sp N` for a language model: Megatron sequence parallelism spans the TP group, so N = tp."""
    if sp is None or sp == 1:
        return False
    if sp != tp:
        raise RooflineError(f"--sp {sp}: for a language model sequence parallelism runs over the tensor-parallel "
                            f"group, so --sp must equal --tp ({tp})")  # fmt: skip
    return True


@dataclass(frozen=True)
class LlmOptions:
    """The options of estimate / memory / serve / report / plot for an autoregressive model."""

    model: ModelArg
    hardware: HardwareArg = None
    system: SystemArg = None
    gpus: int | None = None
    tp: int = 1
    pp: int = 1
    ep: int = 1
    attn_dp: int = 1
    moe_imbalance: float = 1.0
    batch: int = 1
    isl: int = 1024
    osl: int = 128
    weight_dtype: str | None = None
    expert_dtype: str | None = None
    kv_dtype: str | None = None
    activation_dtype: str = "bf16"
    reserve: str | float | None = None
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS
    mtp: int = 0
    mtp_acceptance: float = DEFAULT_MTP_ACCEPTANCE
    comm_library: str | None = None  # None: the runtime's all-reduce library, else NCCL
    overlap_ep: bool = False
    cp: int = 1
    sp: int | None = None
    set: Settings = ()
    runtime: str | None = None  # a runtime profile id or YAML path: adds its host time; None: kernels alone


@dataclass(frozen=True)
class Query:
    workload: Workload
    cluster: Cluster
    scenario: Scenario
    warnings: tuple[str, ...] = ()


def precision_of(workload: Workload, o: LlmOptions) -> Precision:
    """Formats: as the checkpoint ships unless given; an explicit weight format brings its usual KV
    format (TensorRT-LLM FP8 builds: FP8 KV) and its expert format."""
    weight = parse_dtype(o.weight_dtype) if o.weight_dtype else workload.weight_dtype
    if o.expert_dtype:
        experts: DType | None = parse_dtype(o.expert_dtype)
    else:
        experts = None if o.weight_dtype else workload.expert_weight_dtype
    activation = parse_dtype(o.activation_dtype)
    if activation not in (DType.BF16, DType.FP16):
        raise RooflineError(f"--activation-dtype must be bf16 or fp16, got {activation.value}")
    if o.kv_dtype:
        kv = parse_dtype(o.kv_dtype)
    else:
        kv = default_kv_dtype(weight) if o.weight_dtype else workload.kv_cache_dtype
    return Precision(weight=weight, activation=activation, kv_cache=kv, expert_weight=experts,
                     fp8_scaling=workload.fp8_scaling)  # fmt: skip


def runtime_of(runtime: str | None) -> EngineConfig | None:
    """The runtime profile an option names (an id, an alias such as gpt-fast, or a YAML path)."""
    if runtime is None:
        return None
    from roofline.simulator.serving.engine_config import load_engine

    return load_engine(runtime)


def build_query(o: LlmOptions) -> Query:
    workload = model_of(o.model, o.set, autoregressive=True)
    plan = ParallelPlan.for_gpus(o.tp, o.pp, o.gpus, o.ep, o.attn_dp, o.moe_imbalance, o.cp)
    runtime = runtime_of(o.runtime)
    plan = plan.with_vocab_layout(runtime)  # gpt-fast keeps embedding and LM head whole on every GPU
    library = o.comm_library or (runtime.kernels.allreduce if runtime is not None else "nccl")
    scenario = Scenario(o.batch, o.isl, o.osl, precision_of(workload, o), plan, reserve_bytes(o.reserve),
                        o.max_num_tokens, o.mtp, o.mtp_acceptance, library, o.overlap_ep,
                        megatron_sp(o.sp, o.tp), runtime)  # fmt: skip
    warnings: list[str] = []
    limit = workload.max_position_embeddings
    if limit is not None and o.isl + o.osl > limit:
        warnings.append(f"isl + osl = {o.isl + o.osl} exceeds {workload.id}'s context window ({limit})")
    cluster = cluster_of(o.hardware, o.system, plan.num_gpus, o.set)
    warnings += weight_only_warnings(scenario.precision, cluster)
    return Query(workload, cluster, scenario, tuple(warnings))


def weight_only_warnings(precision: Precision, cluster: Cluster) -> list[str]:
    """A line for each weight format the accelerator has no tensor-core math for (FP4 on Hopper,
    FP8 on Ampere): its GEMMs run weight-only, dequantising to the fallback format."""
    acc = cluster.accelerator
    out = []
    for dtype in dict.fromkeys((precision.weight, precision.experts)):
        fallback = dtype.weight_only_fallback
        if acc.compute.peak_flops_per_s(dtype) is None and fallback is not None:
            out.append(f"{acc.id} has no {dtype.value} tensor cores: {dtype.value} weights run weight-only "
                       f"(dequantised to {fallback.value} in the GEMM; activations stay {precision.activation.value}, "
                       "no activation-quantise pass)")  # fmt: skip
    return out
