"""Consistency screen of AIConfigurator's MoE rows (kernels-aic.csv, scenario moe_experts).

AIC times every MoE shape at several token counts T and, for most shapes, under two routings
(`spread=even`, AIC `balanced`, and `spread=power_law_1.01`). Two checks need no model, only the
table itself:

- pair: with the same shape and T, both routings give the kernel the same T x K routed rows; the
  power law only moves rows between experts (and, under EP, between ranks: at most ~2x more on the
  busiest one at large T in every other group of the table). A median power / even ratio over T
  beyond `PAIR_LIMIT` (either way) means one of the two runs did not time the kernel the other did.
- format: a weight format of fewer bits moves fewer weight bytes at a higher (or the same) peak,
  so against the bf16 run of the same shape, routing and T its median time ratio lies between half
  its byte ratio (bits / 16 / 2) and `FORMAT_SLOWER_LIMIT`; outside, both groups are suspect.
- monotone: more tokens never means less work for the same experts, so a time at T that exceeds
  the time at a larger T' of the same group by more than `MONOTONE_LIMIT` is not the same kernel
  path either (a different tactic or a fallback).

In AIC 0.12.0 (TensorRT-LLM 1.3.0rc20 tables) every group that fails is a Llama-4 shape (top-1,
hidden 5120, intermediate 8192): Scout and Maverick on Hopper in bf16 (power law 4-10x the balanced
run), H200 fp8 (balanced 3-10x the power law), the ep=8 rows non-monotone. The collector
(`collector/trtllm/collect_moe.py`) keys its autotuner cache on (dtype, hidden, intermediate / tp,
experts / ep) only, tunes under balanced routing and shuffles the cases, so Scout (16 experts) and
Maverick ep=8 (16 local experts) share a tactic cache: the likely cause, not one a cost model of
the kernel can reproduce. Rows of a failing group are left out of the grouped-GEMM fit
(`fit_grouped_main`), and the report of this work gives the error with and without them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from roofline.validation.cases import Case

PAIR_LIMIT = 2.0  # median power-law / balanced time ratio, either way
MONOTONE_LIMIT = 1.5  # time at T over the time at a larger T' of the same group
FORMAT_SLOWER_LIMIT = 1.25  # a lower-precision run over the bf16 run of the same group
WEIGHT_BITS = {"bfloat16": 16, "fp8": 8, "fp8_block": 8, "nvfp4": 4, "w4a16_mxfp4": 4}


Shape = tuple[tuple[str, str], ...]


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
