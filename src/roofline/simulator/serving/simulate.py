"""Discrete-event simulation of one serving replica's scheduler, step by step.

Each step the scheduler (as vLLM / SGLang / TensorRT-LLM do with chunked prefill):
1. schedules one token for every running sequence whose prompt is done (decode);
2. fills the rest of the token budget (`max_num_tokens`) with prompt chunks: first the sequences
   already prefilling, then new requests in arrival order while the batch limit and the KV cache
   allow (a request's KV: its isl + osl when the engine reserves whole sequences, else the tokens
   so far; on exhaustion the newest sequence is preempted and recomputed later);
3. runs the step (StepTimeModel); a prompt's last chunk emits the first token.
Seeded and deterministic; times in seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from roofline.errors import RooflineError
from roofline.simulator.serving.engine_config import EngineConfig
from roofline.simulator.serving.requests import Requests
from roofline.simulator.serving.step_model import StepTimeModel

MAX_STEPS = 2_000_000
QUIET_BLOCK_STEPS = 64  # first block of a decode-only stretch (doubling after each block)


@dataclass(frozen=True)
class SimulationResult:
    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    osl: np.ndarray
    steps: int
    mean_batch: float  # running sequences per step, averaged over time
    max_batch: int
    preemptions: int

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.arrival_s

    @property
    def tpot_s(self) -> np.ndarray:
        many = self.osl > 1
        return (self.finish_s[many] - self.first_token_s[many]) / (self.osl[many] - 1)

    @property
    def e2e_s(self) -> np.ndarray:
        return self.finish_s - self.arrival_s

    @property
    def duration_s(self) -> float:
        return float(self.finish_s.max() - self.arrival_s.min())

    @property
    def output_tokens_per_s(self) -> float:
        return float(self.osl.sum()) / self.duration_s if self.duration_s > 0 else math.inf


@dataclass
class _State:
    prefilled: np.ndarray  # prompt tokens computed
    generated: np.ndarray  # output tokens emitted (float: MTP emits fractional expected tokens)
    first: np.ndarray
    finish: np.ndarray


def _quiet_steps(decoding: np.ndarray, generated: np.ndarray, osl: np.ndarray, per_step: float,
                 kv_tokens: Callable[[np.ndarray], int], capacity_tokens: int, block: int,
                 engine: EngineConfig) -> int:  # fmt: skip
    """Decode steps from now after which no sequence has finished and the paged KV cache has not
    overflowed (no preemption): steps a decode-only batch takes unchanged but for its context.

    After j steps a sequence holds at most ceil(j x per_step) more tokens, so at most that rounded up to
    whole blocks more KV: j is safe while (sequences x that) fits the free cache. Fractional tokens per
    step (speculative decoding) keep a step of margin for rounding."""
    margin = 0 if per_step == 1.0 else 1
    remaining = float((osl[decoding] - generated[decoding]).min())
    quiet = math.ceil(remaining / per_step) - 1 - margin
    if engine.reserve_full_sequence or quiet <= 0:
        return max(0, quiet)
    room = capacity_tokens - kv_tokens(decoding)
    if room < 0:
        return 0
    growth_tokens = (room // (len(decoding) * block)) * block  # whole blocks each sequence may still take
    return max(0, min(quiet, math.floor(growth_tokens / per_step) - margin))


def _run_quiet(model: StepTimeModel, decodes: int, context: float, per_step: float, most: int, t: float,
               horizon_s: float) -> tuple[int, float, float]:  # fmt: skip
    """Up to `most` decode-only steps, stopping before a step that starts at or after the next arrival:
    (steps taken, clock after them, their summed time). The step times come a block at a time from
    one vectorised call; the clock and the busy time are summed step by step as a loop would."""
    step_s = model.decode_only_many(decodes)
    busy_s, taken, block = 0.0, 0, QUIET_BLOCK_STEPS
    while taken < most and t < horizon_s:
        n = min(block, most - taken)
        dt = step_s(context + np.arange(taken, taken + n) * per_step)
        clock = np.cumsum(np.concatenate(([t], dt)))  # clock[k]: when step k of the block starts
        late = np.flatnonzero(clock[:n] >= horizon_s)
        run = int(late[0]) if len(late) else n
        busy_s = float(np.cumsum(np.concatenate(([busy_s], dt[:run])))[-1])
        t, taken = float(clock[run]), taken + run
        if run < n:
            break
        block *= 2
    return taken, t, busy_s


def _advance(generated: np.ndarray, decoding: np.ndarray, per_step: float, steps: int) -> None:
    """Every decoding sequence emits `steps` x per_step tokens, summed as step-by-step would."""
    if per_step == 1.0:
        generated[decoding] += float(steps)
        return
    tokens = generated[decoding]
    for _ in range(steps):
        tokens += per_step
    generated[decoding] = tokens


def simulate(model: StepTimeModel, requests: Requests, engine: EngineConfig, kv_capacity_tokens: int,
             concurrency: int | None = None, prefix_hit: float = 0.0,
             request_overhead_s: float = 0.0,
             progress: Callable[[float], None] | None = None) -> SimulationResult:  # fmt: skip
    """Run every request through the scheduler. `concurrency`: closed loop with that many clients
    (arrivals then come from completions); `prefix_hit`: fraction of each prompt found in the
    prefix cache (not recomputed); `request_overhead_s`: front-end time before a request reaches
    the scheduler and after its last token (half each way); `progress(fraction)`: told the fraction of
    requests finished as it grows (by a percent at least)."""
    n = len(requests)
    isl, osl = requests.isl.astype(np.int64), requests.osl.astype(np.int64)
    prompt = np.maximum(1, np.round(isl * (1.0 - prefix_hit))).astype(np.int64)  # prompt tokens to compute
    skip = isl - prompt
    need = prompt.copy()  # tokens to prefill: the prompt, plus the output so far after a preemption
    block = engine.kv_block_tokens
    longest = int((-(-(isl + osl) // block) * block).max())  # whole blocks
    if longest > kv_capacity_tokens:
        raise RooflineError(
            f"one request needs {longest} tokens of KV (in {block}-token blocks) but the cache holds "
            f"{kv_capacity_tokens}; use more GPUs, a smaller KV dtype or shorter requests"
        )
    arrival = requests.arrival_s.astype(float).copy()
    if concurrency is not None:
        arrival[:] = np.nan
        arrival[: min(concurrency, n)] = 0.0
    st = _State(np.zeros(n, np.int64), np.zeros(n), np.full(n, np.nan), np.full(n, np.nan))
    per_step, verify = model.tokens_per_step, model.verify_tokens
    waiting: deque[int] = deque()
    running = np.zeros(0, np.int64)  # in admission order
    next_arrival, t, steps, preemptions = 0, 0.0, 0, 0
    completed, reported = 0, 0  # requests finished, and how many the last progress call counted
    released = min(concurrency, n) if concurrency is not None else n
    batch_time, max_batch = 0.0, 0
    reserved = -(-(isl + osl) // block) * block  # whole-sequence reservation, in blocks

    def kv_tokens(idx: np.ndarray) -> int:
        if engine.reserve_full_sequence:
            return int(reserved[idx].sum())
        recomputed = need[idx] - prompt[idx]  # output tokens re-prefilled after a preemption
        held = skip[idx] + st.prefilled[idx] + np.maximum(0, np.ceil(st.generated[idx]).astype(np.int64) - recomputed)
        return int((-(-held // block) * block).sum())

    while True:
        while next_arrival < released and arrival[next_arrival] <= t:
            waiting.append(next_arrival)
            next_arrival += 1
        if not len(running) and not waiting:
            if next_arrival >= released:
                break
            t = float(arrival[next_arrival])
            continue
        # 1. decodes
        is_decoding = st.prefilled[running] >= need[running]
        decoding = running[is_decoding]
        budget = engine.max_num_tokens - len(decoding) * verify
        chunks: list[tuple[int, int]] = []
        chunk_of: list[tuple[int, int]] = []
        # 2a. sequences mid-prompt, oldest first
        for i in running[~is_decoding]:
            if budget <= 0:
                break
            take = min(int(need[i] - st.prefilled[i]), budget)
            chunks.append((take, int(skip[i] + st.prefilled[i] + take)))
            chunk_of.append((int(i), take))
            budget -= take
        # 2b. new requests, in arrival order, while the batch limit and the KV cache allow
        used = kv_tokens(running)
        admitted: list[int] = []
        while waiting and budget > 0 and len(running) + len(admitted) < engine.max_batch:
            i = waiting[0]
            grow = int(reserved[i]) if engine.reserve_full_sequence else int(-(-(skip[i] + need[i]) // block) * block)
            if used + grow > kv_capacity_tokens:
                break
            waiting.popleft()
            admitted.append(i)
            used += grow
            take = min(int(need[i]), budget)
            chunks.append((take, int(skip[i] + take)))
            chunk_of.append((i, take))
            budget -= take
        if admitted:
            running = np.concatenate([running, np.array(admitted, np.int64)])
        if not len(decoding) and not chunks:
            if next_arrival < released:  # nothing fits until something arrives or frees up
                t = max(t, float(arrival[next_arrival]))
                continue
            raise RooflineError("the scheduler is stuck: a request cannot be admitted (KV cache too small)")
        context = float((isl[decoding] + st.generated[decoding]).mean()) if len(decoding) else 0.0
        if not chunks and len(decoding) == len(running):
            # a decode-only stretch: nothing changes but the context until a finish, an arrival or a full cache
            quiet = _quiet_steps(decoding, st.generated, osl, per_step, kv_tokens, kv_capacity_tokens, block, engine)
            if quiet:
                horizon = float(arrival[next_arrival]) if next_arrival < released else math.inf
                taken, t, busy_s = _run_quiet(model, len(decoding), context, per_step, quiet, t, horizon)
                _advance(st.generated, decoding, per_step, taken)
                steps += taken
                batch_time += busy_s * len(running)
                max_batch = max(max_batch, len(running))
                if steps > MAX_STEPS:
                    raise RooflineError(f"simulation passed {MAX_STEPS} steps; use fewer requests")
                if t >= horizon:  # the next arrival is due before the next step
                    continue
                context = float((isl[decoding] + st.generated[decoding]).mean())
        dt = model.step_s(len(decoding), context, chunks)
        t += dt
        steps += 1
        batch_time += dt * len(running)
        max_batch = max(max_batch, len(running))
        if steps > MAX_STEPS:
            raise RooflineError(f"simulation passed {MAX_STEPS} steps; use fewer requests")
        # 3. progress: decodes emit tokens, a prompt's last chunk emits its first token
        st.generated[decoding] += per_step
        for i, take in chunk_of:
            st.prefilled[i] += take
            if st.prefilled[i] >= need[i]:  # the prompt's (or the recompute's) last token emits the next one
                if np.isnan(st.first[i]):
                    st.generated[i], st.first[i] = 1.0, t
                else:  # a preempted sequence: its output so far was recomputed, the client already has it
                    st.generated[i] += 1.0
        done = st.generated[running] >= osl[running]
        if done.any():
            finished = running[done]
            st.finish[finished] = t
            running = running[~done]
            completed += len(finished)
            if progress is not None and completed >= reported + n / 100:
                reported = completed
                progress(completed / n)
            if concurrency is not None:
                for _ in finished:
                    if released < n:  # the client gets its answer, then sends the next request
                        arrival[released] = t + request_overhead_s
                        released += 1
        if not engine.reserve_full_sequence:  # paged KV: preempt the newest sequences when full
            while len(running) and kv_tokens(running) > kv_capacity_tokens:
                victim = int(running[-1])
                running = running[:-1]
                # recompute on readmission: the prompt and every output token so far (vLLM's RECOMPUTE)
                need[victim] = prompt[victim] + int(np.ceil(st.generated[victim]))
                st.prefilled[victim] = 0
                waiting.appendleft(victim)
                preemptions += 1
    duration = float(np.nanmax(st.finish) - np.nanmin(arrival)) or 1.0
    sent = arrival - request_overhead_s / 2  # the client sent it before the front end passed it on
    first, finish = st.first + request_overhead_s / 2, st.finish + request_overhead_s / 2
    return SimulationResult(sent, first, finish, osl, steps, batch_time / duration, max_batch, preemptions)
