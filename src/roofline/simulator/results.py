"""Immutable results with plain-dict and DataFrame views. SI units; the unit is in every key."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from roofline.ir import Phase
from roofline.simulator import capacity as cap

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class OpRow:
    phase: Phase
    name: str
    op_class: str
    kind: str
    count: int
    flops: float
    bytes: float
    compute_s: float
    memory_s: float
    communication_s: float
    overhead_s: float
    time_s: float
    bound: str
    detail: str = ""

    @property
    def arithmetic_intensity_flops_per_byte(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0

    def plus(self, other: OpRow) -> OpRow:
        """The same operator from another stage or step: counts, work and times add up."""
        summed = ("count", "flops", "bytes", "compute_s", "memory_s", "communication_s", "overhead_s", "time_s")
        return replace(self, **{f: getattr(self, f) + getattr(other, f) for f in summed})


@dataclass(frozen=True)
class PhaseResult:
    """One step of a phase (prefill of the batch; one decode step at `context_tokens`)."""

    phase: Phase
    context_tokens: int
    time_s: float
    time_no_overlap_s: float
    flops: float
    bytes: float
    compute_s: float
    memory_s: float
    communication_s: float
    overhead_s: float
    ops: tuple[OpRow, ...]
    host_s: float = 0.0  # of time_s, what the runtime's host side adds (simulator/host.py)

    @property
    def device_s(self) -> float:
        """The phase's time without the host's share: the GPU's kernels alone."""
        return self.time_s - self.host_s

    @property
    def bound(self) -> str:
        """The resource that takes the most time summed over the phase's operators (`host` when
        the runtime's host side adds more than any of them)."""
        parts = {
            "compute": self.compute_s,
            "memory": self.memory_s,
            "communication": self.communication_s,
            "overhead": self.overhead_s,
            "host": self.host_s,
        }
        return max(parts, key=lambda k: parts[k])

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_s": self.time_s,
            "time_no_overlap_s": self.time_no_overlap_s,
            "context_tokens": self.context_tokens,
            "flops": self.flops,
            "bytes": self.bytes,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "communication_s": self.communication_s,
            "overhead_s": self.overhead_s,
            "host_s": self.host_s,
            "device_s": self.device_s,
            "bound": self.bound,
        }


@dataclass(frozen=True)
class MemoryResult:
    """Memory on the most loaded GPU (one pipeline stage's share)."""

    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    reserve_bytes: float
    capacity_bytes: float
    kv_cache_bytes_per_token: float  # whole model, one replica, no window caps
    kv_capacity_tokens: int  # tokens of KV the replica holds once weights, reserve, activations are in
    max_batch: int  # sequences of isl + osl tokens that fit in that KV capacity
    max_context_tokens: int  # tokens per sequence at this batch, at most the model's window
    context_window_tokens: int | None = None  # the model's max_position_embeddings

    @property
    def total_bytes(self) -> float:
        return cap.used_bytes(self.weights_bytes, self.kv_cache_bytes, self.activation_bytes, self.reserve_bytes)

    @property
    def fits(self) -> bool:
        return bool(cap.fits(self.total_bytes, self.capacity_bytes))

    @property
    def free_bytes(self) -> float:
        """What is left for the KV cache: capacity - reserve - weights - activations (capacity.py)."""
        return cap.free_bytes(self.capacity_bytes, self.reserve_bytes, self.weights_bytes, self.activation_bytes)

    @property
    def margin_bytes(self) -> float:
        return self.capacity_bytes - self.total_bytes

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(total_bytes=self.total_bytes, fits=self.fits, margin_bytes=self.margin_bytes)
        return data


@dataclass(frozen=True)
class EstimateResult:
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
    activation_dtype: str
    kv_cache_dtype: str
    ideal: bool
    ttft_s: float  # mean over the batch's requests, all arriving at once (first come, first served)
    ttft_batch_s: float  # prefill of the whole batch: the last request's first token
    tpot_s: float
    ttft_batch_no_overlap_s: float
    tpot_no_overlap_s: float
    prefill: PhaseResult
    decode: PhaseResult
    memory: MemoryResult
    runtime: str | None = None  # the runtime profile whose host side is in the times; None: the kernels alone

    @property
    def e2e_s(self) -> float:
        """Mean end-to-end latency of a request: its first token, then osl - 1 decode steps."""
        return self.ttft_s + (self.osl - 1) * self.tpot_s

    @property
    def e2e_batch_s(self) -> float:
        """The whole batch from its arrival to its last token."""
        return self.ttft_batch_s + (self.osl - 1) * self.tpot_s

    @property
    def output_tokens_per_s(self) -> float:
        """All replicas: batch x osl tokens per replica over the batch's end-to-end latency."""
        return self.dp * self.batch * self.osl / self.e2e_batch_s

    @property
    def decode_tokens_per_s(self) -> float:
        """Generation rate during decode, all replicas (batch / TPOT per replica)."""
        return self.dp * self.batch / self.tpot_s

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.dp * self.batch * self.isl / self.ttft_batch_s

    def to_dict(self, with_ops: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "hardware": self.hardware,
            "system": self.system,
            "num_gpus": self.num_gpus,
            "parallel": {
                "tp": self.tp,
                "pp": self.pp,
                "dp": self.dp,
                "ep": self.ep,
                "attn_dp": self.attn_dp,
                "cp": self.cp,
            },
            "batch": self.batch,
            "isl": self.isl,
            "osl": self.osl,
            "precision": {
                "weight": self.weight_dtype,
                "activation": self.activation_dtype,
                "kv_cache": self.kv_cache_dtype,
            },
            "ideal": self.ideal,
            "ttft_s": self.ttft_s,
            "ttft_batch_s": self.ttft_batch_s,
            "tpot_s": self.tpot_s,
            "e2e_s": self.e2e_s,
            "e2e_batch_s": self.e2e_batch_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_per_gpu": self.output_tokens_per_s / self.num_gpus,
            "decode_tokens_per_s": self.decode_tokens_per_s,
            "decode_tokens_per_s_per_gpu": self.decode_tokens_per_s / self.num_gpus,
            "prefill_tokens_per_s": self.prefill_tokens_per_s,
            "bounds": {
                "headline": "per operator max((compute^p + memory^p)^(1/p), communication) + kernel overhead",
                "ttft_batch_no_overlap_s": self.ttft_batch_no_overlap_s,
                "tpot_no_overlap_s": self.tpot_no_overlap_s,
            },
            "prefill": self.prefill.to_dict(),
            "decode": self.decode.to_dict(),
            "memory": self.memory.to_dict(),
            "kv_cache_bytes": self.memory.kv_cache_bytes,
            "weights_bytes": self.memory.weights_bytes,
        }
        if with_ops:
            data["ops"] = [op_row_dict(row) for row in (*self.prefill.ops, *self.decode.ops)]
        return data

    def ops_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([op_row_dict(row) for row in (*self.prefill.ops, *self.decode.ops)])


def op_row_dict(row: OpRow) -> dict[str, Any]:
    data = asdict(row)
    data["phase"] = row.phase.value
    data["arithmetic_intensity_flops_per_byte"] = row.arithmetic_intensity_flops_per_byte
    return data
