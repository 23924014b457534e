"""The serving simulator (`roofline serve`): step-time model, scheduler simulation, loads, KV
capacity, request streams and the command line.

Every expected number is derived here: from the full cost model, from the step model itself, from
engine / hardware values read through the API, or from hand arithmetic written in the docstring.
Small runs only (llama-3.1-8b on one h100-sxm, tens to a thousand short requests).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from roofline.cli.app import app
from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.hardware_specs.cluster import Cluster
from roofline.ir import Phase, StepShape
from roofline.simulator.collectives import load_library
from roofline.simulator.cost import RooflineCostModel
from roofline.simulator.engine import time_step
from roofline.simulator.plan import ParallelPlan, Scenario, stage_placements
from roofline.simulator.serving import (
    EngineConfig,
    Load,
    ServeResult,
    engine_ids,
    kv_capacity_tokens,
    load_engine,
    serve,
)
from roofline.simulator.serving import simulate as simulate_module
from roofline.simulator.serving.limits import trtllm_bench_limits
from roofline.simulator.serving.requests import Requests, lengths, poisson_arrivals, read_trace
from roofline.simulator.serving.service import per_attention_replica
from roofline.simulator.serving.simulate import SimulationResult, _run_quiet, simulate
from roofline.simulator.serving.step_model import StepTimeModel
from roofline.workloads import get_workload
from roofline.workloads.base import Workload

MODEL = "llama-3.1-8b"
HARDWARE = "h100-sxm"

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_user_catalog_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ROOFLINE_*_PATH must not change what these tests see."""
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)


@pytest.fixture(scope="module")
def workload() -> Workload:
    return get_workload(MODEL)


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return resolve_cluster(hardware=HARDWARE, num_gpus=1)


@pytest.fixture(scope="module")
def trtllm() -> EngineConfig:
    """The C++-executor profile (trtllm-cpp): host time adds to each step, as these checks expect."""
    return load_engine("trtllm-cpp")


def scenario(isl: int = 256, osl: int = 32) -> Scenario:
    return Scenario(1, isl, osl)


def full_step_s(workload: Workload, cluster: Cluster, sc: Scenario, phase: Phase, batch: int, new: int,
                context: int) -> float:  # fmt: skip
    """The full cost model for one step, called as step_model.py does (pp = 1: one micro-batch,
    so the step time is time_step's time_s)."""
    assert sc.plan.pp == 1
    cost = RooflineCostModel(cluster, sc.plan, ideal=False, library=load_library(sc.comm_library))
    placements = stage_placements(workload, sc.plan)
    return time_step(workload, StepShape(phase, batch, new, context), sc, cost, placements).time_s


def step_model_as_serve_builds_it(workload: Workload, cluster: Cluster, sc: Scenario, engine: EngineConfig,
                                  max_context: int) -> StepTimeModel:  # fmt: skip
    """The same grids serve() uses (they depend on max_context and max_decode), so interpolated
    values match the simulation's step for step."""
    capacity = kv_capacity_tokens(workload, cluster, sc, engine)
    return StepTimeModel(workload, cluster, sc, engine, max_context=max_context,
                         max_decode=min(engine.max_batch, max(1, capacity)))  # fmt: skip


def in_system_at_arrivals(sim: SimulationResult) -> np.ndarray:
    """Requests in the system (arrival <= t < finish) at every arrival instant t."""
    a, f = sim.arrival_s, sim.finish_s
    return ((a[None, :] <= a[:, None]) & (a[:, None] < f[None, :])).sum(axis=1)


def isolated(sim: SimulationResult) -> np.ndarray:
    """Mask of requests whose [arrival, finish] overlaps no other request's."""
    a, f = sim.arrival_s, sim.finish_s
    overlap = (a[None, :] < f[:, None]) & (f[None, :] > a[:, None])
    np.fill_diagonal(overlap, False)
    return ~overlap.any(axis=1)


# ---- 1. StepTimeModel ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def step_model(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> StepTimeModel:
    return StepTimeModel(workload, cluster, scenario(), trtllm, max_context=4096, max_decode=256)


def test_base_equals_full_model_at_grid_points(step_model: StepTimeModel, workload: Workload,
                                               cluster: Cluster) -> None:  # fmt: skip
    """base(T) is the full model's decode step of T sequences at a one-token context."""
    sc = scenario()
    for t in step_model.token_grid[:: max(1, len(step_model.token_grid) // 8)]:
        expected = full_step_s(workload, cluster, sc, Phase.DECODE, int(t), 1, 1)
        assert float(step_model.base(int(t))) == pytest.approx(expected, rel=1e-12), t


@pytest.mark.parametrize("tokens", [5, 10, 50, 100, 700, 3000])
def test_base_interpolation_within_3_percent_off_grid(step_model: StepTimeModel, workload: Workload,
                                                      cluster: Cluster, tokens: int) -> None:  # fmt: skip
    assert tokens not in step_model.token_grid  # an off-grid point, really interpolated
    expected = full_step_s(workload, cluster, scenario(), Phase.DECODE, tokens, 1, 1)
    assert float(step_model.base(tokens)) == pytest.approx(expected, rel=0.03)


def test_decode_and_prefill_steps_equal_full_model_at_grid_points(step_model: StepTimeModel, workload: Workload,
                                                                  cluster: Cluster) -> None:  # fmt: skip
    """step_s(D, c) = base(D') + [full(D at c) - base(D)] + overheads at a (decode, context) grid
    point, D' the CUDA graph D is padded to (D itself where captured); likewise a prefill chunk of
    P at context C on the chunk grid. Exact only where D and D' (or P) are on the token grid too, so
    base is not interpolated."""
    sc, engine = scenario(), step_model.engine
    decodes = np.intersect1d(step_model.decode_grid, step_model.token_grid)
    chunk_sizes = np.intersect1d(step_model.chunk_grid, step_model.token_grid)
    assert len(decodes) >= 3 and len(chunk_sizes) >= 3
    for d in decodes[[0, len(decodes) // 2, -1]]:
        padded = step_model.padded_decodes(int(d))
        assert padded in step_model.token_grid
        for c in step_model.context_grid[[3, 10, -1]]:
            expected = full_step_s(workload, cluster, sc, Phase.DECODE, int(d), 1, int(c))
            expected += full_step_s(workload, cluster, sc, Phase.DECODE, padded, 1, 1) - full_step_s(
                workload, cluster, sc, Phase.DECODE, int(d), 1, 1)  # fmt: skip
            expected += engine.step_overhead + int(d) * engine.per_sequence_overhead
            assert step_model.step_s(int(d), float(c)) == pytest.approx(expected, rel=1e-9), (d, c)
    for p in chunk_sizes[[0, len(chunk_sizes) // 2, -1]]:
        c = int(step_model.context_grid[-1])
        expected = full_step_s(workload, cluster, sc, Phase.PREFILL, 1, int(p), max(int(p), c))
        expected += engine.step_overhead + engine.per_sequence_overhead
        assert step_model.step_s(0, 0, [(int(p), c)]) == pytest.approx(expected, rel=1e-9), p


def test_decode_only_step_runs_the_captured_cuda_graph(workload: Workload, cluster: Cluster) -> None:
    """A CUDA-graph runtime pads a decode-only batch to its next captured size (sglang.yaml: 8, 12, 16,
    24, ..., 128, 136, ...): 11 sequences cost as 12, 13 as 16 and 129 as 136, bar attention and the
    per-sequence host time; a captured size runs as it is, and a step with a prompt chunk is not padded."""
    step_model = StepTimeModel(workload, cluster, scenario(), load_engine("sglang"), max_context=4096, max_decode=256)
    assert [step_model.padded_decodes(d) for d in (1, 8, 11, 16, 129, 136)] == [1, 8, 12, 16, 136, 136]
    per_sequence = step_model.engine.per_sequence_overhead
    for real, captured in ((11, 12), (13, 16), (129, 136)):
        attention = float(step_model.decode_attention(np.array(captured), np.array(1000.0)) -
                          step_model.decode_attention(np.array(real), np.array(1000.0)))  # fmt: skip
        expected = step_model.step_s(captured, 1000.0) - attention - (captured - real) * per_sequence
        assert step_model.step_s(real, 1000.0) == pytest.approx(expected, rel=1e-9)
    assert step_model.step_s(129, 1000.0) > step_model.step_s(128, 1000.0)
    eleven = step_model.step_s(11, 1000.0)
    assert step_model.decode_only(11)(1000.0) == pytest.approx(eleven, rel=1e-9)
    mixed = step_model.step_s(11, 1000.0, [(64, 64)])
    assert mixed < step_model.step_s(16, 1000.0, [(64, 64)])  # with a prompt chunk: eager, 11 rows


def test_sglang_captures_its_documented_sizes() -> None:
    """sglang.yaml: server_args.py's capture list on an H100 / H200 at tp >= 4 (cuda_graph_max_bs 512)."""
    from roofline.simulator.host import graph_batch

    sglang = load_engine("sglang")
    assert [graph_batch(sglang, b) for b in (3, 9, 13, 257, 500, 513)] == [4, 12, 16, 272, 512, 513]


@pytest.mark.parametrize("tokens", [240, 250, 500])
def test_base_interpolation_within_3_percent_below_tile_boundaries(step_model: StepTimeModel, workload: Workload,
                                                                   cluster: Cluster, tokens: int) -> None:  # fmt: skip
    assert tokens not in step_model.token_grid
    expected = full_step_s(workload, cluster, scenario(), Phase.DECODE, tokens, 1, 1)
    assert float(step_model.base(tokens)) == pytest.approx(expected, rel=0.03)


def test_decode_attention_grows_with_context_and_batch(step_model: StepTimeModel) -> None:
    contexts = np.array([300.0, 1000.0, 2000.0, 4000.0])
    for d in (1, 8, 64):
        attn = step_model.decode_attention(np.full(len(contexts), d), contexts)
        assert np.all(np.diff(attn) > 0), (d, attn)
    batches = np.array([1.0, 8.0, 64.0, 256.0])
    attn = step_model.decode_attention(batches, np.full(len(batches), 2000.0))
    assert np.all(np.diff(attn) > 0), attn
    assert float(step_model.decode_attention(np.array(0), np.array(2000.0))) == 0.0  # no decodes, no attention


def test_empty_step_is_free(step_model: StepTimeModel) -> None:
    assert step_model.step_s(0, 0.0) == 0.0
    assert step_model.step_s(0, 0.0, []) == 0.0


def test_step_includes_host_overheads(workload: Workload, cluster: Cluster, trtllm: EngineConfig,
                                      step_model: StepTimeModel) -> None:  # fmt: skip
    """Same grids, overheads zeroed: the difference is step_overhead + sequences x per_sequence_overhead."""
    quiet = trtllm.model_copy(update={"step_overhead": 0.0, "per_sequence_overhead": 0.0})
    bare = StepTimeModel(workload, cluster, scenario(), quiet, max_context=4096, max_decode=256)
    assert trtllm.step_overhead > 0 and trtllm.per_sequence_overhead > 0
    for decodes, context, chunks in [(1, 300.0, []), (37, 900.0, []), (0, 0.0, [(256, 256)]),
                                     (12, 500.0, [(100, 100), (2000, 3000)])]:  # fmt: skip
        sequences = decodes + len(chunks)
        expected = trtllm.step_overhead + sequences * trtllm.per_sequence_overhead
        diff = step_model.step_s(decodes, context, chunks) - bare.step_s(decodes, context, chunks)
        assert diff == pytest.approx(expected, rel=1e-9), (decodes, chunks)


# ---- 2. simulate() under a Poisson rate ----------------------------------------------------------


def run_serve(workload: Workload, cluster: Cluster, engine: EngineConfig, load: Load, isl: int = 256,
              osl: int = 32) -> ServeResult:  # fmt: skip
    return serve(workload, cluster, scenario(isl, osl), engine, load)


@pytest.fixture(scope="module")
def low_load(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> ServeResult:
    assert trtllm.request_overhead == 0.0
    return run_serve(workload, cluster, trtllm, Load("request_rate", 0.5, num_requests=30))


def test_low_rate_ttft_is_one_prefill_step(low_load: ServeResult, workload: Workload, cluster: Cluster,
                                           trtllm: EngineConfig) -> None:  # fmt: skip
    """A request alone in the system is admitted on arrival and prefilled in one step (256 < 8192
    tokens): TTFT = step_s(0, 0, [(256, 256)])."""
    sim = low_load.sim
    alone = isolated(sim)
    assert alone.sum() >= 20  # 0.5 req/s against ~0.2 s per request: most never meet another
    model = step_model_as_serve_builds_it(workload, cluster, scenario(), trtllm, max_context=256 + 32)
    prefill = model.step_s(0, 0, [(256, 256)])
    np.testing.assert_allclose(sim.ttft_s[alone], prefill, rtol=0.01)


def test_low_rate_tpot_is_decode_at_batch_one(low_load: ServeResult, workload: Workload, cluster: Cluster,
                                              trtllm: EngineConfig) -> None:  # fmt: skip
    """After the prefill (first token, generated = 1) come osl - 1 = 31 decode steps of one sequence
    at contexts 256 + 1 .. 256 + 31; TPOT is their mean."""
    sim = low_load.sim
    alone = isolated(sim)
    model = step_model_as_serve_builds_it(workload, cluster, scenario(), trtllm, max_context=256 + 32)
    expected = float(np.mean([model.step_s(1, 256 + g) for g in range(1, 32)]))
    assert (sim.osl == 32).all()
    np.testing.assert_allclose(sim.tpot_s[alone], expected, rtol=0.02)


def test_throughput_below_saturation_is_rate_times_osl(workload: Workload, cluster: Cluster,
                                                       trtllm: EngineConfig) -> None:  # fmt: skip
    """Arrivals are scaled so the last of n comes at (n - 1) / rate: 199 / 2 = 99.5 s. Each request
    takes ~0.2 s, so duration ~ 99.7 s and throughput = 200 x 32 / 99.7 ~ 64.2 tok/s ~ 2 x 32."""
    n, rate, osl = 200, 2.0, 32
    result = run_serve(workload, cluster, trtllm, Load("request_rate", rate, num_requests=n), osl=osl)
    sim = result.sim
    assert sim.arrival_s.max() - sim.arrival_s.min() == pytest.approx((n - 1) / rate, rel=1e-9)
    assert result.output_tokens_per_s == pytest.approx(rate * osl, rel=0.05)


def test_same_seed_same_run_other_seed_other_run(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    def run(seed: int) -> SimulationResult:
        load = Load("request_rate", 8.0, num_requests=50, seed=seed, isl_spread=0.3, osl_spread=0.3)
        return run_serve(workload, cluster, trtllm, load, isl=128, osl=16).sim

    a, b, c = run(0), run(0), run(1)
    for field in ("arrival_s", "first_token_s", "finish_s", "osl"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.steps == b.steps
    assert not np.array_equal(a.arrival_s, c.arrival_s)
    assert not np.array_equal(a.finish_s, c.finish_s)


def test_higher_rate_higher_tpot(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    """At 100 req/s ~20 requests share each decode step (and prompts interleave), at 0.5 req/s ~one."""
    low = run_serve(workload, cluster, trtllm, Load("request_rate", 0.5, num_requests=100))
    high = run_serve(workload, cluster, trtllm, Load("request_rate", 100.0, num_requests=100))
    assert high.sim.mean_batch > 5 * low.sim.mean_batch
    assert high.sim.tpot_s.mean() > low.sim.tpot_s.mean()


def test_percentiles_are_ordered(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    load = Load("request_rate", 20.0, num_requests=100, isl_spread=0.5, osl_spread=0.5)
    data = run_serve(workload, cluster, trtllm, load).to_dict()
    for metric in ("ttft", "tpot", "e2e"):
        stats = {p: data[f"{metric}_{p}_s"] for p in ("p50", "p90", "p99")}
        assert 0 < stats["p50"] <= stats["p90"] <= stats["p99"], (metric, stats)
        assert stats["p90"] < stats["p99"] or stats["p50"] < stats["p99"]  # spread lengths: not all equal


# ---- 3. max throughput ---------------------------------------------------------------------------


def test_max_throughput_batch_is_kv_bound(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    """trtllm reserves isl + osl = 288 tokens (9 blocks of 32) per request. With 5% of the free memory
    for KV, the capacity C holds B = min(max_batch, C // 288) requests (~87 << 2048); 1000 requests all
    queued at t = 0 keep ~B running (a wave is admitted in ~3 steps of 8192 / 256 = 32 prompts)."""
    assert trtllm.reserve_full_sequence
    engine = trtllm.model_copy(update={"kv_memory_fraction": 0.05})
    result = run_serve(workload, cluster, engine, Load("max_throughput", num_requests=1000))
    assert 288 % engine.kv_block_tokens == 0
    expected = min(engine.max_batch, result.kv_capacity_tokens // 288)
    assert 1000 > 10 * expected
    sim = result.sim
    assert (sim.arrival_s == 0).all()
    assert sim.max_batch == expected
    assert sim.mean_batch == pytest.approx(expected, rel=0.06)
    assert sim.mean_batch <= expected


def test_max_batch_override_caps_the_batch(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    engine = trtllm.model_copy(update={"max_batch": 4})
    sim = run_serve(workload, cluster, engine, Load("max_throughput", num_requests=50), isl=128, osl=16).sim
    assert sim.max_batch == 4
    assert sim.mean_batch <= 4
    # independently, from the arrays: never more than 4 requests between first token and finish
    events = np.concatenate([sim.first_token_s, sim.finish_s])
    streaming = ((sim.first_token_s[None, :] <= events[:, None]) & (events[:, None] < sim.finish_s[None, :])).sum(1)
    assert streaming.max() <= 4


# ---- 4. closed-loop concurrency ------------------------------------------------------------------


def test_concurrency_never_exceeded(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    sim = run_serve(workload, cluster, trtllm, Load("concurrency", 4, num_requests=50), isl=128, osl=16).sim
    counts = in_system_at_arrivals(sim)
    assert counts.max() == 4  # the clients keep the system full, never over
    assert np.isfinite(sim.finish_s).all()


def test_concurrency_one_runs_requests_back_to_back(workload: Workload, cluster: Cluster,
                                                    trtllm: EngineConfig) -> None:  # fmt: skip
    """One client: each request is sent when the previous one finishes, and runs alone: TTFT is one
    prefill step, and e2e = ttft + (osl - 1) x tpot."""
    sim = run_serve(workload, cluster, trtllm, Load("concurrency", 1, num_requests=10), isl=128, osl=16).sim
    np.testing.assert_allclose(sim.e2e_s, sim.ttft_s + (sim.osl - 1) * sim.tpot_s, rtol=1e-12)
    np.testing.assert_array_equal(sim.arrival_s[1:], sim.finish_s[:-1])
    assert in_system_at_arrivals(sim).max() == 1
    model = step_model_as_serve_builds_it(workload, cluster, scenario(128, 16), trtllm, max_context=144)
    np.testing.assert_allclose(sim.ttft_s, model.step_s(0, 0, [(128, 128)]), rtol=1e-9)


def test_concurrency_respected_with_request_overhead(workload: Workload, cluster: Cluster) -> None:
    engine = load_engine("trtllm-triton")
    assert engine.request_overhead > 0
    sim = run_serve(workload, cluster, engine, Load("concurrency", 1, num_requests=10), isl=128, osl=16).sim
    assert in_system_at_arrivals(sim).max() == 1


# ---- 5. prefix cache and request overhead --------------------------------------------------------


def test_prefix_hit_lowers_ttft(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    """Half of a 256-token prompt found in the cache: the lone request prefills 128 tokens reaching
    context 256: TTFT = step_s(0, 0, [(128, 256)]) < step_s(0, 0, [(256, 256)])."""
    cold = run_serve(workload, cluster, trtllm, Load("request_rate", 0.5, num_requests=30)).sim
    warm = run_serve(workload, cluster, trtllm, Load("request_rate", 0.5, num_requests=30, prefix_hit=0.5)).sim
    assert warm.ttft_s.mean() < cold.ttft_s.mean()
    model = step_model_as_serve_builds_it(workload, cluster, scenario(), trtllm, max_context=288)
    alone = isolated(warm)
    assert alone.sum() >= 20
    np.testing.assert_allclose(warm.ttft_s[alone], model.step_s(0, 0, [(128, 256)]), rtol=0.01)


def test_request_overhead_adds_to_ttft_only(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    load = Load("request_rate", 0.5, num_requests=30)
    base = run_serve(workload, cluster, trtllm.model_copy(update={"request_overhead": 0.0}), load).sim
    slow = run_serve(workload, cluster, trtllm.model_copy(update={"request_overhead": 0.01}), load).sim
    np.testing.assert_allclose(slow.ttft_s - base.ttft_s, 0.010, rtol=0, atol=1e-9)
    np.testing.assert_allclose(slow.e2e_s - base.e2e_s, 0.010, rtol=0, atol=1e-9)
    np.testing.assert_allclose(slow.tpot_s, base.tpot_s, rtol=1e-12)


# ---- 6. paged KV with preemption -----------------------------------------------------------------


def test_paged_engine_preempts_and_finishes(workload: Workload, cluster: Cluster) -> None:
    """vLLM allocates blocks as tokens arrive: 2000 tokens admit 7 prompts of 256 (7 x 256 = 1792),
    which grow to 7 x 384 = 2688 > 2000 tokens, so some must be preempted and recomputed."""
    engine = load_engine("vllm")
    assert not engine.reserve_full_sequence
    model = StepTimeModel(workload, cluster, scenario(256, 128), engine, max_context=384, max_decode=16)
    n = 20
    requests = Requests(np.zeros(n), np.full(n, 256), np.full(n, 128))
    sim = simulate(model, requests, engine, kv_capacity_tokens=2000)
    assert sim.preemptions > 0
    assert np.isfinite(sim.finish_s).all() and np.isfinite(sim.first_token_s).all()
    assert (sim.finish_s > sim.first_token_s).all()
    assert sim.max_batch <= 2000 // 256


def test_paged_request_that_only_fits_unrounded_is_refused(workload: Workload, cluster: Cluster,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(simulate_module, "MAX_STEPS", 5_000)
    engine = load_engine("vllm")
    assert 390 % engine.kv_block_tokens != 0
    model = StepTimeModel(workload, cluster, scenario(200, 190), engine, max_context=390, max_decode=4)
    requests = Requests(np.zeros(1), np.array([200]), np.array([190]))
    with pytest.raises(RooflineError, match="needs 400 tokens of KV .* cache holds 390"):
        simulate(model, requests, engine, kv_capacity_tokens=390)


# ---- 7. KV capacity ------------------------------------------------------------------------------


def test_kv_capacity_hand_check(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    """KV per token, bf16: 32 layers x 8 KV heads x 128 dims x 2 (K, V) x 2 B = 131,072 B.
    Capacity = (memory - reserve - weights - activations) x kv_memory_fraction / 131,072; the
    activations of one 8192-token step are small, so leaving them out stays within 2%."""
    sc = scenario(1024, 128)
    (placement,) = stage_placements(workload, sc.plan)
    assert workload.kv_cache_bytes(1000, sc.precision, placement) / 1000 == 32 * 8 * 128 * 2 * 2 == 131_072
    acc = cluster.accelerator
    weights = workload.weight_bytes(sc.precision, placement)
    assert 15e9 < weights < 17e9  # ~8.0B parameters x 2 B
    expected = (acc.memory.capacity - acc.runtime_reserve - weights) * trtllm.kv_memory_fraction / 131_072
    got = kv_capacity_tokens(workload, cluster, sc, trtllm)
    assert got == pytest.approx(expected, rel=0.02)
    assert got <= expected  # activations only take memory away
    half = trtllm.model_copy(update={"kv_memory_fraction": trtllm.kv_memory_fraction / 2})
    assert kv_capacity_tokens(workload, cluster, sc, half) == pytest.approx(got / 2, abs=1)


# ---- 8. request streams --------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_trace_parses_and_sorts(tmp_path: Path) -> None:
    trace = read_trace(write(tmp_path / "t.csv", "arrival_s,isl,osl\n2.5,100,10\n0,200,20\n1.0,300,30\n"))
    assert len(trace) == 3
    np.testing.assert_array_equal(trace.arrival_s, [0.0, 1.0, 2.5])
    np.testing.assert_array_equal(trace.isl, [200, 300, 100])
    np.testing.assert_array_equal(trace.osl, [20, 30, 10])
    assert trace.isl.dtype == np.int64 and trace.osl.dtype == np.int64


def test_read_trace_missing_column(tmp_path: Path) -> None:
    with pytest.raises(RooflineError, match="missing column") as info:
        read_trace(write(tmp_path / "t.csv", "arrival_s,isl\n0,100\n"))
    assert "osl" in str(info.value) and "arrival_s,isl,osl" in str(info.value)


@pytest.mark.parametrize("row", ["0.5,abc,10", "0.5,100,", "-1,100,10", "0.5,0,10"])
def test_read_trace_bad_value_names_the_line(tmp_path: Path, row: str) -> None:
    path = write(tmp_path / "t.csv", f"arrival_s,isl,osl\n0,100,10\n{row}\n1,100,10\n")
    with pytest.raises(RooflineError, match="line 3"):
        read_trace(path)


def test_read_trace_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(RooflineError, match="does not exist"):
        read_trace(tmp_path / "nope.csv")
    with pytest.raises(RooflineError, match="no requests"):
        read_trace(write(tmp_path / "t.csv", "arrival_s,isl,osl\n"))


def test_lengths_stay_in_bounds() -> None:
    """mean 100, spread 0.2: uniform integers in [80, 120]; spread 0: all 100."""
    rng = np.random.default_rng(0)
    drawn = lengths(2000, 100, 0.2, rng)
    assert drawn.min() >= 80 and drawn.max() <= 120
    assert drawn.min() < 85 and drawn.max() > 115  # really spread
    np.testing.assert_array_equal(lengths(5, 100, 0.0, rng), [100] * 5)
    assert lengths(100, 1, 0.9, rng).min() >= 1
    with pytest.raises(RooflineError):
        lengths(5, 100, 1.0, rng)


def test_poisson_arrivals() -> None:
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(poisson_arrivals(7, math.inf, rng), np.zeros(7))
    arrivals = poisson_arrivals(101, 4.0, rng)
    assert arrivals[0] == 0.0 and (np.diff(arrivals) >= 0).all()
    assert arrivals[-1] == pytest.approx(100 / 4.0, rel=1e-12)  # mean gap 1 / rate exactly
    with pytest.raises(RooflineError):
        poisson_arrivals(3, 0.0, rng)


def test_trace_is_split_over_replicas(workload: Workload, trtllm: EngineConfig) -> None:
    trace = Requests(np.array([0.0, 0.5, 1.0]), np.array([128, 128, 128]), np.array([16, 16, 16]))
    sc = Scenario(1, 128, 16, plan=ParallelPlan.for_gpus(1, 1, 2))
    assert sc.plan.dp == 2
    cluster = resolve_cluster(hardware=HARDWARE, num_gpus=2)
    data = serve(workload, cluster, sc, trtllm, Load("request_rate", 1.0, trace=trace)).to_dict()
    assert data["requests"] == 3


# ---- 9. command line -----------------------------------------------------------------------------

BASE = ["serve", "-m", MODEL, "--hardware", HARDWARE, "--isl", "128", "--osl", "16", "--num-requests", "20"]


def invoke(*args: str) -> Any:
    return runner.invoke(app, [*BASE, *args])


def assert_user_error(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_cli_json() -> None:
    result = invoke("--request-rate", "4", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output_tokens_per_s"] > 0
    assert data["ttft_p99_s"] >= data["ttft_p50_s"] > 0  # SI units: seconds, the unit in every key
    assert data["tpot_s"] > 0
    assert data["e2e_p90_s"] > data["ttft_p90_s"]
    assert not [key for key in data if key.endswith("_ms")]
    assert data["requests"] == 20 and data["mode"] == "request_rate" and data["engine"] == "trtllm"


def test_cli_table_renders() -> None:
    result = invoke("--request-rate", "4")
    assert result.exit_code == 0, result.output
    for text in ("TTFT", "TPOT", "output tokens/s", "trtllm"):
        assert text in result.stdout, text


@pytest.mark.parametrize(
    "load", [[], ["--request-rate", "1", "--concurrency", "2"], ["--max-throughput", "--request-rate", "1"]]
)
def test_cli_needs_exactly_one_load(load: list[str]) -> None:
    assert_user_error(invoke(*load), "choose one load")


def test_cli_bad_rate() -> None:
    assert_user_error(invoke("--request-rate", "abc"), "--request-rate", "abc")


def test_cli_missing_trace(tmp_path: Path) -> None:
    assert_user_error(invoke("--request-rate", "1", "--trace", str(tmp_path / "nope.csv")), "nope.csv")


def test_cli_unknown_engine() -> None:
    assert_user_error(invoke("--request-rate", "1", "--engine", "nope"), "nope", *engine_ids())


def test_cli_trace_alone(tmp_path: Path) -> None:
    trace = write(tmp_path / "t.csv", "arrival_s,isl,osl\n0,128,16\n0.5,128,16\n")
    result = invoke("--trace", str(trace), "--format", "json")
    assert result.exit_code == 0, result.output


# ---- engine limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "isl", "osl", "pp", "expected"),
    [
        (160, 500, 2000, 1, (160, 2048)),  # 32 x ceil(160/32); 160 x 1.25 = 200 tokens -> floor 2048
        (7500, 128, 128, 1, (4096, 8192)),  # batch capped at 4096; 4096 x 2 = 8192 -> 1024 x 8
        (300, 2048, 128, 1, (384, 5120)),  # 128 x ceil(300/128); 300 x 17 = 5100 -> 512 x 10
        (20, 128, 128, 1, (64, 2048)),  # at least 64 and 2048
        (3000, 2048, 128, 2, (1536, 25600)),  # 1500 per stage -> 256 x 6; 1500 x 17 = 25500 -> 1024 x 25
        (5000, 20000, 2000, 1, (4096, 32768)),  # tokens capped at 32768
    ],
)
def test_trtllm_bench_limits_by_hand(requests: int, isl: int, osl: int, pp: int, expected: tuple[int, int]) -> None:
    """TensorRT-LLM tuning.py finetune_setting, worked by hand in each case's comment."""
    assert trtllm_bench_limits(requests, isl, osl, pp) == expected


def test_attention_dp_replicas_schedule_their_own_budget(workload: Workload) -> None:
    engine = load_engine("trtllm")
    one = Scenario(1, 128, 16, plan=ParallelPlan(tp=1))
    four = Scenario(1, 128, 16, plan=ParallelPlan(tp=1, attn_dp=4, ep=4))
    assert per_attention_replica(engine, one) is engine
    scaled = per_attention_replica(engine, four)
    assert (scaled.max_batch, scaled.max_num_tokens) == (4 * engine.max_batch, 4 * engine.max_num_tokens)


def test_preempted_sequences_keep_their_output(workload: Workload, cluster: Cluster) -> None:
    """vLLM-style recompute: a preempted sequence re-prefills its prompt and the output so far, the
    recompute's last token emits the next token, and no output token is generated twice:
    decode tokens + recompute emits + first tokens = sum(osl) = 8 x 400."""
    engine = load_engine("vllm")
    model = StepTimeModel(workload, cluster, scenario(100, 400), engine, max_context=600, max_decode=16)
    decode_tokens = [0]
    original = model.step_s

    def spy(decodes: int, context: float, chunks: Any = ()) -> float:
        decode_tokens[0] += decodes
        return original(decodes, context, chunks)

    decode_only_many = model.decode_only_many

    def spy_stretch(decodes: int) -> Any:  # decode-only stretches read step times a block at a time
        step_s = decode_only_many(decodes)

        def counted(contexts: np.ndarray) -> np.ndarray:
            times = step_s(contexts)
            decode_tokens[0] += decodes * len(contexts)
            return times

        return counted

    model.step_s = spy  # type: ignore[method-assign,assignment,unused-ignore]
    model.decode_only_many = spy_stretch  # type: ignore[method-assign,unused-ignore]
    requests = Requests(np.zeros(8), np.full(8, 100), np.full(8, 400))
    sim = simulate(model, requests, engine, kv_capacity_tokens=1200)
    assert sim.preemptions > 0 and np.isfinite(sim.finish_s).all()
    # every preemption here happens after the first token, so each recompute emits one token
    assert decode_tokens[0] + sim.preemptions + 8 == 8 * 400


@pytest.mark.parametrize(
    ("model_id", "plan", "chunks", "tokens", "rel"),
    [
        ("llama-3.1-70b", ParallelPlan(tp=2, pp=4), 4, 2000, 0.05),  # one chunk per pipeline micro-batch
        ("mixtral-8x7b", ParallelPlan(tp=1, ep=2, attn_dp=2), 2, 1024, 0.08),  # one chunk per attention replica
    ],
)
def test_prefill_chunks_on_lanes_match_the_full_model(model_id: str, plan: ParallelPlan, chunks: int,
                                                      tokens: int, rel: float) -> None:  # fmt: skip
    """A step of one prompt chunk per lane (pipeline micro-batch or attention-DP replica) costs what the
    operator model gives for that batch of prompts, not the lanes one after another (before the fix:
    3.8x at pp 4). MoE within 8%: the step's body is tabulated decode-shaped, and the MoE layers of a
    decode-shaped step of 2048 tokens cost up to 7% more than those of two 1024-token prompts."""
    workload = get_workload(model_id)
    cluster = resolve_cluster(hardware=HARDWARE, num_gpus=plan.num_gpus)
    sc = Scenario(1, tokens, 16, plan=plan)
    engine = per_attention_replica(
        load_engine("trtllm").model_copy(update={"step_overhead": 0.0, "per_sequence_overhead": 0.0}), sc
    )
    model = StepTimeModel(workload, cluster, sc, engine, max_context=4096, max_decode=16)
    # the full operator model for that batch of prompts, pipelined the way step_model.py runs a step
    expected = model._time(Phase.PREFILL, chunks, tokens, tokens)
    assert model.step_s(0, 0, [(tokens, tokens)] * chunks) == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--request-rate", "nan"], "--request-rate must be positive"),
        (["--request-rate", "1", "--step-overhead-ms", "-50"], "--step-overhead-ms"),
        (["--request-rate", "1", "--kv-memory-fraction", "5"], "--kv-memory-fraction"),
        (["--request-rate", "1", "--num-requests", "-5"], "--num-requests"),
        (["--request-rate", "1", "--seed", "-1"], "--seed"),
        (["--request-rate", "1", "--block-size", "0"], "--block-size"),
        (["--gpus", "2", "--concurrency", "3"], "split evenly"),
    ],
)
def test_review_bad_inputs_are_one_line_errors(args: list[str], needle: str) -> None:
    assert_user_error(invoke(*args), needle)


def test_trace_rows_must_have_finite_arrivals(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,isl,osl\n0,10,10\ninf,10,10\n")
    with pytest.raises(RooflineError, match="line 3"):
        read_trace(trace)
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(RooflineError, match="not a UTF-8"):
        read_trace(binary)


def test_decode_only_is_step_s_of_a_decode_batch(step_model: StepTimeModel) -> None:
    """The quiet stretches of the simulator read step times through decode_only_many (a block of
    contexts at once): the same numbers as step_s for a batch that only decodes, on and off the grids."""
    contexts = (1.0, 2.5, 129.0, 1000.3, 4096.0, 9000.0)
    for decodes in (1, 3, 17, 200):
        stretch, block = step_model.decode_only(decodes), step_model.decode_only_many(decodes)
        for context in contexts:
            assert stretch(context) == pytest.approx(step_model.step_s(decodes, context), rel=1e-12)
        assert block(np.array(contexts)) == pytest.approx([stretch(c) for c in contexts], rel=1e-12)


def test_tables_are_filled_where_read(workload: Workload, cluster: Cluster, trtllm: EngineConfig) -> None:
    """A step reads at most the four corners of its cell of each surface and two points of each curve;
    nothing else of the grids is costed until the whole table is asked for, which then equals the
    cost model at every grid point it holds."""
    model = StepTimeModel(workload, cluster, scenario(), trtllm, max_context=4096, max_decode=256)
    model.step_s(5, 300.0, [(100, 100)])
    filled = sum(v is not None for row in model._decode_surface.rows for v in row)
    assert 1 <= filled <= 4
    assert sum(v is not None for v in model._base_curve.values) <= 6  # tokens, emitting rows, the decodes' own
    table = model.decode_attention_s
    assert table.shape == (len(model.decode_grid), len(model.context_grid)) and (table >= 0).all()


@pytest.mark.parametrize("horizon_s", [0.0, 0.05, 0.4, math.inf])
def test_quiet_stretch_stops_where_a_step_by_step_loop_does(step_model: StepTimeModel, horizon_s: float) -> None:
    """Blocks of decode-only steps (doubling) stop before the first step that starts at or after the
    next arrival, with the clock and busy time a step-by-step loop sums."""
    decodes, context, most, start_s = 12, 300.0, 1000, 0.01
    step_s = step_model.decode_only(decodes)
    t, busy_s, taken = start_s, 0.0, 0
    while taken < most and t < horizon_s:
        dt = step_s(context + taken)
        t, busy_s, taken = t + dt, busy_s + dt, taken + 1
    got = _run_quiet(step_model, decodes, context, 1.0, most, start_s, horizon_s)
    assert got[0] == taken
    assert got[1:] == pytest.approx((t, busy_s), rel=1e-12)


def test_serve_reports_progress_as_requests_finish() -> None:
    """rl.serve's progress hears 0, then the growing fraction of requests finished, then 1."""
    import roofline as rl

    seen: list[float] = []
    rl.serve("llama-3.1-8b", "h100-sxm", isl=128, osl=32, request_rate=50, num_requests=200, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    middle = seen[1:-1]
    assert len(middle) >= 10 and middle == sorted(middle) and all(0.0 < f <= 1.0 for f in middle)


def test_disaggregated_pools_run_the_profile_as_it_runs_on_that_gpu_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--disaggregate` prices its pools with the engine the profile becomes on the cluster (the
    vLLM limits `vllm serve` picks for the GPU, the host CPU's speed), as the one-pool path does."""
    import roofline as rl
    import roofline.simulator.serving.disaggregated as disaggregated

    seen: list[int] = []
    real = disaggregated.StepTimeModel

    def spy(workload, cluster, scenario, engine, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(engine.max_batch)
        return real(workload, cluster, scenario, engine, *args, **kwargs)

    monkeypatch.setattr(disaggregated, "StepTimeModel", spy)
    rl.serve("llama-3.1-8b", "a100-sxm-80gb", engine="vllm", isl=128, osl=16, max_throughput=True,
             num_requests=64, disaggregate="1:1")  # fmt: skip
    rl.serve("llama-3.1-8b", "h100-sxm", engine="vllm", isl=128, osl=16, max_throughput=True, num_requests=64,
             disaggregate="1:1")  # fmt: skip
    assert seen == [256, 1024]  # vllm/engine/arg_utils.py get_batch_defaults: A100 256, >= 70 GiB others 1024
