"""Step time of a mixed continuous-batching step, fast enough for a simulation of thousands of steps.

A step holds D decode sequences (mean context c) and prefill chunks of P_i new tokens reaching
context C_i. The cost model is evaluated on grids and interpolated (log-log); a grid value is
computed the first time a step reads it, so a simulation pays only for the cells it visits:
- base(T): every operator for T tokens with a context of one token: matmuls, norms, collectives,
  LM head, sampling -- what depends on the token count only; head(R), its LM-head and sampling
  part, is paid only for the R rows that emit a token (decodes, and a prompt chunk's last token);
- decode_attention(D, c) = step(D sequences at context c) - base(D): the context-dependent part;
- prefill_attention(P, C) = what a chunk of P tokens at context C adds on its lane: the step with one
  chunk on every lane (attention-DP replica x pipeline micro-batch) minus body and head of those
  tokens, per micro-batch; the busiest attention-DP replica sets the pace.
step = body(D + sum P_i) + head(D + chunks) + decode_attention(D, c) + sum prefill_attention(P_i, C_i)
       + host overheads, where body = base - head.
Speculative decoding (MTP heads or a draft model): decoding sequences put 1 + k tokens through the
target model and the drafter runs k times. Pipeline parallelism: a step is `pp` micro-batches in
flight; its period is max(one micro-batch through all stages, pp x the slowest stage).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, overload

import numpy as np

from roofline.hardware_specs.cluster import Cluster
from roofline.ir import OpClass, Phase, StepShape
from roofline.simulator.collectives import load_library
from roofline.simulator.cost import shared_cost_model
from roofline.simulator.engine import time_step
from roofline.simulator.host import graph_batch
from roofline.simulator.plan import Scenario, stage_placements
from roofline.simulator.serving.engine_config import EngineConfig
from roofline.workloads.base import Workload

POINTS_PER_OCTAVE = 2
HEAD_CLASSES = (OpClass.LM_HEAD, OpClass.SAMPLING)


def log_grid(high: int) -> np.ndarray:
    """1 .. high, geometric, POINTS_PER_OCTAVE points per doubling, integers, high included."""
    n = max(2, int(math.log2(max(high, 2)) * POINTS_PER_OCTAVE) + 1)
    return np.unique(np.round(np.geomspace(1, max(high, 2), n)).astype(np.int64))


def token_grid(high: int) -> np.ndarray:
    """Token counts where the step time is evaluated: the log grid plus both sides of every
    multiple of 64 (GEMM tile edges, where the time jumps), coarser above 16k tokens."""
    step = 64 * max(1, math.ceil(high / 16384))
    edges = np.arange(step, high + 1, step)
    return np.unique(np.concatenate([log_grid(high), edges, edges + 1, [high]])).astype(np.int64)


class _LogAxis:
    """A grid's log coordinates as Python floats: locating a point is one bisect, no numpy round-trip."""

    __slots__ = ("logs", "last", "array")

    def __init__(self, grid: np.ndarray) -> None:
        self.logs: list[float] = [math.log(float(g)) for g in grid]
        self.last = len(self.logs) - 2
        self.array = np.array(self.logs)

    def locate_many(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`locate` for an array of points."""
        logs = self.array
        lx = np.clip(np.log(np.maximum(x, 1.0)), logs[0], logs[-1])
        i = np.clip(np.searchsorted(logs, lx, side="right") - 1, 0, self.last)
        return i, (lx - logs[i]) / (logs[i + 1] - logs[i])

    def locate(self, x: float) -> tuple[int, float]:
        """Cell i and fraction f of log(max(x, 1)) in it, clamped to the grid's ends."""
        logs = self.logs
        lx = math.log(x) if x > 1.0 else 0.0
        if lx <= logs[0]:
            lx = logs[0]
        elif lx >= logs[-1]:
            lx = logs[-1]
        i = bisect_right(logs, lx) - 1
        i = 0 if i < 0 else (self.last if i > self.last else i)
        return i, (lx - logs[i]) / (logs[i + 1] - logs[i])


class _Curve:
    """A 1-D table on a log axis, read with plain float arithmetic (np.interp's formula). Its values
    are computed when a read first needs them (`value_at(index)`), so a simulation that visits a few
    token counts costs a few evaluations of the cost model, not the whole grid."""

    __slots__ = ("axis", "values", "value_at")

    def __init__(self, grid: np.ndarray, value_at: Callable[[int], float]) -> None:
        self.axis, self.value_at = _LogAxis(grid), value_at
        self.values: list[float | None] = [None] * len(grid)

    def at(self, i: int) -> float:
        v = self.values[i]
        if v is None:
            v = self.values[i] = self.value_at(i)
        return v

    def __call__(self, x: float) -> float:
        i, f = self.axis.locate(x)
        v0 = self.at(i)
        return v0 + (self.at(i + 1) - v0) * f if f else v0

    def table(self) -> np.ndarray:
        """Every value (computing the missing ones)."""
        return np.array([self.at(i) for i in range(len(self.values))])


class _Surface:
    """A 2-D table bilinear in (log x, log y), clamped at the edges, on floats. Values are
    computed on first read (`value_at(i, j)`); a corner whose weight is zero is not needed."""

    __slots__ = ("x", "y", "rows", "value_at")

    def __init__(self, gx: np.ndarray, gy: np.ndarray, value_at: Callable[[int, int], float]) -> None:
        self.x, self.y, self.value_at = _LogAxis(gx), _LogAxis(gy), value_at
        self.rows: list[list[float | None]] = [[None] * len(gy) for _ in gx]

    def at(self, i: int, j: int) -> float:
        v = self.rows[i][j]
        if v is None:
            v = self.rows[i][j] = self.value_at(i, j)
        return v

    def __call__(self, x: float, y: float) -> float:
        i, fx = self.x.locate(x)
        j, fy = self.y.locate(y)
        return self._bilinear(i, j, 1 - fx, fx, fy)

    def _bilinear(self, i: int, j: int, a: float, b: float, fy: float) -> float:
        # the four corners in a fixed order; a corner of weight zero adds 0.0 and is not computed
        at = self.at
        lo_j = at(i, j) * a * (1 - fy) if a and fy != 1 else 0.0
        hi_j = at(i + 1, j) * b * (1 - fy) if b and fy != 1 else 0.0
        lo_k = at(i, j + 1) * a * fy if a and fy else 0.0
        hi_k = at(i + 1, j + 1) * b * fy if b and fy else 0.0
        return lo_j + hi_j + lo_k + hi_k

    def row(self, x: float) -> Callable[[float], float]:
        """The surface at a fixed x as a function of y (x's cell and weights found once)."""
        i, fx = self.x.locate(x)
        a, b, locate, bilinear = 1 - fx, fx, self.y.locate, self._bilinear

        def at(y: float) -> float:
            j, fy = locate(y)
            return bilinear(i, j, a, b, fy)

        return at

    def row_many(self, x: float) -> Callable[[np.ndarray], np.ndarray]:
        """`row(x)` for an array of y: one pass of array arithmetic, the cells it reads filled first."""
        i, fx = self.x.locate(x)
        a, b = 1 - fx, fx

        def at(y: np.ndarray) -> np.ndarray:
            j, fy = self.y.locate_many(y)
            cells = np.unique(j).tolist()
            lo, hi = self._filled(i, cells, a != 0), self._filled(i + 1, cells, b != 0)
            return lo[j] * a * (1 - fy) + hi[j] * b * (1 - fy) + lo[j + 1] * a * fy + hi[j + 1] * b * fy

        return at

    def _filled(self, i: int, cells: list[int], needed: bool) -> np.ndarray:
        """Row i as an array with both corners of each cell computed (zeros where never needed)."""
        if needed:
            for j in cells:
                self.at(i, j)
                self.at(i, j + 1)
        return np.array([0.0 if v is None else v for v in self.rows[i]])

    def table(self) -> np.ndarray:
        """Every value (computing the missing ones)."""
        return np.array([[self.at(i, j) for j in range(len(row))] for i, row in enumerate(self.rows)])


@dataclass(frozen=True)
class Draft:
    """Speculative decoding with a separate draft model: `tokens` drafted one at a time per step,
    each accepted with probability `acceptance` given the previous one was."""

    workload: Workload
    tokens: int
    acceptance: float


class StepTimeModel:
    """Interpolated step times for one model, cluster, parallel plan and engine."""

    def __init__(self, workload: Workload, cluster: Cluster, scenario: Scenario, engine: EngineConfig,
                 max_context: int, max_decode: int, ideal: bool = False,
                 draft: Draft | None = None) -> None:  # fmt: skip
        self.workload, self.scenario, self.engine, self.draft = workload, scenario, engine, draft
        self._placements = stage_placements(workload, scenario.plan)
        self._cost = shared_cost_model(cluster, scenario.plan, ideal=ideal, library=load_library(scenario.comm_library),
                                       runtime_attention=engine.kernels.attention)  # fmt: skip
        self._pp = scenario.plan.pp
        self._verify = 1 + scenario.mtp_drafts + (draft.tokens if draft else 0)
        verify = self._verify
        self._draft_model = (
            StepTimeModel(draft.workload, cluster, replace(scenario, mtp_drafts=0), engine.model_copy(
                update={"step_overhead": 0.0, "per_sequence_overhead": 0.0}), max_context, max_decode, ideal)
            if draft else None
        )  # fmt: skip
        # prefill chunks are tabulated one per lane: an attention-DP replica x a pipeline micro-batch
        self._lanes = scenario.plan.attn_dp * self._pp
        max_tokens = max(engine.max_num_tokens * self._lanes, max_decode * verify) + max_decode * verify
        self.token_grid = token_grid(max_tokens)
        self.decode_grid = log_grid(max_decode)
        self.context_grid = log_grid(max_context)
        self.chunk_grid = log_grid(engine.max_num_tokens)  # body() carries the tile edges
        # each table is filled where the simulation reads it (the values are those of the whole grid)
        self._base_curve = _Curve(self.token_grid, lambda i: self._base_and_head(i)[0])
        self._head_curve = _Curve(self.token_grid, lambda i: self._base_and_head(i)[1])
        self._decode_surface = _Surface(self.decode_grid, self.context_grid, self._decode_attention_at)
        self._prefill_surface = _Surface(self.chunk_grid, self.context_grid, self._prefill_attention_at)

    def _base_and_head(self, i: int) -> tuple[float, float]:
        """base(T) and head(T) at token-grid point i: T tokens at a context of one token."""
        return self._time(Phase.DECODE, int(self.token_grid[i]), 1, 1, with_head=True)

    def _decode_attention_at(self, i: int, j: int) -> float:
        """What D decoding sequences at context c add over base(D x verify) (grid point i, j)."""
        d, c, verify = int(self.decode_grid[i]), int(self.context_grid[j]), self._verify
        return max(0.0, self._time(Phase.DECODE, d, verify, c + verify - 1) - self._base_curve(d * verify))

    def _prefill_attention_at(self, i: int, j: int) -> float:
        """What a chunk of P tokens reaching context C adds on its lane (grid point i, j)."""
        p, c, lanes = int(self.chunk_grid[i]), int(self.context_grid[j]), self._lanes
        step_s = self._time(Phase.PREFILL, lanes, p, max(p, c))
        body_s = self._base_curve(lanes * p) - self._head_curve(lanes * p)
        return max(0.0, (step_s - body_s - self._head_curve(lanes)) / self._pp)

    @property
    def base_s(self) -> np.ndarray:
        """base(T) on the whole token grid."""
        return self._base_curve.table()

    @property
    def head_s(self) -> np.ndarray:
        """LM head, logits gather and sampling per emitting row, on the whole token grid."""
        return self._head_curve.table()

    @property
    def decode_attention_s(self) -> np.ndarray:
        return self._decode_surface.table()

    @property
    def prefill_attention_s(self) -> np.ndarray:
        return self._prefill_surface.table()

    @property
    def verify_tokens(self) -> int:
        """Tokens each decoding sequence puts through the target model per step."""
        return self._verify

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens a decode step emits per sequence: 1 + a + ... + a^k for k drafts."""
        if self.draft is not None:
            return sum(self.draft.acceptance**i for i in range(self.draft.tokens + 1))
        return self.scenario.tokens_per_decode_step

    @overload
    def _time(self, phase: Phase, batch: int, new_tokens: int, context: int) -> float: ...
    @overload
    def _time(self, phase: Phase, batch: int, new_tokens: int, context: int,
              with_head: Literal[True]) -> tuple[float, float]: ...  # fmt: skip

    def _time(self, phase: Phase, batch: int, new_tokens: int, context: int,
              with_head: bool = False) -> float | tuple[float, float]:  # fmt: skip
        micro = max(1, -(-batch // self._pp))
        step = StepShape(phase, micro, new_tokens, context)
        timing = time_step(self.workload, step, self.scenario, self._cost, self._placements)
        micro_batches = min(self._pp, batch)
        period = max(timing.time_s, micro_batches * timing.slowest_stage_s)
        if not with_head:
            return period
        head = sum(c.total_s for c in timing.costs if c.op.op_class in HEAD_CLASSES or c.op.name.startswith("logits"))
        return period, head * micro_batches

    def head(self, rows: float | np.ndarray) -> np.ndarray:
        """LM head + logits gather + sampling for `rows` sequences that emit a token."""
        return np.vectorize(self._head_curve, otypes=[float])(rows)

    def body(self, tokens: float | np.ndarray) -> np.ndarray:
        """Every operator but the head, for `tokens` tokens."""
        return self.base(tokens) - self.head(tokens)

    def base(self, tokens: float | np.ndarray) -> np.ndarray:
        return np.vectorize(self._base_curve, otypes=[float])(tokens)

    def decode_attention(self, decodes: np.ndarray, context: np.ndarray) -> np.ndarray:
        """The decode surface at each (decodes, context) pair; 0 where nothing decodes."""
        read = np.vectorize(lambda d, c: self._decode_surface(d, c) if d > 0 else 0.0, otypes=[float])
        return read(decodes, context)

    def prefill_attention(self, chunk: np.ndarray, context: np.ndarray) -> np.ndarray:
        """The prefill surface at each (chunk, context) pair; 0 for an empty chunk."""
        read = np.vectorize(lambda p, c: self._prefill_surface(p, c) if p > 0 else 0.0, otypes=[float])
        return read(chunk, context)

    def padded_decodes(self, decodes: int) -> int:
        """The rows a decode-only step of `decodes` sequences runs: a runtime that replays captured
        CUDA graphs pads each micro-batch to the smallest captured size that holds it
        (host.graph_batch, as `estimate` does); the dummy rows run every operator but attention."""
        micro = -(-decodes // self._pp)
        return max(decodes, graph_batch(self.engine, micro) * min(self._pp, decodes))

    def _decode_only_fixed(self, decodes: int) -> float:
        """What a decode-only step of `decodes` sequences costs on the device whatever the context: body
        and head of its tokens (padded to the captured CUDA graph)."""
        tokens = self.padded_decodes(decodes) * self._verify
        return self._base_curve(tokens)  # body + head of every (padded) row

    def decode_only(self, decodes: int) -> Callable[[float], float]:
        """step_s(decodes, context) as a function of the context alone, for a batch that only decodes:
        what does not depend on the context (body, head, the decode count's cell of the attention
        surface) is worked out once; the host overheads join as `engine.with_host_s` says."""
        fixed, engine = self._decode_only_fixed(decodes), self.engine
        attention = self._decode_surface.row(decodes)
        if self._draft_model is not None and self.draft is not None:
            drafts, drafted = self.draft.tokens, self._draft_model.decode_only(decodes)
            return lambda context: engine.with_host_s(fixed + attention(context) + drafts * drafted(context), decodes)
        return lambda context: engine.with_host_s(fixed + attention(context), decodes)

    def decode_only_many(self, decodes: int) -> Callable[[np.ndarray], np.ndarray]:
        """`decode_only(decodes)` for an array of contexts (one vectorised call for a run of steps)."""
        fixed, engine = self._decode_only_fixed(decodes), self.engine
        attention = self._decode_surface.row_many(decodes)
        if self._draft_model is not None and self.draft is not None:
            drafts, drafted = self.draft.tokens, self._draft_model.decode_only_many(decodes)
            return lambda contexts: engine.with_host_s(fixed + attention(contexts) + drafts * drafted(contexts),
                                                       decodes)  # fmt: skip
        return lambda contexts: engine.with_host_s(fixed + attention(contexts), decodes)

    def step_s(self, decodes: int, decode_context: float, chunks: Sequence[tuple[int, int]] = ()) -> float:
        """One engine step: `decodes` sequences at mean context `decode_context`, prefill chunks as
        (new tokens, context reached). Plain float arithmetic on the tables (called once per simulated step)."""
        verify = self._verify
        rows = self.padded_decodes(decodes) if decodes and not chunks else decodes  # a decode-only step replays a graph
        tokens = rows * verify
        for p, _ in chunks:
            tokens += p
        if tokens == 0:
            return 0.0
        head = self._head_curve
        emitting = rows * verify + len(chunks)  # a prompt chunk's logits: its last token at most
        t = (self._base_curve(tokens) - head(tokens)) + head(emitting)
        if decodes:
            t += self._decode_surface(decodes, decode_context)
            if self._draft_model is not None and self.draft is not None:
                t += self.draft.tokens * self._draft_model.step_s(decodes, decode_context)
        if chunks:  # attention-DP replicas take prompts of their own: the busiest one sets the pace
            surface = self._prefill_surface
            per_chunk = [surface(p, c) if p > 0 else 0.0 for p, c in chunks]
            t += max(sum(per_chunk) / self.scenario.plan.attn_dp, max(per_chunk))
        return float(self.engine.with_host_s(t, decodes + len(chunks)))
