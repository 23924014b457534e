"""Attention kernel time by shape, from curves in data/attention/kernels.yaml.

An attention op that carries its call shape (`Op.attention`) is timed here on the accelerators the
YAML maps to a kernel family (Hopper, Blackwell; others keep the single `attention_fraction`):

Prefill (context FMHA, FA3 / TRT-LLM class). Each CTA owns one (sequence, head, `tile_q` query
rows) tile and walks the KV tiles its rows can see (the causal triangle: the last query tile sees
all of them), paying `tile_overhead` KV-tile equivalents on top (Q load, softmax rescale, O
write). The CTAs are spread over the SMs; the kernel takes

    compute_s = max(CTA work / SMs, the longest CTA) x time of one KV tile on one SM
    (one KV tile = 2 x tile_q x tile_kv x (head_dim + head_dim_v + score_dims) FLOPs at peak / SMs x
    fraction; `score_dims`: the softmax's per-score cost (exponentials on the special-function units,
    a fixed cost per score element whatever the head dim) in matmul columns, so a small head dim runs
    at a lower fraction of peak, as the FA3 paper's hdim 64 panel does)

so efficiency rises with the context (more tiles per CTA over the fixed overhead) and with
batch x heads (enough CTAs that the longest one stops setting the time). With an FP8 KV cache
TensorRT-LLM runs the FP8 context FMHA, so the FP8 curve and the FP8 peak apply.

Decode (generation, XQA / FlashInfer / FlashMLA class): memory-bound; the KV bytes (and the op's
other bytes) stream at `bandwidth_fraction` of the spec HBM bandwidth. Its math runs at the
context kernel's fraction of the op's format peak; where the kernel dequantises an FP8 cache to
BF16 (FlashMLA), each KV element it loads costs `dequant_ops_per_element` vector ops, once per
`dequant_rows_per_cta` query rows (heads x query tokens) that share the load.

Every call also pays a fitted per-call floor (launch, prologue, RoPE + KV-cache write kernels
that the measured op includes) in place of the generic kernel overhead.

The timing of a call is a few numbers that do not depend on the batch (`AttentionTiming`), so
the fast path (fast.py) prices its tables with the same numbers and `attention_seconds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from roofline.dtypes import DType
from roofline.ir import AttentionCall, Op, Phase
from roofline.yaml_io import read_yaml, validate_into

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from roofline.hardware_specs.schema import Accelerator

DATA_FILE = Path(__file__).resolve().parent / "data" / "attention" / "kernels.yaml"

Num = TypeVar("Num", float, "NDArray[Any]")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


SCORE_DIMS = "softmax cost of a KV tile per score element, in matmul columns: it costs head_dim + head_dim_v + this"
FLOOR = "per call; None: the accelerator's kernel overhead (a bare kernel call: no RoPE / cache write in it)"
RUNTIME_KERNELS = ("a runtime's attention kernel (engine YAML `kernels.attention`) -> {the part's family -> the curve "
                   "family that kernel runs}; a name or family not listed: the part's family")  # fmt: skip


class PrefillCurve(_Frozen):
    fraction: float = Field(gt=0.0, le=1.0, description="of the math format's dense peak, per SM")
    tile_overhead: float = Field(ge=0.0, description="KV-tile equivalents each CTA pays on top of its tiles")
    score_dims: float = Field(default=0.0, ge=0.0, description=SCORE_DIMS)
    floor_us: float | None = Field(default=None, ge=0.0, description=FLOOR)
    fitted_on: list[str] = Field(default_factory=list)
    source: str = Field(min_length=3)


class DecodeCurve(_Frozen):
    bandwidth_fraction: float = Field(gt=0.0, le=1.0, description="of the spec HBM bandwidth")
    floor_us: float | None = Field(default=None, ge=0.0, description="None: the accelerator's kernel overhead")
    fitted_on: list[str] = Field(default_factory=list)
    source: str = Field(min_length=3)


class Family(_Frozen):
    """One architecture's attention kernels: context curves by math format, decode curves by
    KV-cache format."""

    prefill: dict[str, PrefillCurve]
    decode: dict[str, DecodeCurve]
    source: str = Field(min_length=3)
    tile_q: int | None = Field(default=None, gt=0, description="None: the file's tile_q")
    tile_kv: int | None = Field(default=None, gt=0, description="None: the file's tile_kv")


class Member(_Frozen):
    family: str
    measured: bool = Field(default=False, description="the family's curves were fitted on this part's rows")
    sustained_clock_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    source: str = Field(min_length=3)


class AttentionCurves(_Frozen):
    """`accelerators`: parts with measurements (or a note of their own); `architectures`: the family
    of any other part by the first word of its `architecture` (catalog or user YAML)."""

    tile_q: int = Field(gt=0)
    tile_kv: int = Field(gt=0)
    dequant_ops_per_element: float = Field(ge=0.0)
    dequant_rows_per_cta: int = Field(gt=0)
    source: str = Field(min_length=3)
    families: dict[str, Family]
    accelerators: dict[str, Member]
    architectures: dict[str, Member]
    runtime_kernels: dict[str, dict[str, str]] = Field(default_factory=dict, description=RUNTIME_KERNELS)

    @model_validator(mode="after")
    def _known_families(self) -> AttentionCurves:
        named = {m.family for m in (*self.accelerators.values(), *self.architectures.values())}
        named |= {f for table in self.runtime_kernels.values() for f in table.values()}
        unknown = sorted(named - set(self.families))
        if unknown:
            raise ValueError(f"families {unknown} are named but not defined")
        return self

    def member(self, acc: Accelerator) -> Member | None:
        words = acc.architecture.split()
        return self.accelerators.get(acc.id) or (self.architectures.get(words[0]) if words else None)

    def family_for(self, member: Member, kernel: str | None) -> str:
        """The curve family a runtime's attention kernel runs on this part's family (the part's own
        family, fitted on TensorRT-LLM FMHA, where the kernel is unnamed or not mapped)."""
        return self.runtime_kernels.get(kernel or "", {}).get(member.family, member.family)


@lru_cache(maxsize=4)
def load_curves(path: Path = DATA_FILE) -> AttentionCurves:
    curves = validate_into(AttentionCurves, read_yaml(path), f"'{path}'")
    assert isinstance(curves, AttentionCurves)
    return curves


@dataclass(frozen=True, slots=True)
class AttentionTiming:
    """What one attention call costs on one accelerator, independent of its batch size:
    compute_s = max(flops x seconds_per_flop, min_compute_s), memory_s = bytes x seconds_per_byte,
    plus floor_s once per call."""

    seconds_per_flop: float
    min_compute_s: float
    seconds_per_byte: float
    floor_s: float
    note: str


def attention_seconds(flops: Num, bytes_: Num, timing: AttentionTiming) -> tuple[Num, Num]:
    """(compute_s, memory_s) of one call: floats, or numpy arrays over configurations."""
    memory: Any = bytes_ * timing.seconds_per_byte
    if isinstance(flops, (int, float)):
        compute: Any = max(flops * timing.seconds_per_flop, timing.min_compute_s) if flops > 0 else 0.0
        return compute, memory
    import numpy

    compute = numpy.where(flops > 0, numpy.maximum(flops * timing.seconds_per_flop, timing.min_compute_s), 0.0)
    return compute, memory


def _kv_tiles(call: AttentionCall, tile_q: int, tile_kv: int) -> list[int]:
    """KV tiles each query tile of one (sequence, head) walks: the causal triangle (capped at the
    window/top-k the call attends), or every tile when not causal."""
    q_len, kv_len = call.q_len, call.kv_len
    if not call.causal:
        return [-(-kv_len // tile_kv)] * -(-q_len // tile_q)
    prior = max(kv_len - q_len, 0)
    return [-(-min(prior + min(q_len, start + tile_q), kv_len) // tile_kv) for start in range(0, q_len, tile_q)]


def _attended_sum(call: AttentionCall) -> float:
    """KV entries the call's query rows attend, summed (one sequence, one head): the causal
    triangle's rows (the newest row sees kv_len) or q_len x kv_len. The timing's seconds per FLOP
    is the shape's; an op that does a share of the call's work (a context-parallel rank) applies
    it to its own FLOPs."""
    q, kv = call.q_len, call.kv_len
    if not call.causal:
        return float(q) * kv
    if kv >= q:
        return q * (kv - q) + q * (q + 1) / 2.0
    return kv * (kv + 1) / 2.0 + (q - kv) * float(kv)


class AttentionModel:
    """The curves of one accelerator (None from `for_accelerator` where the YAML has none)."""

    def __init__(self, curves: AttentionCurves, family_name: str, member: Member, acc: Accelerator,
                 memory_bytes_per_s: float, fallback: AttentionModel | None = None) -> None:  # fmt: skip
        self.curves, self.family_name, self.member, self.acc = curves, family_name, member, acc
        self.family = curves.families[family_name]
        self.memory_bytes_per_s = memory_bytes_per_s  # spec bandwidth (the curves' fractions apply to it)
        self.fallback = fallback  # the part's own family, for the calls this kernel's family has no curve of
        self.tile_q, self.tile_kv = self.family.tile_q or curves.tile_q, self.family.tile_kv or curves.tile_kv

    @classmethod
    def for_accelerator(cls, acc: Accelerator, curves: AttentionCurves | None = None,
                        kernel: str | None = None) -> AttentionModel | None:  # fmt: skip
        """`kernel`: the runtime's attention kernel (engine `kernels.attention`), None: TensorRT-LLM FMHA."""
        curves = curves or load_curves()
        member = curves.member(acc)
        if member is None:
            return None
        own = cls(curves, member.family, member, acc, acc.memory.bandwidth)
        name = curves.family_for(member, kernel)
        return own if name == member.family else cls(curves, name, member, acc, acc.memory.bandwidth, own)

    @property
    def _label(self) -> str:
        measured = self.member.measured or self.fallback is not None  # a kernel's family: fitted on its own data
        return self.family_name if measured else f"{self.family_name}, transferred"

    def _floor_s(self, floor_us: float | None) -> float:
        return self.acc.efficiency.kernel_overhead if floor_us is None else floor_us * 1e-6

    def _peak(self, dtype: DType) -> float | None:
        peak = self.acc.compute.peak_flops_per_s(dtype)
        return None if peak is None else peak * self.member.sustained_clock_fraction

    def _context_format(self, call: AttentionCall, op_dtype: DType) -> DType:
        """FP8 KV cache: TensorRT-LLM's FP8 context FMHA (FP8 Q, K, V) where the part has FP8 math."""
        if call.kv_dtype.compute_dtype is DType.FP8 and "fp8" in self.family.prefill and self._peak(DType.FP8):
            return DType.FP8
        return op_dtype.compute_dtype

    def timing(self, op: Op) -> AttentionTiming | None:
        """The op's timing, or None where the curves do not cover it (no call shape, a format
        without a curve): the caller keeps the single attention fraction."""
        call = op.attention
        if call is None:
            return None
        own = self._prefill(op, call) if call.phase is Phase.PREFILL else self._decode(op, call)
        return own if own is not None or self.fallback is None else self.fallback.timing(op)

    def _prefill(self, op: Op, call: AttentionCall) -> AttentionTiming | None:
        fmt = self._context_format(call, op.dtype)
        curve, peak = self.family.prefill.get(fmt.value), self._peak(fmt)
        if curve is None or peak is None or op.flops <= 0:
            return None
        tile_q, tile_kv = self.tile_q, self.tile_kv
        tiles = _kv_tiles(call, tile_q, tile_kv)
        units = sum(tiles) + len(tiles) * curve.tile_overhead  # per (sequence, head)
        longest = max(tiles) + curve.tile_overhead
        sms = self.acc.sram.sm_count
        dims = call.head_dim + call.head_dim_v + curve.score_dims
        unit_s = 2.0 * tile_q * tile_kv * dims * sms / (peak * curve.fraction)
        flops_per_sequence_head = 2.0 * (call.head_dim + call.head_dim_v) * _attended_sum(call)
        return AttentionTiming(
            seconds_per_flop=units * unit_s / sms / flops_per_sequence_head,
            min_compute_s=longest * unit_s,
            seconds_per_byte=1.0 / (self.memory_bytes_per_s * self._decode_fraction(call)),
            floor_s=self._floor_s(curve.floor_us),
            note=f"context FMHA {fmt.value} ({self._label})",
        )

    def _decode_fraction(self, call: AttentionCall) -> float:
        decode = self.family.decode
        curve = decode.get(call.kv_dtype.compute_dtype.value) or decode.get("bf16")
        return curve.bandwidth_fraction if curve is not None else 1.0

    def _decode(self, op: Op, call: AttentionCall) -> AttentionTiming | None:
        curve = self.family.decode.get(call.kv_dtype.compute_dtype.value)
        math_fmt = op.dtype.compute_dtype
        context = self.family.prefill.get(math_fmt.value)
        peak = self._peak(math_fmt)
        if curve is None or context is None or peak is None:
            return None
        seconds_per_flop = 1.0 / (peak * context.fraction)
        note = f"decode {call.kv_dtype.value} KV ({self._label})"
        if call.variant.startswith("mla") and call.kv_dtype.compute_dtype is DType.FP8 and math_fmt is not DType.FP8:
            seconds_per_flop += self._dequant_s_per_flop(call)
            note += ", FP8 KV dequantised to BF16"
        return AttentionTiming(seconds_per_flop, 0.0, 1.0 / (self.memory_bytes_per_s * curve.bandwidth_fraction),
                               self._floor_s(curve.floor_us), note)  # fmt: skip

    def _dequant_s_per_flop(self, call: AttentionCall) -> float:
        """Vector time of dequantising the cache, per attention FLOP: each CTA converts the K/V
        elements it loads, and `dequant_rows_per_cta` query rows (heads x query tokens) share one."""
        c = self.curves
        rows = call.heads // call.kv_heads * call.q_len
        ctas = math.ceil(rows / c.dequant_rows_per_cta)
        elements = call.kv_heads * call.head_dim_v * ctas  # per (sequence, KV entry): the FP8 latent (RoPE is BF16)
        flops = 2.0 * call.heads * call.q_len * (call.head_dim + call.head_dim_v)
        vector = self.acc.compute.peak_flops_per_s(DType.FP32)
        return elements * c.dequant_ops_per_element / flops / (vector or math.inf) if vector else 0.0
