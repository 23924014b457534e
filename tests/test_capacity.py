"""The one capacity rule (simulator/capacity.py): reserve, free bytes, KV tokens, used bytes, fit.

The rule is checked by hand on round numbers, the scalar and the array path are checked against
each other, and every caller (estimate's memory, serve's KV capacity, the fast path of sweep / plan,
the diffusion estimates, the assumptions rows) is checked to give the figure capacity.py gives.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from roofline.hardware_specs import resolve_cluster
from roofline.reports.assumptions import estimate_inputs
from roofline.simulator import capacity
from roofline.simulator.capacity import (
    UNBOUNDED_KV_TOKENS,
    KvCapacity,
    free_bytes,
    kv_tokens,
    kv_tokens_int,
    used_bytes,
)
from roofline.simulator.fast import FastModel, Layout
from roofline.simulator.memory import kv_capacity, memory_result
from roofline.simulator.plan import ParallelPlan, Scenario, stage_placements
from roofline.simulator.serving import kv_capacity_tokens, load_engine
from roofline.workloads import get_workload

GIB = 2.0**30


@pytest.fixture(autouse=True)
def _no_user_catalog_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)


# ---- the rule by hand ------------------------------------------------------------------------------


def test_rule_by_hand() -> None:
    """80 GiB GPU, 4 GiB reserve, 16 GiB weights, 2 GiB activations: 80 - 4 - 16 - 2 = 58 GiB free.
    At 128 KiB of KV per token and a 0.9 share: 58 x 2^30 x 0.9 / 2^17 = 58 x 8192 x 0.9
    = 427,622.4 -> 427,622 tokens per replica, x 2 replicas = 855,244.
    With 50 GiB of KV: 16 + 50 + 2 + 4 = 72 GiB used <= 80: fits; with 60 GiB: 82 > 80: does not."""
    free = free_bytes(80 * GIB, 4 * GIB, 16 * GIB, 2 * GIB)
    assert free == 58 * GIB
    assert kv_tokens_int(free, 0.9, 128 * 1024, 1) == 427_622
    assert kv_tokens_int(free, 0.9, 128 * 1024, 2) == 855_244
    assert used_bytes(16 * GIB, 50 * GIB, 2 * GIB, 4 * GIB) == 72 * GIB
    assert capacity.fits(used_bytes(16 * GIB, 50 * GIB, 2 * GIB, 4 * GIB), 80 * GIB)
    assert not capacity.fits(used_bytes(16 * GIB, 60 * GIB, 2 * GIB, 4 * GIB), 80 * GIB)
    assert capacity.fits(80 * GIB, 80 * GIB)  # exactly full still fits


def test_nothing_free_holds_no_kv_and_free_kv_is_unbounded() -> None:
    assert kv_tokens_int(-1.0, 0.9, 1024.0, 4) == 0
    assert kv_tokens_int(0.0, 0.9, 1024.0, 4) == 0
    assert kv_tokens_int(GIB, 0.9, 0.0, 4) == int(UNBOUNDED_KV_TOKENS) == 1 << 40  # not x replicas
    assert KvCapacity(-1.0, 1.0, 1024.0, 1).tokens == 0 and not KvCapacity(-1.0, 1.0, 1024.0, 1).has_room
    assert KvCapacity(GIB, 0.5, 1024.0, 2).tokens == 2**20  # 2^30 x 0.5 / 2^10 = 2^19 per replica, x 2


def test_reserve_is_the_request_else_the_accelerator() -> None:
    acc = resolve_cluster("h100-sxm").accelerator
    assert capacity.reserve_bytes(acc) == acc.runtime_reserve > 0
    assert capacity.reserve_bytes(acc, 5 * GIB) == 5 * GIB
    assert capacity.reserve_bytes(acc, 0.0) == 0.0  # --reserve 0 is a request, not "unset"


# ---- one function, scalars and arrays -----------------------------------------------------------


def test_scalar_and_array_paths_agree() -> None:
    rng = np.random.default_rng(7)
    free = rng.uniform(-10 * GIB, 120 * GIB, 400)
    per_token = rng.choice([0.0, 6 * 1024.0, 70_272.0, 131_072.0, 524_288.0], 400)
    fraction = rng.uniform(0.5, 1.0, 400)
    replicas = rng.integers(1, 9, 400)
    got = kv_tokens(free, fraction, per_token, replicas)
    for i in range(len(free)):
        scalar = kv_tokens_int(float(free[i]), float(fraction[i]), float(per_token[i]), int(replicas[i]))
        assert got[i] == scalar
        if free[i] > 0 and per_token[i] > 0:  # the int() truncation the rule was first written with
            assert scalar == int(free[i] * fraction[i] / per_token[i]) * replicas[i]
    weights, act, reserve = (rng.uniform(0, 40 * GIB, 400) for _ in range(3))
    cap_bytes = rng.choice([80 * GIB, 141e9], 400)
    arr_free = free_bytes(cap_bytes, reserve, weights, act)
    arr_used = used_bytes(weights, np.maximum(arr_free, 0.0), act, reserve)
    arr_fits = capacity.fits(arr_used, cap_bytes)
    for i in range(len(free)):
        assert arr_free[i] == free_bytes(float(cap_bytes[i]), float(reserve[i]), float(weights[i]), float(act[i]))
        assert arr_used[i] == used_bytes(float(weights[i]), max(float(arr_free[i]), 0.0), float(act[i]),
                                         float(reserve[i]))  # fmt: skip
        assert bool(arr_fits[i]) == bool(capacity.fits(float(arr_used[i]), float(cap_bytes[i])))


# ---- every caller gives capacity.py's figure -----------------------------------------------------


def _free_of(memory_bytes: dict[str, float]) -> float:
    return free_bytes(memory_bytes["capacity_bytes"], memory_bytes["reserve_bytes"], memory_bytes["weights_bytes"],
                      memory_bytes["activation_bytes"])  # fmt: skip


def test_estimate_memory_uses_the_rule() -> None:
    """llama-3.1-8b on one H100, bf16: KV per token 32 layers x 8 heads x 128 x 2 (K, V) x 2 B = 131,072 B."""
    w, cluster = get_workload("llama-3.1-8b"), resolve_cluster("h100-sxm")
    sc = Scenario(4, 1024, 128, w.shipped_precision, reserve_bytes=3 * GIB)
    m = memory_result(w, cluster, sc)
    assert m.reserve_bytes == 3 * GIB
    free = _free_of(m.to_dict())
    assert m.free_bytes == free
    assert m.kv_capacity_tokens == kv_tokens_int(free, 1.0, 131_072.0)
    assert m.max_batch == m.kv_capacity_tokens // (1024 + 128)
    assert m.total_bytes == used_bytes(m.weights_bytes, m.kv_cache_bytes, m.activation_bytes, 3 * GIB)
    assert m.fits == (m.total_bytes <= cluster.accelerator.memory.capacity)


def test_serve_kv_capacity_uses_the_rule() -> None:
    """serve: the engine's share of the free bytes left by the activations of attn_dp sequences' first step."""
    w, cluster = get_workload("llama-3.1-8b"), resolve_cluster("h100-sxm")
    engine = load_engine("vllm")
    sc = Scenario(1, 2048, 256, w.shipped_precision)
    m = memory_result(w, cluster, sc)  # batch 1 = max(1, attn_dp): the same largest step
    (placement,) = stage_placements(w, sc.plan)
    per_token = w.kv_cache_bytes(2304, sc.precision, placement) / 2304
    assert per_token == 131_072
    expected = kv_tokens_int(_free_of(m.to_dict()), engine.kv_memory_fraction, per_token)
    assert kv_capacity_tokens(w, cluster, sc, engine) == expected
    assert 0 < engine.kv_memory_fraction < 1 and expected < m.kv_capacity_tokens


@pytest.mark.parametrize("model_id,hardware,tp,ep,attn_dp,pp", [
    ("llama-3.1-70b", "h100-sxm", 2, 1, 1, 3),  # 80 layers over 3 stages: 27, 27, 26
    ("qwen3-30b-a3b", "h100-sxm", 1, 2, 2, 1),
    ("llama-3.1-405b", "h100-sxm", 8, 1, 1, 1),  # does not fit: nothing free, no KV
])  # fmt: skip
def test_fast_path_uses_the_rule(model_id: str, hardware: str, tp: int, ep: int, attn_dp: int, pp: int) -> None:
    """The vectorised path's free bytes, KV tokens, used bytes and fit equal memory.py's, which is
    capacity.py on one configuration."""
    w = get_workload(model_id)
    plan = ParallelPlan(tp=tp, ep=ep, attn_dp=attn_dp, pp=pp)
    cluster = resolve_cluster(hardware, num_gpus=plan.num_gpus)
    fast = FastModel(w, [cluster])
    layout = Layout(tp, ep, attn_dp, w.shipped_precision)
    batches = np.array([1, 2, 16, 128, 1024])
    h, pps = np.zeros(len(batches), int), np.full(len(batches), pp)
    got_kv = fast.kv_capacity(layout, 1024, 256, h, batches, pps, kv_memory_fraction=0.9)
    got_mem = fast.memory(layout, 1024, 256, h, batches, pps)
    assert (got_mem["reserve_bytes"] == capacity.reserve_bytes(cluster.accelerator)).all()
    for i, b in enumerate(batches):
        sc = Scenario(int(b), 1024, 256, w.shipped_precision, plan)
        ref = kv_capacity(w, cluster, sc, int(b), 1280, 0.9)
        assert got_kv["free_bytes"][i] == pytest.approx(ref.free_bytes, rel=1e-12)
        assert got_kv["kv_bytes_per_token"][i] == pytest.approx(ref.bytes_per_token, rel=1e-12)
        assert got_kv["kv_capacity_tokens"][i] == ref.tokens
        mem = memory_result(w, cluster, sc)
        assert got_mem["total_bytes"][i] == pytest.approx(mem.total_bytes, rel=1e-12)
        assert bool(got_mem["fits"][i]) == mem.fits
    if model_id == "llama-3.1-405b":
        assert (got_kv["kv_capacity_tokens"] == 0).all() and not got_mem["fits"].any()


def test_diffusion_results_use_the_rule() -> None:
    import roofline as rl

    dit_result = rl.estimate_diffusion("flux.1-dev", "h100-sxm")
    dlm_result = rl.estimate_diffusion("llada-8b", "h100-sxm")
    assert dit_result.fits == dit_result.detail.fits and dlm_result.fits == dlm_result.detail.fits
    dit, dlm = dit_result.detail, dlm_result.detail
    acc = resolve_cluster("h100-sxm").accelerator
    for detail in (dit, dlm):
        assert detail.reserve_bytes == capacity.reserve_bytes(acc)
        assert detail.fits == bool(capacity.fits(detail.memory_bytes, acc.memory.capacity))
        assert detail.to_dict(with_ops=False)["memory"]["total_bytes"] == detail.memory_bytes
    weights = dit.weights_bytes + dit.encoder_weights_bytes
    assert dit.memory_bytes == pytest.approx(weights + dit.activation_bytes + dit.attention_bytes + dit.reserve_bytes,
                                             rel=1e-12)  # fmt: skip
    assert dlm.memory_bytes == used_bytes(dlm.weights_bytes, dlm.kv_cache_bytes, dlm.activation_bytes,
                                          dlm.reserve_bytes)  # fmt: skip


def test_assumptions_show_the_reserve_the_rule_used() -> None:
    w, cluster = get_workload("llama-3.1-8b"), resolve_cluster("h100-sxm")
    sc = Scenario(1, 128, 16, w.shipped_precision)
    rows = dict(estimate_inputs(w, cluster, sc, ideal=False))
    assert rows["Runtime reserve per GPU (GiB)"] == cluster.accelerator.runtime_reserve / GIB
    rows = dict(estimate_inputs(w, cluster, replace(sc, reserve_bytes=6 * GIB), ideal=False))
    assert rows["Runtime reserve per GPU (GiB)"] == 6.0
