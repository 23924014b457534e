"""The runtime as data: a serving engine (TensorRT-LLM, vLLM, SGLang) or a plain PyTorch loop (eager,
CUDA graphs, Hugging Face transformers). KV memory fraction, block size, batch and token limits, the
host costs of a step (scheduler, Python dispatch per op, graph launch) and the kernels it runs.
Profiles in `simulator/data/engines/<id>.yaml` (or a YAML path); any knob can be overridden."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from roofline.errors import RooflineError
from roofline.units import Seconds
from roofline.yaml_io import FittedOn, read_yaml, validate_into

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "engines"
DEFAULT_ENGINE = "trtllm"


Launch = Literal["eager", "cuda_graph"]


class FrameworkCalls(BaseModel):
    """What an eager step does on the host for one instance of an operator: Python-level framework
    calls (views and slices included) and the kernels they launch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calls: float = Field(ge=0)
    kernels: float = Field(ge=0)
    bytes_factor: float = Field(
        default=1.0, ge=1.0, description="device bytes of the unfused eager kernels over the fused operator's"
    )


class HostCosts(BaseModel):
    """Host (CPU) time of a step, at the reference CPU (`reference_cpu`; hardware_specs/data/host_cpus).

    eager: every framework call of the step is dispatched from Python, `dispatch_per_op` each, while
    the GPU runs what was queued before it (simulator/host.py); cuda_graph: one graph launch per
    step. Serving engines capture decode in graphs and put their scheduling in `step_overhead`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decode_launch: Launch = "cuda_graph"
    prefill_launch: Launch = "cuda_graph"
    dispatch_per_call: Seconds = Field(default=0.0, description="eager: host time per Python framework call")
    launch_per_kernel: Seconds = Field(default=0.0, description="eager: host time to launch one kernel")
    graph_launch: Seconds = Field(default=0.0, description="cuda_graph: host time to launch a step's graph")
    overlaps_device: bool = Field(default=True, description="the GPU runs queued kernels while the host dispatches")
    calls_per_op: dict[str, FrameworkCalls] = Field(
        default_factory=dict, description="eager: framework calls per operator instance, by operator name, then kind"
    )
    default_calls: FrameworkCalls = Field(default=FrameworkCalls(calls=1, kernels=1))
    cuda_graph_batch_sizes: list[int] = Field(default_factory=list, description="decode batches captured as graphs")
    reference_cpu: str | None = Field(
        default="xeon-8480c", description="host CPU the costs hold for; None: the host the profile was measured on"
    )
    source: str = ""

    def calls_of(self, name: str, kind: str) -> FrameworkCalls:
        """Framework calls an eager step makes for one instance of an operator."""
        table = self.calls_per_op
        return table.get(name, table.get(kind, self.default_calls))

    def dispatch_s(self, name: str, kind: str) -> float:
        """Eager host time of one instance of an operator."""
        c = self.calls_of(name, kind)
        return c.calls * self.dispatch_per_call + c.kernels * self.launch_per_kernel


class KernelChoice(BaseModel):
    """Which implementation the runtime launches for an operator kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attention: str = Field(default="fmha", description="attention kernel family (FA3 / FlashInfer / TRT-LLM FMHA)")
    allreduce: str = Field(default="nccl", description="comm library of the TP all-reduce (simulator/data/comm)")
    ep: str = Field(default="nccl", description="comm library of the EP dispatch / combine")
    gemm: str = Field(default="cublas", description="dense GEMM library (descriptive)")


class DeviceLimits(BaseModel):
    """Batch and token limits an engine picks by the GPU it runs on, where they differ from the
    profile's own (vLLM's defaults depend on the device's memory and name). Applies to a GPU with
    less memory than `below_memory_gib`, or whose accelerator id contains one of `name_contains`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    below_memory_gib: float | None = Field(default=None, gt=0)
    name_contains: list[str] = Field(default_factory=list)
    max_batch: int | None = Field(default=None, ge=1)
    max_num_tokens: int | None = Field(default=None, ge=1)
    source: str

    def applies(self, accelerator_id: str, memory_bytes: float) -> bool:
        small = self.below_memory_gib is not None and memory_bytes < self.below_memory_gib * 2**30
        return small or any(name in accelerator_id.lower() for name in self.name_contains)


class EngineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    kv_memory_fraction: float = Field(gt=0, le=1, description="of the memory left after weights, reserve, activations")
    kv_block_tokens: int = Field(ge=1, description="KV cache block (page) size in tokens")
    max_batch: int = Field(ge=1, description="sequences in flight per replica")
    max_num_tokens: int = Field(ge=1, description="tokens per engine step (decode tokens + prefill chunk)")
    limits: Literal["fixed", "trtllm-bench"] = Field(
        default="fixed", description="fixed: max_batch / max_num_tokens as given; trtllm-bench: sized from isl/osl"
    )
    reserve_full_sequence: bool = Field(description="admit a request only when KV for isl + osl is free")
    step_overhead: Seconds = Field(description="host time per engine step")
    per_sequence_overhead: Seconds = Field(description="host time per sequence in a step")
    scheduler_overlap: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="share of the scheduler host time (step + per-sequence overhead) that runs while the GPU runs "
                    "the step (an overlap scheduler prepares step n+1 and finishes step n-1 during step n); "
                    "0: host and GPU take turns",
    )  # fmt: skip
    request_overhead: Seconds = Field(
        default=0.0, description="front end per request (HTTP / gRPC, tokenise, detokenise): adds to TTFT and E2E"
    )
    moe_kernels: str = Field(default="trtllm", description="MoE kernel variant the engine launches (moe_kernels.yaml)")
    vocab_parallel: bool = Field(
        default=True, description="embedding and LM head split over the TP GPUs; False: each GPU holds them whole"
    )
    lm_head_quantized: bool = Field(
        default=False, description="a weight-only quantization of the model covers the LM head too"
    )
    device_limits: list[DeviceLimits] = Field(
        default_factory=list, description="max_batch / max_num_tokens the engine picks on some GPUs (first match)"
    )
    host: HostCosts = Field(default_factory=HostCosts)
    kernels: KernelChoice = Field(default_factory=KernelChoice)
    serving: bool = Field(default=True, description="a serving engine (continuous batching); False: a generate loop")
    aliases: list[str] = Field(default_factory=list, description="other names a validation file may use")
    version: str = Field(default="", description="the engine version the defaults describe")
    source: str
    fitted_on: FittedOn = Field(default_factory=list, description="measurement rows constants were fitted on")

    def scheduler_s(self, sequences: Any) -> Any:
        """Host time of one step at the reference CPU beyond launching kernels: scheduling, input
        preparation and sampling bookkeeping (`step_overhead` + `per_sequence_overhead` each).
        `sequences`: a number, or a numpy array of them (the sweep's fast path)."""
        return self.step_overhead + sequences * self.per_sequence_overhead

    def overlapped_s(self, device_s: Any, host_s: Any) -> Any:
        """A step's wall time from its device time and its scheduler host time: the `scheduler_overlap`
        share of the host time runs under the GPU step and shows only where it is the longer, the rest
        adds. Numbers or numpy arrays."""
        hidden = self.scheduler_overlap
        if hidden == 0.0:
            return device_s + host_s
        return np.maximum(device_s, hidden * host_s) + (1.0 - hidden) * host_s

    @property
    def eager(self) -> bool:
        """Whether a phase is launched op by op from Python: its host dispatch interleaves with the
        kernels (simulator/host.eager_step_s), which the vectorised fast path does not model."""
        return "eager" in (self.host.decode_launch, self.host.prefill_launch)

    def graph_launch_s(self, prefill: bool) -> float:
        """Host time to launch one step's CUDA graph where that phase replays one (0 otherwise),
        on the reference CPU; simulator/host.step_with_host adds it to every such step."""
        launch = self.host.prefill_launch if prefill else self.host.decode_launch
        return self.host.graph_launch if launch == "cuda_graph" else 0.0

    def with_host_s(self, device_s: Any, sequences: Any) -> Any:
        """`overlapped_s` with the scheduler time of a step of `sequences` sequences (reference CPU)."""
        return self.overlapped_s(device_s, self.scheduler_s(sequences))

    def on_device(self, accelerator_id: str, memory_bytes: float) -> Self:
        """The profile with the limits it picks on this GPU (the first `device_limits` entry that
        applies); a profile without one, or a GPU none applies to, keeps its own."""
        rule = next((r for r in self.device_limits if r.applies(accelerator_id, memory_bytes)), None)
        if rule is None:
            return self
        update = {"max_batch": rule.max_batch, "max_num_tokens": rule.max_num_tokens}
        return self.model_copy(update={k: v for k, v in update.items() if v is not None})

    def on_host(self, speed_ratio: float) -> Self:
        """The profile on a host `speed_ratio` times as fast as its reference CPU: host costs divide."""
        if speed_ratio == 1.0:
            return self
        h = self.host
        host = h.model_copy(update={"dispatch_per_call": h.dispatch_per_call / speed_ratio,
                                    "launch_per_kernel": h.launch_per_kernel / speed_ratio,
                                    "graph_launch": h.graph_launch / speed_ratio})  # fmt: skip
        return self.model_copy(update={"host": host, "step_overhead": self.step_overhead / speed_ratio,
                                       "per_sequence_overhead": self.per_sequence_overhead / speed_ratio})  # fmt: skip


def engine_ids() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Other names of the packaged profiles (gpt-fast -> torch-cuda-graph)."""
    out: dict[str, str] = {}
    for engine_id in engine_ids():
        for alias in _load_path(DATA_DIR / f"{engine_id}.yaml").aliases:
            out[alias] = engine_id
    return out


def runtime_id(name: str) -> str | None:
    """The packaged profile a runtime name means (an id or an alias), None when unknown."""
    if name in engine_ids():
        return name
    return _aliases().get(name)


@lru_cache(maxsize=16)
def _load_path(path: Path) -> EngineConfig:
    item = validate_into(EngineConfig, read_yaml(path), f"'{path}'")
    assert isinstance(item, EngineConfig)
    return item


def load_engine(engine_id: str = DEFAULT_ENGINE) -> EngineConfig:
    """A runtime profile by id, alias or YAML path (a calibrated profile, a user's own)."""
    if engine_id.endswith((".yaml", ".yml")) or "/" in engine_id:
        path = Path(engine_id).expanduser()
        if not path.is_file():
            raise RooflineError(f"runtime profile '{engine_id}' is not a file; give an id ({', '.join(engine_ids())}) "
                                "or a YAML path")  # fmt: skip
        return _load_path(path.resolve())
    known = runtime_id(engine_id)
    if known is None:
        raise RooflineError(f"unknown runtime '{engine_id}'; known: {', '.join(engine_ids())}")
    return _load_path(DATA_DIR / f"{known}.yaml")
