"""The benchmark list: which kernels to time on a device, each with the operator the cost model times.

Every case carries an `Op` built with the same accounting as the workloads' operators (FLOPs,
bytes read and written, kernels launched), so the prediction of a case is exactly what the cost
model would charge that kernel inside an estimate. Torch-free: `bench.py` runs the cases.

Held-out cases: within each family, every third case (in the order of the grid) is left out of
the fit, so the error reported on them is an honest check of the fitted efficiencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from roofline.dtypes import DType
from roofline.ir import AttentionCall, Collective, CollectiveKind, MatmulShape, Op, OpClass, OpKind, Phase
from roofline.workloads.layers import causal_kv_sum

HOLD_OUT_EVERY = 3  # every third case of a family is held out of the fit


class Family(StrEnum):
    MATMUL = "matmul"
    COPY = "copy"  # y = x: reads and writes every byte
    READ = "read"  # sum(x): reads every byte (read-reduce)
    ELEMENTWISE = "elementwise"  # add; silu(gate) * up
    ATTENTION = "attention"  # scaled_dot_product_attention, prefill (causal) and decode
    ALL_REDUCE = "all_reduce"
    ALL_TO_ALL = "all_to_all"


FITTED_FAMILIES = (Family.MATMUL, Family.COPY, Family.READ, Family.ELEMENTWISE, Family.ATTENTION)
KERNEL_FAMILIES = FITTED_FAMILIES  # measured one kernel at a time (the collectives need every GPU at once)


@dataclass(frozen=True)
class BenchCase:
    family: Family
    variant: str  # matmul: "" | elementwise: add, silu_mul | attention: prefill, decode | ...
    dtype: DType
    dims: tuple[tuple[str, int], ...]
    op: Op
    footprint_bytes: float  # device memory of one set of operands
    held_out: bool = False

    @property
    def name(self) -> str:
        head = " ".join(p for p in (self.family.value, self.variant, self.dtype.value) if p)
        return f"{head} " + " ".join(f"{k}={v}" for k, v in self.dims)

    def dim(self, key: str) -> int:
        return dict(self.dims)[key]


@dataclass(frozen=True)
class AttentionHeads:
    num_heads: int
    num_kv_heads: int
    head_dim: int


@dataclass(frozen=True)
class Grid:
    """What to measure. Matmul shapes are M x N x K (activations [M, K] times weights [K, N])."""

    matmul_m: tuple[int, ...]
    matmul_nk: tuple[tuple[int, int], ...]
    stream_bytes: tuple[int, ...]  # copy / read buffer sizes
    elementwise_elements: tuple[int, ...]  # elements of the output
    heads: AttentionHeads
    attention_prefill: tuple[tuple[int, int], ...]  # (batch, prompt tokens)
    attention_decode: tuple[tuple[int, int], ...]  # (batch, context tokens)
    collective_bytes: tuple[int, ...] = field(default=())
    # (M, N, K) beyond the M x (N, K) product, in the model-level runs' format only
    matmul_extra: tuple[tuple[int, int, int], ...] = field(default=())


MiB = 2**20

# Host CPU: N/K of a transformer scaled down 4x (hidden 1024: QKV 1536, O 1024, gate+up 4096,
# down 1024 x 2048) and the LM head of the MoE run (8192 x 512: a short K, which sets a
# matrix-vector product's per-output time apart from its bandwidth), so a quick run takes seconds
# on two cores. M: 1 and 2 (the model-level runs' decode batch, model_run.spec_for: matrix-vector
# products on a host BLAS, EfficiencySpec.gemv_below_m), 16, 256 (their prefill) and 2048; five
# values, so the every-third hold-out falls on a different M for each N x K.
CPU_QUICK = Grid(
    matmul_m=(1, 2, 16, 256, 2048),
    matmul_nk=((1536, 1024), (1024, 1024), (4096, 1024), (1024, 2048), (8192, 512)),
    # the decode GEMMs of the quick model-level runs the product leaves out, at their batch (M = 2):
    # dense gate+up, down and LM head; the MoE run's QKV and O projections
    matmul_extra=((2, 7168, 1024), (2, 1024, 3584), (2, 8192, 1024), (2, 1280, 512), (2, 512, 1024)),
    stream_bytes=(1 * MiB, 16 * MiB, 256 * MiB),
    elementwise_elements=(2**16, 2**20, 2**23),
    heads=AttentionHeads(8, 2, 128),
    attention_prefill=((1, 256), (2, 512), (1, 1024)),
    attention_decode=((1, 1024), (8, 1024), (8, 4096)),
)
CPU_FULL = Grid(
    matmul_m=(1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096),
    matmul_nk=((6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336), (1536, 1024), (1024, 1024), (4096, 1024)),
    stream_bytes=(1 * MiB, 16 * MiB, 256 * MiB, 1024 * MiB),
    elementwise_elements=(2**16, 2**20, 2**23, 2**25),
    heads=AttentionHeads(32, 8, 128),
    attention_prefill=((1, 512), (1, 2048), (4, 1024)),
    attention_decode=((1, 2048), (8, 2048), (32, 4096)),
)
# GPU: Llama-3.1-8B layer shapes (QKV 6144 x 4096, O 4096 x 4096, gate+up 28672 x 4096, down 4096 x 14336),
# with Llama-3.1-70B's in --full; M from one decode token to a 16k-token prefill.
GPU_QUICK = Grid(
    matmul_m=(1, 16, 128, 1024, 4096, 16384),
    matmul_nk=((6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)),
    stream_bytes=(4 * MiB, 64 * MiB, 1024 * MiB),
    elementwise_elements=(2**20, 2**24, 2**27),
    heads=AttentionHeads(32, 8, 128),
    attention_prefill=((1, 1024), (1, 4096), (4, 2048)),
    attention_decode=((1, 4096), (16, 4096), (64, 8192)),
    collective_bytes=(1 * MiB, 16 * MiB, 256 * MiB),
)
GPU_FULL = Grid(
    matmul_m=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384),
    matmul_nk=GPU_QUICK.matmul_nk + ((10240, 8192), (8192, 8192), (57344, 8192), (8192, 28672)),
    stream_bytes=(1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB, 256 * MiB, 1024 * MiB, 4096 * MiB),
    elementwise_elements=(2**16, 2**20, 2**22, 2**24, 2**26, 2**28),
    heads=AttentionHeads(32, 8, 128),
    attention_prefill=((1, 1024), (1, 4096), (1, 8192), (4, 2048), (16, 1024)),
    attention_decode=((1, 2048), (1, 8192), (16, 4096), (64, 2048), (64, 8192), (256, 2048)),
    collective_bytes=(256 * 1024, 1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB, 256 * MiB, 1024 * MiB),
)


def grid_for(device_kind: str, full: bool) -> Grid:
    if device_kind == "cpu":
        return CPU_FULL if full else CPU_QUICK
    return GPU_FULL if full else GPU_QUICK


# ---- operators (the cost model's view of each kernel) -----------------------------------------------


def matmul_case(m: int, n: int, k: int, dtype: DType) -> BenchCase:
    """C[m, n] = A[m, k] B[k, n]: A and B in the format, C in 16 bits for 8-bit math (fp8 GEMMs
    write bf16), else in the format."""
    e = dtype.bytes_per_element
    out = max(e, 2.0) if dtype is DType.FP8 else e
    op = Op(name="matmul", kind=OpKind.MATMUL, op_class=OpClass.MLP, dtype=dtype, flops=2.0 * m * n * k,
            weight_bytes=k * n * e, activation_bytes=m * k * e + m * n * out,
            shape=MatmulShape(m=m, n=n, k=k))  # fmt: skip
    return BenchCase(Family.MATMUL, "", dtype, (("m", m), ("n", n), ("k", k)), op, op.bytes)


def stream_case(family: Family, size_bytes: int, dtype: DType) -> BenchCase:
    """copy: read and write `size_bytes`; read: sum over `size_bytes` (one add per element)."""
    elements = int(size_bytes // dtype.bytes_per_element)
    e = dtype.bytes_per_element
    if family is Family.COPY:
        op = Op(name="copy", kind=OpKind.ELEMENTWISE, op_class=OpClass.NORM, dtype=dtype,
                activation_bytes=2.0 * elements * e)  # fmt: skip
        footprint = 2.0 * elements * e
    else:
        op = Op(name="read", kind=OpKind.ELEMENTWISE, op_class=OpClass.NORM, dtype=dtype, flops=float(elements),
                activation_bytes=elements * e)  # fmt: skip
        footprint = elements * e
    return BenchCase(family, "", dtype, (("bytes", elements * int(e)),), op, footprint)


def elementwise_case(variant: str, elements: int, dtype: DType) -> BenchCase:
    """add: c = a + b (one kernel). silu_mul: t = silu(g); y = t * u (two kernels, as eager
    PyTorch runs a SwiGLU activation): reads g, t, u and writes t, y."""
    e = dtype.bytes_per_element
    if variant == "add":
        op = Op(name="add", kind=OpKind.ELEMENTWISE, op_class=OpClass.MLP, dtype=dtype, flops=float(elements),
                activation_bytes=3.0 * elements * e)  # fmt: skip
        footprint = 3.0 * elements * e
    else:
        op = Op(name="silu_mul", kind=OpKind.ELEMENTWISE, op_class=OpClass.MLP, dtype=dtype,
                flops=5.0 * elements, activation_bytes=5.0 * elements * e, kernels=2)  # fmt: skip
        footprint = 4.0 * elements * e
    return BenchCase(Family.ELEMENTWISE, variant, dtype, (("elements", elements),), op, footprint)


def attention_case(variant: str, batch: int, tokens: int, heads: AttentionHeads, dtype: DType) -> BenchCase:
    """scaled_dot_product_attention as the workloads count it (layers.attention_block_ops): QK^T
    and PV over the causal KV prefix; reads Q, K, V and writes O. prefill: `tokens` new tokens
    (causal); decode: one new token per sequence over a KV cache of `tokens`."""
    e = dtype.bytes_per_element
    new = tokens if variant == "prefill" else 1
    hq, hkv, dh = heads.num_heads, heads.num_kv_heads, heads.head_dim
    kv_sum = causal_kv_sum(tokens - new, new, None)
    phase = Phase.PREFILL if variant == "prefill" else Phase.DECODE
    call = AttentionCall(phase, batch, new, tokens, hq, hkv, dh, dh, True, "gqa", dtype)
    op = Op(name=f"attention_{variant}", kind=OpKind.ATTENTION, op_class=OpClass.ATTENTION, dtype=dtype,
            flops=batch * 2.0 * hq * (dh + dh) * kv_sum, activation_bytes=2.0 * batch * new * hq * dh * e,
            kv_read_bytes=batch * tokens * 2.0 * hkv * dh * e, attention=call)  # fmt: skip
    dims = (("batch", batch), ("tokens" if variant == "prefill" else "context", tokens), ("heads", hq),
            ("kv_heads", hkv), ("head_dim", dh))  # fmt: skip
    return BenchCase(Family.ATTENTION, variant, dtype, dims, op, op.bytes)


def collective_case(family: Family, size_bytes: int, num_devices: int, dtype: DType) -> BenchCase:
    kind = CollectiveKind.ALL_REDUCE if family is Family.ALL_REDUCE else CollectiveKind.ALL_TO_ALL
    op = Op(name=family.value, kind=OpKind.COLLECTIVE, op_class=OpClass.COMMUNICATION, dtype=dtype,
            collective=Collective(kind, "tp", float(size_bytes)))  # fmt: skip
    return BenchCase(family, "", dtype, (("bytes", size_bytes), ("gpus", num_devices)), op, 2.0 * size_bytes)


# ---- the list ---------------------------------------------------------------------------------------


def plan_cases(
    grid: Grid, matmul_dtypes: tuple[DType, ...], model_dtype: DType, num_devices: int = 1
) -> list[BenchCase]:
    """Every case of the grid, the held-out ones marked. FP8 GEMMs (torch._scaled_mm) need N and K
    multiples of 16; a shape the kernel still refuses is skipped when it runs, with the reason."""
    families: list[list[BenchCase]] = []
    product = [(m, n, k) for n, k in grid.matmul_nk for m in grid.matmul_m]
    matmuls = [
        matmul_case(m, n, k, dtype)
        for dtype in matmul_dtypes
        for m, n, k in product + (list(grid.matmul_extra) if dtype is model_dtype else [])
        if dtype is not DType.FP8 or (n % 16 == 0 and k % 16 == 0)
    ]
    families.append(matmuls)
    families.append([stream_case(Family.COPY, s, model_dtype) for s in grid.stream_bytes])
    families.append([stream_case(Family.READ, s, model_dtype) for s in grid.stream_bytes])
    families.append(
        [elementwise_case(v, n, model_dtype) for n in grid.elementwise_elements for v in ("add", "silu_mul")]
    )
    attention = [attention_case("prefill", b, t, grid.heads, model_dtype) for b, t in grid.attention_prefill]
    attention += [attention_case("decode", b, c, grid.heads, model_dtype) for b, c in grid.attention_decode]
    families.append(attention)
    if num_devices > 1:
        for family in (Family.ALL_REDUCE, Family.ALL_TO_ALL):
            families.append([collective_case(family, s, num_devices, model_dtype) for s in grid.collective_bytes])
    return [case for cases in families for case in (mark_held_out(cases) if _fitted(cases) else cases)]


def _fitted(cases: list[BenchCase]) -> bool:
    return bool(cases) and cases[0].family in FITTED_FAMILIES


def mark_held_out(cases: list[BenchCase]) -> list[BenchCase]:
    """Every third case (the 3rd, 6th, ...) held out of the fit."""
    return [replace(c, held_out=(i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1)) for i, c in enumerate(cases)]
