"""What a runtime launches for one routed-MoE layer, and how tokens spread over the experts.

Kernel variants and grouped-GEMM families are data (`simulator/data/moe_kernels.yaml`): which ops a
runtime runs (TensorRT-LLM's CUTLASS fused MoE, a plain `torch._grouped_mm` pair, vLLM's Triton
fused_moe, DeepGEMM), and the tile of rows each grouped GEMM pads one expert's rows to.

Routing spread (`spread`), an explicit parameter:

- `uniform`: each token picks top_k of E experts at random (the default of the estimator). An
  expert gets T k / E rows on average; E (1 - (1 - k/E)^T) experts get at least one.
- `even`: AIConfigurator's `balanced` routing: T k picks spread round-robin, min(E, T k) experts
  touched, each with T k / touched rows (floor or ceil).
- `power_law_<s>`: AIConfigurator's skewed routing: E per-expert loads drawn from a power law of
  exponent s on [1, 0.8 T] (T k > E) or [0.01, 2] (else), scaled to T k and rounded. Here the
  draws are the distribution's quantiles at (i + 1/2) / E, so the loads are deterministic.

Under expert parallelism the step waits for the busiest rank. With `uniform` it gets `imbalance`
times the mean rows, and as many experts as `imbalance` times the tokens would touch; with loads
listed (even, power law) the experts are dealt to the ranks by load, round-robin, and rank 0 (the
busiest: the largest expert of every stratum of ep) is timed, its rows scaled by `imbalance`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from roofline.errors import RooflineError
from roofline.yaml_io import read_yaml, validate_into

DATA_PATH = Path(__file__).parent.parent / "simulator" / "data" / "moe_kernels.yaml"  # read as a file: no import
DEFAULT_VARIANT = "trtllm"
DEFAULT_SPREAD = "uniform"
Role = Literal["topk", "sort", "permute", "up", "up_act", "activation", "down", "finalize"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KernelFamily(_Strict):
    tile_m: int = Field(gt=0, description="rows of one expert a CTA tile covers (each expert padded to it)")
    tile_n: tuple[int, ...] = Field(min_length=1, description="column tiles the kernel chooses from")
    source: str


class VariantOp(_Strict):
    op: Role
    launches: int = Field(default=1, ge=1)


class MoEVariant(_Strict):
    family: str
    ops: tuple[VariantOp, ...]
    gather_in_up: bool = False
    masked_decode: bool = False
    source: str

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(o.op for o in self.ops)


class MoEKernels(_Strict):
    families: dict[str, KernelFamily]
    variants: dict[str, MoEVariant]


@lru_cache(maxsize=1)
def load_moe_kernels() -> MoEKernels:
    item = validate_into(MoEKernels, read_yaml(DATA_PATH), f"'{DATA_PATH}'")
    assert isinstance(item, MoEKernels)
    for name, v in item.variants.items():
        if v.family not in item.families:
            raise RooflineError(f"'{DATA_PATH}': variant {name} names unknown family {v.family}")
    return item


def variant(name: str) -> MoEVariant:
    data = load_moe_kernels()
    if name not in data.variants:
        raise RooflineError(f"unknown MoE kernel variant '{name}'; known: {', '.join(sorted(data.variants))}")
    return data.variants[name]


def family(name: str) -> KernelFamily:
    return load_moe_kernels().families[name]


# ---- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RankLoad:
    """The routed work of the busiest EP rank in one MoE layer."""

    experts: float  # its experts with at least one row: their weights are read
    rows: float  # routed rows it computes
    padded_rows: float  # rows after padding each expert's rows to the kernel's tile
    max_rows: float  # the most rows one of its experts gets (a masked layout pads every expert to it)


def distinct_experts(tokens: float, num_experts: int, top_k: int) -> float:
    """Expected experts hit by `tokens` tokens routing uniformly to top_k of num_experts."""
    if tokens <= 0:
        return 0.0
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)


def parse_spread(spread: str) -> float | None:
    """The power-law exponent of `power_law_<s>`, None for uniform / even; raises on anything else."""
    if spread in ("uniform", "even"):
        return None
    if spread.startswith("power_law_"):
        try:
            exponent = float(spread.removeprefix("power_law_"))
        except ValueError:
            exponent = math.nan
        if exponent > 0 and exponent != 1.0:
            return exponent
    raise RooflineError(f"routing spread '{spread}': use uniform, even or power_law_<exponent> (> 0, not 1)")


def _power_law_quantile(u: float, exponent: float, low: float, high: float) -> float:
    a = 1.0 - exponent
    return ((high**a - low**a) * u + low**a) ** (1.0 / a)


def expert_loads(tokens: int, num_experts: int, top_k: int, spread: str) -> list[float]:
    """Rows per expert, largest first, summing to tokens x top_k (even and power-law spreads)."""
    picks = tokens * top_k
    exponent = parse_spread(spread)
    if exponent is None:  # even: round-robin
        touched = min(num_experts, picks)
        base, extra = divmod(picks, touched)
        return [float(base + 1)] * extra + [float(base)] * (touched - extra) + [0.0] * (num_experts - touched)
    low, high = _power_law_range(tokens, num_experts, top_k)
    draws = [_power_law_quantile((i + 0.5) / num_experts, exponent, low, high) for i in range(num_experts)]
    return sorted(_scaled_loads(draws, picks), reverse=True)


def _power_law_range(tokens: int, num_experts: int, top_k: int) -> tuple[float, float]:
    return (1.0, 0.8 * tokens) if tokens * top_k > num_experts else (0.01, 2.0)


def _scaled_loads(draws: list[float], picks: int) -> list[float]:
    """The draws scaled to `picks` rows and rounded, in the draws' order; as the generator does, the
    rounding error goes to the largest first (added) or is taken from the smallest (the largest
    when the smallest is empty)."""
    scale = picks / sum(draws)
    loads = [float(round(d * scale)) for d in draws]
    order = sorted(range(len(loads)), key=lambda i: (-loads[i], -draws[i]))  # ties: the larger draw first
    delta = picks - int(sum(loads))
    for i in range(abs(delta)):
        if delta > 0:
            loads[order[i % len(order)]] += 1.0
        else:
            j = order[-(i % len(order)) - 1]
            loads[j if loads[j] > 0 else max(range(len(loads)), key=loads.__getitem__)] -= 1.0
    return loads


# AIC's power-law routing under EP (aiconfigurator collector/helper.py, _generate_power_law_distribution):
# each expert's load is an independent draw, the experts are split into ep contiguous groups and the
# group with the largest sum is made rank 0, the one timed; AIC averages 5 routings. The expected
# busiest rank is taken over POWER_LAW_DRAWS seeded routings (deterministic). Only where T x K > E:
# below, every draw rounds to zero rows and the rounding fix-up places the picks; there AIC's table
# times the power-law busiest rank like the balanced one (power / balanced ~1 at T = 1 and 8 in
# every group that passes validation/aic_screen.py), so the strided deal below is kept.
POWER_LAW_DRAWS = 64
POWER_LAW_SEED = 17


@lru_cache(maxsize=512)
def power_law_busiest(tokens: int, num_experts: int, top_k: int, ep: int, exponent: float, imbalance: float,
                      tile_m: int) -> RankLoad:  # fmt: skip
    """Mean busiest-rank load over seeded power-law routings, ranks holding contiguous expert groups."""
    rng = random.Random(POWER_LAW_SEED)
    low, high = _power_law_range(tokens, num_experts, top_k)
    local = num_experts // ep
    sums = [0.0, 0.0, 0.0, 0.0]
    for _ in range(POWER_LAW_DRAWS):
        loads = _scaled_loads([_power_law_quantile(rng.random(), exponent, low, high) for _ in range(num_experts)],
                              tokens * top_k)  # fmt: skip
        groups = [loads[g * local : (g + 1) * local] for g in range(ep)]
        mine = [x * imbalance for x in max(groups, key=sum)]
        sums[0] += sum(1 for x in mine if x > 0)
        sums[1] += sum(mine)
        sums[2] += sum(_padded(x, tile_m) for x in mine)
        sums[3] += max(mine, default=0.0)
    return RankLoad(*(x / POWER_LAW_DRAWS for x in sums))


def _padded(rows: float, tile_m: int) -> float:
    return math.ceil(rows / tile_m - 1e-9) * tile_m if rows > 0 else 0.0


def _expected_padded(mean_rows: float, tile_m: int) -> float:
    """Expected rows of one expert after padding when its rows vary about `mean_rows` (random
    routing): a whole tile while it holds under half a tile, then its rows plus half a tile (the
    remainder past the last full tile is spread evenly). Continuous in the rows, unlike ceil."""
    if mean_rows <= 0:
        return 0.0
    return max(float(tile_m), mean_rows + tile_m / 2)


def busiest_rank(tokens: float, num_experts: int, top_k: int, ep: int, spread: str, imbalance: float,
                 tile_m: int) -> RankLoad:  # fmt: skip
    """The busiest of ep ranks, each holding num_experts / ep experts, when `tokens` tokens route."""
    local = num_experts / ep
    if spread == "uniform":
        experts = min(local, distinct_experts(tokens * imbalance, num_experts, top_k) / ep)
        rows = tokens * top_k / ep * imbalance
        per_expert = rows / experts if experts > 0 else 0.0
        return RankLoad(experts, rows, experts * _expected_padded(per_expert, tile_m), math.ceil(per_expert - 1e-9))
    exponent = parse_spread(spread)
    if exponent is not None and ep > 1 and num_experts % ep == 0 and tokens * top_k > num_experts:
        return power_law_busiest(max(1, round(tokens)), num_experts, top_k, ep, exponent, imbalance, tile_m)
    loads = expert_loads(max(1, round(tokens)), num_experts, top_k, spread)
    mine = [x * imbalance for x in loads[::ep]]  # rank 0: the largest expert of each stratum of ep
    return RankLoad(float(sum(1 for x in mine if x > 0)), sum(mine), sum(_padded(x, tile_m) for x in mine),
                    max(mine, default=0.0))  # fmt: skip
