"""The training step model (roofline.training, rl.train, `roofline train`): hand-checked cases."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import roofline as rl
from roofline.cli.app import app
from roofline.errors import RooflineError
from roofline.training.config import TrainConfig
from roofline.training.flops import model_flops_per_sequence
from roofline.training.memory import StageParams, in_flight, state_bytes
from roofline.workloads import get_workload

runner = CliRunner()


def test_llama_8b_model_flops_are_6n_plus_the_attention_term_by_hand() -> None:
    # Llama 3.1 8B: 32 layers, h 4096, 32 query heads x 128, 8 KV heads, SwiGLU 14336, vocab 128256
    layers, h, q, kv, ffn, vocab, seq = 32, 4096, 4096, 1024, 14336, 128256, 8192
    matmul_params = layers * (h * (q + 2 * kv) + q * h + 3 * h * ffn) + h * vocab  # embedding lookup not counted
    # QK^T and PV (2 x 2 FLOP per query per key per dim), forward + 2 x backward; causal: query i sees
    # i + 1 keys, s (s + 1) / 2 pairs (Megatron's formula writes s^2 / 2, 1/s less)
    attention = 3 * layers * 2 * 2 * q * seq * (seq + 1) / 2
    expected = 6 * matmul_params * seq + attention
    config = TrainConfig(gpus=8, seq_len=seq, global_batch=8)
    w = get_workload("llama-3.1-8b")
    assert model_flops_per_sequence(w, config) == pytest.approx(expected, rel=1e-9)
    # the published Megatron-Bridge table: 1933 TFLOP/s at 37556 tokens/s -> 51.47 GFLOP per token
    assert expected / seq == pytest.approx(1933e12 / 37556, rel=2e-3)
    full = model_flops_per_sequence(w, replace(config, flop_convention="nemo"))
    assert full - expected == pytest.approx(attention)
    lora = model_flops_per_sequence(w, replace(config, task="lora"))
    assert lora == pytest.approx(expected * 2 / 3)
    # torchtitan: 6 x non-embedding parameters + 12 l h q t (full attention), for every task
    titan = model_flops_per_sequence(w, replace(config, flop_convention="torchtitan"))
    assert titan / seq == pytest.approx(6 * matmul_params + 12 * layers * q * seq, rel=1e-3)


def test_gpt_oss_flops_follow_the_bridge_release_that_published_them() -> None:
    # gpt-oss-120b: 36 layers, h 2880, 64 x 64 query heads, 8 KV heads, 128 experts top-4 of width
    # 2880, vocab 201088, 18 layers with a 128-token window; seq 4096
    layers, h, q, kv, ffn, topk, vocab, seq = 36, 2880, 4096, 512, 2880, 4, 201088, 4096
    proj = layers * (h * (q + 2 * kv) + q * h) + h * vocab
    full_core = 2 * 2 * q * (seq + 1) / 2  # forward FLOPs per token of one causal layer (QK^T + PV)
    config = TrainConfig(gpus=64, seq_len=seq, global_batch=64, flop_convention="megatron-bridge-0.4")
    w = get_workload("gpt-oss-120b")
    # Bridge 0.4: the quick-GELU GLU counts 2 projections, no window term (every layer full)
    old = 3 * (2 * proj + layers * 2 * 2 * h * ffn * topk + layers * full_core)
    assert model_flops_per_sequence(w, config) / seq == pytest.approx(old, rel=1e-6)
    # the 26.04.01 table: 523 TFLOP/s at 19200 tokens/s on GB300 -> 27.24 GFLOP per token
    assert old == pytest.approx(523e12 / 19200, rel=5e-3)
    # Bridge 0.5 (26.06): 3 projections and the windowed layers' own term; the 26.06 table's
    # 1081 TFLOP/s at 33166 tokens/s -> 32.59 GFLOP per token
    new = model_flops_per_sequence(w, replace(config, flop_convention="megatron-bridge")) / seq
    assert new > old * 1.15
    assert new == pytest.approx(1081e12 / 33166, rel=5e-3)


def test_mamba_layers_count_by_megatrons_fixed_width_formula() -> None:
    # Nemotron-3 Nano: h 2688, Mamba 64 heads x 64 (d_inner 4096), 8 groups, state 128; Megatron's
    # formula takes d_inner = 2 h = 5376: in_proj 2 h (2 d + 2 g n + heads), scan 7 d n, out 2 d h
    from roofline.training.flops import megatron_mamba_layer_flops

    h, d, g, n, heads = 2688, 2 * 2688, 8, 128, 64
    per_token = 2 * h * (2 * d + 2 * g * n + heads) + 7 * d * n + 2 * d * h
    w = get_workload("nemotron-3-nano")
    assert megatron_mamba_layer_flops(w.mamba, 1.0) == pytest.approx(per_token, rel=1e-12)  # type: ignore[attr-defined]
    config = TrainConfig(gpus=8, seq_len=8192, global_batch=8, flop_convention="megatron-bridge")
    counted = model_flops_per_sequence(w, config) / 8192
    # the 26.06 table: 885 TFLOP/s at 39749 tokens/s on GB300 -> 22.27 GFLOP per token
    assert counted == pytest.approx(885e12 / 39749, rel=5e-3)


def test_the_flop_convention_follows_the_container_release() -> None:
    from roofline.training.constants import flop_convention_for

    assert flop_convention_for("megatron-bridge", "26.04.01") == "megatron-bridge-0.4"
    assert flop_convention_for("megatron-bridge", "26.06") == "megatron-bridge"
    assert flop_convention_for("megatron-bridge", "26.06.01") == "megatron-bridge"
    assert flop_convention_for("megatron-bridge", None) == "megatron-bridge"
    assert flop_convention_for("nemo", "24.07") == "nemo"
    assert flop_convention_for("unknown", "26.04") == "megatron"


def test_state_bytes_per_parameter_by_hand() -> None:
    params = StageParams(dense=1e9, expert=0.0)
    replicated = TrainConfig(gpus=8, seq_len=1024, global_batch=8, zero=0)
    # bf16 weights 2 B, fp32 main grads 4 B, fp32 master 4 B + Adam m, v 8 B (data/training.yaml)
    assert state_bytes(params, replicated) == (2e9, 4e9, 12e9)
    assert state_bytes(params, replace(replicated, zero=1)) == (2e9, 4e9, 12e9 / 8)
    assert state_bytes(params, replace(replicated, zero=2)) == (2e9, 4e9 / 8, 12e9 / 8)
    assert state_bytes(params, replace(replicated, zero=3)) == (2e9 / 8, 4e9 / 8, 12e9 / 8)
    assert state_bytes(params, replace(replicated, optimizer="adamw-8bit")) == (2e9, 4e9, 6e9)
    assert state_bytes(params, replace(replicated, task="lora")) == (2e9, 0.0, 0.0)


def test_report_memory_is_the_state_of_all_parameters_on_one_gpu() -> None:
    r = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, seq_len=1024, global_batch=8, zero=0)
    total = get_workload("llama-3.1-8b").parameter_counts().total
    m = r.step.memory
    assert (m.params_bytes, m.grads_bytes, m.optimizer_bytes) == pytest.approx((2 * total, 4 * total, 12 * total))


def test_pipeline_bubble_is_pp_minus_1_over_vpp_micro_batches() -> None:
    r = rl.train("llama-3.1-70b", "h100-sxm", gpus=64, tp=4, pp=4, vpp=5, global_batch=64, seq_len=4096)
    parts, m = r.step.parts, r.config.micro_batches
    assert m == 64 // (1 * 4)
    per_micro_batch = sum(parts[p] for p in ("forward", "backward", "recompute", "tp_comm", "cp_comm", "ep_comm",
                                             "pp_comm")) / m  # fmt: skip
    # the slowest stage's micro-batch time; the forward also holds the per-step weight casts (none in bf16)
    assert parts["pp_bubble"] == pytest.approx((4 - 1) / 5 * per_micro_batch, rel=1e-9)
    assert in_flight(r.config) == pytest.approx(4 * (1 + 3 / (4 * 5)))


def test_more_data_parallel_gpus_keep_the_per_gpu_work() -> None:
    # inside one NVL72 domain, so the DP collectives stay on NVLink
    small = rl.train("llama-3.1-8b", "gb200", gpus=8, global_batch=64, seq_len=4096, precision="fp8-cs")
    large = rl.train("llama-3.1-8b", "gb200", gpus=16, global_batch=128, seq_len=4096, precision="fp8-cs")
    assert large.config.data_parallel == 2 * small.config.data_parallel
    assert large.config.micro_batches == small.config.micro_batches
    for part in ("forward", "backward"):
        assert large.step.parts[part] == pytest.approx(small.step.parts[part])
    assert large.tokens_per_s_per_gpu == pytest.approx(small.tokens_per_s_per_gpu, rel=0.02)


def test_full_recompute_adds_about_one_forward() -> None:
    base = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, global_batch=16, seq_len=4096)
    full = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, global_batch=16, seq_len=4096, recompute="full")
    added = full.step_time_s - base.step_time_s
    assert added == pytest.approx(base.step.parts["forward"], rel=0.02)
    assert full.step.memory.activations_bytes < base.step.memory.activations_bytes / 5
    assert full.hfu > full.mfu and base.hfu == pytest.approx(base.mfu, rel=0.05)


def test_lora_runs_no_weight_gradients_and_keeps_no_optimizer_state() -> None:
    pre = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, global_batch=16, seq_len=4096)
    lora = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, global_batch=16, seq_len=4096, task="lora")
    # the GEMMs' backward halves (dgrad only); attention and elementwise backward stay
    assert 0.4 * pre.step.parts["backward"] < lora.step.parts["backward"] < 0.65 * pre.step.parts["backward"]
    assert lora.step.parts["forward"] == pytest.approx(pre.step.parts["forward"])
    assert lora.step.memory.optimizer_bytes == 0 and lora.step.parts["optimizer"] == 0


def test_tokens_give_wall_time_gpu_hours_and_cost() -> None:
    r = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, global_batch=16, seq_len=4096, tokens=1e9,
                 price_per_gpu_hour=2.0)  # fmt: skip
    wall = 1e9 / (r.tokens_per_s_per_gpu * 8)
    assert r.wall_time_s == pytest.approx(wall)
    assert r.gpu_hours == pytest.approx(wall * 8 / 3600)
    assert r.cost == pytest.approx(r.gpu_hours * 2.0)
    assert r.tokens_per_s_per_gpu == pytest.approx(16 * 4096 / r.step_time_s / 8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpus": 12, "tp": 8}, "not a multiple of tp x pp x cp"),
        ({"global_batch": 12}, "must be a multiple of micro-batch x dp"),
        ({"precision": "fp9"}, "unknown --precision 'fp9'"),
        ({"recompute": "half"}, "unknown --recompute"),
        ({"zero": 4}, "--zero must be"),
        ({"vpp": 2}, "--vpp needs --pp"),
        ({"ep": 3}, "must divide dp x tp x cp"),
        ({"precision": "mxfp8"}, "h100-sxm (Hopper) cannot run --precision mxfp8; it runs bf16, fp8-ds, fp8-cs"),
    ],
)
def test_bad_layouts_are_one_line_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"gpus": 8, "global_batch": 64, **kwargs}
    with pytest.raises(RooflineError, match=re.escape(message)):
        rl.train("llama-3.1-8b", "h100-sxm", **args)  # type: ignore[arg-type]


def test_cli_prints_json_and_refuses_bad_input_with_exit_2() -> None:
    result = runner.invoke(app, ["train", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--gpus", "8",
                                 "--global-batch", "64", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["layout"]["dp"] == 8 and set(data["parts_s"]) >= {"forward", "backward", "pp_bubble", "optimizer"}
    assert data["step_time_s"] == pytest.approx(sum(data["parts_s"].values()))
    bad = runner.invoke(app, ["train", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--gpus", "7"])
    assert bad.exit_code == 2 and bad.stderr.strip().startswith("error:") and len(bad.stderr.splitlines()) == 1


def test_fsdp_gathers_every_micro_batch_and_zero1_once_per_step() -> None:
    from roofline.hardware_specs import resolve_cluster
    from roofline.simulator.cost import RooflineCostModel
    from roofline.training.step import dp_traffic, placement_plan

    kw = {"gpus": 16, "global_batch": 64, "seq_len": 2048, "overlap": False}
    zero1 = rl.train("llama-3.1-8b", "gb200", **kw)  # type: ignore[arg-type]
    fsdp = rl.train("llama-3.1-8b", "gb200", fsdp=True, **kw)  # type: ignore[arg-type]
    w, cluster = get_workload("llama-3.1-8b"), resolve_cluster(hardware="gb200", num_gpus=16)
    total = w.parameter_counts().total
    params = StageParams(dense=total, expert=0.0)
    for report, passes in ((zero1, (1, 1)), (fsdp, (2 * fsdp.config.micro_batches, fsdp.config.micro_batches))):
        t = dp_traffic(params, report.config, cluster, RooflineCostModel(cluster, placement_plan(w, report.config)))
        expected = passes[0] * t.gather_s + passes[1] * t.reduce_s
        assert report.step.parts["dp_comm_exposed"] == pytest.approx(expected, rel=1e-6)
    assert fsdp.step.memory.params_bytes == pytest.approx(2 * total / 16)


def test_search_lists_fitting_layouts_fastest_first_and_a_monotone_frontier() -> None:
    from roofline.api.training import search_gpu_counts, train_search

    assert search_gpu_counts(64, 8) == (8, 16, 32, 64) and search_gpu_counts(4, 8) == (4,)
    found = train_search("llama-3.1-70b", "h100-sxm", gpus=32, global_batch=64, seq_len=4096, precision="fp8-cs",
                         top=5)  # fmt: skip
    assert 1 <= len(found.layouts) <= 5 and all(r.fits for r in found.layouts)
    rates = [r.tokens_per_s_per_gpu for r in found.layouts]
    assert rates == sorted(rates, reverse=True)
    gpus = [r.config.gpus for r in found.frontier]
    times = [r.step_time_s for r in found.frontier]
    assert gpus == sorted(gpus) and times == sorted(times, reverse=True) and 8 not in gpus  # 70B never fits on 8
    # the best layout is what `train` gives for the same layout
    best = found.layouts[0]
    c = best.config
    again = rl.train("llama-3.1-70b", "h100-sxm", gpus=c.gpus, tp=c.tp, pp=c.pp, vpp=c.vpp, cp=c.cp,
                     global_batch=64, seq_len=4096, precision="fp8-cs", micro_batch=c.micro_batch,
                     recompute=c.recompute)  # fmt: skip
    assert again.step_time_s == pytest.approx(best.step_time_s)
    result = runner.invoke(app, ["train", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--gpus", "8",
                                 "--global-batch", "64", "--search", "--top", "3", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["layouts"]) == 3


def test_search_keeps_the_switches_that_are_not_a_layout() -> None:
    from roofline.api.training import train_search

    found = train_search("llama-3.1-8b", "h100-sxm", gpus=8, global_batch=64, seq_len=4096, top=2, overlap=False,
                         tp_comm_overlap=True, grad_reduce_in_fp32=False)  # fmt: skip
    assert found.layouts
    for r in found.layouts:
        c = r.config
        assert not c.overlap_grad_reduce and not c.overlap_param_gather and c.tp_comm_overlap
        assert not c.grad_reduce_in_fp32
        again = rl.train("llama-3.1-8b", "h100-sxm", gpus=c.gpus, tp=c.tp, pp=c.pp, vpp=c.vpp, cp=c.cp,
                         global_batch=64, seq_len=4096, micro_batch=c.micro_batch, recompute=c.recompute,
                         overlap=False, tp_comm_overlap=True, grad_reduce_in_fp32=False)  # fmt: skip
        assert again.step_time_s == pytest.approx(r.step_time_s)


def test_plot_draws_the_parts_and_the_memory(tmp_path: Path) -> None:
    from roofline.reports import training_plots

    r = rl.train("llama-3.1-70b", "h100-sxm", gpus=64, tp=4, pp=8, vpp=5, global_batch=128, seq_len=4096)
    fig = training_plots.train_figure(r)
    step_ax, memory_ax = fig.axes[:2]
    bars = [p for p in step_ax.patches if p.get_gid() == "step-bar"]
    assert sum(b.get_height() for b in bars) == pytest.approx(r.step_time_s)
    memory = [p for p in memory_ax.patches if p.get_gid() == "memory-bar"]
    used = sum(b.get_height() for b in memory)  # the parts, and what is free up to the capacity
    assert used * 2**30 == pytest.approx(max(r.step.memory.total_bytes, r.step.memory.capacity_bytes), rel=1e-6)
    out = tmp_path / "train.png"
    args = ["train", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--global-batch", "64", "--plot", str(out)]
    assert runner.invoke(app, args).exit_code == 0 and out.stat().st_size > 0
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_qlora_keeps_the_block_linears_in_4_bits_and_dpo_adds_a_reference_forward() -> None:
    kw = {"gpus": 8, "global_batch": 64, "seq_len": 4096, "zero": 0}
    pre = rl.train("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
    qlora = rl.train("llama-3.1-8b", "h100-sxm", task="qlora", **kw)  # type: ignore[arg-type]
    # Llama 3.1 8B: 32 blocks of h (q + 2 kv) + q h + 3 h ffn linear weights; embedding and LM head stay bf16
    h, q, kv, ffn, vocab = 4096, 4096, 1024, 14336, 128256
    linear = 32 * (h * (q + 2 * kv) + q * h + 3 * h * ffn)
    total = get_workload("llama-3.1-8b").parameter_counts().total
    norms_and_tables = total - linear
    assert qlora.step.memory.params_bytes == pytest.approx(0.516 * linear + 2 * norms_and_tables, rel=1e-6)
    assert norms_and_tables == pytest.approx(2 * vocab * h, rel=0.001)  # untied embedding and LM head (+ norms)
    assert qlora.step.memory.grads_bytes == 0 and qlora.step.parts["dp_comm_exposed"] == 0
    assert qlora.step.parts["forward"] > pre.step.parts["forward"]  # the dequantize passes
    dpo = rl.train("llama-3.1-8b", "h100-sxm", task="dpo", **kw)  # type: ignore[arg-type]
    assert dpo.step.parts["reference"] == pytest.approx(pre.step.parts["forward"])
    assert dpo.step.memory.params_bytes == pytest.approx(2 * pre.step.memory.params_bytes)
    assert dpo.step.model_flops_per_step == pytest.approx(pre.step.model_flops_per_step * 4 / 3)
    with pytest.raises(RooflineError, match="qlora"):
        rl.train("llama-3.1-8b", "h100-sxm", task="qlora", precision="fp8-cs", **kw)  # type: ignore[arg-type]


def test_rl_iteration_is_rollout_forwards_update_and_sync() -> None:
    from roofline.api.post_training import forward_only_s, train_rl

    kw = {"gpus": 8, "prompts": 16, "group_size": 4, "prompt_len": 256, "response_len": 512}
    grpo = train_rl("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
    parts = grpo.parts_s
    assert grpo.sequences == 64 and grpo.colocated and grpo.gpus == 8
    assert grpo.iteration_s == pytest.approx(sum(parts.values()))
    assert parts["policy_update"] == pytest.approx(grpo.update.step_time_s)
    assert grpo.update.config.seq_len == 768 and grpo.update.config.global_batch == 64
    assert parts["reference_forward"] == parts["old_logprob_forward"] == pytest.approx(forward_only_s(grpo.update))
    assert parts["reference_forward"] < parts["policy_update"] / 2  # a forward is about a third of a step
    # 8 rollout replicas of one GPU, 8 sequences each at once: one wave of the serving estimate
    e = rl.estimate("llama-3.1-8b", "h100-sxm", batch=8, isl=256, osl=512, runtime="vllm")
    assert grpo.rollout_batch == 8 and parts["rollout"] == pytest.approx(e.e2e_batch_s)
    assert parts["critic_forward"] == parts["critic_update"] == 0
    ppo = train_rl("llama-3.1-8b", "h100-sxm", algorithm="ppo", rollout_gpus=8, **kw)  # type: ignore[arg-type]
    assert ppo.gpus == 16 and not ppo.colocated
    assert ppo.parts_s["critic_update"] == pytest.approx(ppo.parts_s["policy_update"])
    assert ppo.parts_s["weight_sync"] > parts["weight_sync"]  # a broadcast over the fabric vs an HBM copy
    with pytest.raises(RooflineError, match="unknown RL algorithm"):
        train_rl("llama-3.1-8b", "h100-sxm", algorithm="dqn")


def test_pipeline_schedules_bubbles_by_the_deepseek_v3_table() -> None:
    from roofline.training.step import MicroBatchTime, pipeline_bubble_s

    mb = MicroBatchTime()
    mb.parts.update(forward=1.0, backward=2.0)  # F = 1, B = 2 (W = 0.8 of it)
    mb.wgrad_s = 0.8
    base = TrainConfig(gpus=8, seq_len=1024, global_batch=64, pp=8)
    assert pipeline_bubble_s(base, mb) == pytest.approx(7 * 3.0)  # (pp - 1)(F + B)
    assert pipeline_bubble_s(replace(base, vpp=2), mb) == pytest.approx(7 / 2 * 3.0)
    assert pipeline_bubble_s(replace(base, schedule="zb1p"), mb) == pytest.approx(7 * (3.0 - 1.6))
    assert pipeline_bubble_s(replace(base, schedule="dualpipe"), mb) == pytest.approx(3 * (3.0 + 2.0 - 2.4))
    kw = {"gpus": 64, "tp": 4, "pp": 8, "global_batch": 64, "seq_len": 4096}
    one, dual = (rl.train("llama-3.1-70b", "h100-sxm", schedule=s, **kw) for s in ("1f1b", "dualpipe"))  # type: ignore[arg-type]
    assert dual.step.memory.params_bytes == pytest.approx(2 * one.step.memory.params_bytes)
    assert dual.step.memory.in_flight_micro_batches == 9 and dual.step.parts["pp_bubble"] < one.step.parts["pp_bubble"]
    with pytest.raises(RooflineError, match="dualpipe needs an even --pp"):
        rl.train("llama-3.1-70b", "h100-sxm", gpus=48, tp=4, pp=3, global_batch=64, schedule="dualpipe")


def test_overlap_switches_hide_tp_and_ep_communication_under_compute() -> None:
    kw = {"gpus": 64, "tp": 4, "pp": 8, "global_batch": 64, "seq_len": 4096}
    exposed = rl.train("llama-3.1-70b", "h100-sxm", **kw)  # type: ignore[arg-type]
    hidden = rl.train("llama-3.1-70b", "h100-sxm", tp_comm_overlap=True, **kw)  # type: ignore[arg-type]
    # 70B GEMMs outlast the SP traffic: what shows is the first chunks (tp 4: a quarter) and the SMs
    # the pipelined collectives take from the GEMMs under them
    assert 0.25 * exposed.step.parts["tp_comm"] < hidden.step.parts["tp_comm"] < 0.3 * exposed.step.parts["tp_comm"]
    # the bubble scales with the micro-batch time, so the step shrinks by the TP time saved and its bubble share
    m, bubble = exposed.config.micro_batches, (8 - 1) / exposed.config.micro_batches
    saved = exposed.step.parts["tp_comm"] - hidden.step.parts["tp_comm"]
    assert exposed.step_time_s - hidden.step_time_s == pytest.approx(saved * (1 + bubble), rel=1e-6)
    assert m == 64 // 2  # dp 2
    moe = {"gpus": 64, "ep": 8, "global_batch": 128, "seq_len": 4096, "precision": "mxfp8"}
    a2a = rl.train("deepseek-v3", "gb200", pp=8, **moe)  # type: ignore[arg-type]
    overlapped = rl.train("deepseek-v3", "gb200", pp=8, ep_overlap=True, **moe)  # type: ignore[arg-type]
    assert a2a.step.parts["ep_comm"] > 0 and overlapped.step.parts["ep_comm"] < a2a.step.parts["ep_comm"]


def test_tp_overlap_exposes_the_first_chunk_and_slows_the_gemm_by_the_collectives_sms() -> None:
    from roofline.training.step import tp_overlap_exposed_s

    # training.yaml tp_overlap: 2/3 of the collectives ring-exchange in tp chunks, 1/3 pipeline in 4
    # chunks on 16 SMs. 10 ms of SP collectives at tp 4 under 100 ms of GEMMs on 148 SMs: the first
    # chunks 10 x (0.667 / 4 + 0.333 / 4) = 2.5 ms; the 7.5 ms hidden slow the pipelined third of the
    # GEMMs by 16 / (148 - 16)
    share = 16 / 148
    expected = 2.5 + 7.5 * 0.333 * share / (1 - share)
    assert tp_overlap_exposed_s(10e-3, 100e-3, 4, 148) == pytest.approx(expected * 1e-3, rel=2e-3)
    # GEMMs shorter than the collective: what they cannot cover shows whole
    short = tp_overlap_exposed_s(10e-3, 5e-3, 4, 148)
    assert short == pytest.approx((2.5 + 2.5 + 5 * 0.333 * share / (1 - share)) * 1e-3, rel=2e-3)
    # more TP ranks: smaller ring chunks, less exposed
    assert tp_overlap_exposed_s(10e-3, 100e-3, 8, 148) < tp_overlap_exposed_s(10e-3, 100e-3, 2, 148)
