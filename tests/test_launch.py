"""`--launch`: the command that starts a runtime with the configuration an estimate or a plan costed,
each flag as the engine version's documentation names it (simulator/data/launch/<runtime>.yaml)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import roofline as rl
from roofline.cli.app import app
from roofline.deploy import LaunchConfig, launch_command, load_spec, runtime_ids
from roofline.deploy.config import graph_sizes
from roofline.deploy.spec import DATA_DIR, HF_REPOS_FILE
from roofline.simulator.serving.engine_config import engine_ids, load_engine

runner = CliRunner()
SERVERS = ("vllm", "sglang", "trtllm")


@pytest.fixture(scope="module")
def moe_estimate() -> rl.Estimate:
    """Qwen3-30B-A3B on 2 x H100, tp 2, ep 2, 32 sequences: a known, fitting configuration."""
    return rl.estimate("qwen3-30b-a3b", "h100-sxm", tp=2, ep=2, batch=32, isl=1024, osl=256)


def _config(**changes: Any) -> LaunchConfig:
    base: dict[str, Any] = dict(model_id="deepseek-r1", hf_repo="deepseek-ai/DeepSeek-R1", max_seqs=256,
                                max_batched_tokens=8192, memory_fraction=0.85, isl=1024, osl=1024)  # fmt: skip
    return LaunchConfig(**{**base, **changes})


def _fraction(runtime: str) -> str:
    return f"{load_engine(runtime).kv_memory_fraction:g}"


# ---- the commands carry the estimate's values -----------------------------------------------------


def test_each_engine_command_carries_the_estimates_tp_ep_batch_and_memory_fraction(moe_estimate: rl.Estimate) -> None:
    expected = {
        "vllm": ["vllm serve Qwen/Qwen3-30B-A3B", "--tensor-parallel-size 2", "--enable-expert-parallel",
                 "--max-num-seqs 32", "--max-num-batched-tokens 8192",
                 f"--gpu-memory-utilization {_fraction('vllm')}", "--max-model-len 1280"],
        "sglang": ["python -m sglang.launch_server --model-path Qwen/Qwen3-30B-A3B", "--tp-size 2", "--ep-size 2",
                   "--max-running-requests 32", "--chunked-prefill-size 8192",
                   f"--mem-fraction-static {_fraction('sglang')}", "--context-length 1280"],
        "trtllm": ["trtllm-serve Qwen/Qwen3-30B-A3B", "--tp_size 2", "--ep_size 2", "--max_batch_size 32",
                   "--max_num_tokens 8192", f"--kv_cache_free_gpu_memory_fraction {_fraction('trtllm')}",
                   "--max_seq_len 1280"],
    }  # fmt: skip
    for runtime, flags in expected.items():
        command = rl.launch_command(runtime, moe_estimate).command
        for flag in flags:
            assert flag in command, (runtime, flag, command)


def test_defaults_are_left_out_and_a_shipped_checkpoint_gets_no_quantisation_flag(moe_estimate: rl.Estimate) -> None:
    for runtime in SERVERS:
        command = rl.launch_command(runtime, moe_estimate)
        text = command.command + "".join(command.files.values())
        assert "pipeline-parallel" not in text and "--pp" not in text, runtime  # pp 1 is every engine's default
        assert "quantization" not in text and "kv-cache-dtype" not in text and "dtype" not in text, runtime


def test_attention_dp_maps_to_each_engines_own_degrees() -> None:
    """8 attention-DP ranks of tp 1 with the experts over 8 GPUs, 256 sequences per replica."""
    config = _config(attn_dp=8, ep=8)
    vllm = launch_command("vllm", config).command
    assert "--data-parallel-size 8" in vllm and "--enable-expert-parallel" in vllm
    assert "--max-num-seqs 32" in vllm and "--tensor-parallel-size" not in vllm  # each DP rank schedules 256 / 8
    sglang = launch_command("sglang", config).command
    assert "--tp-size 8" in sglang and "--dp-size 8" in sglang and "--enable-dp-attention" in sglang
    assert "--max-running-requests 256" in sglang  # SGLang splits it over the DP ranks itself
    trtllm = launch_command("trtllm", config)
    assert "--tp_size 8" in trtllm.command and "--ep_size 8" in trtllm.command
    assert "--max_batch_size 32" in trtllm.command
    assert yaml.safe_load(trtllm.files["extra-llm-api-options.yaml"])["enable_attention_dp"] is True
    assert not launch_command("trtllm", config).notes


def test_a_degree_the_engine_cannot_express_is_a_note() -> None:
    vllm = launch_command("vllm", _config(tp=4, ep=2))  # vLLM's EP is tp x dp = 4
    assert any("not the costed ep 2" in note for note in vllm.notes), vllm.notes
    trtllm = launch_command("trtllm", _config(tp=2, attn_dp=4, ep=8))  # TRT-LLM attention DP: 1 GPU per rank
    assert any("costed tp 2" in note for note in trtllm.notes), trtllm.notes


def test_kv_and_weight_formats_use_each_engines_spelling_or_say_there_is_none() -> None:
    config = _config(kv_cache_dtype="fp8", weight_quantization="fp8")
    assert "--kv-cache-dtype fp8 " in launch_command("vllm", config).command + " "
    assert "--quantization fp8" in launch_command("vllm", config).command
    assert "--kv-cache-dtype fp8_e4m3" in launch_command("sglang", config).command
    trtllm = launch_command("trtllm", config)
    assert yaml.safe_load(trtllm.files["extra-llm-api-options.yaml"])["kv_cache_config"]["dtype"] == "fp8"
    assert "quant" not in trtllm.command and any("quantised offline" in n for n in trtllm.notes)
    int4 = launch_command("vllm", _config(weight_quantization="int4"))
    assert "--quantization" not in int4.command and any("int4" in n for n in int4.notes)
    assert "--kv-cache-dtype" not in launch_command("vllm", _config(kv_cache_dtype="bf16")).command  # auto


def test_cuda_graph_sizes_reach_each_engine() -> None:
    config = _config(cuda_graph_batch_sizes=(1, 2, 4, 8))
    assert """--compilation-config '{"cudagraph_capture_sizes":[1,2,4,8]}'""" in launch_command("vllm", config).command
    assert "--cuda-graph-bs 1 2 4 8" in launch_command("sglang", config).command
    options = yaml.safe_load(launch_command("trtllm", config).files["extra-llm-api-options.yaml"])
    assert options["cuda_graph_config"] == {"batch_sizes": [1, 2, 4, 8], "enable_padding": True}
    assert "cuda-graph" not in launch_command("sglang", _config()).command  # none named: the engine's own


def test_graph_sizes_stop_at_the_batch_one_rank_runs_and_include_it() -> None:
    profile = SimpleNamespace(host=SimpleNamespace(cuda_graph_batch_sizes=[1, 2, 4, 8, 16, 32, 64]))
    assert graph_sizes(profile, 24) == (1, 2, 4, 8, 16, 24)  # type: ignore[arg-type]
    assert graph_sizes(profile, 64) == (1, 2, 4, 8, 16, 32, 64)  # type: ignore[arg-type]
    assert graph_sizes(SimpleNamespace(), 24) is None  # type: ignore[arg-type]


def test_replicas_chunked_prefill_and_runtimes_without_a_server() -> None:
    config = _config(tp=8, dp=3, chunked_prefill=False)
    vllm = launch_command("vllm", config)
    assert "--no-enable-chunked-prefill" in vllm.command
    assert any("3 replicas" in note and "8 GPUs" in note for note in vllm.notes)
    assert any("chunked-prefill-size -1" in note for note in launch_command("sglang", config).notes)
    fast = launch_command("gpt-fast", _config(tp=2, max_seqs=1, osl=200))
    assert fast.runtime == "torch-cuda-graph"
    assert fast.command.startswith("torchrun --standalone --nproc_per_node=2 python generate.py --compile")
    assert "--max_new_tokens 200" in fast.command and not fast.notes
    costed_only = launch_command("sglang", _config(cp=2, mtp=1)).notes
    assert any("cp 2" in n for n in costed_only) and any("1 MTP draft" in n for n in costed_only)
    eager = launch_command("torch-eager", config)
    assert eager.command == "" and eager.notes and eager.notes[0].startswith("eager PyTorch has no serving command")


def test_unknown_runtime_is_one_line() -> None:
    with pytest.raises(rl.RooflineError) as info:
        launch_command("vlm", _config())
    assert "\n" not in str(info.value) and "unknown runtime 'vlm'" in str(info.value) and "vllm" in str(info.value)


def test_a_plan_launches_its_recommended_configuration() -> None:
    report = rl.plan("llama-3.1-8b", "h100-sxm", isl=1024, osl=256, rate=5, ttft_p99="2s", tpot_p99="50ms",
                     engine="vllm", recheck=1)  # fmt: skip
    row = report.recommended or report.best[0]
    command = rl.launch_command("vllm", report)
    assert f"--max-num-seqs {row['batch_limit']}" in command.command
    assert command.config is not None and command.config.tp == row["tp"] and command.config.max_model_len == 1280


# ---- the data ---------------------------------------------------------------------------------------


def test_every_flag_in_the_launch_data_has_a_source_and_every_runtime_profile_has_launch_data() -> None:
    for path in sorted(DATA_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        assert str(data.get("source", "")).strip(), path.name
        if path.name == HF_REPOS_FILE:
            continue
        assert str(data.get("version", "")).strip(), path.name
        for entry in data.get("settings") or []:
            assert str(entry.get("source", "")).strip(), (path.name, entry)
        for entry in data.get("unsupported") or []:
            assert str(entry.get("why", "")).strip(), (path.name, entry)
        if data.get("extra_file"):
            assert str(data["extra_file"].get("source", "")).strip(), path.name
    for runtime in runtime_ids():
        load_spec(runtime)  # validates
    assert set(engine_ids()) <= set(runtime_ids())


# ---- the CLI ----------------------------------------------------------------------------------------

ESTIMATE = ["estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4", "--batch", "64", "--no-ops"]


def test_cli_estimate_launch_prints_the_command_after_the_answer() -> None:
    result = runner.invoke(app, [*ESTIMATE, "--launch"])
    assert result.exit_code == 0, result.output
    assert "trtllm-serve meta-llama/Llama-3.1-70B-Instruct" in result.stdout
    assert "--tp_size 4" in result.stdout and "--max_batch_size 64" in result.stdout
    assert result.stdout.index("TPOT") < result.stdout.index("trtllm-serve")


def test_cli_estimate_json_has_the_launch_key_and_csv_refuses_it() -> None:
    data = json.loads(runner.invoke(app, [*ESTIMATE, "--launch", "--format", "json"]).stdout)
    assert data["launch"]["runtime"] == "trtllm" and "--tp_size 4" in data["launch"]["command"]
    assert data["launch"]["config"]["max_seqs"] == 64
    assert "launch" not in json.loads(runner.invoke(app, [*ESTIMATE, "--format", "json"]).stdout)
    refused = runner.invoke(app, [*ESTIMATE, "--launch", "--format", "csv"])
    assert refused.exit_code == 2 and "--launch" in refused.stderr and "Traceback" not in refused.output


def test_cli_launch_of_a_diffusion_model_is_refused_and_a_misfit_says_so_first() -> None:
    refused = runner.invoke(app, ["estimate", "-m", "flux.1-dev", "--hardware", "h100-sxm", "--launch"])
    assert refused.exit_code == 2 and "diffusion" in refused.stderr and "Traceback" not in refused.output
    misfit = rl.estimate("llama-3.1-405b", "h100-sxm", tp=1)
    notes = rl.launch_command("vllm", misfit).notes
    assert notes and notes[0].startswith("does not fit")


def test_cli_plan_launch_uses_its_engine() -> None:
    args = ["plan", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--isl", "1024", "--osl", "256", "--rate", "5",
            "--ttft-p99", "2s", "--tpot-p99", "50ms", "--engine", "sglang", "--recheck", "1", "--launch"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B-Instruct" in result.stdout
    data = json.loads(runner.invoke(app, [*args, "--format", "json"]).stdout)
    assert data["launch"]["runtime"] == "sglang" and "--max-running-requests" in data["launch"]["command"]


def test_limits_the_costing_leaves_open_are_the_ones_the_runtime_picks_on_that_gpu() -> None:
    from roofline.deploy import launch_config

    # vllm/engine/arg_utils.py get_batch_defaults: A100 256 sequences / 2048 tokens, other >= 70 GiB 1024 / 8192
    a100 = launch_config("llama-3.1-8b", "vllm", batch=None, isl=128, osl=16, device=("a100-sxm-80gb", 80e9))
    h100 = launch_config("llama-3.1-8b", "vllm", batch=None, isl=128, osl=16, device=("h100-sxm", 80e9))
    assert (a100.max_seqs, a100.max_batched_tokens) == (256, 2048)
    assert (h100.max_seqs, h100.max_batched_tokens) == (1024, 8192)
