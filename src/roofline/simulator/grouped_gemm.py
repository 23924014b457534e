"""Grouped-GEMM (MoE expert) efficiency: G expert GEMMs of m rows each in one launch.

A grouped GEMM runs CTA tiles of (rows of ONE expert, padded to the family's tile_m) x tile_n over
all groups, in waves over the SMs; there is no split-K. So

    compute_s = tile math of every wave / (peak x compute_fraction)
    tile math = waves x SMs x tile_m x tile_n x 2 (k + tile_overhead_k),   waves = ceil(tiles / SMs)
    time_s    = p-norm(compute_s, memory_s) + launch overhead + latency_s + resident experts x expert_setup_s
    (p: the family's overlap_exponent where fitted: a warp-specialized kernel streams the next
    tile's weights while it multiplies the current one, so compute and memory overlap better than
    the accelerator's default p)
    memory_s  = bytes / (HBM bandwidth x memory_fraction)

`m` of the op's MatmulShape is already the padded rows per group (the op builder pads each
expert's rows to tile_m; workloads/moe_kernels.py), `batch` the groups. The fractions are per kernel
family, architecture and format (`simulator/data/grouped_gemm.yaml`), fitted from kernel tables
(`fitted_on` lists the rows; `validation/fit_grouped.py` is the fit). An architecture without an
entry transfers from the nearest one (Rubin -> Blackwell, H800/GH200 are Hopper); one with none
(Ampere, CDNA), or a family with no table at all (TensorRT-LLM v0.17's MoE plugin, vLLM's Triton
MoE), is priced as a prior by the dense GEMM curve of the format (its fraction, the K-loop share
of each tile and its launch latency: cost.RooflineCostModel.grouped_prior) and the accelerator's
memory fraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from roofline.workloads.moe_kernels import family as kernel_family
from roofline.yaml_io import read_yaml, validate_into

DATA_PATH = Path(__file__).parent / "data" / "grouped_gemm.yaml"
TRANSFER = {"rubin": "blackwell"}  # architecture without a table -> the one whose curve it takes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormatEfficiency(_Strict):
    compute_fraction: float = Field(gt=0, le=1)
    memory_fraction: float = Field(gt=0, le=1)
    tile_overhead_k: float = Field(default=0.0, ge=0, description="per CTA tile: prologue + epilogue in K steps")
    latency_us: float = Field(default=0.0, ge=0, description="per launch: fixed latency beyond the launch overhead")
    expert_setup_us: float = Field(default=0.0, ge=0, description="per launch and expert held on the GPU (empty too)")
    overlap_exponent: float | None = Field(default=None, ge=1, description="compute/memory p-norm; None: the GPU's")
    fitted_on: list[str] = Field(default_factory=list)
    source: str


class GroupedGemmData(_Strict):
    source: str
    # family -> architecture -> format key (bf16, fp8, fp8_block, fp4, w4a16_mxfp4) -> efficiency
    families: dict[str, dict[str, dict[str, FormatEfficiency]]]


@lru_cache(maxsize=1)
def load_grouped_gemm() -> GroupedGemmData:
    item = validate_into(GroupedGemmData, read_yaml(DATA_PATH), f"'{DATA_PATH}'")
    assert isinstance(item, GroupedGemmData)
    return item


@dataclass(frozen=True, slots=True)
class GroupedKernel:
    """One family's grouped GEMM on one architecture and format. None fractions: no table (use the
    dense matmul fraction and the accelerator's memory fraction)."""

    tile_m: int
    tile_n: tuple[int, ...]
    compute_fraction: float | None
    memory_fraction: float | None
    note: str
    tile_overhead_k: float = 0.0  # each CTA tile also pays this many K steps (pipeline fill, epilogue)
    latency_s: float = 0.0  # each launch: fixed latency (setup of the groups, tail) beyond the launch overhead
    overlap_exponent: float | None = None  # compute/memory p-norm of this kernel; None: the accelerator's
    expert_setup_s: float = 0.0  # each launch, per expert on the GPU (empty ones included)


def architecture_key(architecture: str) -> str:
    """'Hopper (sm_90)' -> 'hopper'."""
    word = architecture.strip().split()[0].lower() if architecture.strip() else ""
    return TRANSFER.get(word, word)


def split_kind(grouped: str) -> tuple[str, str | None]:
    """MatmulShape.grouped is 'family' or 'family:format' (a format finer than the op's dtype, e.g.
    fp8_block)."""
    name, _, fmt = grouped.partition(":")
    return name, fmt or None


@lru_cache(maxsize=256)
def grouped_kernel(grouped: str, architecture: str, dtype_key: str) -> GroupedKernel:
    name, fmt = split_kind(grouped)
    tiles = kernel_family(name)
    arch = architecture_key(architecture)
    table = load_grouped_gemm().families.get(name, {})
    formats = table.get(arch, {})
    key = fmt or dtype_key
    entry = formats.get(key) or formats.get(dtype_key)
    if entry is None:
        return GroupedKernel(tiles.tile_m, tiles.tile_n, None, None,
                             f"{name}: no {key} table on {arch or 'this architecture'}; dense fractions")  # fmt: skip
    return GroupedKernel(tiles.tile_m, tiles.tile_n, entry.compute_fraction, entry.memory_fraction,
                         f"{name} {arch} {key}: {entry.source}", entry.tile_overhead_k,
                         entry.latency_us * 1e-6, entry.overlap_exponent, entry.expert_setup_us * 1e-6)  # fmt: skip


def tile_flops(m: Any, n: Any, k: Any, batch: Any, sm_count: Any, tile_m: int, tile_n: tuple[int, ...],
               overhead_k: float = 0.0) -> Any:  # fmt: skip
    """The math a grouped GEMM runs, padding included: every wave of CTA tiles, full, with the
    column tile that needs the least.

    `m` is the padded rows per group, so batch x m rows form ceil(batch m / tile_m) row tiles; with
    ceil(n / tile_n) column tiles they run in ceil(tiles / SMs) waves of SMs x tile_m x tile_n x 2k
    FLOP; each tile also pays `overhead_k` K steps (its prologue and epilogue: a GEMM with a short
    K spends a larger share of its time there). Python ints, or numpy integer arrays over
    configurations (element-wise)."""
    row_tiles = -(-(batch * m) // tile_m)
    best: Any = None
    for tn in tile_n:
        waves = -(-(row_tiles * -(-n // tn)) // sm_count)
        work = 2.0 * (k + overhead_k) * waves * sm_count * tile_m * tn
        best = work if best is None else (min(best, work) if isinstance(work, float) else _minimum(best, work))
    return best


def _minimum(a: Any, b: Any) -> Any:
    import numpy

    return numpy.minimum(a, b)
