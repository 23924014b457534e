"""Roofline cost of one operator on one accelerator.

    compute_s  = flops / (peak[dtype] * achievable fraction * wave utilization)
    memory_s   = bytes / (HBM bandwidth * achievable fraction)
    comm_s     = collective model (collectives.py) over the group's topology (comm.py)
    kernel_s   = (compute_s^p + memory_s^p)^(1/p)   (p: the accelerator's overlap_exponent, 2 by default)
    time_s     = max(kernel_s, comm_s) + kernels * kernel_overhead

A kernel near the ridge point reaches neither ceiling: p = 2 is 1.41 x max() there and within 3%
of max() once one side is 4x the other (see EfficiencySpec). `no_overlap_s` is the sum, the
other bound.
With `ideal=True` every fraction is 1, waves are perfect and overheads are 0: the pure textbook
roofline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs.cluster import Cluster
from roofline.hardware_specs.schema import GemmCurve
from roofline.ir import Op, OpKind, Phase
from roofline.memo import Memo
from roofline.simulator.attention_efficiency import (
    AttentionCurves,
    AttentionModel,
    AttentionTiming,
    attention_seconds,
)
from roofline.simulator.collectives import CollectiveModel, CommLibrary, GroupTopology, load_library
from roofline.simulator.comm import topology_for
from roofline.simulator.gemm_efficiency import accelerator_curve, is_activation_quantize, k_efficiency
from roofline.simulator.plan import ParallelPlan

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from roofline.simulator.grouped_gemm import GroupedKernel


@dataclass(frozen=True, slots=True)
class OpCost:
    op: Op
    compute_s: float  # per instance
    memory_s: float
    comm_s: float
    overhead_s: float
    detail: str = ""  # collectives: algorithm/protocol over the links crossed
    overlap_exponent: float = math.inf  # compute and memory: (c^p + m^p)^(1/p); inf = max (ideal)

    @property
    def kernel_s(self) -> float:
        """Compute and memory of one kernel: their p-norm (kernel_time_s)."""
        return kernel_time_s(self.compute_s, self.memory_s, self.overlap_exponent)

    @property
    def time_s(self) -> float:
        """Per-instance time: the kernel's compute/memory overlap, communication overlapped with it."""
        return max(self.kernel_s, self.comm_s) + self.overhead_s

    @property
    def total_s(self) -> float:
        return self.time_s * self.op.count

    @property
    def no_overlap_s(self) -> float:
        return (self.compute_s + self.memory_s + self.comm_s + self.overhead_s) * self.op.count

    @property
    def bound(self) -> str:
        parts = {"compute": self.compute_s, "memory": self.memory_s, "communication": self.comm_s}
        if self.overhead_s > max(parts.values()):
            return "overhead"
        return max(parts, key=lambda k: parts[k])


# The smallest K chunk a split-K GEMM gives each SM. A modelling choice of this project (there
# since the first engine), not a published library constant: cuBLAS and CUTLASS choose split-K
# by internal heuristics. Not a hardware property, so not in the accelerator YAML.
MIN_SPLIT_K = 256

Num = TypeVar("Num", float, "NDArray[Any]")  # a Python number, or a numpy array of configurations


_NUMBER = (int, float)  # Python numbers: the scalar estimate runs on them and never imports numpy


def _numpy() -> Any:
    """numpy, for the array forms of the formulas below (whoever passes arrays has imported it)."""
    import numpy

    return numpy


def kernel_time_s(compute_s: Num, memory_s: Num, overlap_exponent: float) -> Num:
    """One kernel's time from its compute and memory times: (compute^p + memory^p)^(1/p), max()
    when p is infinite. Python floats, or numpy arrays over configurations (element-wise).

    A side that is 0 gives exactly the other side ((0 + 1)^(1/p) = 1): the scalar form returns it
    without the powers, which is the same number."""
    p = overlap_exponent
    if isinstance(compute_s, _NUMBER) and isinstance(memory_s, _NUMBER):
        big: Any = compute_s if compute_s >= memory_s else memory_s
        if compute_s == 0 or memory_s == 0 or math.isinf(p):
            return big
        safe: Any = big
    else:
        np = _numpy()
        big = np.maximum(compute_s, memory_s)
        if math.isinf(p):
            return big
        safe = np.where(big > 0, big, 1.0)  # both 0: 0 x (0 + 0)^(1/p) = 0
    return big * ((compute_s / safe) ** p + (memory_s / safe) ** p) ** (1.0 / p)


def gemv_rows(op: Op, below_m: int, plain_groups: bool = False) -> float:
    """The rows a matmul multiplies as matrix-vector products (EfficiencySpec.gemv_below_m), 0 when
    it does not: a single GEMM of M < `below_m` rows (M), or a grouped GEMM whose family multiplies
    each group as a plain matmul (`plain_groups`: a loop of mm) with fewer than `below_m` rows per
    group (its real rows, FLOPs / 2NK: the groups' padded M rounds up); not a batched GEMM. Each row
    reads its matrix's weights once; no row tile is filled."""
    s = op.shape
    if op.kind is not OpKind.MATMUL or s is None or s.m >= below_m:
        return 0.0
    if s.grouped:
        return op.flops / (2.0 * s.n * s.k) if plain_groups and s.n * s.k else 0.0
    return float(s.m) if s.batch == 1 else 0.0


def gemv_extra_bytes(rows: Any, groups: Any, weight_bytes: Any) -> Any:
    """Weight bytes read beyond one pass when `rows` rows over `groups` equal matrices (`weight_bytes`
    in all) each read their matrix once (numbers or numpy arrays; 0 where rows is 0)."""
    share = rows / groups - 1.0
    if isinstance(share, _NUMBER):
        return max(share, 0.0) * weight_bytes
    return _numpy().maximum(share, 0.0) * weight_bytes


def runs_plain_groups(kernel: GroupedKernel | None) -> bool:
    """A grouped-GEMM family of 1 x 1 tiles pads nothing: it multiplies each group on its own (a loop
    of plain matmuls, moe_kernels.yaml torch_mm_loop)."""
    return kernel is not None and kernel.tile_m == 1 and tuple(kernel.tile_n) == (1,)


def wave_utilization(m: Num, n: Num, k: Num, batch: Num, sm_count: float | NDArray[Any],
                     tiles: Sequence[tuple[float, float]], min_split_k: int = MIN_SPLIT_K) -> Num:  # fmt: skip
    """Useful fraction of the tile slots a GEMM C[m, n] = A[m, k] B[k, n] (`batch` of them)
    occupies, best over the kernel's output tiles (tile m, tile n). Python numbers, or numpy
    arrays over configurations (element-wise; then m must be an array).

    Output tiles are spread over the SMs in waves; a partial last wave and tiles hanging over
    the matrix edge do no useful work (wave and tile quantization). When there are fewer tiles
    than SMs, K is split (split-K, as cuBLAS does for skinny GEMMs) into chunks of at least
    `min_split_k` so the idle SMs get work.
    """
    numbers = isinstance(m, _NUMBER) and isinstance(sm_count, _NUMBER)  # the estimator's hot path: all Python ints
    maximum, minimum = (max, min) if numbers else (_numpy().maximum, _numpy().minimum)
    useful = m * n * batch
    max_splits = k // min_split_k
    best: Any = 0.0
    for tile_m, tile_n in tiles:
        count = -(-m // tile_m) * -(-n // tile_n) * batch  # ceil(m / tile m) x ceil(n / tile n) x batch
        splits = maximum(1, minimum(sm_count // count, max_splits))  # 1 once the tiles fill the SMs
        waves = -(-(count * splits) // sm_count)
        best = maximum(best, useful * splits / (waves * sm_count * tile_m * tile_n))
    return best


class RooflineCostModel:
    def __init__(
        self, cluster: Cluster, plan: ParallelPlan | None = None, ideal: bool = False,
        library: CommLibrary | None = None, attention_kernel: str | None = None,
        attention_curves: AttentionCurves | None = None, runtime_attention: str | None = None,
    ) -> None:  # fmt: skip
        """`attention_kernel` names the attention kernel family ("fa2", "fa3") when the software stack
        fixes one (diffusion pipelines on PyTorch SDPA); None: the accelerator's default.
        `attention_curves`: attention curves other than the shipped YAML (the fit tries candidates).
        `runtime_attention`: the serving runtime's attention kernel (engine YAML `kernels.attention`:
        trtllm-fmha, flashinfer-fa3, sdpa, ...), mapped to a curve family by the attention YAML's
        `runtime_kernels`; None: TensorRT-LLM FMHA's curves."""
        self.cluster, self.plan, self.ideal = cluster, plan or ParallelPlan(), ideal
        self.collectives = CollectiveModel(library or load_library(), ideal)
        self._topologies: dict[str, GroupTopology] = {}
        acc = cluster.accelerator
        self._memory_bytes_per_s = acc.memory.bandwidth * (1.0 if ideal else acc.efficiency.memory_bandwidth_fraction)
        self._overhead_s = 0.0 if ideal else acc.efficiency.kernel_overhead
        self._overlap_exponent = math.inf if ideal else acc.efficiency.overlap_exponent
        self._attention_fraction = acc.efficiency.attention_fraction_for(attention_kernel)
        self._sm_count = acc.sram.sm_count
        self._tiles = [(t.m, t.n) for t in acc.efficiency.matmul_tiles]
        self._gemv_below_m = 0 if ideal else acc.efficiency.gemv_below_m
        self._gemv_output_s = acc.efficiency.gemv_output_overhead
        # attention by shape (attention_efficiency.py) for the serving engines' kernels; a named kernel
        # family (SDPA in diffusion pipelines) or --ideal keeps the single fraction
        self.runtime_attention = runtime_attention
        self._attention = None if ideal or attention_kernel else AttentionModel.for_accelerator(
            acc, attention_curves, runtime_attention)  # fmt: skip
        self._costs = Memo()
        self._curves: dict[tuple[DType, str | None, str | None], GemmCurve | None] = {}  # gemm_curve, per format
        self.steps = Memo()  # the engine's step timings on this model (engine.time_step)

    @property
    def attention_fraction(self) -> float:
        """The achievable attention fraction this model charges (1 under --ideal)."""
        return 1.0 if self.ideal else self._attention_fraction

    def math_dtype(self, dtype: DType) -> DType:
        """The format the math runs in on this accelerator: the op's own, or bf16 for 4-bit weights
        the hardware cannot multiply natively (weight-only kernels dequantize them)."""
        acc = self.cluster.accelerator
        if acc.compute.peak_flops_per_s(dtype) is not None:
            return dtype.compute_dtype
        fallback = dtype.weight_only_fallback
        if fallback is None or acc.compute.peak_flops_per_s(fallback) is None:
            raise RooflineError(
                f"{acc.id} has no {dtype.value} support; choose a format it has (e.g. --weight-dtype bf16)"
            )
        return fallback

    def peak_flops_per_s(self, dtype: DType) -> float:
        peak = self.cluster.accelerator.compute.peak_flops_per_s(self.math_dtype(dtype))
        assert peak is not None
        return peak

    def flops_rate(self, kind: OpKind, dtype: DType, scaling: str | None = None,
                   kernel: str | None = None) -> tuple[float, float]:  # fmt: skip
        """The peak FLOP/s an op of this kind and format runs against, and the achievable fraction
        of it before wave quantization: elementwise ops on the fp32 vector units at the full peak,
        attention at the attention fraction, matmuls at the steady-state fraction of the
        architecture's GEMM curve for the format, FP8 `scaling` and `kernel` (gemm_efficiency), else the
        accelerator's matmul fraction (every fraction 1 under --ideal); collectives do no math (an
        infinite rate). Raises RooflineError for a format the accelerator cannot run."""
        if kind is OpKind.COLLECTIVE:
            return math.inf, 1.0
        if kind is OpKind.ELEMENTWISE:
            return self.peak_flops_per_s(DType.FP32), 1.0  # vector units, not tensor cores
        dtype = self.math_dtype(dtype)
        peak = self.peak_flops_per_s(dtype)
        if self.ideal:
            return peak, 1.0
        if kind is OpKind.ATTENTION:
            return peak, self._attention_fraction
        curve = self._curve(dtype, scaling, kernel)  # by shape: _compute_s
        return peak, curve.fraction if curve else self.cluster.accelerator.efficiency.matmul_fraction_for(dtype)

    def gemm_curve(self, op: Op) -> GemmCurve | None:
        """The shape curve of a matmul op on this architecture (gemm_efficiency), None: no curve
        (not a matmul, --ideal, or a part that keeps its single matmul fractions)."""
        if op.kind is not OpKind.MATMUL or self.ideal:
            return None
        if op.shape is not None and op.shape.grouped and self.grouped_kernel(op) is not None:
            return None  # a grouped GEMM with a kernel family of its own (grouped_gemm.py)
        scaling, kernel = (op.shape.scaling, op.shape.kernel) if op.shape is not None else (None, None)
        return self._curve(self.math_dtype(op.dtype), scaling, kernel)

    def _curve(self, dtype: DType, scaling: str | None, kernel: str | None) -> GemmCurve | None:
        """accelerator_curve of a math format, remembered."""
        key = (dtype, scaling, kernel)
        if key not in self._curves:
            self._curves[key] = accelerator_curve(self.cluster.accelerator, dtype, scaling, kernel)
        return self._curves[key]

    def grouped_prior(self, g: GroupedKernel, dtype: DType, scaling: str | None = None,
                      kernel: str | None = None) -> GemmCurve | None:  # fmt: skip
        """The dense GEMM curve that prices a grouped GEMM with no kernel table of its own (a prior:
        each expert's GEMM as the dense curve times a GEMM of its K, its fraction, K-loop share and
        launch latency); None where the family has a fitted table or the format no curve."""
        if g.compute_fraction is not None or self.ideal:
            return None
        return self._curve(self.math_dtype(dtype), scaling, kernel)

    def grouped_kernel(self, op: Op) -> GroupedKernel | None:
        """The grouped-GEMM kernel of an MoE expert matmul (None for any other op)."""
        s = op.shape
        if op.kind is not OpKind.MATMUL or s is None or not s.grouped:
            return None
        from roofline.simulator.grouped_gemm import grouped_kernel  # MoE experts only: a dense model loads none

        return grouped_kernel(s.grouped, self.cluster.accelerator.architecture, self.math_dtype(op.dtype).value)

    def _compute_s(self, op: Op) -> float:
        if op.flops == 0:
            return 0.0
        scaling, kernel = (op.shape.scaling, op.shape.kernel) if op.shape is not None else (None, None)
        peak, fraction = self.flops_rate(op.kind, op.dtype, scaling, kernel)
        curve = self.gemm_curve(op)
        g = None if self.ideal else self.grouped_kernel(op)
        if g is not None and op.shape is not None:  # grouped GEMM: its padded tile math (grouped_gemm.py)
            from roofline.simulator.grouped_gemm import tile_flops

            s = op.shape
            work = tile_flops(s.m, s.n, s.k, s.batch, self._sm_count, g.tile_m, g.tile_n, g.tile_overhead_k)
            prior = self.grouped_prior(g, op.dtype, scaling, kernel)
            if prior is not None:  # no kernel table: the dense curve's fraction and K-loop share
                fraction *= k_efficiency(s.k, prior.k_half)
            return work / (peak * (g.compute_fraction or fraction))
        if op.kind is OpKind.MATMUL and op.shape is not None and not self.ideal:
            s = op.shape
            if not self._gemv_rows(op):  # a matrix-vector product fills no row tile
                fraction *= wave_utilization(s.m, s.n, s.k, s.batch, self._sm_count, self._tiles)
            if curve is not None:  # the per-tile prologue/epilogue; one CTA's serial K loop as a floor
                fraction *= k_efficiency(s.k, curve.k_half)
                return max(op.flops / (peak * fraction), s.k * curve.k_step_s)
        return op.flops / (peak * fraction)

    def _fixed_s(self, op: Op) -> float:
        """Time per instance beyond compute and memory: kernel overheads, a GEMM curve's or a
        grouped-GEMM family's latency, a matrix-vector product's per-output time."""
        return (op.kernels * self._overhead_s + self._gemm_latency_s(op) + self._grouped_latency_s(op)
                + self._gemv_output_time_s(op))  # fmt: skip

    def _gemv_output_time_s(self, op: Op) -> float:
        rows = self._gemv_rows(op)
        return rows * op.shape.n * self._gemv_output_s if rows and op.shape is not None else 0.0

    def _gemm_latency_s(self, op: Op) -> float:
        curve = self.gemm_curve(op)
        return 0.0 if curve is None else curve.latency_s

    def _overlap_exponent_of(self, op: Op) -> float:
        g = None if self.ideal else self.grouped_kernel(op)
        return self._overlap_exponent if g is None or g.overlap_exponent is None else g.overlap_exponent

    def _grouped_latency_s(self, op: Op) -> float:
        g = None if self.ideal else self.grouped_kernel(op)
        if g is None:
            return 0.0
        scaling, kernel = (op.shape.scaling, op.shape.kernel) if op.shape is not None else (None, None)
        prior = self.grouped_prior(g, op.dtype, scaling, kernel)
        setup = g.expert_setup_s * op.shape.resident_groups if op.shape is not None else 0.0
        return (g.latency_s + setup) * op.kernels + (0.0 if prior is None else prior.latency_s)

    def _memory_rate(self, op: Op) -> float:
        """Achievable HBM bytes/s of the op: a grouped GEMM's family fraction where it has one."""
        g = None if self.ideal else self.grouped_kernel(op)
        if g is None or g.memory_fraction is None:
            return self._memory_bytes_per_s
        return self.cluster.accelerator.memory.bandwidth * g.memory_fraction

    def _gemv_rows(self, op: Op) -> float:
        if self._gemv_below_m <= 1:
            return 0.0
        plain = op.shape is not None and bool(op.shape.grouped) and runs_plain_groups(self.grouped_kernel(op))
        return gemv_rows(op, self._gemv_below_m, plain)

    def memory_bytes(self, op: Op) -> float:
        """Bytes the op moves: a matmul run as matrix-vector products reads its weights once per row."""
        rows = self._gemv_rows(op)
        groups = op.shape.batch if op.shape is not None else 1
        return op.bytes + gemv_extra_bytes(rows, groups, op.weight_bytes) if rows else op.bytes

    def _comm(self, op: Op) -> tuple[float, str]:
        if op.collective is None:
            return 0.0, ""
        group = op.collective.group
        if group not in self._topologies:
            self._topologies[group] = topology_for(self.cluster, group, self.plan)
        cost = self.collectives.cost(
            op.collective.kind, op.collective.message_bytes, self._topologies[group], routing=op.collective.routing
        )
        return cost.time_s, f"{cost.algorithm}/{cost.protocol} over {' + '.join(cost.levels) or '-'}"

    def cost(self, op: Op) -> OpCost:
        """The op's cost (remembered: an op that comes back, in the next decode step or the next
        configuration on this cluster and plan, is not costed again)."""
        return self._costs.get(op, lambda: self._cost(op))

    def runs_weight_only(self, dtype: DType) -> bool:
        """This low-precision format has no tensor-core math here: its GEMMs dequantise the weights and
        multiply bf16 activations (math_dtype), so no activation-quantise pass runs."""
        return self.math_dtype(dtype) is not dtype.compute_dtype

    def attention_timing(self, op: Op) -> AttentionTiming | None:
        """The by-shape timing of an attention op on this accelerator, or None (single fraction): the
        curves where the part has them, else a decode call's KV stream where it has a fraction of its
        own (EfficiencySpec.decode_attention_memory_fraction)."""
        if op.kind is not OpKind.ATTENTION:
            return None
        if self._attention is not None:
            return self._attention.timing(op)
        return self._decode_stream_timing(op)

    def _decode_stream_timing(self, op: Op) -> AttentionTiming | None:
        acc = self.cluster.accelerator
        fraction = acc.efficiency.decode_attention_memory_fraction
        call = op.attention
        if self.ideal or fraction is None or call is None or call.phase is not Phase.DECODE:
            return None
        peak = self.peak_flops_per_s(op.dtype)
        return AttentionTiming(1.0 / (peak * self._attention_fraction), 0.0, 1.0 / (acc.memory.bandwidth * fraction),
                               op.kernels * self._overhead_s, "decode attention: a KV stream")  # fmt: skip

    def _cost(self, op: Op) -> OpCost:
        if is_activation_quantize(op) and self.runs_weight_only(op.dtype):
            return OpCost(op=op, compute_s=0.0, memory_s=0.0, comm_s=0.0, overhead_s=0.0, detail="weight-only: no pass",
                          overlap_exponent=self._overlap_exponent)  # fmt: skip
        timing = self.attention_timing(op)
        if timing is not None:
            compute_s, memory_s = attention_seconds(op.flops, op.bytes, timing)
            comm_s, detail = self._comm(op)  # a context-parallel ring carries KV alongside
            return OpCost(op=op, compute_s=compute_s, memory_s=memory_s, comm_s=comm_s, overhead_s=timing.floor_s,
                          detail=detail or timing.note, overlap_exponent=self._overlap_exponent)  # fmt: skip
        is_comm = op.kind is OpKind.COLLECTIVE  # other ops may carry overlapped traffic (CP ring)
        comm_s, detail = self._comm(op)
        return OpCost(
            op=op,
            compute_s=0.0 if is_comm else self._compute_s(op),
            memory_s=0.0 if is_comm else self.memory_bytes(op) / self._memory_rate(op),
            comm_s=comm_s,
            overhead_s=0.0 if is_comm else self._fixed_s(op),
            detail=detail,
            overlap_exponent=self._overlap_exponent_of(op),
        )


_SHARED_MODELS = Memo(max_entries=64)  # each holds up to two tables of MAX_ENTRIES


def shared_cost_model(cluster: Cluster, plan: ParallelPlan, ideal: bool = False, library: CommLibrary | None = None,
                      attention_kernel: str | None = None, runtime_attention: str | None = None
                      ) -> RooflineCostModel:  # fmt: skip
    """The cost model of this cluster and plan, the same object for every call that names the same
    hardware objects (the catalog hands out one object per id), so what it remembers is reused
    across calls. A cluster equal in value but made of other objects gets a model of its own."""
    library = library or load_library()
    key = (id(cluster.system), id(cluster.accelerator), id(cluster.scale_up.link),
           id(cluster.scale_out.link) if cluster.scale_out else None, cluster.num_gpus, id(library), plan, ideal,
           attention_kernel, runtime_attention)  # fmt: skip

    def build() -> RooflineCostModel:
        return RooflineCostModel(cluster, plan, ideal, library, attention_kernel, runtime_attention=runtime_attention)

    model = _SHARED_MODELS.get(key, build)
    if model.cluster is cluster or model.cluster == cluster:
        return model
    return build()  # an id reused by another object
