"""The estimator vectorised over configurations, for sweeps and capacity plans.

The full estimator (engine.py) builds and times every operator of every step: about 10 ms a
configuration. A capacity plan asks for 10^4-10^6 of them. Here the operators are built once per
*layout* (tp, ep, attention-DP, formats) and *step family* (phase, new tokens per sequence,
context), in three parts: all layers, the embedding, the LM head. Each operator's FLOPs, bytes,
collective message and GEMM shape are tabulated over u, the sequences one attention replica runs
in the step, on a geometric grid (2 points per octave) and interpolated linearly in between, so
what is linear in u (matmul FLOPs, weight, activation and KV bytes, TP messages) comes out exact;
when every quantity is linear the grid is just u = 1, 2. The MoE experts a step touches are
concave in u and come out within a few per cent.

Then, as numpy arrays over configurations (hardware, pipeline stages pp, batch B):

    op time   = (p-norm(FLOPs / (peak x fraction x wave utilisation), bytes / (bandwidth x fraction)) or comm
                 + kernels x kernel overhead) x count  -- cost.py's own functions: kernel_time_s,
                 wave_utilization, RooflineCostModel.flops_rate
    comm      = the collective model (collectives.py) tabulated on a message-size grid per hardware
                and group (4 points per octave), linear in between: alpha + beta x size per segment
    stages    = layers are split over pp stages; a stage of n layers costs n / L of the layer time
                (exact for uniform stacks; the few dense-FFN layers of some MoE models are averaged),
                the first adds the embedding, the last the LM head, all but the last the hand-off
    step      = max(sum of stages, micro-batches x slowest stage)     -- the engine's pipeline period
    TPOT      = the mean step over the decode contexts the estimator samples (engine.decode_contexts);
                the ops that grow with the context (ContextOps) are timed at each, the rest once
    TTFT      = the batch's prefill steps (plan.prefill_chunks) one after another, pipelined
    memory    = weights + KV x sequences per replica + the largest prefill step's activations on the
                most loaded stage, plus the runtime reserve, against capacity: the rule of capacity.py,
                the same functions memory.py calls
    engine    = optional host overheads of an engine profile: per step and per sequence in a step

Configurations are grouped by layout, formats and isl/osl; inside a group everything is numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.ir import (
    CollectiveKind,
    EpRouting,
    MatmulShape,
    Op,
    OpClass,
    OpKind,
    Phase,
    Placement,
    Precision,
    StepShape,
)
from roofline.simulator import capacity as capacity_rule
from roofline.simulator.collectives import CollectiveModel, GroupTopology, load_library
from roofline.simulator.comm import topology_for
from roofline.simulator.cost import RooflineCostModel, gemv_extra_bytes, kernel_time_s, wave_utilization
from roofline.simulator.engine import decode_contexts
from roofline.simulator.gemm_efficiency import is_activation_quantize, k_efficiency
from roofline.simulator.grouped_gemm import GroupedKernel, tile_flops
from roofline.simulator.plan import DEFAULT_MAX_NUM_TOKENS, ParallelPlan, stage_placements
from roofline.simulator.serving.engine_config import EngineConfig
from roofline.workloads.base import Workload
from roofline.workloads.quantize import with_activation_quantize

SIZE_STEPS_PER_OCTAVE = 4
SIZE_GRID_BYTES = 2.0 ** (np.arange(0, SIZE_STEPS_PER_OCTAVE * 44 + 1) / SIZE_STEPS_PER_OCTAVE)  # 1 B .. 16 TB
_PARTS = 3  # layers, embedding, LM head
_KIND_CODE = {OpKind.MATMUL: 0, OpKind.ATTENTION: 1, OpKind.ELEMENTWISE: 2, OpKind.COLLECTIVE: 3}
_KINDS = tuple(_KIND_CODE)  # code -> OpKind


@dataclass(frozen=True)
class Layout:
    """How one pipeline stage is split: tensor parallel, expert parallel, attention replicas; formats."""

    tp: int
    ep: int
    attn_dp: int
    precision: Precision
    vocab_parallel: bool = True  # the runtime splits embedding and LM head over tp (ParallelPlan's field)
    lm_head_quantized: bool = False

    def plan(self, pp: int = 1) -> ParallelPlan:
        return ParallelPlan(tp=self.tp, pp=pp, ep=self.ep, attn_dp=self.attn_dp, vocab_parallel=self.vocab_parallel,
                            lm_head_quantized=self.lm_head_quantized)  # fmt: skip


Q_FLOPS, Q_BYTES, Q_MESSAGE, Q_M, Q_N, Q_K, Q_GEMM_BATCH = range(7)


@dataclass(frozen=True)
class Sampled:
    """Per-instance operator quantities (ops, 7, points) at `grid` x `scale` sequences in the step."""

    grid: np.ndarray
    values: np.ndarray
    checked: int  # the largest grid value the operators were built at


@dataclass(frozen=True)
class OpTable:
    """One layout's operators for one step family. Most depend on u, the sequences one attention
    replica runs (`local`, built at u x attn_dp sequences); with attention-DP the routed-expert ops
    depend on s, the sequences of the whole step (`group`, built at s sequences)."""

    part: np.ndarray  # (ops,) 0 layers, 1 embedding, 2 LM head
    count: np.ndarray
    kernels: np.ndarray
    kind: np.ndarray  # _KIND_CODE
    dtypes: tuple[DType, ...]
    collectives: tuple[tuple[CollectiveKind, str, EpRouting | None] | None, ...]
    n: np.ndarray  # GEMM shape (0: not a GEMM)
    k: np.ndarray
    local: Sampled
    group: Sampled | None
    group_ops: np.ndarray  # bool (ops,)
    boundary_bytes_per_token: float  # pipeline hand-off per token of the step
    scalings: tuple[str | None, ...] = ()  # FP8 scaling mode of each op's GEMM (MatmulShape.scaling)
    quantize: np.ndarray | None = None  # bool (ops,): activation-quantise ops (free where the GEMM is weight-only)
    ops: tuple[Op, ...] = ()  # the ops at one sequence per replica (attention calls: timing by shape)
    grouped: tuple[str, ...] = ()  # per op: its grouped-GEMM family (MatmulShape.grouped), "" for the rest

    @property
    def matmuls(self) -> np.ndarray:
        return np.flatnonzero(self.n > 0)


def _parts(layout: Layout, layers: int) -> list[Placement]:
    whole = Placement(layer_start=0, layer_end=layers, has_embedding=False, has_lm_head=False, tp=layout.tp,
                      ep=layout.ep, attn_dp=layout.attn_dp, vocab_parallel=layout.vocab_parallel,
                      lm_head_quantized=layout.lm_head_quantized)  # fmt: skip
    return [
        whole,
        replace(whole, layer_end=0, has_embedding=True),
        replace(whole, layer_end=0, has_lm_head=True),
    ]


def _op_rows(workload: Workload, layout: Layout, step: StepShape) -> list[tuple[int, Op]]:
    parts = _parts(layout, workload.num_layers)
    act = layout.precision.activation
    return [(i, op) for i, p in enumerate(parts)
            for op in with_activation_quantize(workload.build_ops(step, layout.precision, p), act)]  # fmt: skip


def _quantities(rows: list[tuple[int, Op]]) -> np.ndarray:
    """(ops, 7): FLOPs, bytes, collective message, GEMM m, n, k, batch; per instance."""
    values = [(op.flops, op.bytes, op.collective.message_bytes if op.collective else 0.0,
               s.m if s else 0, s.n if s else 0, s.k if s else 0, s.batch if s else 0)
              for s, op in ((op.shape, op) for _, op in rows)]  # fmt: skip
    return np.array(values, dtype=float).reshape(len(rows), 7)


def _is_linear(values: dict[int, np.ndarray]) -> bool:
    """Every quantity on the line through x = 1 and x = 2 (checked at the other points)."""
    a, b = values[1], values[2]
    return all(np.allclose(a + (b - a) * (x - 1), q, rtol=1e-9, atol=1e-6) for x, q in values.items())


def _sample(workload: Workload, layout: Layout, shape: Callable[[int], StepShape], x_max: int,
            names: list[tuple[int, str]]) -> Sampled:  # fmt: skip
    """Quantities at x = 1, 2, 3, x_max; if all linear, the two-point grid, else 2 points per octave."""

    def at(x: int) -> np.ndarray:
        rows = _op_rows(workload, layout, shape(x))
        if [(i, op.name) for i, op in rows] != names:
            raise RooflineError(f"{workload.id}: the operator list changes with the batch; no fast path")
        return _quantities(rows)

    probe = sorted({1, 2, 3, max(x_max, 2)})
    values = {x: at(x) for x in probe}
    if _is_linear(values):
        grid = np.array([1, 2])
    else:
        points = max(2, math.ceil(math.log2(max(x_max, 2)) * 2) + 1)
        grid = np.unique(np.round(np.geomspace(1, max(x_max, 2), points)).astype(np.int64))
        values.update({int(x): at(int(x)) for x in grid if int(x) not in values})
    return Sampled(grid.astype(float), np.stack([values[int(x)] for x in grid], axis=2), max(probe))


def build_table(workload: Workload, layout: Layout, phase: Phase, new: int, context: int, u_max: int) -> OpTable:
    replicas = layout.attn_dp
    rows = _op_rows(workload, layout, StepShape(phase, replicas, new, context))
    names = [(i, op.name) for i, op in rows]
    local = _sample(workload, layout, lambda u: StepShape(phase, u * replicas, new, context), u_max, names)
    group, group_ops = None, np.zeros(len(rows), bool)
    if replicas > 1:  # ops that see the whole step's sequences: they differ between s = 1 and s = attn_dp
        one = _quantities(_op_rows(workload, layout, StepShape(phase, 1, new, context)))
        group_ops = ~np.isclose(one, local.values[:, :, 0], rtol=1e-12).all(axis=1)
        if group_ops.any():
            step = lambda s: StepShape(phase, s, new, context)  # noqa: E731
            group = _sample(workload, layout, step, u_max * replicas, names)
    ops = [op for _, op in rows]
    first = _quantities(rows)
    per_token = workload.stage_boundary_bytes(StepShape(phase, 1, new, context), layout.precision) / new
    return OpTable(
        part=np.array([i for i, _ in rows]), count=np.array([op.count for op in ops], float),
        kernels=np.array([op.kernels for op in ops], float), kind=np.array([_KIND_CODE[op.kind] for op in ops]),
        dtypes=tuple(op.dtype for op in ops),
        collectives=tuple((op.collective.kind, op.collective.group, op.collective.routing) if op.collective else None
                          for op in ops),
        n=first[:, Q_N], k=first[:, Q_K], local=local, group=group, group_ops=group_ops,
        boundary_bytes_per_token=per_token, scalings=tuple(op.shape.scaling if op.shape else None for op in ops),
        quantize=np.array([is_activation_quantize(op) for op in ops], bool), ops=tuple(ops),
        grouped=tuple(op.shape.grouped if op.shape else "" for op in ops),
    )  # fmt: skip


@dataclass(frozen=True)
class Piecewise:
    """Rows of quantities sampled on a grid of u, as intercept + slope x u per segment: linear in
    between, the last segment extrapolated. One segment (a linear table) needs no look-up."""

    grid: np.ndarray
    intercept: np.ndarray  # (rows, segments)
    slope: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, grid: np.ndarray) -> Piecewise:
        slope = np.diff(values, axis=1) / np.diff(grid)
        return cls(grid, values[:, :-1] - slope * grid[:-1], slope)

    def __call__(self, x: np.ndarray, segment: np.ndarray | None) -> np.ndarray:
        """(rows, configs)."""
        if segment is None:
            return self.intercept[:, :1] + self.slope[:, :1] * x[None]
        return self.intercept[:, segment] + self.slope[:, segment] * x[None]


def segment(grid: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    if len(grid) == 2:
        return None
    return np.clip(np.searchsorted(grid, x, side="right") - 1, 0, len(grid) - 2)


@dataclass(frozen=True)
class Rows:
    """One quantity of a subset of the ops: local rows as functions of u, group rows of s."""

    local: Piecewise
    group: Piecewise | None
    local_pos: np.ndarray
    group_pos: np.ndarray

    @classmethod
    def of(cls, table: OpTable, rows: np.ndarray, quantity: int) -> Rows:
        g = table.group_ops[rows]
        local = Piecewise.of(table.local.values[rows[~g], quantity], table.local.grid)
        if table.group is None or not g.any():
            return cls(local, None, np.flatnonzero(~g), np.flatnonzero(g))
        group = Piecewise.of(table.group.values[rows[g], quantity], table.group.grid)
        return cls(local, group, np.flatnonzero(~g), np.flatnonzero(g))

    def __call__(self, u: np.ndarray, s: np.ndarray, segments: tuple[np.ndarray | None, np.ndarray | None]
                 ) -> np.ndarray:  # fmt: skip
        if self.group is None:
            return self.local(u, segments[0])
        out = np.empty((len(self.local_pos) + len(self.group_pos), len(u)))
        out[self.local_pos] = self.local(u, segments[0])
        out[self.group_pos] = self.group(s, segments[1])
        return out


def comm_time(tables: np.ndarray, rows: np.ndarray, size_bytes: np.ndarray) -> np.ndarray:
    """Collective time from tables sampled on SIZE_GRID_BYTES: tables[rows] at size_bytes, linear."""
    size = np.maximum(size_bytes, 1.0)
    i = np.clip(np.floor(np.log2(size) * SIZE_STEPS_PER_OCTAVE).astype(np.int64), 0, len(SIZE_GRID_BYTES) - 2)
    lo, hi = SIZE_GRID_BYTES[i], SIZE_GRID_BYTES[i + 1]
    w = (size - lo) / (hi - lo)
    return tables[rows, i] * (1.0 - w) + tables[rows, i + 1] * w


@dataclass(frozen=True)
class HardwareArrays:
    """Per-accelerator numbers from the YAML, as arrays over the model's clusters."""

    memory_bytes_per_s: np.ndarray
    kernel_overhead_s: np.ndarray
    overlap_exponent: np.ndarray  # compute/memory p-norm (cost.OpCost.kernel_s)
    sm_count: np.ndarray
    tile_m: np.ndarray  # (hw, tiles), padded with the first tile
    tile_n: np.ndarray
    gemv_below_m: np.ndarray  # matmuls of fewer rows run as matrix-vector products (cost.gemv_rows)
    gemv_output_s: np.ndarray  # their time per output element
    capacity_bytes: np.ndarray
    reserve_bytes: np.ndarray
    domain_gpus: np.ndarray  # GPUs in one scale-up domain
    scale_out: np.ndarray  # bool: the system has a scale-out fabric

    @classmethod
    def of(cls, clusters: Sequence[Cluster]) -> HardwareArrays:
        accs = [c.accelerator for c in clusters]
        width = max(len(a.efficiency.matmul_tiles) for a in accs)
        tiles = [a.efficiency.matmul_tiles + [a.efficiency.matmul_tiles[0]] * width for a in accs]
        return cls(
            memory_bytes_per_s=np.array([a.memory.bandwidth * a.efficiency.memory_bandwidth_fraction for a in accs]),
            kernel_overhead_s=np.array([a.efficiency.kernel_overhead for a in accs]),
            overlap_exponent=np.array([a.efficiency.overlap_exponent for a in accs]),
            sm_count=np.array([a.sram.sm_count for a in accs], float),
            tile_m=np.array([[t.m for t in ts[:width]] for ts in tiles], float),
            tile_n=np.array([[t.n for t in ts[:width]] for ts in tiles], float),
            gemv_below_m=np.array([a.efficiency.gemv_below_m for a in accs], np.int64),
            gemv_output_s=np.array([a.efficiency.gemv_output_overhead for a in accs]),
            capacity_bytes=np.array([a.memory.capacity for a in accs]),
            reserve_bytes=np.array([capacity_rule.reserve_bytes(a) for a in accs]),
            domain_gpus=np.array([c.system.gpus_per_domain for c in clusters]),
            scale_out=np.array([c.scale_out is not None for c in clusters]),
        )


def _at_least(compute_s: np.ndarray, least_s: np.ndarray) -> np.ndarray:
    """An attention call's compute time is at least its longest CTA (attention_efficiency.attention_seconds)."""
    if not least_s.any():
        return compute_s
    return np.where(compute_s > 0, np.maximum(compute_s, least_s), 0.0)


def _inverse(peak: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(peak > 0, 1.0 / peak, 1e30)


def _grouped_probe(grouped: str, dtype: DType) -> Op:
    """A stand-in op that carries a grouped GEMM's family and format (for the kernel look-up)."""
    return Op("grouped", OpKind.MATMUL, OpClass.MLP, dtype, shape=MatmulShape(1, 1, 1, 1, grouped=grouped))


def _peak_for(model: RooflineCostModel, kind: int, dtype: DType, scaling: str | None = None) -> float:
    """Achievable FLOP/s of an op before wave quantization (cost.RooflineCostModel.flops_rate)."""
    try:
        peak, fraction = model.flops_rate(_KINDS[kind], dtype, scaling)
    except RooflineError:
        return 0.0  # the format cannot run here: infinite time
    return peak * fraction


@dataclass(frozen=True)
class _Derived:
    """What a table needs per accelerator (achievable FLOP/s per op, collective time tables) and its
    quantities as piecewise-linear functions of u."""

    seconds_per_flop: np.ndarray  # (ops, hw): 1 / achievable FLOP/s; 0 for collectives, 1e30 where impossible
    seconds_per_byte: np.ndarray  # (ops, hw): 1 / achievable bytes/s
    min_compute_s: np.ndarray  # (ops, hw): attention by shape: the longest CTA (0: none)
    overhead_s: np.ndarray  # (ops, hw): kernels x kernel overhead, or an attention call's floor
    collective_rows: np.ndarray  # op indices with a collective
    comm_tables: np.ndarray  # (hw x collectives, sizes), row h * len(collective_rows) + j
    flops: Rows
    bytes: Rows
    message_bytes: Rows  # collective rows only
    gemm_m: Rows  # matmul rows only
    gemm_batch: Rows
    single_gemms: bool  # every GEMM has batch 1
    # grouped GEMMs (MoE experts, cost.RooflineCostModel.grouped_kernel): their op indices, and per
    # accelerator their kernel (None: no such format here), seconds per tile FLOP and HBM bytes/s
    grouped_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    grouped_kernels: tuple[tuple[tuple[GroupedKernel | None, float, float, float, float], ...], ...] = ()

    def segments(self, table: OpTable, u: np.ndarray, s: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return segment(table.local.grid, u), None if table.group is None else segment(table.group.grid, s)


@dataclass(frozen=True)
class StageTimes:
    total_s: np.ndarray  # one micro-batch through every stage
    slowest_s: np.ndarray


@dataclass(frozen=True)
class ContextOps:
    """The decode ops whose size grows with the context (attention over the KV cache, a sparse
    indexer), at every context a TPOT samples: FLOPs and bytes per instance are the table's at the
    first context plus what the step adds at that context, shared + u x per sequence (each
    sequence attends to its own context; a compressed index is read once per step). Built at
    u = 1 and 2 (exact at every context, _growth), checked at u = 3 and the largest u at the last
    context."""

    rows: np.ndarray  # op indices: no GEMM shape, collective message or count changes with the context
    flops_shared: np.ndarray  # (rows, contexts): over the first context, once per step
    flops_per_sequence: np.ndarray  # (rows, contexts): over the first context, per sequence
    bytes_shared: np.ndarray
    bytes_per_sequence: np.ndarray
    checked: int  # the largest u checked


def _op_signature(rows: list[tuple[int, Op]]) -> list[tuple[object, ...]]:
    """What must not change with the context: each op's part, name, kind, format, count, kernels."""
    return [(i, op.name, op.kind, op.dtype, op.count, op.kernels) for i, op in rows]


def _context_ops(workload: Workload, layout: Layout, contexts: tuple[int, ...], u_top: int) -> ContextOps | None:
    def at(u: int, context: int) -> tuple[list[tuple[object, ...]], np.ndarray]:
        rows = _op_rows(workload, layout, StepShape(Phase.DECODE, u * layout.attn_dp, 1, context))
        return _op_signature(rows), _quantities(rows)

    signature, one = _growth(at, 1, contexts)
    two = _growth(at, 2, contexts)[1]
    if one is None or two is None:
        return None
    shared, per_sequence = 2.0 * one - two, two - one  # growth(u) = shared + u x per_sequence
    rows = np.flatnonzero((one != 0.0).any(axis=(1, 2)) | (two != 0.0).any(axis=(1, 2)))
    if (per_sequence[rows][:, [Q_MESSAGE, Q_M, Q_N, Q_K, Q_GEMM_BATCH]] != 0.0).any() or (
        shared[rows][:, [Q_MESSAGE, Q_M, Q_N, Q_K, Q_GEMM_BATCH]] != 0.0
    ).any():
        return None  # a GEMM or a collective grows with the context: not this model
    for u in sorted({3, u_top} - {1, 2}):
        (sig_a, a), (sig_b, b) = at(u, contexts[0]), at(u, contexts[-1])
        expected = shared[:, :, -1] + u * per_sequence[:, :, -1]
        if sig_a != signature or sig_b != signature or not np.allclose(b - a, expected, rtol=1e-9, atol=1e-9):
            return None
    return ContextOps(rows, shared[rows, Q_FLOPS], per_sequence[rows, Q_FLOPS], shared[rows, Q_BYTES],
                      per_sequence[rows, Q_BYTES], u_top)  # fmt: skip


def _growth(at: Callable[[int, int], tuple[list[tuple[object, ...]], np.ndarray]], u: int,
            contexts: tuple[int, ...]) -> tuple[list[tuple[object, ...]], np.ndarray | None]:  # fmt: skip
    """(ops, 7, contexts): a step of u sequences per replica, its quantities over the first
    context's. Built at the two ends and three inner contexts; when those five lie on one line
    (plain attention: FLOPs and KV bytes in proportion to the context) the line gives the rest. A
    window or a top-k selection bends the curve one way (concave), so any inner point off the
    chord shows it; then, as for compressed or chunked attention, every context is built. With the
    first context's op signature; None when the operator list itself changes."""
    signature, first = at(u, contexts[0])
    n = len(contexts)
    probes = sorted({0, n // 4, n // 2, 3 * n // 4, n - 1})
    built: dict[int, np.ndarray] = {}

    def build(i: int) -> bool:
        sig, q = at(u, contexts[i])
        built[i] = q - first
        return sig == signature

    if not all(build(i) for i in probes):
        return signature, None
    x = np.array(contexts, dtype=float)
    line = built[n - 1][:, :, None] * ((x - x[0]) / (x[-1] - x[0]))
    if all(np.allclose(line[:, :, i], built[i], rtol=1e-12, atol=1e-9) for i in probes):
        return signature, line
    if not all(build(i) for i in range(n) if i not in built):
        return signature, None
    return signature, np.stack([built[i] for i in range(n)], axis=2)


def _part_sums(part: np.ndarray, time: np.ndarray) -> np.ndarray:
    """(3, ...): the rows of `time` (ops first, sorted by part) summed per part."""
    bounds = np.searchsorted(part, np.arange(_PARTS + 1))
    return np.stack([time[bounds[i] : bounds[i + 1]].sum(axis=0) for i in range(_PARTS)])


def _by_hardware(h: np.ndarray, compute: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """compute(accelerator, selection) for each accelerator in h, joined along the last axis (configs)."""
    kinds = np.unique(h)
    if len(kinds) == 1:
        return compute(int(kinds[0]), np.arange(len(h)))
    pieces = [(sel, compute(int(hv), sel)) for hv in kinds for sel in [np.flatnonzero(h == hv)]]
    out = np.empty((*pieces[0][1].shape[:-1], len(h)))
    for sel, values in pieces:
        out[..., sel] = values
    return out


class FastModel:
    """One workload on a set of clusters (one per accelerator); tables built lazily and kept."""

    def __init__(self, workload: Workload, clusters: Sequence[Cluster], comm_library: str = "nccl",
                 max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS,
                 attention_kernel: str | None = None) -> None:  # fmt: skip
        """`attention_kernel`: the runtime's (engine `kernels.attention`), as the exact path's cost model."""
        self.workload, self.clusters, self.max_num_tokens = workload, list(clusters), max_num_tokens
        self.hw = HardwareArrays.of(self.clusters)
        self._costs = [RooflineCostModel(c, runtime_attention=attention_kernel) for c in self.clusters]
        self._collectives = CollectiveModel(load_library(comm_library))
        self._tables: dict[tuple[Layout, Phase, int, int], tuple[OpTable, _Derived]] = {}
        self._curves: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._sizes: dict[tuple[int, CollectiveKind, int, int, int, EpRouting | None], np.ndarray] = {}
        self._context_ops: dict[tuple[Layout, tuple[int, ...]], ContextOps | None] = {}
        self._peaks: dict[tuple[int, int, DType, str | None], float] = {}
        hand_off = [self._pp_topologies(c) for c in self.clusters]
        self._pp_tables = np.stack([self._size_table(h, CollectiveKind.SEND_RECV, t) for h, pair in enumerate(hand_off)
                                    for t in pair])  # fmt: skip

    # ---- tables ----------------------------------------------------------------------------------

    @staticmethod
    def _pp_topologies(cluster: Cluster) -> tuple[GroupTopology, GroupTopology]:
        """The pipeline hand-off inside a scale-up domain, and across domains (comm.topology_for)."""
        across = ParallelPlan(pp=cluster.system.gpus_per_domain + 1)
        return topology_for(cluster, "pp", ParallelPlan(pp=2)), topology_for(cluster, "pp", across)

    def _size_table(self, h: int, kind: CollectiveKind, topo: GroupTopology | None,
                    routing: EpRouting | None = None) -> np.ndarray:  # fmt: skip
        """Collective time over SIZE_GRID_BYTES on hardware h (inf: the group cannot be formed)."""
        if topo is None:
            return np.full(len(SIZE_GRID_BYTES), np.inf)
        key = (h, kind, topo.size, topo.per_node, topo.nodes, routing)
        if key not in self._sizes:
            self._sizes[key] = self._collectives.times(kind, SIZE_GRID_BYTES, topo, routing)
        return self._sizes[key]

    def _weight_only_quantize(self, table: OpTable, h: int) -> np.ndarray:
        """Indices of the activation-quantise ops that do not run on accelerator h (weight-only GEMMs)."""
        assert table.quantize is not None
        rows = np.flatnonzero(table.quantize)
        keep = []
        for j in rows:
            try:
                keep.append(self._costs[h].runs_weight_only(table.dtypes[j]))
            except RooflineError:
                keep.append(True)
        return rows[np.array(keep, bool)]

    def _gemm_curves(self, table: OpTable, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(matmuls, 1) arrays of the GEMM curve numbers k_half, k_step_s, latency_s on accelerator h
        (cost.RooflineCostModel.gemm_curve; 0 where the op has no curve)."""
        key = (table.dtypes, table.scalings, table.kind.tobytes(), table.matmuls.tobytes(), h)
        if key not in self._curves:
            rows = []
            for j in table.matmuls:
                op = Op(
                    name="",
                    kind=_KINDS[int(table.kind[j])],
                    op_class=OpClass.MLP,
                    dtype=table.dtypes[j],
                    shape=MatmulShape(1, 1, 1, scaling=table.scalings[j] if table.scalings else None),
                )
                try:
                    curve = self._costs[h].gemm_curve(op)
                except RooflineError:  # the format cannot run here: its time is infinite anyway
                    curve = None
                rows.append((curve.k_half, curve.k_step_s, curve.latency_s) if curve else (0.0, 0.0, 0.0))
            values = np.array(rows, float).reshape(-1, 3)
            self._curves[key] = (values[:, 0:1], values[:, 1:2], values[:, 2:3])
        return self._curves[key]

    def _peak(self, h: int, kind: int, dtype: DType, scaling: str | None) -> float:
        key = (h, kind, dtype, scaling)
        peak = self._peaks.get(key)
        if peak is None:
            peak = self._peaks[key] = _peak_for(self._costs[h], kind, dtype, scaling)
        return peak

    def _topology(self, h: int, group: str, layout: Layout) -> GroupTopology | None:
        try:
            return topology_for(self.clusters[h], group, layout.plan())
        except RooflineError:  # spans domains of a system with no scale-out fabric
            return None

    def table(self, layout: Layout, phase: Phase, new: int, context: int, u_max: int) -> tuple[OpTable, _Derived]:
        key = (layout, phase, new, context)
        cached = self._tables.get(key)
        if cached is not None:
            t = cached[0]
            if t.local.checked >= u_max and (t.group is None or t.group.checked >= u_max * layout.attn_dp):
                return cached
        u_top = 1 << max(1, math.ceil(math.log2(max(u_max, 2))))  # powers of two: few rebuilds
        table = build_table(self.workload, layout, phase, new, context, u_top)
        scalings = table.scalings or (None,) * len(table.kind)
        peaks = np.array([[self._peak(h, int(kind), dt, sc) for h in range(len(self._costs))]
                          for kind, dt, sc in zip(table.kind, table.dtypes, scalings, strict=True)])  # fmt: skip
        rows = np.array([j for j, c in enumerate(table.collectives) if c is not None], dtype=np.int64)
        groups = [c for c in table.collectives if c is not None]
        comm = [self._size_table(h, kind, self._topology(h, group, layout), routing)
                for h in range(len(self.clusters)) for kind, group, routing in groups]  # fmt: skip
        tables = np.stack(comm) if comm else np.zeros((0, len(SIZE_GRID_BYTES)))
        every, mm = np.arange(len(table.kind)), table.matmuls
        batches = [x.values[mm, Q_GEMM_BATCH] for x in (table.local, table.group) if x is not None]
        seconds_per_flop = _inverse(peaks.reshape(len(table.kind), -1))
        by_shape = self._attention_rates(table, seconds_per_flop)
        grouped_rows = np.array([j for j, g in enumerate(table.grouped) if g], dtype=np.int64)
        self._tables[key] = (table, _Derived(
            seconds_per_flop, *by_shape, rows, tables, Rows.of(table, every, Q_FLOPS),
            Rows.of(table, every, Q_BYTES), Rows.of(table, rows, Q_MESSAGE), Rows.of(table, mm, Q_M),
            Rows.of(table, mm, Q_GEMM_BATCH), all(bool(np.all(b == 1.0)) for b in batches),
            grouped_rows, tuple(tuple(self._grouped_rates(cm, table, int(j)) for j in grouped_rows)
                                for cm in self._costs),
        ))  # fmt: skip
        return self._tables[key]

    def _attention_rates(self, table: OpTable,
                         seconds_per_flop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """Per op and accelerator: seconds per byte, the least compute time, the fixed time per
        instance; attention calls timed by shape (cost.RooflineCostModel.attention_timing) get the
        seconds per FLOP of their timing too (written into `seconds_per_flop`)."""
        shape = (len(table.kind), len(self.clusters))
        per_byte = np.broadcast_to(1.0 / self.hw.memory_bytes_per_s, shape).copy()
        overhead = table.kernels[:, None] * self.hw.kernel_overhead_s[None, :]
        least = np.zeros(shape)
        for j, op in enumerate(table.ops):
            for h, model in enumerate(self._costs):
                timing = model.attention_timing(op) if op.attention is not None else None
                if timing is not None:
                    seconds_per_flop[j, h], per_byte[j, h] = timing.seconds_per_flop, timing.seconds_per_byte
                    least[j, h], overhead[j, h] = timing.min_compute_s, timing.floor_s
        return per_byte, least, overhead

    @staticmethod
    def _grouped_rates(model: RooflineCostModel, table: OpTable, j: int) -> tuple[
            GroupedKernel | None, float, float, float, float]:  # fmt: skip
        """A grouped GEMM's kernel on this accelerator, seconds per FLOP of its tile math, HBM
        bytes/s, and, where it has no kernel table, the dense curve's k_half and launch latency
        (cost.RooflineCostModel._compute_s, _memory_rate, grouped_prior)."""
        dtype = table.dtypes[j]
        scaling = table.scalings[j] if table.scalings else None
        shape = table.ops[j].shape if table.ops else None
        gemm_kernel = shape.kernel if shape is not None else None  # the op's GEMM library, as cost.py reads it
        try:
            peak, fraction = model.flops_rate(OpKind.MATMUL, dtype, scaling, gemm_kernel)
            kernel = model.grouped_kernel(_grouped_probe(table.grouped[j], dtype))
        except RooflineError:
            return None, 1e30, 1.0, 0.0, 0.0
        assert kernel is not None
        acc = model.cluster.accelerator
        memory = acc.memory.bandwidth * (kernel.memory_fraction or acc.efficiency.memory_bandwidth_fraction)
        prior = model.grouped_prior(kernel, dtype, scaling, gemm_kernel)
        k_half, latency_s = (0.0, 0.0) if prior is None else (prior.k_half, prior.latency_s)
        return kernel, 1.0 / (peak * (kernel.compute_fraction or fraction)), memory, k_half, latency_s

    # ---- step times ------------------------------------------------------------------------------

    def part_times(self, table: OpTable, derived: _Derived, h: np.ndarray, u: np.ndarray,
                   s: np.ndarray) -> np.ndarray:  # fmt: skip
        """(3, configs): seconds of all layers, the embedding and the LM head for one step of s
        sequences, u of them on each attention replica. Each distinct (accelerator, u, s) is timed
        once: a plan's configurations share a few step shapes (one prefill step size, many pp/dp)."""
        distinct, inverse = np.unique(np.stack([h.astype(float), u, s]), axis=1, return_inverse=True)
        hd, ud, sd = distinct[0].astype(np.int64), distinct[1], distinct[2]
        parts = _by_hardware(hd, lambda hv, sel: _part_sums(table.part, self._op_times_on(table, derived, hv, ud[sel],
                                                                                           sd[sel])))  # fmt: skip
        return parts[:, inverse.ravel()]

    def _op_s(self, h: int, compute_s: np.ndarray, memory_s: np.ndarray, overhead_s: np.ndarray) -> np.ndarray:
        """One instance of ops on accelerator h: compute and memory overlapped (cost.kernel_time_s),
        plus the fixed time (kernel overheads, an attention call's floor: cost.RooflineCostModel.cost)."""
        return kernel_time_s(compute_s, memory_s, self.hw.overlap_exponent[h]) + overhead_s

    def _op_times_on(self, table: OpTable, d: _Derived, h: int, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """(ops, configs): every op's seconds (all its instances) on accelerator h."""
        hw = self.hw
        seg = d.segments(table, u, s)
        compute = d.flops(u, s, seg) * d.seconds_per_flop[:, h : h + 1]
        mm = table.matmuls
        gemv = np.zeros(0, np.int64)
        if len(mm):  # integer GEMM shapes, as the estimator's (and integer division is the fast one)
            m = np.maximum(1.0, np.rint(d.gemm_m(u, s, seg))).astype(np.int64)
            batch = 1 if d.single_gemms else np.maximum(1.0, np.rint(d.gemm_batch(u, s, seg))).astype(np.int64)
            tiles = [(int(a), int(b)) for a, b in zip(hw.tile_m[h], hw.tile_n[h], strict=True)]
            n, k = table.n[mm, None].astype(np.int64), table.k[mm, None].astype(np.int64)
            gemv = self._gemv_rows(table, h, m, batch)
            compute[mm] /= np.where(gemv > 0, 1.0, wave_utilization(m, n, k, batch, int(hw.sm_count[h]), tiles))
            k_half, k_step_s, latency_s = self._gemm_curves(table, h)
            compute[mm] = np.maximum(compute[mm] / k_efficiency(k, k_half), k * k_step_s)
        compute = _at_least(compute, d.min_compute_s[:, h : h + 1])
        size = d.bytes(u, s, seg)
        if len(mm) and gemv.any():  # weights read once per row (cost.RooflineCostModel.memory_bytes)
            weights = np.array([table.ops[j].weight_bytes for j in mm])[:, None] if table.ops else 0.0
            size = size.copy()
            size[mm] += gemv_extra_bytes(gemv, 1, weights)
        memory = size * d.seconds_per_byte[:, h : h + 1]
        time = self._op_s(h, compute, memory, d.overhead_s[:, h : h + 1])
        if len(mm):
            time[mm] += latency_s + gemv * n * hw.gemv_output_s[h]  # cost.RooflineCostModel._fixed_s
        if table.quantize is not None and table.quantize.any():
            time[self._weight_only_quantize(table, h)] = 0.0  # cost.RooflineCostModel._cost
        if len(d.grouped_rows):
            self._grouped_times(table, d, h, u, s, seg, compute, memory, time)
        rows = d.collective_rows
        if len(rows):
            tables = d.comm_tables[h * len(rows) : (h + 1) * len(rows)]
            time[rows] = comm_time(tables, np.arange(len(rows))[:, None], d.message_bytes(u, s, seg))
        time *= table.count[:, None]
        return time

    def _gemv_rows(self, table: OpTable, h: int, m: np.ndarray, batch: Any) -> np.ndarray:
        """(matmuls, configs): each GEMM's rows where it runs as matrix-vector products on accelerator h
        (cost.gemv_rows), else 0. Grouped GEMMs here are never a loop of plain matmuls (the fast path's
        layouts run the default MoE kernels), so they keep their tiles."""
        below = int(self.hw.gemv_below_m[h])
        if below <= 1:
            return np.zeros_like(m)
        single = np.array([not g for g in table.grouped])[table.matmuls, None] if table.grouped else True
        return np.where((m < below) & (np.asarray(batch) == 1) & single, m, 0)

    def _grouped_times(self, table: OpTable, d: _Derived, h: int, u: np.ndarray, s: np.ndarray, seg: tuple[
            np.ndarray | None, np.ndarray | None], compute: np.ndarray, memory: np.ndarray,
                       time: np.ndarray) -> None:  # fmt: skip
        """Grouped GEMM rows of `time`: compute from the padded tile math, memory at the family's HBM
        fraction, overlapped with its exponent, plus its fixed latency (cost.RooflineCostModel._cost)."""
        mm = table.matmuls
        m_all = np.maximum(1.0, np.rint(d.gemm_m(u, s, seg))).astype(np.int64)
        b_all = np.maximum(1.0, np.rint(d.gemm_batch(u, s, seg))).astype(np.int64)
        flops, size = d.flops(u, s, seg), d.bytes(u, s, seg)
        sm = int(self.hw.sm_count[h])
        for j, (kernel, seconds_per_flop, memory_rate, k_half, prior_latency_s) in zip(
                d.grouped_rows, d.grouped_kernels[h], strict=True):  # fmt: skip
            if kernel is None:
                continue  # the format cannot run here: the dense row's infinite time stands
            i = int(np.searchsorted(mm, j))
            n, k = int(table.n[j]), int(table.k[j])
            work = tile_flops(m_all[i], n, k, b_all[i], sm, kernel.tile_m, kernel.tile_n, kernel.tile_overhead_k)
            work = work / k_efficiency(k, k_half) if k_half else work  # no kernel table: the dense curve's K-loop share
            compute[j] = np.where(flops[j] > 0, work * seconds_per_flop, 0.0)
            memory[j] = size[j] / memory_rate
            p = self.hw.overlap_exponent[h] if kernel.overlap_exponent is None else kernel.overlap_exponent
            shape = table.ops[j].shape if table.ops else None
            setup = kernel.expert_setup_s * shape.resident_groups if shape is not None else 0.0
            overhead = table.kernels[j] * (self.hw.kernel_overhead_s[h] + kernel.latency_s + setup) + prior_latency_s
            time[j] = kernel_time_s(compute[j], memory[j], p) + overhead

    def _stages(self, parts: np.ndarray | Sequence[np.ndarray], layout: Layout, h: np.ndarray, s: np.ndarray,
                new_tokens: int, boundary_bytes_per_token: float, pp: np.ndarray) -> StageTimes:  # fmt: skip
        """Part times (3 arrays of shape (..., configs)) of one micro-batch of s sequences split
        over pp stages as plan.stage_placements does, the hand-offs added."""
        layers_s, embedding_s, head_s = parts
        crosses = (layout.tp * layout.attn_dp * pp > self.hw.domain_gpus[h]) & self.hw.scale_out[h]
        hand_off_s = comm_time(self._pp_tables, 2 * h + crosses, s * new_tokens * boundary_bytes_per_token)
        hand_off_s = np.where(pp > 1, hand_off_s, 0.0)
        n = self.workload.num_layers
        base, extra = np.divmod(n, pp)
        first = (base + (extra > 0)) / n * layers_s + embedding_s + hand_off_s
        last = base / n * layers_s + head_s
        middle = np.where(pp > 2, (base + (extra > 1)) / n * layers_s + hand_off_s, 0.0)
        total = layers_s + embedding_s + head_s + (pp - 1) * hand_off_s
        slowest = np.where(pp == 1, total, np.maximum(np.maximum(first, last), middle))
        return StageTimes(total, slowest)

    def stage_times(self, table: OpTable, derived: _Derived, layout: Layout, h: np.ndarray, sequences: np.ndarray,
                    new_tokens: int, pp: np.ndarray) -> StageTimes:  # fmt: skip
        """One step of `sequences` (micro-batch) through pp stages, split as plan.stage_placements does."""
        s = np.maximum(sequences, 1).astype(float)
        u = np.ceil(s / layout.attn_dp)
        parts = self.part_times(table, derived, h, u, s)
        return self._stages(parts, layout, h, s, new_tokens, table.boundary_bytes_per_token, pp)

    def context_ops(self, layout: Layout, contexts: tuple[int, ...], u_max: int) -> ContextOps | None:
        """The decode ops that grow with the context, at `contexts` (see ContextOps); None when some
        op's growth is not one sequence's growth times u (then each context gets its own table)."""
        key = (layout, contexts)
        if key in self._context_ops:
            cached = self._context_ops[key]
            if cached is None or cached.checked >= u_max:
                return cached
        u_top = 1 << max(1, math.ceil(math.log2(max(u_max, 2))))  # powers of two, as table()
        found = _context_ops(self.workload, layout, contexts, u_top)
        self._context_ops[key] = found
        return found

    def _decode_parts_on(self, table: OpTable, d: _Derived, ctx: ContextOps, h: int, u: np.ndarray,
                         s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """On accelerator h: the parts (3, configs) of the ops that do not grow with the context,
        those of the ops that do (3, contexts, distinct u) and each configuration's column in the
        latter. The growing ops are timed at every context, once per distinct u (they are not
        whole-step ops, so s does not enter)."""
        time = self._op_times_on(table, d, h, u, s)
        rows = ctx.rows
        time[rows] = 0.0
        fixed = _part_sums(table.part, time)
        uu, where = np.unique(u, return_inverse=True)
        seg = (segment(table.local.grid, uu), None)
        flops = (Rows.of(table, rows, Q_FLOPS)(uu, uu, seg)[:, None] + ctx.flops_shared[:, :, None]
                 + uu * ctx.flops_per_sequence[:, :, None])  # fmt: skip
        bytes_ = (Rows.of(table, rows, Q_BYTES)(uu, uu, seg)[:, None] + ctx.bytes_shared[:, :, None]
                  + uu * ctx.bytes_per_sequence[:, :, None])  # fmt: skip
        least = d.min_compute_s[rows, h][:, None, None]
        compute = _at_least(flops * d.seconds_per_flop[rows, h][:, None, None], least)
        memory = bytes_ * d.seconds_per_byte[rows, h][:, None, None]
        fixed_s = d.overhead_s[rows, h][:, None, None]
        growing = self._op_s(h, compute, memory, fixed_s) * table.count[rows][:, None, None]
        return fixed, _part_sums(table.part[rows], growing), where.ravel()

    def decode_periods_s(self, layout: Layout, contexts: Sequence[int], h: np.ndarray, batch: np.ndarray,
                         pp: np.ndarray, engine: EngineConfig | None = None) -> np.ndarray:  # fmt: skip
        """(contexts, configs): the decode step of `batch` sequences at each context, as
        engine.estimate times it: with m micro-batches in flight, the slower of one micro-batch
        through every stage and m times the slowest stage (the pipeline period)."""
        return self._decode_s(layout, contexts, h, batch, pp, engine, mean=False)

    def decode_step_s(self, layout: Layout, context: int, h: np.ndarray, batch: np.ndarray, pp: np.ndarray,
                      engine: EngineConfig | None = None) -> np.ndarray:  # fmt: skip
        """One decode step of `batch` sequences at `context` tokens: the pipeline period (engine.estimate)."""
        return self._decode_s(layout, [context], h, batch, pp, engine, mean=True)

    def tpot_s(self, layout: Layout, isl: int, osl: int, h: np.ndarray, batch: np.ndarray, pp: np.ndarray,
               engine: EngineConfig | None = None) -> np.ndarray:  # fmt: skip
        """TPOT as engine.estimate defines it: the mean period of the decode steps it samples
        (engine.decode_contexts), one token per sequence each."""
        return self._decode_s(layout, decode_contexts(isl, osl), h, batch, pp, engine, mean=True)

    def _decode_s(self, layout: Layout, contexts: Sequence[int], h: np.ndarray, batch: np.ndarray, pp: np.ndarray,
                  engine: EngineConfig | None, mean: bool) -> np.ndarray:  # fmt: skip
        """Periods (contexts, configs), or their mean (configs,), accelerator by accelerator."""
        micro_batches = np.minimum(pp, batch)
        micro = -(-batch // micro_batches)
        u_max = int(-(-micro.max() // layout.attn_dp))
        table, derived = self.table(layout, Phase.DECODE, 1, contexts[0], u_max)
        s = np.maximum(micro, 1).astype(float)
        u = np.ceil(s / layout.attn_dp)
        ctx = self.context_ops(layout, tuple(contexts), u_max) if len(contexts) > 1 else None
        if ctx is not None and table.group_ops[ctx.rows].any():
            ctx = None
        per_context = [] if ctx is not None else [self.table(layout, Phase.DECODE, 1, c, u_max) for c in contexts]

        def periods(parts: np.ndarray | Sequence[np.ndarray], sel: np.ndarray) -> np.ndarray:
            st = self._stages(parts, layout, h[sel], s[sel], 1, table.boundary_bytes_per_token, pp[sel])
            return np.maximum(st.total_s, micro_batches[sel] * st.slowest_s)

        def on(hv: int, sel: np.ndarray) -> np.ndarray:
            # each distinct (u, s) timed once, then spread over the configurations that share it
            distinct, inv = np.unique(np.stack([u[sel], s[sel]]), axis=1, return_inverse=True)
            ud, sd, inv = distinct[0], distinct[1], inv.ravel()
            if ctx is None:  # one table per context: exact, slower
                each = [_part_sums(t.part, self._op_times_on(t, d, hv, ud, sd))[:, inv] for t, d in per_context]
                period_s = periods(np.stack(each, axis=1), sel)
                return period_s.sum(axis=0) / len(contexts) if mean else period_s
            fixed, growing, where = self._decode_parts_on(table, derived, ctx, hv, ud, sd)
            fixed, where = fixed[:, inv], where[inv]

            def parts_at(cols: np.ndarray) -> tuple[np.ndarray, ...]:  # (contexts, configs) where they grow
                return tuple(fixed[i, cols] + growing[i][:, where[cols]] if growing[i].any() else fixed[i, cols]
                             for i in range(_PARTS))  # fmt: skip

            if not mean:
                return periods(parts_at(np.arange(len(sel))), sel)
            # one stage: the period is the sum of the parts, so its mean is the parts' mean
            out = fixed.sum(axis=0) + (growing.sum(axis=(0, 1)) / len(contexts))[where]
            staged = np.flatnonzero(pp[sel] > 1)
            if len(staged):
                out[staged] = periods(parts_at(staged), sel[staged]).sum(axis=0) / len(contexts)
            return out

        out = _by_hardware(h, on)
        if engine is not None:
            per_rank = -(-batch // layout.attn_dp)  # engine.per_replica: each replica's executor, in parallel
            speed = self.host_speed(engine)[h]
            out = engine.overlapped_s(out, engine.scheduler_s(per_rank) / speed) + engine.graph_launch_s(False) / speed
        return np.asarray(out, dtype=float)

    def host_speed(self, engine: EngineConfig) -> np.ndarray:
        """Per hardware: how much faster its host CPU is than the engine profile's reference CPU."""
        from roofline.simulator.host import speed_ratio

        return np.array([speed_ratio(engine, c) for c in self.clusters])

    def ttft_batch_s(self, layout: Layout, isl: int, h: np.ndarray, batch: np.ndarray, pp: np.ndarray,
                     engine: EngineConfig | None = None) -> np.ndarray:  # fmt: skip
        """Prefill of the whole batch in engine steps of at most max_num_tokens per attention replica
        (plan.prefill_chunks); consecutive steps overlap in the pipeline (engine.time_prefill)."""
        budget, replicas = self.max_num_tokens, layout.attn_dp
        if isl < budget:
            per_step = budget // isl * replicas
            full, rest = np.divmod(batch, per_step)
            table, derived = self.table(layout, Phase.PREFILL, isl, isl, budget // isl)
            n = len(batch)  # the full steps and the last one, timed in one pass
            sequences = np.concatenate([np.full(n, per_step), rest])
            both = self.stage_times(table, derived, layout, np.concatenate([h, h]), sequences, isl,
                                    np.concatenate([pp, pp]))  # fmt: skip
            f = StageTimes(both.total_s[:n], both.slowest_s[:n])
            r = StageTimes(both.total_s[n:], both.slowest_s[n:])
            has_rest = rest > 0
            tail = np.where(has_rest, r.total_s - r.slowest_s, f.total_s - f.slowest_s)
            ttft = full * f.slowest_s + has_rest * r.slowest_s + tail
            steps, passes = full + has_rest, 1
        else:
            per_step = np.minimum(replicas, batch)
            rounds = -(-batch // per_step)
            ttft, start, passes = np.zeros(len(batch)), 0, 0
            while start < isl:
                new = min(budget, isl - start)
                table, derived = self.table(layout, Phase.PREFILL, new, start + new, 1)
                st = self.stage_times(table, derived, layout, h, per_step, new, pp)
                ttft, start, passes = ttft + rounds * st.slowest_s, start + new, passes + 1
            ttft = ttft + st.total_s - st.slowest_s
            steps = rounds * passes
        if engine is not None:  # host costs on each cluster's host CPU (simulator/host.py)
            host_s = steps * engine.step_overhead + passes * -(-batch // replicas) * engine.per_sequence_overhead
            speed = self.host_speed(engine)[h]
            ttft = engine.overlapped_s(ttft, host_s / speed) + steps * engine.graph_launch_s(True) / speed
        return np.asarray(ttft, dtype=float)

    # ---- memory ----------------------------------------------------------------------------------

    def largest_prefill_step(self, isl: int, batch: np.ndarray, attn_dp: int) -> tuple[np.ndarray, int]:
        """Prompts and new tokens of the batch's first (largest) prefill step (plan.prefill_chunks)."""
        if isl >= self.max_num_tokens:
            return np.minimum(attn_dp, batch), self.max_num_tokens
        return np.minimum(batch, self.max_num_tokens // isl * attn_dp), isl

    def stage_bytes(self, layout: Layout, isl: int, osl: int, batch: np.ndarray, pp: np.ndarray
                    ) -> dict[str, np.ndarray]:  # fmt: skip
        """Per GPU on the most loaded stage, as memory.worst_stage: weights, KV for isl + osl tokens of
        every sequence of the replica, the largest prefill step's activations; and the KV bytes per
        token of the stage that holds the most (memory.kv_capacity)."""
        w, precision, length = self.workload, layout.precision, isl + osl
        keys = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "kv_bytes_per_token")
        out = {k: np.zeros(len(batch)) for k in keys}
        prompts, new = self.largest_prefill_step(isl, batch, layout.attn_dp)
        for p in np.unique(pp):
            sel = np.flatnonzero(pp == p)
            stages = stage_placements(w, layout.plan(int(p)))
            weights = np.array([w.weight_bytes(precision, s) for s in stages])[:, None]
            per_sequence = np.array([w.kv_cache_bytes(length, precision, s) for s in stages])[:, None]
            kv = per_sequence * (-(-batch[sel] // layout.attn_dp))[None]
            uniq, where = np.unique(prompts[sel], return_inverse=True)
            act = np.array([[w.activation_bytes(StepShape(Phase.PREFILL, int(n), new, new), precision, s)
                             for n in uniq] for s in stages])[:, where]  # fmt: skip
            worst = np.argmax(weights + kv + act, axis=0)
            cols = np.arange(len(sel))
            out["weights_bytes"][sel] = weights[worst, 0]
            out["kv_cache_bytes"][sel] = kv[worst, cols]
            out["activation_bytes"][sel] = act[worst, cols]
            out["kv_bytes_per_token"][sel] = per_sequence.max() / length
        return out

    def memory(self, layout: Layout, isl: int, osl: int, h: np.ndarray, batch: np.ndarray,
               pp: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
        """Per GPU on the most loaded stage, as memory.memory_result (stage_bytes), with the reserve
        and the fit of capacity.py."""
        out = self.stage_bytes(layout, isl, osl, batch, pp)
        del out["kv_bytes_per_token"]
        reserve, capacity = self.hw.reserve_bytes[h], self.hw.capacity_bytes[h]
        total = capacity_rule.used_bytes(out["weights_bytes"], out["kv_cache_bytes"], out["activation_bytes"], reserve)
        return {**out, "reserve_bytes": reserve, "total_bytes": total, "capacity_bytes": capacity,
                "fits": capacity_rule.fits(total, capacity)}  # fmt: skip

    def kv_capacity(self, layout: Layout, isl: int, osl: int, h: np.ndarray, batch: np.ndarray, pp: np.ndarray,
                    kv_memory_fraction: float = 1.0) -> dict[str, np.ndarray]:  # fmt: skip
        """What memory.kv_capacity gives one configuration, over arrays of them: the bytes left per GPU
        after weights, reserve and activations, and the KV tokens a replica holds (capacity.py)."""
        out = self.stage_bytes(layout, isl, osl, batch, pp)
        free = capacity_rule.free_bytes(self.hw.capacity_bytes[h], self.hw.reserve_bytes[h], out["weights_bytes"],
                                        out["activation_bytes"])  # fmt: skip
        tokens = capacity_rule.kv_tokens(free, kv_memory_fraction, out["kv_bytes_per_token"], layout.attn_dp)
        return {"free_bytes": free, "kv_bytes_per_token": out["kv_bytes_per_token"], "kv_capacity_tokens": tokens}


# ---- many configurations --------------------------------------------------------------------------

CONFIG_FIELDS = ("hardware", "precision", "tp", "pp", "ep", "attn_dp", "batch", "isl", "osl")
RESULT_FIELDS = ("tpot_s", "ttft_batch_s", "weights_bytes", "kv_cache_bytes", "activation_bytes", "reserve_bytes",
                 "total_bytes", "capacity_bytes")  # fmt: skip


@dataclass(frozen=True)
class FastResult:
    """Arrays over the configurations; `valid` False where the split is impossible (see `errors`)."""

    arrays: dict[str, np.ndarray]
    errors: dict[str, int]  # message -> configurations it ruled out

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]


def configs_from(rows: Iterable[dict[str, int]]) -> dict[str, np.ndarray]:
    """Config dicts (CONFIG_FIELDS: indices for hardware and precision) -> arrays."""
    table = list(rows)
    return {f: np.array([r[f] for r in table], dtype=np.int64) for f in CONFIG_FIELDS}


def evaluate(model: FastModel, configs: dict[str, np.ndarray], precisions: Sequence[Precision],
             engine: EngineConfig | None = None, phases: tuple[str, ...] = ("decode", "prefill", "memory"),
             progress: Callable[[int], None] | None = None) -> FastResult:  # fmt: skip
    """TPOT, TTFT and memory for every configuration: numpy inside each group of configurations
    that share a layout, formats and isl/osl; one Python pass per group."""
    n = len(configs["batch"])
    arrays = {k: np.full(n, np.nan) for k in RESULT_FIELDS}
    arrays["valid"], arrays["fits"] = np.zeros(n, bool), np.zeros(n, bool)
    errors: dict[str, int] = {}
    fields = ("precision", "tp", "ep", "attn_dp", "isl", "osl")
    key = np.zeros(n, dtype=np.int64)
    for f in fields:  # mixed-radix code of the group columns, then one 1-D sort
        values, codes = np.unique(configs[f], return_inverse=True)
        key = key * len(values) + codes.ravel()
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    groups = np.stack([configs[f][first] for f in fields], axis=1)
    order = np.argsort(inverse.ravel(), kind="stable")
    splits = np.cumsum(np.bincount(inverse.ravel(), minlength=len(groups)))[:-1]
    for (prec, tp, ep, attn_dp, isl, osl), sel in zip(groups, np.split(order, splits), strict=True):
        h, batch, pp = configs["hardware"][sel], configs["batch"][sel], configs["pp"][sel]
        try:
            layout = Layout(
                int(tp),
                int(ep),
                int(attn_dp),
                precisions[int(prec)],
                vocab_parallel=engine.vocab_parallel if engine is not None else True,
                lm_head_quantized=engine.lm_head_quantized if engine is not None else False,
            )
            for p in np.unique(pp):
                stage_placements(model.workload, layout.plan(int(p)))  # raises on an impossible split
        except RooflineError as exc:
            errors[str(exc)] = errors.get(str(exc), 0) + len(sel)
            if progress:
                progress(len(sel))
            continue
        arrays["valid"][sel] = True
        if "decode" in phases:
            arrays["tpot_s"][sel] = model.tpot_s(layout, int(isl), int(osl), h, batch, pp, engine)
        if "prefill" in phases:
            arrays["ttft_batch_s"][sel] = model.ttft_batch_s(layout, int(isl), h, batch, pp, engine)
        if "memory" in phases:
            for name, values in model.memory(layout, int(isl), int(osl), h, batch, pp).items():
                arrays[name][sel] = values
        if progress:
            progress(len(sel))
    return FastResult(arrays, errors)
