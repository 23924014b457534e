"""Engine limits chosen per dataset, as TensorRT-LLM's `trtllm-bench` does before a throughput run.

trtllm-bench sizes the engine from the dataset's sequence lengths: R = requests the KV cache holds
at isl + osl each; max batch = R / pp (at most 4096) rounded up (to 32 below 256, 128 below 1024,
else 256; at least 64); max tokens per step = that batch x (1 + isl / osl), at most 32768, rounded
up (to 256 below 4096 with a floor of 2048, 512 below 8192, else 1024). Source: TensorRT-LLM
`tensorrt_llm/bench/build/tuning.py` (`calc_engine_setting`, `finetune_setting`) and the docs page
"Tuning Max Batch Size and Max Num Tokens". Here R comes from this tool's KV capacity.
"""

from __future__ import annotations

import math

MAX_BATCH_CAP = 4096
MAX_TOKENS_CAP = 32768


def _round_up(value: float, step: int) -> int:
    return step * math.ceil(value / step)


def trtllm_bench_limits(kv_max_requests: float, isl: int, osl: int, pp: int = 1) -> tuple[int, int]:
    """(max batch, max tokens per step) for a dataset of isl / osl requests."""
    raw_batch = min(kv_max_requests, MAX_BATCH_CAP) / pp
    raw_tokens = min(raw_batch * (1 + isl / osl), MAX_TOKENS_CAP)
    if raw_batch < 256:
        max_batch = max(64, _round_up(raw_batch, 32))
    elif raw_batch < 1024:
        max_batch = _round_up(raw_batch, 128)
    else:
        max_batch = _round_up(raw_batch, 256)
    if raw_tokens < 4096:
        max_tokens = max(2048, _round_up(raw_tokens, 256))
    elif raw_tokens < 8192:
        max_tokens = _round_up(raw_tokens, 512)
    else:
        max_tokens = _round_up(raw_tokens, 1024)
    return max_batch, max_tokens
