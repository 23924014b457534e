"""Microbenchmarks with PyTorch: one timed kernel per case of `cases.py`.

Every operand and output is allocated before the clock starts (`out=` variants: torch.mm,
torch._scaled_mm, torch.add, aten silu, torch.sum); only scaled_dot_product_attention, which
has no out= variant, takes its output from the allocator (the caching allocator on CUDA: no
device allocation after the warm-up).

Operands rotate over several copies whose total exceeds twice the last-level cache (L2 on a
GPU), so each call reads its weights from device memory as a layer of a real model does, not
from a cache warmed by the previous repetition. Nothing is allocated beyond `memory_cap_bytes`:
a case whose single operand set would not fit is skipped and says so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from roofline.calibration.cases import BenchCase, Family
from roofline.calibration.device import DeviceInfo
from roofline.calibration.timing import Clock, CudaClock, ThreadClock, Timing, TimingPolicy, measure
from roofline.dtypes import DType

MAX_OPERAND_SETS = 64


@dataclass(frozen=True)
class Measurement:
    case: BenchCase
    timing: Timing | None
    note: str = ""  # why it was skipped, or what to know about it

    @property
    def time_s(self) -> float:
        return self.timing.median_s if self.timing else math.nan


def torch_dtype(torch: Any, dtype: DType) -> Any:
    table = {DType.FP32: torch.float32, DType.BF16: torch.bfloat16, DType.FP16: torch.float16}
    if dtype is DType.FP8:
        return torch.float8_e4m3fn
    return table[dtype]


def clock_for(torch: Any, device: DeviceInfo) -> Clock:
    if device.kind == "cuda":
        return CudaClock(torch)
    return ThreadClock() if device.compute_units == 1 else Clock()


class BenchRunner:
    def __init__(self, torch: Any, device: DeviceInfo, policy: TimingPolicy, memory_cap_bytes: float) -> None:
        self.torch, self.device, self.policy = torch, device, policy
        self.memory_cap_bytes = memory_cap_bytes
        self.target = "cuda" if device.kind == "cuda" else "cpu"
        self.clock = clock_for(torch, device)
        torch.manual_seed(0)

    def operand_sets(self, case: BenchCase) -> int:
        """Copies of the operands to rotate over: enough to spill twice the cache, within the cap."""
        footprint = max(case.footprint_bytes, 1.0)
        fits = int(self.memory_cap_bytes // footprint)
        if fits < 1:
            return 0
        return max(1, min(math.ceil(2.0 * self.device.cache_bytes / footprint), fits, MAX_OPERAND_SETS))

    def run(self, case: BenchCase) -> Measurement:
        sets = self.operand_sets(case)
        if sets < 1:
            return Measurement(case, None, "skipped: operands exceed the memory cap")
        build = {Family.MATMUL: self._matmul, Family.COPY: self._copy, Family.READ: self._read,
                 Family.ELEMENTWISE: self._elementwise, Family.ATTENTION: self._attention}.get(case.family)  # fmt: skip
        if build is None:
            return Measurement(case, None, "skipped: measured by the multi-GPU collective run")
        try:
            timing = measure(build(case, sets), self.clock, self.policy)  # operands freed on return
        except (RuntimeError, TypeError) as exc:  # a kernel this build/device refuses (e.g. an fp8 layout)
            return Measurement(case, None, f"skipped: {(str(exc).splitlines() or [''])[0][:120]}")
        finally:
            if self.device.kind == "cuda":
                self.torch.cuda.empty_cache()
        return Measurement(case, timing, f"{sets} operand sets" if sets > 1 else "")

    # ---- kernels: each builder allocates, then returns a callable that only launches --------------------

    def _randn(self, *shape: int, dtype: DType) -> Any:
        t = self.torch
        if dtype is DType.FP8:
            return t.randn(*shape, device=self.target, dtype=t.bfloat16).to(torch_dtype(t, dtype))
        return t.randn(*shape, device=self.target, dtype=torch_dtype(t, dtype))

    def _copies(self, first: Any, sets: int) -> list[Any]:
        """`sets` distinct buffers with the same values (a copy is much faster than drawing randn)."""
        return [first] + [first.clone() for _ in range(sets - 1)]

    def _empty(self, *shape: int, dtype: DType) -> Any:
        return self.torch.empty(shape, device=self.target, dtype=torch_dtype(self.torch, dtype))

    def _matmul(self, case: BenchCase, sets: int) -> Callable[[], Any]:
        t, m, n, k = self.torch, case.dim("m"), case.dim("n"), case.dim("k")
        a = self._copies(self._randn(m, k, dtype=case.dtype), sets)
        if case.dtype is DType.FP8:  # _scaled_mm wants B column-major, per-tensor fp32 scales, a 16-bit output
            b = [x.t() for x in self._copies(self._randn(n, k, dtype=case.dtype), sets)]
            c = [self._empty(m, n, dtype=DType.BF16) for _ in range(sets)]
            scale = t.ones((), device=self.target, dtype=t.float32)
            turn = itertools.cycle(range(sets))
            try:  # the out= overload; builds without it allocate C from the caching allocator
                t._scaled_mm(a[0], b[0], scale, scale, out_dtype=t.bfloat16, out=c[0])
                with_out = True
            except TypeError:
                with_out = False

            def scaled() -> Any:
                i = next(turn)
                if with_out:
                    return t._scaled_mm(a[i], b[i], scale, scale, out_dtype=t.bfloat16, out=c[i])
                return t._scaled_mm(a[i], b[i], scale, scale, out_dtype=t.bfloat16)

            return scaled
        w = self._copies(self._randn(n, k, dtype=case.dtype), sets)  # [N, K], as nn.Linear stores its weight
        c = [self._empty(m, n, dtype=case.dtype) for _ in range(sets)]
        turn = itertools.cycle(range(sets))

        def mm() -> Any:  # x @ W^T: the layout F.linear multiplies (a host BLAS is much slower on it at small M)
            i = next(turn)
            return t.mm(a[i], w[i].t(), out=c[i])

        return mm

    def _elements(self, case: BenchCase) -> int:
        return int(case.dim("bytes") // case.dtype.bytes_per_element)

    def _copy(self, case: BenchCase, sets: int) -> Callable[[], Any]:
        n = self._elements(case)
        x = self._copies(self._randn(n, dtype=case.dtype), sets)
        y = [self._empty(n, dtype=case.dtype) for _ in range(sets)]
        turn = itertools.cycle(range(sets))

        def copy() -> Any:
            i = next(turn)
            return y[i].copy_(x[i])

        return copy

    def _read(self, case: BenchCase, sets: int) -> Callable[[], Any]:
        t, n = self.torch, self._elements(case)
        x = self._copies(self._randn(n, dtype=case.dtype), sets)
        out = self._empty(dtype=case.dtype)
        turn = itertools.cycle(range(sets))

        def read() -> Any:
            return t.sum(x[next(turn)], dim=0, out=out)

        return read

    def _elementwise(self, case: BenchCase, sets: int) -> Callable[[], Any]:
        t, n = self.torch, case.dim("elements")
        a = self._copies(self._randn(n, dtype=case.dtype), sets)
        b = self._copies(self._randn(n, dtype=case.dtype), sets)
        c = [self._empty(n, dtype=case.dtype) for _ in range(sets)]
        turn = itertools.cycle(range(sets))
        if case.variant == "add":

            def add() -> Any:
                i = next(turn)
                return t.add(a[i], b[i], out=c[i])

            return add
        d = [self._empty(n, dtype=case.dtype) for _ in range(sets)]

        def silu_mul() -> Any:  # t = silu(gate); y = t * up
            i = next(turn)
            t._C._nn.silu(a[i], out=d[i])
            return t.mul(d[i], b[i], out=c[i])

        return silu_mul

    def _attention(self, case: BenchCase, sets: int) -> Callable[[], Any]:
        sdpa = self.torch.nn.functional.scaled_dot_product_attention
        batch, hq, hkv, dh = case.dim("batch"), case.dim("heads"), case.dim("kv_heads"), case.dim("head_dim")
        prefill = case.variant == "prefill"
        length = case.dim("tokens") if prefill else case.dim("context")
        new = length if prefill else 1
        q = self._copies(self._randn(batch, hq, new, dh, dtype=case.dtype), sets)
        k = self._copies(self._randn(batch, hkv, length, dh, dtype=case.dtype), sets)
        v = self._copies(self._randn(batch, hkv, length, dh, dtype=case.dtype), sets)
        turn = itertools.cycle(range(sets))
        gqa = hq != hkv

        def attention() -> Any:
            i = next(turn)
            return sdpa(q[i], k[i], v[i], is_causal=prefill, enable_gqa=gqa)

        return attention
