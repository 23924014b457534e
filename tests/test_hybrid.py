"""Hybrid Mamba-2 / attention / (latent) MoE stacks: Nemotron-3."""

from __future__ import annotations

import pytest

from roofline.hardware_specs import resolve_cluster
from roofline.ir import Phase, Placement, Precision, StepShape
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.workloads import get_workload
from roofline.workloads.hybrid import HybridStack
from roofline.workloads.moe_blocks import MoEShape, moe_ops

IDS = ["nemotron-3-nano", "nemotron-3-super", "nemotron-3-ultra"]


@pytest.mark.parametrize("model_id", IDS)
def test_params_within_2_percent(model_id: str) -> None:
    """Published figures and sources in the YAML (models.md §9.2); MTP layers counted apart."""
    w = get_workload(model_id)
    counts = w.parameter_counts()
    assert counts.total - counts.by_component.get("mtp", 0.0) == pytest.approx(w.published_params, rel=0.02)
    assert counts.active_non_embedding == pytest.approx(w.published_active_params, rel=0.02)


def test_layer_pattern_counts() -> None:
    """models.md §9.2: Nano 52 = 23 M + 23 E + 6 attention; Ultra 108 = 48 + 48 + 12."""
    nano, ultra = get_workload("nemotron-3-nano"), get_workload("nemotron-3-ultra")
    assert isinstance(nano, HybridStack) and isinstance(ultra, HybridStack)
    assert nano.blocks(Placement(layer_end=52)) == {"mamba": 23, "moe": 23, "attention": 6}
    assert ultra.blocks(Placement(layer_end=108)) == {"mamba": 48, "moe": 48, "attention": 12}


def test_kv_per_token_and_mamba_state_by_hand() -> None:
    """Nano: attention KV 6 layers x 2 x 2 KV heads x 128 x 2 B = 6,144 B per token; Mamba state per
    sequence 23 layers x (64 x 64 x 128 x 4 B + (4096 + 2 x 8 x 128) x 3 x 2 B) = 46.8 MiB."""
    w = get_workload("nemotron-3-nano")
    assert w.kv_cache_bytes_per_token(Precision()) == 6 * 2 * 2 * 128 * 2
    state = 23 * (64 * 64 * 128 * 4 + (4096 + 2 * 8 * 128) * 3 * 2)
    full = Placement(layer_end=52)
    assert w.kv_cache_bytes(1000, Precision(), full) == 1000 * 6144 + state
    assert state / 2**20 == pytest.approx(46.8, abs=0.05)


def test_pure_mamba_decode_time_does_not_grow_with_context() -> None:
    mamba_only = HybridStack(
        kind="hybrid", id="mamba-test", name="m", source="test", hidden_size=2048, vocab_size=32000,
        hybrid_override_pattern="M" * 24, num_attention_heads=16, num_key_value_heads=16, head_dim=128,
        mamba_num_heads=64, mamba_head_dim=64, ssm_state_size=128, n_groups=8, conv_kernel=4,
    )  # fmt: skip
    cluster = resolve_cluster(hardware="h100-sxm")
    short = estimate(mamba_only, cluster, Scenario(8, 100, 8))
    long = estimate(mamba_only, cluster, Scenario(8, 100_000, 8))
    assert long.tpot_s == pytest.approx(short.tpot_s, rel=1e-9)
    assert long.memory.kv_cache_bytes == short.memory.kv_cache_bytes


def test_latent_moe_at_full_width_without_projections_is_plain_moe() -> None:
    """Latent size == hidden size, the two projections left out: the same router, experts and traffic."""
    step, precision, place = StepShape(Phase.DECODE, 32, 1, 500), Precision(), Placement(layer_end=1)
    common = dict(hidden=2048, num_experts=64, top_k=6, expert_intermediate=1024, gated=False, num_shared=1,
                  shared_intermediate=2048)  # fmt: skip
    plain = {o.name: o for o in moe_ops(MoEShape(**common), step, precision, place, 1)}  # type: ignore[arg-type]
    latent = {o.name: o for o in moe_ops(MoEShape(latent=2048, **common), step, precision, place, 1)}  # type: ignore[arg-type]
    assert set(latent) - set(plain) == {"latent_down_proj", "latent_up_proj"}
    for name, op in plain.items():
        assert (latent[name].flops, latent[name].bytes) == (op.flops, op.bytes), name


def test_latent_moe_shrinks_dispatch_by_the_latent_ratio() -> None:
    """Super: tokens cross the EP all-to-all at the latent width 1024, not 4096 (models.md §9.1)."""
    w = get_workload("nemotron-3-super")
    ops = w.build_ops(StepShape(Phase.DECODE, 64, 1, 1000), Precision(), Placement(tp=8, layer_end=88, ep=8))
    dispatch = next(o for o in ops if o.name == "moe_dispatch")
    assert dispatch.collective is not None
    # one copy per token of the TP rank's share; the EP model fans it out to the top-22 experts' GPUs
    assert dispatch.collective.message_bytes == 64 / 8 * 1024 * 2
    assert dispatch.collective.routing is not None and dispatch.collective.routing.top_k == 22


@pytest.mark.parametrize("model_id", IDS)
def test_estimates_run(model_id: str) -> None:
    result = estimate(get_workload(model_id), resolve_cluster(hardware="b200", num_gpus=8),
                      Scenario(16, 2048, 16, plan=ParallelPlan(tp=8, ep=8)))  # fmt: skip
    names = {r.name for r in result.decode.ops}
    assert {"ssm_scan", "mamba_in_proj", "router", "expert_up", "attention"} <= names
    if model_id != "nemotron-3-nano":
        assert {"latent_down_proj", "latent_up_proj"} <= names
