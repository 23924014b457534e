"""The runtime as an input: host time per step (simulator/host.py), runtime profiles, host CPUs."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

import roofline as rl
from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.ir import Phase
from roofline.simulator.attention_efficiency import load_curves
from roofline.simulator.host import LagMap, speed_ratio, step_with_host
from roofline.simulator.serving.engine_config import engine_ids, load_engine, runtime_id


def _brute_lag(ops: list[tuple[float, float]], repeats: int) -> tuple[float, float]:
    """Host issue time and GPU finish time, op by op: the GPU starts op i when the host has issued
    it and op i-1 has finished."""
    host, gpu = 0.0, 0.0
    for _ in range(repeats):
        for h, d in ops:
            host += h
            gpu = max(gpu, host) + d
    return host, gpu


@pytest.mark.parametrize("seed", range(20))
def test_lag_map_closed_form_matches_op_by_op(seed: int) -> None:
    rng = random.Random(seed)
    ops = [(rng.uniform(0, 10), rng.uniform(0, 10)) for _ in range(rng.randint(1, 6))]
    repeats = rng.randint(1, 40)
    block = LagMap()
    for h, d in ops:
        block = block.then(LagMap(d - h, d))
    host, gpu = _brute_lag(ops, repeats)
    lag = block.repeated(repeats)(0.0)
    assert host + lag == pytest.approx(gpu, rel=1e-12, abs=1e-9)


def test_eager_decode_is_host_bound_and_graphs_are_not() -> None:
    """Batch-1 decode of an 8B model on an H200: eager PyTorch launches every op from Python and the
    GPU waits on it; a CUDA graph adds one launch plus the loop's own time."""
    kw = dict(hardware="h200-sxm", batch=1, isl=128, osl=64)
    device = rl.estimate("llama-3.1-8b", **kw)
    eager = rl.estimate("llama-3.1-8b", runtime="torch-eager", **kw)
    graph = rl.estimate("llama-3.1-8b", runtime="gpt-fast", **kw)
    assert device.decode.host_s == 0.0 and device.detail is not None and device.detail.runtime is None
    assert eager.tpot_s > 2 * device.tpot_s
    assert eager.decode.bound == "host"
    # a CUDA-graph step: device time + graph launch + the loop's per-step time, exactly
    rt = load_engine("torch-cuda-graph")
    assert graph.tpot_s == pytest.approx(graph.decode.device_s + rt.host.graph_launch + rt.step_overhead, rel=1e-9)
    # its device time is the kernels alone with torch SDPA's attention (a bare call, no RoPE / cache write
    # floor): under TensorRT-LLM FMHA's, by at most that floor per layer
    hopper = load_curves().families["hopper"].decode["bf16"]
    assert hopper.floor_us is not None
    floors_s = 32 * hopper.floor_us * 1e-6
    assert device.tpot_s - floors_s < graph.decode.device_s < device.tpot_s


def test_eager_host_time_is_calls_times_dispatch_when_host_bound() -> None:
    """Host-bound eager step = every operator's weighted calls x dispatch_per_call, plus the last
    kernel's tail: checked against the profile's table by hand."""
    rt = load_engine("torch-eager")
    e = rl.estimate("llama-3.1-8b", hardware="h200-sxm", batch=1, isl=16, osl=4, runtime="torch-eager")
    w = e.query.workload if e.query else None
    assert w is not None
    layers = w.num_hidden_layers
    per_layer = ("attn_norm", "qkv_proj", "rope", "attention", "o_proj", "mlp_norm", "gate_up_proj", "activation",
                 "down_proj")  # fmt: skip
    once = ("embedding", "final_norm", "lm_head", "sampling")
    calls = layers * sum(rt.host.calls_per_op[n].calls for n in per_layer)
    calls += sum(rt.host.calls_per_op[n].calls for n in once)
    host_s = calls * rt.host.dispatch_per_call
    # the GPU is done at most the device time of the ops after the last layer after the host
    tail_s = sum(r.time_s for r in e.decode.ops if r.name in ("final_norm", "lm_head", "sampling"))
    assert host_s < e.tpot_s <= (host_s + tail_s) * 1.001  # (the mean decode step: contexts differ a little)


def test_host_cpu_scales_host_time() -> None:
    """The same GPU behind a slower host CPU (Grace vs the reference Xeon): host costs divide by the
    relative single-thread speed."""
    rt = load_engine("trtllm")
    grace = resolve_cluster("gb200")
    xeon = resolve_cluster("h100-sxm")
    assert speed_ratio(rt, xeon) == 1.0
    assert speed_ratio(rt, grace) == pytest.approx(grace.host_speed)
    assert rt.on_host(0.5).step_overhead == pytest.approx(2 * rt.step_overhead)


def test_runtime_profiles_load_with_aliases_and_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for needed in ("trtllm", "vllm", "sglang", "torch-eager", "torch-cuda-graph", "hf-transformers"):
        assert needed in engine_ids()
    assert runtime_id("gpt-fast") == "torch-cuda-graph"
    assert runtime_id("nope") is None
    path = tmp_path / "my.yaml"
    path.write_text("base_is_not_supported: 1\n")
    with pytest.raises(RooflineError):
        load_engine(str(path))
    text = (load_engine.__globals__["DATA_DIR"] / "torch-eager.yaml").read_text()
    path.write_text(text.replace("dispatch_per_call: 13.8 us", "dispatch_per_call: 1 us"))
    assert load_engine(str(path)).host.dispatch_per_call == pytest.approx(1e-6)
    with pytest.raises(RooflineError, match="unknown runtime"):
        rl.estimate("llama-3.1-8b", hardware="h100-sxm", runtime="tensorflow")


def test_no_runtime_is_the_kernels_alone() -> None:
    """The C++ executor (trtllm-cpp) adds its scheduler time to the step; no runtime adds none."""
    a = rl.estimate("llama-3.1-70b", hardware="h100-sxm", tp=8, batch=8)
    b = rl.estimate("llama-3.1-70b", hardware="h100-sxm", tp=8, batch=8, runtime="trtllm-cpp")
    rt = load_engine("trtllm-cpp")
    assert rt.scheduler_overlap == 0.0
    assert b.tpot_s == pytest.approx(a.tpot_s + rt.scheduler_s(8), rel=1e-9)
    assert b.decode.host_s == pytest.approx(rt.scheduler_s(8), rel=1e-9)


def test_overlap_scheduler_hides_host_time_under_the_gpu_step() -> None:
    """TensorRT-LLM 1.0's PyTorch executor prepares step n+1 and processes step n-1 while the GPU runs
    step n (scheduler_overlap 1): a 70B TP-8 decode step (~13 ms on the GPU) hides 8 sequences' host
    time (< 1 ms) whole; 1024 sequences (21 us each, ~22 ms) outlast a 5 ms GPU step and set it."""
    rt = load_engine("trtllm")
    assert rt.scheduler_overlap == 1.0
    a = rl.estimate("llama-3.1-70b", hardware="h100-sxm", tp=8, batch=8)
    b = rl.estimate("llama-3.1-70b", hardware="h100-sxm", tp=8, batch=8, runtime="trtllm")
    assert rt.scheduler_s(8) < a.tpot_s
    assert b.tpot_s == pytest.approx(a.tpot_s, rel=1e-9) and b.decode.host_s == 0.0
    step = step_with_host(rt, Phase.DECODE, [], device_s=5e-3, sequences=1024)
    assert rt.scheduler_s(1024) > 5e-3
    assert step.step_s == pytest.approx(rt.scheduler_s(1024), rel=1e-9)
    assert step.host_s == pytest.approx(rt.scheduler_s(1024) - 5e-3, rel=1e-9)


def test_overlap_share_interpolates_between_serial_and_hidden() -> None:
    """overlapped_s: a share s of the host time runs under the device step, the rest adds."""
    rt = load_engine("trtllm")
    for share, device_s, host_s, expected in [(0.0, 5.0, 2.0, 7.0), (1.0, 5.0, 2.0, 5.0), (1.0, 1.0, 3.0, 3.0),
                                              (0.5, 5.0, 2.0, 6.0), (0.5, 1.0, 4.0, 4.0)]:  # fmt: skip
        engine = rt.model_copy(update={"scheduler_overlap": share})
        assert engine.overlapped_s(device_s, host_s) == pytest.approx(expected), (share, device_s, host_s)
    arrays = rt.overlapped_s(np.array([1.0, 5.0]), np.array([3.0, 2.0]))
    assert arrays.tolist() == [3.0, 5.0]


def test_every_profile_has_sources() -> None:
    for engine_id, field in itertools.product(engine_ids(), ("source",)):
        assert len(getattr(load_engine(engine_id), field)) > 10, engine_id


def test_memory_with_a_runtime_holds_its_kv_fraction() -> None:
    """One capacity rule: with --runtime the KV capacity is the runtime's fraction of the memory left
    after weights, reserve and activations (vLLM's gpu_memory_utilization 0.9), as serve uses it."""
    kw = dict(hardware="h100-sxm", tp=8)
    alone = rl.memory("llama-3.1-70b", **kw)
    vllm = rl.memory("llama-3.1-70b", runtime="vllm", **kw)
    fraction = load_engine("vllm").kv_memory_fraction
    assert vllm.memory.kv_capacity_tokens == pytest.approx(fraction * alone.memory.kv_capacity_tokens, rel=1e-4)


def test_cuda_graph_batches_pad_to_the_captured_size() -> None:
    from roofline.simulator.host import graph_batch

    vllm = load_engine("vllm")  # cudagraph_capture_sizes 1, 2, 4, 8, 16, 24, ... 512
    assert [graph_batch(vllm, b) for b in (1, 3, 8, 129, 512, 513)] == [1, 4, 8, 136, 512, 513]
    assert graph_batch(load_engine("torch-eager"), 3) == 3  # eager: nothing captured, nothing padded
    assert graph_batch(None, 3) == 3


def _decode_non_attention_s(batch: int) -> float:
    est = rl.estimate(model="llama-3.1-8b", hardware="h100-sxm", isl=512, osl=2, batch=batch)
    return sum(r.time_s for r in est.decode.ops if r.kind != "attention")


def _attention_delta_s(a: rl.EstimateResult, b: rl.EstimateResult) -> float:
    return sum(r.time_s for r in a.decode.ops if r.kind == "attention") - sum(
        r.time_s for r in b.decode.ops if r.kind == "attention")  # fmt: skip


def test_padding_costs_the_padded_rows_of_every_operator_but_attention() -> None:
    query = dict(model="llama-3.1-8b", hardware="h100-sxm", isl=512, osl=2)  # one decode step
    padded = rl.estimate(batch=129, runtime="vllm", **query)  # replays the graph captured for 136
    plain = rl.estimate(batch=129, **query)
    # vLLM's attention is FlashInfer's (runtime_kernels), not TensorRT-LLM FMHA's: the difference is its own
    padding_s = padded.tpot_s - plain.tpot_s - padded.decode.host_s - _attention_delta_s(padded, plain)
    assert padding_s == pytest.approx(_decode_non_attention_s(136) - _decode_non_attention_s(129), rel=1e-9)
    assert padding_s > 0
    aligned = rl.estimate(batch=128, runtime="vllm", **query)  # a captured size: no padding
    unpadded = rl.estimate(batch=128, **query)
    extra_s = aligned.decode.host_s + _attention_delta_s(aligned, unpadded)
    assert aligned.tpot_s - unpadded.tpot_s == pytest.approx(extra_s, rel=1e-9)


def test_per_sequence_host_work_is_one_attention_replicas_share() -> None:
    # each attention-DP replica runs its own executor: a step's per-sequence host time is the busiest
    # replica's, not the whole group's (TensorRT-LLM's 21 us per sequence was measured per rank)
    from roofline.simulator.engine import per_replica
    from roofline.simulator.plan import ParallelPlan
    from roofline.simulator.serving.service import per_attention_replica

    assert per_replica(3945, 8) == 494 and per_replica(16, 1) == 16
    engine = load_engine("trtllm")

    class _Scenario:  # only the plan is read
        plan = ParallelPlan(tp=1, ep=8, attn_dp=8)

    group = per_attention_replica(engine, _Scenario())  # type: ignore[arg-type]
    assert group.per_sequence_overhead == pytest.approx(engine.per_sequence_overhead / 8)
    assert group.scheduler_s(800) == pytest.approx(engine.scheduler_s(100))


@pytest.mark.parametrize(
    ("hardware", "max_seqs", "max_tokens"),
    [("h100-sxm", 1024, 8192), ("gb300", 1024, 8192), ("a100-sxm-80gb", 256, 2048), ("l40s", 256, 2048)],
)
def test_vllm_limits_follow_the_gpu(hardware: str, max_seqs: int, max_tokens: int) -> None:
    """vllm serve's get_batch_defaults: >= 70 GiB and not an A100 -> max_num_seqs 1024 and
    max_num_batched_tokens 8192; an A100 (by name, 80 GB too) or a smaller GPU -> 256 and 2048."""
    from roofline.simulator.host import on_cluster_host

    engine = on_cluster_host(load_engine("vllm"), resolve_cluster(hardware=hardware))
    assert (engine.max_batch, engine.max_num_tokens) == (max_seqs, max_tokens)


def test_a_profile_without_device_limits_keeps_its_own() -> None:
    trtllm = load_engine("trtllm")
    assert not trtllm.device_limits
    assert trtllm.on_device("a100-sxm-80gb", 40 * 2**30) == trtllm
