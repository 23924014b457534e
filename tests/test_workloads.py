"""Parameter counts, KV-cache bytes and parallel checks of the dense catalog models."""

import pytest

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.ir import Placement, Precision
from roofline.workloads import get_workload, model_catalog

DENSE_IDS = [
    "llama-2-7b",
    "llama-2-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.3-70b",
    "llama-3.1-405b",
    "mistral-7b",
    "qwen3-8b",
    "qwen3-32b",
]


def test_catalog_has_the_issue_models() -> None:
    assert set(DENSE_IDS) <= set(model_catalog())


@pytest.mark.parametrize("model_id", DENSE_IDS)
def test_total_params_within_2_percent_of_published(model_id: str) -> None:
    """Published totals and their sources are in each YAML (published_params_source):
    model cards, HF safetensors metadata, shared/reference/models.md §1, §3, §4."""
    w = get_workload(model_id)
    assert w.published_params is not None and w.published_params_source
    assert w.parameter_counts().total == pytest.approx(w.published_params, rel=0.02)


def test_llama_3_1_8b_parameter_count_by_hand() -> None:
    """embed 128256*4096 = 525,336,576 (x2: untied head);
    per layer: q 4096*4096 + k,v 2*4096*1024 + o 4096*4096 = 41,943,040;
    mlp 3*4096*14336 = 176,160,768; norms 2*4096 = 8,192 -> 218,112,000 x 32 = 6,979,584,000;
    + final norm 4096 -> 8,030,261,248 (HF reports 8.03B)."""
    counts = get_workload("llama-3.1-8b").parameter_counts()
    assert counts.total == 8_030_261_248
    assert counts.by_component["attention"] == 41_943_040 * 32
    assert counts.active == counts.total


def test_llama_2_7b_matches_hf_exact_count() -> None:
    """HF meta-llama/Llama-2-7b-hf: 6,738,415,616 parameters (MHA, intermediate 11008, vocab 32000)."""
    assert get_workload("llama-2-7b").parameter_counts().total == 6_738_415_616


@pytest.mark.parametrize(
    ("model_id", "kv_bytes_per_token"),
    [
        # 2 (K,V) x layers x kv_heads x head_dim x 2 B (bf16)
        ("llama-3.1-70b", 2 * 80 * 8 * 128 * 2),  # 327,680 B (issue golden)
        ("llama-3.1-8b", 2 * 32 * 8 * 128 * 2),  # 131,072 B = 128 KiB (models.md §13.3)
        ("llama-3.1-405b", 2 * 126 * 8 * 128 * 2),  # 516,096 B = 504 KiB
        ("llama-2-7b", 2 * 32 * 32 * 128 * 2),  # MHA: 524,288 B
        ("qwen3-8b", 2 * 36 * 8 * 128 * 2),  # 147,456 B = 144 KiB
        ("qwen3-32b", 2 * 64 * 8 * 128 * 2),  # 262,144 B = 256 KiB
    ],
)
def test_kv_cache_bytes_per_token(model_id: str, kv_bytes_per_token: int) -> None:
    assert get_workload(model_id).kv_cache_bytes_per_token(Precision()) == kv_bytes_per_token


def test_kv_dtype_scales_kv_bytes() -> None:
    w = get_workload("llama-3.1-70b")
    assert w.kv_cache_bytes_per_token(Precision(kv_cache=DType.FP8)) == 163_840


def test_sliding_window_caps_kv_cache() -> None:
    """Mistral-7B: window 4096 on every layer; 10,000 tokens hold only 4096 per layer:
    4096 x 2 x 32 layers x 8 kv heads x 128 x 2 B = 536,870,912 B."""
    w = get_workload("mistral-7b")
    full = Placement(tp=1, layer_start=0, layer_end=32)
    assert w.kv_cache_bytes(10_000, Precision(), full) == 4096 * 2 * 32 * 8 * 128 * 2
    assert w.kv_cache_bytes(1_000, Precision(), full) == 1000 * 2 * 32 * 8 * 128 * 2


def test_tp_divides_kv_heads_and_replicates_beyond_them() -> None:
    w = get_workload("llama-3.1-70b")  # 8 KV heads
    per_gpu = {tp: w.kv_cache_bytes(1, Precision(), Placement(tp=tp, layer_end=80)) for tp in (1, 2, 8, 16)}
    assert per_gpu[2] == per_gpu[1] / 2
    assert per_gpu[8] == per_gpu[1] / 8
    assert per_gpu[16] == per_gpu[8]  # one replicated KV head per GPU


def test_tp_that_does_not_divide_heads_is_a_clear_error() -> None:
    with pytest.raises(RooflineError, match="not divisible by --tp 3"):
        get_workload("llama-3.1-70b").check_parallel(3, 1)


def test_pp_beyond_layers_is_an_error() -> None:
    with pytest.raises(RooflineError, match="exceeds the 32 layers"):
        get_workload("llama-3.1-8b").check_parallel(1, 33)


def test_weight_bytes_split_over_tp() -> None:
    """Matmul weights divide by tp; norms are replicated, so per-GPU bytes x tp is a bit over the total."""
    w = get_workload("llama-3.1-70b")
    one = w.weight_bytes(Precision(), Placement(tp=1, layer_end=80))
    eight = w.weight_bytes(Precision(), Placement(tp=8, layer_end=80))
    assert one == pytest.approx(w.parameter_counts().total * 2)
    assert eight * 8 == pytest.approx(one, rel=1e-3)
    assert eight * 8 >= one
