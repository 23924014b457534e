"""LaunchConfig: the settings a launch command sets, from a runtime profile's defaults overridden by
the configuration an estimate or a plan costed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from roofline.deploy.spec import hf_repo, resolve_runtime
from roofline.errors import RooflineError

if TYPE_CHECKING:
    from roofline.simulator.serving.engine_config import EngineConfig


@dataclass(frozen=True)
class LaunchConfig:
    """One replica's settings. `max_seqs` is the replica's concurrent sequences (attention-DP ranks
    split it); `dp` replicas each run the same command. `kv_cache_dtype` and `weight_quantization`
    are roofline format names (None: the engine's default / the checkpoint as shipped);
    `memory_fraction` and `cuda_graph_batch_sizes` None leave the engine's defaults."""

    model_id: str
    max_seqs: int
    max_batched_tokens: int
    isl: int
    osl: int
    tp: int = 1
    pp: int = 1
    ep: int = 1
    attn_dp: int = 1
    dp: int = 1
    memory_fraction: float | None = None
    kv_cache_dtype: str | None = None
    weight_quantization: str | None = None
    cuda_graph_batch_sizes: tuple[int, ...] | None = None
    chunked_prefill: bool = True
    kv_block_tokens: int | None = None
    hf_repo: str | None = None
    cp: int = 1  # context parallelism and MTP drafts: costed, not rendered (a note says so)
    mtp: int = 0

    def __post_init__(self) -> None:
        for name in ("max_seqs", "max_batched_tokens", "isl", "osl", "tp", "pp", "ep", "attn_dp", "dp", "cp"):
            if getattr(self, name) < 1:
                raise RooflineError(f"launch: {name} must be at least 1, got {getattr(self, name)}")
        if self.memory_fraction is not None and not 0 < self.memory_fraction <= 1:
            raise RooflineError(f"launch: memory_fraction must be in (0, 1], got {self.memory_fraction:g}")

    @property
    def model(self) -> str:
        """What the command loads: the Hugging Face repository, else the roofline id."""
        return self.hf_repo or self.model_id

    @property
    def max_model_len(self) -> int:
        return self.isl + self.osl

    @property
    def tp_x_attn_dp(self) -> int:
        """GPUs of one pipeline stage: tensor-parallel GPUs of every attention-DP rank."""
        return self.tp * self.attn_dp

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp * self.attn_dp

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_id, "hf_repo": self.hf_repo, "tp": self.tp, "pp": self.pp, "ep": self.ep,
            "attn_dp": self.attn_dp, "dp": self.dp, "max_seqs": self.max_seqs,
            "max_batched_tokens": self.max_batched_tokens, "memory_fraction": self.memory_fraction,
            "kv_cache_dtype": self.kv_cache_dtype, "weight_quantization": self.weight_quantization,
            "cuda_graph_batch_sizes": list(self.cuda_graph_batch_sizes) if self.cuda_graph_batch_sizes else None,
            "max_model_len": self.max_model_len, "chunked_prefill": self.chunked_prefill,
            "kv_block_tokens": self.kv_block_tokens, "cp": self.cp, "mtp": self.mtp,
        }  # fmt: skip


def runtime_profile(runtime: str) -> EngineConfig | None:
    """The runtime's profile (simulator/data/engines), None for a runtime without one."""
    from roofline.simulator.serving.engine_config import engine_ids, load_engine

    runtime = resolve_runtime(runtime)
    return load_engine(runtime) if runtime in engine_ids() else None


def graph_sizes(profile: EngineConfig | None, max_seqs_per_rank: int) -> tuple[int, ...] | None:
    """The profile's captured decode batch sizes up to the batch one rank runs, and that batch
    itself (so the costed decode step replays a graph); None when the profile names none."""
    host = getattr(profile, "host", None)  # HostCosts: the runtime profiles of issue 18
    sizes = list(getattr(host, "cuda_graph_batch_sizes", None) or [])
    if not sizes:
        return None
    kept = sorted({s for s in sizes if s <= max_seqs_per_rank} | {max_seqs_per_rank})
    return tuple(kept)


def launch_config(
    model_id: str, runtime: str, *, batch: int | None, isl: int, osl: int, tp: int = 1, pp: int = 1,
    ep: int = 1, attn_dp: int = 1, dp: int = 1, max_num_tokens: int | None = None,
    kv_cache_dtype: str | None = None, weight_quantization: str | None = None, cp: int = 1, mtp: int = 0,
    device: tuple[str, float] | None = None,
) -> LaunchConfig:  # fmt: skip
    """Profile defaults (memory fraction, batch and token limits, KV block, CUDA-graph sizes)
    overridden by the costed values given (None: the profile's). `device` (accelerator id, memory
    bytes): the limits the runtime picks on that GPU (the profile's `device_limits`)."""
    profile = runtime_profile(runtime)
    if profile is not None and device is not None:
        profile = profile.on_device(*device)
    max_seqs = batch or (profile.max_batch if profile else 1)
    tokens = max_num_tokens or (profile.max_num_tokens if profile else isl)
    return LaunchConfig(
        model_id=model_id, hf_repo=hf_repo(model_id), tp=tp, pp=pp, ep=ep, attn_dp=attn_dp, dp=dp,
        max_seqs=max_seqs, max_batched_tokens=tokens, memory_fraction=profile.kv_memory_fraction if profile else None,
        isl=isl, osl=osl, kv_cache_dtype=kv_cache_dtype, weight_quantization=weight_quantization,
        cuda_graph_batch_sizes=graph_sizes(profile, -(-max_seqs // attn_dp)),
        kv_block_tokens=profile.kv_block_tokens if profile else None, cp=cp, mtp=mtp,
    )  # fmt: skip
