"""The capacity rule, written once: what one GPU holds, what is left for the KV cache, and whether
a configuration fits.

    reserve   = --reserve when given, else the accelerator's runtime_reserve (CUDA context,
                library workspaces, allocator slack)
    free      = capacity - reserve - weights - activations     (per GPU, the most loaded stage)
    KV tokens = floor(free x the engine's KV fraction / KV bytes per token) x replicas
                (0 when nothing is free; unbounded when a token costs no KV)
    used      = weights + KV cache + activations + reserve
    fits      = used <= capacity

Who uses it: `estimate`, `memory`, `report` and `plot` (simulator/memory.py: memory_result,
kv_capacity), `serve` and its disaggregated mode (simulator/serving/service.py: kv_capacity_tokens),
`sweep` and `plan` (simulator/fast.py: HardwareArrays, FastModel.memory; `sweep --exact` through
memory.py), `validate` (through estimate and serve), the diffusion estimates (simulator/diffusion.py
for DiT image/video models, simulator/diffusion_lm.py for diffusion LMs) and the assumptions rows of
the workbook and the HTML report (reports/assumptions.py).

The arithmetic takes Python floats and numpy arrays alike (plain operators only: `// 1` for the
floor, comparisons multiplied in for the cases, never `max()`, `int()` or `if` on a value), so the
vectorised fast path and the scalar estimator call the same functions; numpy itself is not imported,
which keeps `estimate` free of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from roofline.hardware_specs.schema import Accelerator

UNBOUNDED_KV_TOKENS = float(1 << 40)  # a model whose tokens cost no KV (e.g. windows capped to nothing)

Bytes = TypeVar("Bytes", float, "NDArray[np.float64]")


def reserve_bytes(accelerator: Accelerator, requested_bytes: float | None = None) -> float:
    """The runtime's own memory per GPU: `requested_bytes` (--reserve) when given, else the
    accelerator's runtime_reserve."""
    return accelerator.runtime_reserve if requested_bytes is None else requested_bytes


def free_bytes(capacity: Bytes, reserve: Bytes, weights: Bytes, activations: Bytes) -> Bytes:
    """What one GPU has left for the KV cache: capacity - reserve - weights - activations (may be
    negative: the weights and activations alone do not fit)."""
    return capacity - reserve - weights - activations


def kv_tokens(free: Bytes, kv_memory_fraction: float | Bytes, bytes_per_token: float | Bytes,
              replicas: int | Bytes = 1) -> Bytes:  # fmt: skip
    """KV tokens the replicas hold, as whole numbers in floats: floor(free x fraction / bytes per
    token) per replica, x replicas; 0 when nothing is free, UNBOUNDED_KV_TOKENS when a token costs
    nothing. Floor is `// 1` (float or array alike; int() for these positive values); the cases are
    chosen by multiplying with the comparisons, so no branch depends on the type."""
    costly, free_token = bytes_per_token > 0, bytes_per_token <= 0
    per_replica = (free * kv_memory_fraction / (bytes_per_token + free_token)) // 1  # denominator 1 when free
    held = per_replica * replicas * costly + UNBOUNDED_KV_TOKENS * free_token
    return held * (free > 0) + 0.0  # + 0.0: no -0.0 where nothing is free


def kv_tokens_int(free: float, kv_memory_fraction: float, bytes_per_token: float, replicas: int = 1) -> int:
    """kv_tokens for one configuration, as an int."""
    return int(kv_tokens(free, kv_memory_fraction, bytes_per_token, replicas))


def used_bytes(weights: Bytes, kv_cache: Bytes, activations: Bytes, reserve: Bytes) -> Bytes:
    """Memory one GPU needs: weights + KV cache + activations + reserve."""
    return weights + kv_cache + activations + reserve


def fits(used: Bytes, capacity: Bytes) -> bool | NDArray[np.bool_]:
    """Whether `used` bytes (used_bytes) fit in `capacity`: a bool, or a bool array."""
    return used <= capacity


@dataclass(frozen=True)
class KvCapacity:
    """The KV cache one replica can hold: what is left on the most loaded GPU after the weights, the
    runtime reserve and the activations of the largest step (free_bytes), times the engine's KV share."""

    free_bytes: float  # per GPU, before the KV share
    kv_memory_fraction: float
    bytes_per_token: float  # per GPU, averaged over a sequence of `length` tokens (windows capped)
    replicas: int  # attention-DP replicas, each holding its own sequences

    @property
    def has_room(self) -> bool:
        """False when the weights, reserve and activations alone fill the GPU."""
        return self.free_bytes > 0

    @property
    def tokens(self) -> int:
        return kv_tokens_int(self.free_bytes, self.kv_memory_fraction, self.bytes_per_token, self.replicas)
