"""The runtime's vocabulary layout: embedding and LM head split over TP (serving engines) or whole on
every GPU (gpt-fast's tp.py), and an LM head held in the weight-only format where the runtime's
quantization covers it (gpt-fast's quantize.py)."""

from __future__ import annotations

import roofline as rl
from roofline.dtypes import DType
from roofline.ir import Op, Phase, Placement, Precision, StepShape
from roofline.simulator.serving.engine_config import load_engine
from roofline.workloads import get_autoregressive

VOCAB, HIDDEN = 128256, 4096  # llama-3.1-8b
DECODE = StepShape(Phase.DECODE, 1, 1, 100)


def _ops(placement: Placement, weight: DType = DType.BF16) -> dict[str, Op]:
    w = get_autoregressive("llama-3.1-8b")
    ops = w.build_ops(DECODE, Precision(weight=weight), placement)
    return {op.name: op for op in ops}


def test_vocab_parallel_lm_head_reads_its_slice_and_gathers_logits() -> None:
    ops = _ops(Placement(tp=8, layer_end=1))
    assert ops["lm_head"].weight_bytes == VOCAB // 8 * HIDDEN * 2
    assert "logits_all_gather" in ops and "embedding_all_reduce" in ops


def test_replicated_lm_head_reads_the_whole_table_and_needs_no_collective() -> None:
    ops = _ops(Placement(tp=8, layer_end=1, vocab_parallel=False))
    assert ops["lm_head"].weight_bytes == VOCAB * HIDDEN * 2
    assert "logits_all_gather" not in ops and "embedding_all_reduce" not in ops
    assert "attn_all_reduce" in ops  # the layers stay tensor-parallel


def test_quantized_lm_head_is_read_in_the_weight_format() -> None:
    kept = _ops(Placement(layer_end=1), DType.INT8)["lm_head"]
    quantized = _ops(Placement(layer_end=1, lm_head_quantized=True), DType.INT8)["lm_head"]
    assert kept.weight_bytes == VOCAB * HIDDEN * 2
    assert quantized.weight_bytes == VOCAB * HIDDEN * 1


def test_memory_holds_the_whole_vocabulary_when_it_is_not_split() -> None:
    w = get_autoregressive("llama-3.1-8b")
    precision = Precision()
    split = w.weight_bytes(precision, Placement(tp=8, layer_end=w.num_layers))
    whole = w.weight_bytes(precision, Placement(tp=8, layer_end=w.num_layers, vocab_parallel=False))
    assert whole - split == 2 * VOCAB * HIDDEN * 2 * (1 - 1 / 8)  # embedding and LM head, 7/8 more of each


def test_gpt_fast_profile_replicates_the_vocabulary_and_costs_it() -> None:
    """gpt-fast (torch-cuda-graph) at TP 8 reads the whole LM head every token and gathers no logits;
    the serving engines keep the head vocab-parallel."""
    profile = load_engine("gpt-fast")
    assert profile.vocab_parallel is False and profile.lm_head_quantized is True
    assert load_engine("vllm").vocab_parallel is True
    query = dict(model="llama-3.1-8b", hardware="a100-sxm-80gb", tp=8, batch=1, isl=5, osl=100)
    gpt_fast = rl.estimate(runtime="gpt-fast", **query)
    head = next(op for op in gpt_fast.ops if op.name == "lm_head" and op.phase is Phase.DECODE)
    assert head.bytes >= VOCAB * HIDDEN * 2
    assert not any(op.name == "logits_all_gather" for op in gpt_fast.ops)


def test_gpt_fast_rank_bytes_match_its_printed_bandwidth() -> None:
    """gpt-fast's README (32971d3) prints 'Memory Bandwidth (GB/s)' = model size x tokens/s, the model
    size being one rank's parameters outside nn.Embedding (generate.py _get_model_size). With the
    layout of tp.py / quantize.py (LM head whole on each rank, in the weight format) one rank's
    weight bytes without the embedding table equal bandwidth / tokens/s."""
    profile = load_engine("gpt-fast")
    rows = [
        ("llama-3.1-8b", DType.BF16, 8, 772.60, 276.01),
        ("llama-3.1-8b", DType.BF16, 2, 1197.32, 149.10),
        ("llama-3.1-70b", DType.INT8, 8, 726.57, 75.58),
        ("llama-3.1-405b", DType.INT8, 8, 815.87, 15.60),
    ]
    for model, weight, tp, gbps, tokens_per_s in rows:
        w = get_autoregressive(model)
        placement = Placement(tp=tp, layer_end=w.num_layers, vocab_parallel=profile.vocab_parallel,
                              lm_head_quantized=profile.lm_head_quantized)  # fmt: skip
        embedding = w.vocab_size / placement.vocab_tp * w.hidden_size * 2
        rank_bytes = w.weight_bytes(Precision(weight=weight), placement) - embedding
        assert abs(rank_bytes / (gbps * 1e9 / tokens_per_s) - 1) < 0.005, model
