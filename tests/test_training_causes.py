"""Training accuracy by cause (issue 19): the MoE dispatcher and its overlap, the Mamba-2 scan rate,
the LM head's tensor-parallel traffic, the gradient buffer dtype, saved activations, multi-token
prediction, balanced pipeline layouts, and the RL iteration's memory. Hand-checked cases."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from roofline.api.post_training import train_rl
from roofline.api.query import cluster_of, model_of
from roofline.dtypes import DType
from roofline.errors import RooflineError
from roofline.ir import CollectiveKind, Op, OpClass, OpKind, Placement
from roofline.simulator.collectives import load_library
from roofline.simulator.cost import OpCost, RooflineCostModel
from roofline.simulator.plan import stage_placements
from roofline.training import graph
from roofline.training.config import TrainConfig
from roofline.training.constants import constants
from roofline.training.flops import model_flops_per_sequence
from roofline.training.memory import saved_bytes
from roofline.training.step import MicroBatchTime, _add, _mean_stage, _overlap, placement_plan, train_step
from roofline.validation.cases import read_cases
from roofline.validation.predict_training import training, training_config, training_workload

TRAINING_CSV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training.csv"


def _forward(model: str, hardware: str, config: TrainConfig, stage: int = -1) -> tuple[list[Op], RooflineCostModel]:
    w = model_of(model, autoregressive=True)
    plan = placement_plan(w, config)
    placement = stage_placements(w, plan)[stage]
    precision, _ = graph.training_precision(config)
    cost = RooflineCostModel(cluster_of(hardware, None, config.gpus), plan,
                             library=load_library(constants().ep_comm_library))  # fmt: skip
    return graph.forward_ops(w, config, placement, precision), cost


def test_cross_node_ep_dispatch_crosses_the_fabric_once_per_node_not_once_per_gpu() -> None:
    # DeepSeek-V3 EP 32 over four 8-GPU DGX B200 nodes: a token's top-8 of 256 experts lands on ~7.2
    # GPUs but ~3.2 nodes; the flex dispatcher (DeepEP) sends it over IB once per node
    config = TrainConfig(gpus=256, seq_len=4096, global_batch=4096, pp=8, vpp=2, ep=32, precision="mxfp8")
    forward, deepep = _forward("deepseek-v3", "b200", config, stage=1)
    dispatch = next(op for op in forward if op.name == "moe_dispatch")
    nccl = RooflineCostModel(deepep.cluster, deepep.plan, library=load_library("nccl"))
    assert constants().ep_comm_library == "deepep"
    assert deepep.cost(dispatch).total_s < 0.5 * nccl.cost(dispatch).total_s


def test_ep_overlap_hides_the_all_to_alls_and_charges_the_sms_they_hold() -> None:
    mb = MicroBatchTime()
    mb.parts.update(forward=1.0, backward=2.0, ep_comm=1.0)
    _overlap(mb, TrainConfig(gpus=8, seq_len=1024, global_batch=8, ep_overlap=True), comm_sm_share=0.2)
    # 1 s of all-to-all hidden under 3 s of compute that runs on 80% of the SMs: 1 x 0.2 / 0.8 more
    assert mb.parts["ep_comm"] == pytest.approx(0.25)
    short = MicroBatchTime()
    short.parts.update(forward=0.5, ep_comm=2.0)
    _overlap(short, TrainConfig(gpus=8, seq_len=1024, global_batch=8, ep_overlap=True), comm_sm_share=0.2)
    assert short.parts["ep_comm"] == pytest.approx(1.5 + 0.5 * 0.25)


def test_the_mamba2_scan_runs_at_its_published_rate_forward_and_backward() -> None:
    config = TrainConfig(gpus=8, seq_len=8192, global_batch=64, ep=8, precision="mxfp8")
    forward, _ = _forward("nemotron-3-nano", "b200", config)
    scan = next(op for op in forward if op.name == "ssm_scan")
    back = next(op for op in graph.backward_ops(forward) if op.name == "ssm_scan.backward")
    assert back.flops == pytest.approx(2.0 * scan.flops)
    t = MicroBatchTime(ssd_flops_per_s=1e15)
    _add(t, "forward", [OpCost(op=scan, compute_s=1e-9, memory_s=1e-6, comm_s=0.0, overhead_s=0.0)])
    assert t.parts["forward"] == pytest.approx(scan.flops / 1e15 * scan.count)
    assert constants().ssd_scan_fraction == pytest.approx(134 / 989, rel=0.01)  # TileLang chunk_scan on H800


def test_lm_head_tensor_parallel_traffic_with_and_without_sp() -> None:
    tokens, hidden = 8192, 4096
    base = TrainConfig(gpus=8, seq_len=tokens, global_batch=64, tp=2)
    forward, _ = _forward("llama-3.1-8b", "h100-sxm", base)
    run = {op.name: op for op in graph.forward_pass(forward)}
    back = {op.name: op for op in graph.backward_ops(forward)}
    gather = run["lm_head_all_gather"].collective
    assert gather is not None and gather.kind is CollectiveKind.ALL_GATHER
    assert gather.message_bytes == tokens * hidden * 2  # the final hidden states, bf16
    loss = run["cross_entropy_all_reduce"]
    assert loss.count == 3 and loss.collective is not None and loss.collective.message_bytes == tokens * 4
    assert "lm_head_all_gather.backward" in back and "cross_entropy_all_reduce.backward" not in back
    no_sp, _ = _forward("llama-3.1-8b", "h100-sxm", replace(base, sequence_parallel=False))
    assert "lm_head_input_grad_all_reduce" not in {op.name for op in graph.forward_pass(no_sp)}
    assert "lm_head_input_grad_all_reduce.backward" in {op.name for op in graph.backward_ops(no_sp)}
    single, _ = _forward("llama-3.1-8b", "h100-sxm", replace(base, tp=1))
    assert not [op for op in single if op.name.startswith(("lm_head_all", "cross_entropy_all"))]


def test_the_gradient_buffer_follows_grad_reduce_in_fp32() -> None:
    fp32 = TrainConfig(gpus=8, seq_len=4096, global_batch=64)
    bf16 = replace(fp32, grad_reduce_in_fp32=False)
    assert (fp32.grad_bytes, bf16.grad_bytes) == (4.0, 2.0)
    w, cluster = model_of("llama-3.1-8b", autoregressive=True), cluster_of("h100-sxm", None, 8)
    a, b = train_step(w, cluster, fp32).memory, train_step(w, cluster, bf16).memory
    assert b.grads_bytes == pytest.approx(a.grads_bytes / 2)
    assert b.params_bytes == a.params_bytes and b.optimizer_bytes == a.optimizer_bytes


def test_a_norm_saves_its_input_and_a_permute_its_index_map_only() -> None:
    def op(name: str, op_class: OpClass) -> Op:
        return Op(name=name, kind=OpKind.ELEMENTWISE, op_class=op_class, dtype=DType.BF16, activation_bytes=400.0)

    norm, permute, act = op("attn_norm", OpClass.NORM), op("moe_permute", OpClass.MLP), op("activation", OpClass.MLP)
    # fused residual add + norm: reads x and the residual, writes the sum and the output; keeps one
    assert (saved_bytes(norm, "none"), saved_bytes(permute, "none"), saved_bytes(act, "none")) == (100.0, 0.0, 200.0)


@pytest.mark.skipif(not TRAINING_CSV.is_file(), reason="no ../shared/validation/training.csv")
def test_mtp_depths_match_the_published_flops_per_token() -> None:
    cases = {c.case_id: c for c in read_cases(TRAINING_CSV)}
    for rate, flops in (("t0045", "t0046"), ("t0067", "t0068")):  # DeepSeek-V3 (1 depth), Nemotron-3 Super (2)
        values, _ = training(cases[rate])
        predicted = values["model_tflops_per_gpu"] * 1e12 / values["tokens_per_s_per_gpu"]
        assert predicted == pytest.approx(cases[flops].value * 1e12 / cases[rate].value, rel=0.005)
    config = training_config(cases["t0045"], "deepseek-v3")
    assert config.mtp_layers == 1 and config.balanced_stages and config.ep_overlap and not config.grad_reduce_in_fp32
    w = training_workload("deepseek-v3")
    assert model_flops_per_sequence(w, config) > model_flops_per_sequence(w, replace(config, mtp_layers=0))


def test_mtp_on_a_model_without_an_mtp_module_is_refused() -> None:
    config = TrainConfig(gpus=8, seq_len=1024, global_batch=8, mtp_layers=1)
    with pytest.raises(RooflineError, match="no MTP module"):
        train_step(model_of("llama-3.1-8b", autoregressive=True), cluster_of("h100-sxm", None, 8), config)


def test_a_balanced_layout_runs_the_mean_stage() -> None:
    a, b = MicroBatchTime(), MicroBatchTime()
    a.parts.update(forward=1.0, backward=2.0)
    b.parts.update(forward=2.0, backward=4.0)
    a.wgrad_s, b.wgrad_s = 1.0, 2.0
    mean = _mean_stage([a, b])
    assert (mean.parts["forward"], mean.parts["backward"], mean.wgrad_s) == (1.5, 3.0, 1.5)
    config = TrainConfig(gpus=256, seq_len=4096, global_batch=4096, pp=8, ep=8, precision="mxfp8", mtp_layers=1)
    w, cluster = model_of("deepseek-v3", autoregressive=True), cluster_of("b300", None, 256)
    even = train_step(w, cluster, replace(config, balanced_stages=True))
    assert even.step_time_s < train_step(w, cluster, config).step_time_s


def test_rl_memory_holds_the_reference_critic_and_the_rollout_engine() -> None:
    kw = {"gpus": 8, "prompts": 8, "group_size": 4, "prompt_len": 256, "response_len": 512}
    grpo = train_rl("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
    m, train = grpo.memory, grpo.update.step.memory
    resident = train.params_bytes + train.grads_bytes + train.optimizer_bytes
    assert m.reference_bytes == train.params_bytes and m.critic_bytes == 0.0
    assert m.rollout_phase_bytes == pytest.approx(resident + train.params_bytes + 0.5 * train.capacity_bytes)
    assert m.update_phase_bytes == pytest.approx(train.total_bytes + train.params_bytes + m.rollout_weights_bytes)
    assert m.rollout_weights_bytes == pytest.approx(2 * model_of("llama-3.1-8b").parameter_counts().total, rel=0.02)
    ppo = train_rl("llama-3.1-8b", "h100-sxm", algorithm="ppo", rollout_gpus=8, **kw)  # type: ignore[arg-type]
    assert ppo.memory.critic_bytes == pytest.approx(resident) and ppo.memory.rollout_engine_bytes == 0.0
    assert ppo.to_dict()["memory"]["fits"] is ppo.memory.fits
    with pytest.raises(RooflineError, match="rollout-memory-fraction"):
        train_rl("llama-3.1-8b", "h100-sxm", rollout_memory_fraction=1.5, **kw)  # type: ignore[arg-type]


def test_training_placement_default_is_one_replica() -> None:
    # guard: the helper above builds the last stage of a one-stage layout as the whole model
    w = model_of("llama-3.1-8b", autoregressive=True)
    plan = placement_plan(w, TrainConfig(gpus=8, seq_len=1024, global_batch=8))
    assert stage_placements(w, plan) == [Placement(tp=1, layer_start=0, layer_end=w.num_layers, has_embedding=True,
                                                   has_lm_head=True, moe_kernels="megatron")]  # fmt: skip


def test_training_runs_megatrons_moe_kernels_not_a_serving_engines() -> None:
    # Megatron-Core's MoE layer (router, permute, TE GroupedLinear experts, unpermute), not TRT-LLM's fused MoE
    w = model_of("deepseek-v3", autoregressive=True)
    plan = placement_plan(w, TrainConfig(gpus=64, seq_len=4096, global_batch=64, ep=8))
    assert plan.moe_kernels == "megatron"
    from roofline.workloads.moe_kernels import load_moe_kernels

    variant = load_moe_kernels().variants["megatron"]
    assert variant.family == "te_grouped_gemm" and variant.roles[3:6] == ("up", "activation", "down")


def test_mla_up_proj_recompute_runs_the_up_projections_again_and_keeps_only_o() -> None:
    config = TrainConfig(gpus=64, seq_len=4096, global_batch=64, ep=64, precision="mxfp8")
    forward, _ = _forward("deepseek-v3", "gb200", config)
    again = graph.recompute_ops(forward, "none", ("mla_up_proj",))
    assert sorted(op.name for op in again) == ["kv_b_proj.recompute", "q_b_proj.recompute"]
    core = next(op for op in forward if op.name == "attention_mha")
    # Q (192 per head), expanded K (192) and V (128), O (128) kept before; O alone after: 128 / 640
    assert saved_bytes(core, "none", ("mla_up_proj",)) == pytest.approx(core.activation_bytes * 128 / 640)
    with pytest.raises(RooflineError, match="recompute-modules"):
        TrainConfig(gpus=8, seq_len=1024, global_batch=8, recompute_modules=("moe_act",))


def test_the_unfused_moe_path_pays_its_host_sync_per_moe_layer_and_micro_batch() -> None:
    """moe_unfused_layer_s once per MoE layer per micro-batch: gpt-oss-120b on one GPU runs its 36 MoE
    layers (9.7 ms each), a dense model none; the fused sync-free path pays nothing."""
    w, cluster = training_workload("gpt-oss-120b"), cluster_of("h100-sxm", None, 8)
    config = TrainConfig(gpus=8, seq_len=1024, global_batch=16, ep=8)
    unfused, fused = train_step(w, cluster, config), train_step(w, cluster, replace(config, moe_fused_mlp=True))
    assert fused.parts["moe_host_sync"] == 0.0
    assert unfused.parts["moe_host_sync"] == pytest.approx(2 * 36 * constants().moe_unfused_layer_s)  # m = 2
    assert unfused.step_time_s > fused.step_time_s
    dense = train_step(model_of("llama-3.1-8b", autoregressive=True), cluster, TrainConfig(gpus=8, seq_len=1024,
                                                                                        global_batch=16))  # fmt: skip
    assert dense.parts["moe_host_sync"] == 0.0


def test_the_unfused_layer_cost_reproduces_the_published_gpt_oss_gain_of_the_fused_path() -> None:
    """NVIDIA's fused, sync-free MoE kernels make the GPT-OSS pre-training setup 93% faster end to end
    (the constant's identification, on Megatron-Bridge's GB200 MXFP8 V2 layout, not a training row)."""
    w, cluster = training_workload("gpt-oss-120b"), cluster_of("gb200", None, 64)
    config = TrainConfig(gpus=64, seq_len=4096, global_batch=1280, micro_batch=4, ep=64, precision="mxfp8",
                         ep_overlap=True, flop_convention="megatron-bridge", grad_reduce_in_fp32=False)  # fmt: skip
    fused = train_step(w, cluster, replace(config, moe_fused_mlp=True))
    ratio = train_step(w, cluster, config).step_time_s / fused.step_time_s
    assert ratio == pytest.approx(1.93, abs=0.01)


@pytest.mark.skipif(not TRAINING_CSV.is_file(), reason="no ../shared/validation/training.csv")
def test_the_recipe_switches_are_those_of_the_rows_release_and_layout() -> None:
    cases = {c.case_id: c for c in read_cases(TRAINING_CSV)}
    # 26.04.01 (Bridge 0.4.2): GB200_FP8_MX_V1 has no fused expert path yet (cutedsl_fused_grouped_mlp
    # arrives with Bridge 0.5 / NeMo 26.06), B200_FP8_MX_V2 (pp 8, vpp 2, ep 32) overlaps the all-to-all
    gb200 = training_config(cases["t0041"], "deepseek-v3")
    assert not gb200.moe_fused_mlp and not gb200.ep_overlap and gb200.recompute_modules == ("mla_up_proj",)
    b200 = training_config(cases["t0045"], "deepseek-v3")
    assert b200.ep_overlap and not b200.moe_fused_mlp
    assert not training_config(cases["t0047"], "gpt-oss-120b").moe_fused_mlp  # the BF16 recipes do not
    # the same GB200 row published by a 26.06 container runs the fused path with the overlap
    later = replace(cases["t0041"], notes=cases["t0041"].notes.replace("release=26.04.01", "release=26.06"))
    fused = training_config(later, "deepseek-v3")
    assert fused.moe_fused_mlp and fused.ep_overlap
    # a recipe tied to a layout does not hold for another layout on the same system
    other = replace(cases["t0045"], pp=16, ep=8)
    assert not training_config(other, "deepseek-v3").ep_overlap
    # a Megatron-Bridge recipe is not another framework's: a torchtitan row keeps the model's own MTP only
    titan = training_config(replace(cases["t0045"], runtime="torchtitan"), "deepseek-v3")
    assert not titan.ep_overlap and not titan.recompute_modules and titan.mtp_layers == 1
