"""MoE workloads: parameter counts, routing arithmetic, expert parallelism, windows and chunks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Phase, Placement, Precision, StepShape
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.grouped_gemm import tile_flops
from roofline.workloads import get_workload, model_catalog
from roofline.workloads.dense import DenseTransformer
from roofline.workloads.layers import Span, causal_kv_sum
from roofline.workloads.moe import MoETransformer
from roofline.workloads.moe_blocks import distinct_experts

MOE_IDS = ["mixtral-8x7b", "mixtral-8x22b", "qwen3-30b-a3b", "qwen3-235b-a22b", "llama-4-scout", "llama-4-maverick",
           "gpt-oss-20b", "gpt-oss-120b"]  # fmt: skip


@pytest.mark.parametrize("model_id", MOE_IDS)
def test_total_and_active_params_within_2_percent(model_id: str) -> None:
    """Published figures and sources are in each YAML (model cards, models.md §2-§4, §7)."""
    w = get_workload(model_id)
    counts = w.parameter_counts()
    assert counts.total == pytest.approx(w.published_params, rel=0.02)
    active = counts.active_non_embedding if w.published_active_excludes_embedding else counts.active
    assert active == pytest.approx(w.published_active_params, rel=0.02)


def test_mixtral_parameters_by_hand() -> None:
    """Per layer: attention 2 x 4096^2 + 2 x 4096 x 1024 = 41,943,040; one expert 3 x 4096 x 14336
    = 176,160,768; router 4096 x 8 = 32,768; norms 8,192. Total = 32 x (41,943,040 + 8 x 176,160,768
    + 32,768 + 8,192) + 2 x 32000 x 4096 + 4096 = 46,702,792,704; active uses 2 experts:
    32 x (41,943,040 + 2 x 176,160,768 + 40,960) + 2 x 131,072,000 + 4096 = 12,879,925,248."""
    counts = get_workload("mixtral-8x7b").parameter_counts()
    assert counts.total == 46_702_792_704
    assert counts.active == 12_879_925_248


def test_distinct_experts_by_hand() -> None:
    """E (1 - (1 - k/E)^B): one token hits k experts; two tokens 8 (1 - 0.75^2) = 3.5 of 8."""
    assert distinct_experts(1, 8, 2) == pytest.approx(2.0)
    assert distinct_experts(2, 8, 2) == pytest.approx(3.5)
    assert distinct_experts(10_000, 128, 8) == pytest.approx(128.0)


def _decode_rows(model: str, batch: int, **plan: int) -> dict[str, float]:
    cluster = resolve_cluster(hardware="h200-sxm", num_gpus=ParallelPlan(**plan).num_gpus)
    result = estimate(get_workload(model), cluster, Scenario(batch, 256, 4, plan=ParallelPlan(**plan)))
    return {r.name: r.bytes for r in result.decode.ops}


def test_small_batch_decode_reads_few_experts_large_batch_reads_all() -> None:
    """Mixtral bf16 decode: batch 1 reads 2 of 8 experts per layer (32 layers):
    expert_up 32 x 2 x 4096 x 28672 x 2 B = 15.03 GB; batch 256 reads all 8 (4x as many bytes)."""
    one = _decode_rows("mixtral-8x7b", 1)
    many = _decode_rows("mixtral-8x7b", 256)
    weights_one = 32 * 2 * 4096 * 28672 * 2
    assert one["expert_up"] == pytest.approx(weights_one + 32 * 2 * (4096 + 28672) * 2)
    assert many["expert_up"] > 3.99 * weights_one


def test_expert_parallelism_adds_all_to_all_and_splits_expert_weights() -> None:
    rows = _decode_rows("mixtral-8x7b", 64, tp=2, ep=2)
    assert "moe_dispatch" in rows and "moe_combine" in rows and "moe_all_gather" in rows
    w = get_workload("mixtral-8x7b")
    full = w.weight_bytes(Precision(), Placement(tp=2, layer_end=32))
    split = w.weight_bytes(Precision(), Placement(tp=2, layer_end=32, ep=2))
    assert split == pytest.approx(full, rel=1e-9)  # 4 whole experts or half of each of 8: same bytes
    ops = w.build_ops(StepShape(Phase.DECODE, 64, 1, 300), Precision(), Placement(tp=2, layer_end=32, ep=2))
    dispatch = next(o for o in ops if o.name == "moe_dispatch")
    # 64 tokens split over 2 TP ranks, one copy of 4096 values of 2 B (the EP model fans out to top-2)
    assert dispatch.collective is not None and dispatch.collective.message_bytes == 32 * 4096 * 2
    assert dispatch.collective.routing is not None and dispatch.collective.routing.top_k == 2


def test_bad_expert_plans_are_clear_errors() -> None:
    with pytest.raises(RooflineError, match="--ep 3 must divide tp x attn-dp"):
        ParallelPlan(tp=2, ep=3)
    with pytest.raises(RooflineError, match="must divide the 8 experts"):
        estimate(get_workload("mixtral-8x7b"), resolve_cluster(hardware="h100-sxm", num_gpus=16),
                 Scenario(1, 16, 2, plan=ParallelPlan(tp=16, ep=16)))  # fmt: skip
    with pytest.raises(RooflineError, match="has no experts"):
        estimate(get_workload("llama-3.1-8b"), resolve_cluster(hardware="h100-sxm", num_gpus=2),
                 Scenario(1, 16, 2, plan=ParallelPlan(tp=2, ep=2)))  # fmt: skip


def test_gpt_oss_ships_mxfp4_experts_and_bf16_attention() -> None:
    """gpt-oss-120b: 128 experts x 36 layers x 3 x 2880 x 2880 = 114.7e9 expert weights at 4.25
    bits = 60.9 GB, the rest (about 2.1e9 parameters) in bf16: the checkpoint is ~61 GiB (models.md §7)."""
    w = get_workload("gpt-oss-120b")
    precision = Precision(weight=DType.BF16, expert_weight=DType.MXFP4)
    total = w.weight_bytes(precision, Placement(tp=1, layer_end=36))
    assert total / 2**30 == pytest.approx(60.8, rel=0.03)


def test_sliding_window_and_chunked_kv_caps() -> None:
    """gpt-oss-120b: 18 full layers x 2 x 8 x 64 x 2 B = 36,864 B per token beyond the windows,
    73,728 B per token while the context is inside every window (models.md §7: 36 KiB + <= 4.5 MiB)."""
    w = get_workload("gpt-oss-120b")
    full = Placement(tp=1, layer_end=36)
    assert w.kv_cache_bytes(1, Precision(), full) == 73_728
    assert w.kv_cache_bytes(100_001, Precision(), full) - w.kv_cache_bytes(100_000, Precision(), full) == 36_864
    assert w.kv_cache_bytes(100_000, Precision(), full) == 100_000 * 36_864 + 128 * 36_864
    scout = get_workload("llama-4-scout")  # 36 chunked layers cap at 8192 tokens, 12 global layers do not
    assert scout.kv_cache_bytes(20_000, Precision(), Placement(layer_end=48)) == (12 * 20_000 + 36 * 8192) * 4096


def test_chunked_attention_flops() -> None:
    """Chunk 8192: a 16,384-token prompt attends 2 x (8192 x 8193 / 2) entries, not 16384 x 16385 / 2."""
    assert causal_kv_sum(0, 16_384, None, Span("chunk", 8192)) == 8192 * 8193
    assert causal_kv_sum(8191, 2, None, Span("chunk", 8192)) == 8192 + 1  # last of chunk 1, first of chunk 2


def _ffn_cost(workload: DenseTransformer | MoETransformer, step: StepShape) -> tuple[float, float, float]:
    cluster = resolve_cluster(hardware="h100-sxm")
    model = RooflineCostModel(cluster)
    ffn = {"gate_up_proj", "down_proj", "expert_up", "expert_down"}
    ops = [o for o in workload.build_ops(step, Precision(), Placement(layer_end=2)) if o.name in ffn]
    costs = [model.cost(o) for o in ops]
    return (
        sum(o.flops * o.count for o in ops),
        sum(o.weight_bytes * o.count for o in ops),
        sum(c.total_s for c in costs),
    )


def _grouped_fixed_s(workload: MoETransformer, step: StepShape) -> float:
    """What the expert GEMMs' grouped kernel adds beyond the dense tile math: its per-launch latency
    and the per-tile overhead (tile_overhead_k K steps on every tile) at its compute rate."""
    model = RooflineCostModel(resolve_cluster(hardware="h100-sxm"))
    sm = model.cluster.accelerator.sram.sm_count
    total = 0.0
    for op in workload.build_ops(step, Precision(), Placement(layer_end=2)):
        g = model.grouped_kernel(op)
        if g is None or op.shape is None or g.compute_fraction is None:
            continue
        s = op.shape
        extra = tile_flops(s.m, s.n, s.k, s.batch, sm, g.tile_m, g.tile_n, g.tile_overhead_k)
        extra -= tile_flops(s.m, s.n, s.k, s.batch, sm, g.tile_m, g.tile_n)
        total += op.count * (g.latency_s * op.kernels + extra / (model.peak_flops_per_s(op.dtype) * g.compute_fraction))
    return total


@settings(max_examples=20, deadline=None)
@given(experts=st.sampled_from([2, 4, 8]), width=st.sampled_from([512, 1024, 2048]),
       batch=st.integers(1, 64), new=st.sampled_from([1, 128]))  # fmt: skip
def test_moe_with_every_expert_active_costs_the_equivalent_dense_ffn(experts: int, width: int, batch: int,
                                                                     new: int) -> None:  # fmt: skip
    """top_k == num_experts, no imbalance: each token runs every expert, so the expert GEMMs do the
    FLOPs and read the bytes of one dense FFN of width num_experts x expert width."""
    common = dict(id="x", name="x", source="test", hidden_size=1024, num_hidden_layers=2, num_attention_heads=8,
                  num_key_value_heads=8, vocab_size=1000)  # fmt: skip
    dense = DenseTransformer(kind="dense", intermediate_size=experts * width, **common)
    moe = MoETransformer(kind="moe", num_experts=experts, num_experts_per_tok=experts, moe_intermediate_size=width,
                         **common)  # fmt: skip
    step = StepShape(Phase.PREFILL if new > 1 else Phase.DECODE, batch, new, new + 10)
    d_flops, d_bytes, d_time = _ffn_cost(dense, step)
    m_flops, m_bytes, m_time = _ffn_cost(moe, step)
    assert m_flops == pytest.approx(d_flops, rel=1e-9)
    assert m_bytes == pytest.approx(d_bytes, rel=1e-9)  # weights; each expert reads its tokens itself
    # The work is the same, but a fused MoE's grouped GEMMs pay what a dense GEMM does not: a fixed
    # latency per launch and a prologue / epilogue per CTA tile (simulator/data/grouped_gemm.yaml,
    # fitted on kernels-aic.csv). The AIC rows show it: ka01569 (H100 bf16, 128 experts top-8,
    # H 2048, I 768, one token) takes 47.4 us where its 8 experts' 75.5 MB of weights stream in
    # 22.5 us at 3.35 TB/s. So the MoE costs the dense FFN within 35% plus those fixed costs, and
    # never much less.
    assert m_time >= 0.65 * d_time
    assert m_time <= 1.35 * d_time + _grouped_fixed_s(moe, step)


def test_every_catalog_moe_model_estimates() -> None:
    for model_id in MOE_IDS:
        w = model_catalog()[model_id]
        result = estimate(w, resolve_cluster(hardware="h200-sxm", num_gpus=8),
                          Scenario(8, 512, 8, plan=ParallelPlan(tp=8, ep=8 if w.num_experts % 8 == 0 else 1)))  # type: ignore[attr-defined]  # fmt: skip
        names = {r.name for r in result.decode.ops}
        assert {"router", "expert_up", "expert_down"} <= names
        assert result.tpot_s > 0 and result.ttft_s > 0


MLA_IDS = ["deepseek-v3", "deepseek-r1", "deepseek-v3.2", "kimi-k2"]


@pytest.mark.parametrize("model_id", MLA_IDS)
def test_mla_models_params_within_2_percent(model_id: str) -> None:
    """Published totals are main-model figures (DeepSeek README: 671B + 11.5B MTP; Kimi K2 1.04T)."""
    w = get_workload(model_id)
    counts = w.parameter_counts()
    assert counts.total - counts.by_component.get("mtp", 0.0) == pytest.approx(w.published_params, rel=0.02)
    if w.published_active_params:
        active = counts.active_non_embedding if w.published_active_excludes_embedding else counts.active
        assert active == pytest.approx(w.published_active_params, rel=0.02)


def test_deepseek_mtp_is_counted_separately() -> None:
    """README_WEIGHTS.md: the MTP module adds 11.5B unique parameters."""
    counts = get_workload("deepseek-v3").parameter_counts()
    assert counts.by_component["mtp"] == pytest.approx(11.5e9, rel=0.02)


@pytest.mark.parametrize(
    ("model_id", "dtype", "expected"),
    [
        ("deepseek-v3", DType.BF16, (512 + 64) * 61 * 2),  # 70,272 B (issue golden)
        ("deepseek-v3", DType.FP8, (512 + 64) * 61),
        ("kimi-k2", DType.BF16, (512 + 64) * 61 * 2),
        ("deepseek-v3.2", DType.BF16, 61 * ((512 + 64) * 2 + 128 + 4)),  # + FP8 indexer key and fp32 scale
    ],
)
def test_mla_kv_bytes_per_token(model_id: str, dtype: DType, expected: int) -> None:
    assert get_workload(model_id).kv_cache_bytes_per_token(Precision(kv_cache=dtype)) == expected


def test_mla_latent_is_not_split_by_tensor_parallelism() -> None:
    w = get_workload("deepseek-v3")
    one = w.kv_cache_bytes(1000, Precision(), Placement(tp=1, layer_end=61))
    eight = w.kv_cache_bytes(1000, Precision(), Placement(tp=8, layer_end=61))
    assert one == eight


def _mla_ops(phase: Phase, context: int, new: int = 1) -> dict[str, object]:
    w = get_workload("deepseek-v3")
    step = StepShape(phase, 1, new, context)
    return {o.name: o for o in w.build_ops(step, Precision(), Placement(tp=1, layer_start=3, layer_end=4))}


def test_mla_prefill_is_naive_and_decode_is_absorbed() -> None:
    """Per layer and query at context S: naive core 2 x 128 heads x (192 + 128) x S; absorbed core
    2 x 128 x (576 + 512) x S, 3.4x the FLOPs, reading only 576 latent values per cached token
    (models.md §13.4)."""
    prefill = _mla_ops(Phase.PREFILL, 4096, 4096)
    decode = _mla_ops(Phase.DECODE, 4096)
    assert {"kv_b_proj", "attention_mha"} <= set(prefill) and "attention_mqa" not in prefill
    assert {"q_absorb_uk", "attention_mqa", "out_absorb_uv"} <= set(decode) and "kv_b_proj" not in decode
    core = decode["attention_mqa"]
    assert core.flops == 2 * 128 * (576 + 512) * 4096  # type: ignore[attr-defined]
    assert core.kv_read_bytes == 4096 * 576 * 2  # type: ignore[attr-defined]
    mha = prefill["attention_mha"]
    assert mha.flops == 2 * 128 * (192 + 128) * (4096 * 4097 / 2)  # type: ignore[attr-defined]


def test_dsa_caps_attention_at_top_k_but_indexes_everything() -> None:
    """V3.2 decode at 100k context: the main attention reads 2048 latents, the indexer scores all
    100k FP8 keys: 2 x 64 x 128 x 100,000 FLOPs."""
    w = get_workload("deepseek-v3.2")
    ops = {o.name: o for o in w.build_ops(StepShape(Phase.DECODE, 1, 1, 100_000), Precision(),
                                          Placement(tp=1, layer_start=3, layer_end=4))}  # fmt: skip
    assert ops["attention_mqa"].kv_read_bytes == 2048 * 576 * 2
    assert ops["attention_mqa"].flops == 2 * 128 * (576 + 512) * 2048
    assert ops["indexer_scores"].flops == 2 * 64 * 128 * 100_000
    assert ops["indexer_scores"].kv_read_bytes == 100_000 * 132


def test_deepseek_estimates_with_attention_dp_and_expert_parallelism() -> None:
    """The usual DeepSeek serving layout on 8 GPUs: attention data-parallel 8 ways, experts over all 8."""
    plan = ParallelPlan(tp=1, attn_dp=8, ep=8)
    result = estimate(get_workload("deepseek-v3"), resolve_cluster(hardware="h200-sxm", num_gpus=8),
                      Scenario(64, 1024, 64, Precision(weight=DType.FP8, kv_cache=DType.BF16), plan))  # fmt: skip
    names = {r.name for r in result.decode.ops}
    assert {"moe_dispatch", "moe_combine", "attention_mqa", "router"} <= names
    # 671B in fp8 over 8 GPUs: ~ 84 GB of weights each (+ a replicated copy of attention and dense layers)
    assert 80e9 < result.memory.weights_bytes < 110e9
    assert result.memory.fits


V4_IDS = ["deepseek-v4-pro", "deepseek-v4-flash"]


@pytest.mark.parametrize("model_id", V4_IDS)
def test_v4_params_within_tolerance(model_id: str) -> None:
    """Main model vs the model card (models.md §6); Flash's '13B' is a whole-billion nominal."""
    w = get_workload(model_id)
    counts = w.parameter_counts()
    main = counts.total - counts.by_component["mtp"]
    assert abs(main - w.published_params) <= w.published_tolerance(w.published_params)
    assert abs(counts.active - w.published_active_params) <= w.published_tolerance(w.published_active_params)


@pytest.mark.parametrize(
    ("model_id", "per_token"),
    [
        # models.md §6: CSA layers (512 + 128) / 4 per token, HCA 512 / 128, in bf16
        ("deepseek-v4-pro", 30 * (128 + 32) * 2 + 31 * 4 * 2),  # 9,848 B
        ("deepseek-v4-flash", 21 * 160 * 2 + 20 * 4 * 2),  # 6,880 B
    ],
)
def test_v4_compressed_kv_per_token(model_id: str, per_token: int) -> None:
    assert get_workload(model_id).kv_cache_bytes_per_token(Precision()) == per_token


def test_v4_pro_million_token_cache_matches_vllm() -> None:
    """vLLM's DeepSeek-V4 blog: 9.62 GiB per 1M-token sequence for Pro in bf16 (models.md §6):
    2^20 x 9,848 B of compressed entries + 61 x 128 x 512 x 2 B of window rings."""
    w = get_workload("deepseek-v4-pro")
    cache = w.kv_cache_bytes(2**20, Precision(), Placement(layer_end=61))
    assert cache == 2**20 // 4 * 640 * 2 * 30 + 2**20 // 128 * 512 * 2 * 31 + 61 * 128 * 512 * 2
    assert cache / 2**30 == pytest.approx(9.62, abs=0.01)


def test_v4_decode_reads_window_topk_and_compressed_entries() -> None:
    """Flash at 1M context, one decode step: a CSA layer reads 128 window + 512 selected entries of
    512 x 2 B plus the indexer's 2^20 / 4 keys of 128 x 2 B; an HCA layer 128 + 2^20 / 128 entries."""
    w = get_workload("deepseek-v4-flash")
    step, context = StepShape(Phase.DECODE, 1, 1, 2**20), 2**20
    ops = {o.name: o for o in w.build_ops(step, Precision(), Placement(layer_start=2, layer_end=4))}
    assert ops["attention[csa]"].kv_read_bytes == (128 + 512) * 512 * 2
    assert ops["indexer_scores"].kv_read_bytes == context // 4 * 128 * 2
    assert ops["attention[hca]"].kv_read_bytes == (128 + context // 128) * 512 * 2


@pytest.mark.parametrize("model_id", V4_IDS)
def test_v4_estimates(model_id: str) -> None:
    w = get_workload(model_id)  # shipped formats: FP8 weights, FP4 experts
    result = estimate(w, resolve_cluster(hardware="b200", num_gpus=8),
                      Scenario(16, 8192, 16, w.shipped_precision, ParallelPlan(tp=1, attn_dp=8, ep=8)))  # fmt: skip
    names = {r.name for r in result.decode.ops}
    assert {"attention[csa]", "attention[hca]", "indexer_scores", "o_a_grouped", "expert_up"} <= names
    assert result.memory.fits


def test_mtp_speculative_decoding() -> None:
    """One MTP draft accepted 85% of the time: 1.85 tokens per step. At batch 1 the step is
    bandwidth-bound, so verifying 2 tokens plus one MTP layer costs little more than one token:
    TPOT falls. Models without MTP layers refuse it."""
    w = get_workload("deepseek-v3")
    cluster = resolve_cluster(hardware="h200-sxm", num_gpus=8)
    plan, precision = ParallelPlan(tp=8, ep=8), w.shipped_precision
    plain = estimate(w, cluster, Scenario(1, 1024, 32, precision, plan))
    spec = estimate(w, cluster, Scenario(1, 1024, 32, precision, plan, mtp_drafts=1, mtp_acceptance=0.85))
    assert Scenario(1, 1, 1, mtp_drafts=1, mtp_acceptance=0.85).tokens_per_decode_step == pytest.approx(1.85)
    assert spec.tpot_s < plain.tpot_s / 1.3
    names = {r.name for r in spec.decode.ops}
    assert {"mtp_eh_proj", "mtp_attention_mqa", "mtp_expert_up", "mtp_lm_head"} <= names
    assert spec.memory.weights_bytes > plain.memory.weights_bytes  # the MTP layer is loaded
    with pytest.raises(RooflineError, match="ships no MTP layers"):
        estimate(get_workload("mixtral-8x7b"), cluster, Scenario(1, 64, 4, plan=ParallelPlan(tp=8), mtp_drafts=1))
