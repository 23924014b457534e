"""Consistency screen of AIConfigurator's MoE rows (kernels-aic.csv, scenario moe_experts).

AIC times every MoE shape at several token counts T and, for most shapes, under two routings
(`spread=even`, AIC `balanced`, and `spread=power_law_1.01`). These checks need no timing model,
only the table, the routing AIC generates and the catalog's peaks:

- pair: with the same shape and T, both routings give the kernel the same T x K routed rows; the
  power law only moves rows between experts (and, under EP, between ranks: at most ~2x more on the
  busiest one at large T in every other group of the table). A median power / even ratio over T
  beyond `PAIR_LIMIT` (either way) means one of the two runs did not time the kernel the other did.
- format: a weight format of fewer bits moves fewer weight bytes at a higher (or the same) peak,
  so against the bf16 run of the same shape, routing and T its median time ratio lies between half
  its byte ratio (bits / 16 / 2) and `FORMAT_SLOWER_LIMIT`; outside, both groups are suspect.
  Per-tensor FP8 does a subset of block-scaled FP8's work (the same weight bytes, no scale tensors,
  no per-block rescaling), so a per-tensor run over `FORMAT_SLOWER_LIMIT` times the block-scaled
  run is suspect (in AIC 0.12.0 every other group lies at 0.66-1.07).
- monotone: more tokens never means less work for the same experts, so a time at T that exceeds
  the time at a larger T' of the same group by more than `MONOTONE_LIMIT` is not the same kernel
  path either (a different tactic or a fallback).
- same work: two groups (other routing, expert count or EP degree) whose timed GPU gets the same
  work at the same T (the same rows in experts of the same hidden x intermediate / tp; exact for
  balanced routing, `balanced_rank0_rows`, and for a top-1 token alone) must take the same time;
  a group whose median over such matches exceeds `SAME_WORK_LIMIT` times the fastest is suspect.
  Empty local experts add only bookkeeping: the same 8 x 1 rows with 128 instead of 16 local
  experts (Qwen3-30B at T = 1, ep 1 against T = 8, ep 8) cost 0-7 us more in bf16 and FP8 and
  20-40 us more in block-scaled FP8 and NVFP4 in the same table: the 14 more empty experts of
  Scout at ep 1 than at ep 8 add at most ~5 us to a row of 60 us or more, far below the limit.
- twin: B200 and GB200 (one Blackwell die), H100 and H200 (one Hopper die, HBM3e at 4.8 instead
  of 3.35 TB/s) run the same kernels: a group slower than its twin's by more than `TWIN_LIMIT`
  times what the catalog's bandwidth and peaks allow is suspect (the faster run shows that the
  GPU does the work in less; a tuned deployment takes the faster tactic).

The likely cause, in AIC 0.12.0 (TensorRT-LLM 1.3.0rc20 tables): TensorRT-LLM's fused MoE picks
its CUTLASS grouped-GEMM tactic per token bucket from its autotuner's cache, keyed by the op's
runner (`MoERunner.unique_id`: top_k, tp_size, ep_size, ...; `_torch/custom_ops/
torch_custom_ops.py`) and shapes; a miss runs tactic -1, the fallback kernel (`_torch/
autotuner.py`). AIC's collector (`collector/trtllm/collect_moe.py`) tunes only where no cache file
exists and names the file by (SM, dtype, hidden, intermediate / tp, experts / ep) alone, so a case
that loads a file another model or parallel layout wrote (Scout with 16 experts and Maverick at
ep 8 share one) looks its tactics up under another key and runs the fallback; the cases are
shuffled, so which one tuned is chance. The table shows the symptom: on the H200 in bf16 one top-1
token in one 5120 x 8192 expert takes 86 us in Scout's balanced run and 475-480 us in its
power-law run and at ep 8 (the same work); in AIC's whole H200 bf16 table the T = 1 time of
Scout's runs (both routings, ep 1 to 16) lies in one of two bands, 86-128 us or 438-502 us (~65
or ~245 us at tp 2), and a slow group can be fast at one T where a tuned bucket is hit (Scout at
ep 8: 455 us at T = 8, 990 at T = 32, 337 at T = 2048). A deployment autotunes its own shapes at
warm-up (TensorRT-LLM's PyTorch flow: `enable_autotuner` defaults to true, llmapi/llm_args.py)
and does not see this; the model is not bent to it. Rows of a failing group are left out of the
grouped-GEMM fit (`fit_grouped_main`), and `validate` reports them apart (report.py).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from roofline.errors import RooflineError
from roofline.hardware_specs import Accelerator, get_accelerator
from roofline.validation.cases import Case

PAIR_LIMIT = 2.0  # median power-law / balanced time ratio, either way
MONOTONE_LIMIT = 1.5  # time at T over the time at a larger T' of the same group
FORMAT_SLOWER_LIMIT = 1.25  # a lower-precision run over the bf16 run of the same group
SAME_WORK_LIMIT = 1.5  # median time over the fastest group's with the same work on the timed GPU
TWIN_LIMIT = 1.5  # median time over the twin GPU's, beyond the ratio of their bandwidth and peaks
WEIGHT_BITS = {"bfloat16": 16, "fp8": 8, "fp8_block": 8, "nvfp4": 4, "w4a16_mxfp4": 4}


Shape = tuple[tuple[str, str], ...]
GroupKey = tuple[str, str, Shape]  # (hardware, AIC quant, load without tokens)


def _quant(case: Case) -> str:
    for part in case.notes.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "quant":
            return value.strip()
    return str(case.weight_dtype)


def _shape(case: Case, drop: tuple[str, ...]) -> Shape:
    return tuple(sorted((k, v) for k, v in case.load_fields.items() if k not in drop))


def suspect_rows(cases: Iterable[Case]) -> dict[str, str]:
    """case id -> why its group fails the screen, for the AIC moe_experts rows among `cases`."""
    rows = [c for c in cases if c.scenario == "moe_experts" and "kernel_source=" in c.notes]
    out: dict[str, list[str]] = {}

    def flag(group: dict[int, Case], why: str) -> None:
        for case in group.values():
            out.setdefault(case.case_id, []).append(why)

    by_spread: dict[tuple[str, str, Shape], dict[str, dict[int, Case]]] = {}
    by_format: dict[tuple[str, Shape], dict[str, dict[int, Case]]] = {}
    for case in rows:
        spread = case.load_fields.get("spread", "even")
        tokens = case.load_int("tokens")
        by_spread.setdefault((case.hardware, _quant(case), _shape(case, ("tokens", "spread"))), {}).setdefault(
            spread, {})[tokens] = case  # fmt: skip
        by_format.setdefault((case.hardware, _shape(case, ("tokens",))), {}).setdefault(_quant(case), {})[tokens] = case
    for spreads in by_spread.values():
        why = _pair_reason(spreads)
        for group in spreads.values():
            if why:
                flag(group, why)
            mono = _monotone_reason(group)
            if mono:
                flag(group, mono)
    for formats in by_format.values():
        for quant, group in formats.items():
            why = _format_reason(quant, group, formats.get("bfloat16"))
            if why:
                flag(group, why)
                flag(formats["bfloat16"], why)
        why = _subset_reason(formats.get("fp8"), formats.get("fp8_block"))
        if why:
            flag(formats["fp8"], why)
    groups = {(hw, quant, shape): group for (hw, shape), formats in by_format.items()
              for quant, group in formats.items()}  # fmt: skip
    for key, why in [*_same_work_reasons(groups).items(), *_twin_reasons(groups).items()]:
        flag(groups[key], why)
    return {cid: "; ".join(dict.fromkeys(whys)) for cid, whys in out.items()}


def _median_ratio(a: dict[int, Case], b: dict[int, Case]) -> float | None:
    logs = [math.log(a[t].value / b[t].value) for t in b if t in a]
    return math.exp(statistics.median(logs)) if logs else None


def _format_reason(quant: str, group: dict[int, Case], bf16: dict[int, Case] | None) -> str:
    if bf16 is None or quant == "bfloat16" or quant not in WEIGHT_BITS:
        return ""
    ratio = _median_ratio(group, bf16)
    low = WEIGHT_BITS[quant] / 16 / 2
    if ratio is None or low <= ratio <= FORMAT_SLOWER_LIMIT:
        return ""
    return f"{quant} / bf16 x{ratio:.2f}"


def _subset_reason(per_tensor: dict[int, Case] | None, block: dict[int, Case] | None) -> str:
    """Why a per-tensor FP8 run is suspect against the block-scaled run of the same group ('' if not)."""
    ratio = _median_ratio(per_tensor, block) if per_tensor and block else None
    return f"fp8 / fp8_block x{ratio:.2f}" if ratio is not None and ratio > FORMAT_SLOWER_LIMIT else ""


def _pair_reason(by_spread: dict[str, dict[int, Case]]) -> str:
    even = by_spread.get("even")
    other = next((v for k, v in by_spread.items() if k != "even"), None)
    if even is None or other is None:
        return ""
    ratio = _median_ratio(other, even)
    if ratio is None:
        return ""
    return f"power-law / balanced x{ratio:.2f}" if max(ratio, 1 / ratio) > PAIR_LIMIT else ""


def _monotone_reason(by_tokens: dict[int, Case]) -> str:
    tokens = sorted(by_tokens)
    worst = max((by_tokens[a].value / by_tokens[b].value for i, a in enumerate(tokens) for b in tokens[i + 1:]),
                default=0.0)  # fmt: skip
    return f"time falls x{worst:.1f} as tokens grow" if worst > MONOTONE_LIMIT else ""


def balanced_rank0_rows(tokens: int, experts: int, top_k: int, ep: int) -> tuple[int, ...]:
    """Rows per expert, largest first, that AIC's balanced routing gives rank 0 (experts 0 .. E/ep - 1):
    token t takes experts (t + k s) mod E with s = ceil(E / K), or, with fewer tokens than s,
    floor(t s / T + k s) mod E (AIC collector/helper.py `balanced_logits`)."""
    stride, local = -(-experts // top_k), experts // ep
    rows: Counter[int] = Counter()
    for t in range(tokens):
        first = t if tokens >= stride else math.floor(t * stride / tokens)
        for k in range(top_k):
            expert = (first + k * stride) % experts
            if expert < local:
                rows[expert] += 1
    return tuple(sorted(rows.values(), reverse=True))


def _timed_rows(case: Case) -> tuple[int, ...] | None:
    """The timed GPU's rows per expert where the routing fixes them exactly, else None."""
    f = case.load_fields
    tokens, experts, top_k = case.load_int("tokens"), case.load_int("experts"), case.load_int("topk")
    if f.get("spread", "even") == "even":
        return balanced_rank0_rows(tokens, experts, top_k, case.load_int("ep", 1))
    return (1,) if tokens == 1 and top_k == 1 else None  # one token, one expert, on the busiest rank


def _same_work_reasons(groups: dict[GroupKey, dict[int, Case]]) -> dict[GroupKey, str]:
    """Groups whose time for the same work on the timed GPU is a multiple of another group's."""
    cells: dict[tuple[object, ...], list[tuple[float, GroupKey]]] = {}
    for key, by_tokens in groups.items():
        f = dict(key[2])
        width = int(f["intermediate"]) // int(f.get("tp", "1"))
        for tokens, case in by_tokens.items():
            rows = _timed_rows(case)
            if rows:
                cells.setdefault((key[0], key[1], f["hidden"], width, tokens, rows), []).append((case.value, key))
    ratios: dict[GroupKey, list[float]] = {}
    for members in cells.values():
        if len({key for _, key in members}) > 1:
            fastest = min(value for value, _ in members)
            for value, key in members:
                ratios.setdefault(key, []).append(value / fastest)
    medians = {key: statistics.median(r) for key, r in ratios.items()}
    return {key: f"x{m:.2f} the time of the same work in another run" for key, m in medians.items()
            if m > SAME_WORK_LIMIT}  # fmt: skip


@lru_cache(maxsize=32)
def _accelerator(hardware: str) -> Accelerator | None:
    try:
        return get_accelerator(hardware)
    except RooflineError:
        return None


def twin_bound(slow: Accelerator, fast: Accelerator) -> float | None:
    """How many times longer `slow` may take than `fast` for the same kernel: the largest ratio of
    their HBM bandwidth and dense peaks (at least 1); None unless both are one die (the same
    architecture and SM count: B200 / GB200, H100 / H200)."""
    if (slow.architecture.split()[0], slow.sram.sm_count) != (fast.architecture.split()[0], fast.sram.sm_count):
        return None
    ratios = [fast.memory.bandwidth / slow.memory.bandwidth, 1.0]
    for name in ("bf16", "fp8", "fp4"):
        a, b = getattr(slow.compute, name), getattr(fast.compute, name)
        if a and b:
            ratios.append(b / a)
    return max(ratios)


def _twin_reasons(groups: dict[GroupKey, dict[int, Case]]) -> dict[GroupKey, str]:
    out: dict[GroupKey, str] = {}
    for key, by_tokens in groups.items():
        for other_key, other in groups.items():
            if other_key[1:] != key[1:] or other_key[0] == key[0]:
                continue
            slow, fast = _accelerator(key[0]), _accelerator(other_key[0])
            bound = twin_bound(slow, fast) if slow and fast else None
            ratio = _median_ratio(by_tokens, other)
            if bound is not None and ratio is not None and ratio > TWIN_LIMIT * bound:
                out[key] = f"x{ratio:.2f} the time on {other_key[0]}"
    return out
