"""Diffusion workloads: DiT image/video models (FLUX.1-dev, SD3.5 Large, Wan 2.1 T2V 14B).

Sources: shared/reference/models.md §11 (FLUX: black-forest-labs/flux @802fb47 util.py;
SD3.5: Stability-AI/sd3.5 @fbf8f48 sd3_impls.py; Wan: Wan-Video/Wan2.1 @9737cba configs).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from roofline.cli.app import app
from roofline.hardware_specs import resolve_cluster
from roofline.ir import OpKind, Precision
from roofline.simulator.diffusion import DitResult, DitScenario, estimate_dit
from roofline.workloads import get_workload
from roofline.workloads.diffusion_dit import DiffusionTransformer, Request

runner = CliRunner()


def dit(model_id: str) -> DiffusionTransformer:
    w = get_workload(model_id)
    assert isinstance(w, DiffusionTransformer)
    return w


def run_dit(model_id: str, request: Request, steps: int = 10, cfg: bool | None = None, sp: int = 1,
            cfg_parallel: bool = False, ideal: bool = False) -> DitResult:  # fmt: skip
    w = dit(model_id)
    gpus = sp * (2 if cfg_parallel else 1)
    scenario = DitScenario(request, steps, w.cfg_default if cfg is None else cfg, sp, cfg_parallel)
    return estimate_dit(w, resolve_cluster(hardware="h100-sxm", num_gpus=gpus), scenario, ideal=ideal)


IMAGE = Request(width=1024, height=1024)
VIDEO_720P = Request(width=1280, height=720, frames=81)


@pytest.mark.parametrize("model_id", ["flux.1-dev", "sd3.5-large", "wan2.1-t2v-14b", "wan2.1-t2v-1.3b"])
def test_dit_params_match_published(model_id: str) -> None:
    """FLUX.1-dev: '12 billion parameter' (model card; derived 11.90B). SD3.5 Large: 8.1B (model card;
    derived 8.14B with the 192^2 x 2432 position table). Wan2.1 T2V: '14B' (README; derived 14.28B).
    Wan2.1 T2V 1.3B: 1.42B from its 2.84 GB bf16 checkpoint (derived 1.418B; '1.3B' is the name).
    Within 2%, or half the rounding step of a nominal '12B' / '14B'."""
    w = dit(model_id)
    assert w.published_params is not None
    total = w.parameter_counts().total
    assert abs(total - w.published_params) <= w.published_tolerance(w.published_params)
    assert total == pytest.approx(w.published_params, rel=0.021)


@pytest.mark.parametrize(
    ("model_id", "request_", "tokens", "text"),
    [
        ("flux.1-dev", IMAGE, 4096, 512),  # 1024/16 squared image tokens + 512 T5 tokens (models.md §11.1)
        ("sd3.5-large", IMAGE, 4096, 154),  # 4096 + 77 CLIP + 77 T5 in the reference impl (§11.2)
        ("wan2.1-t2v-14b", VIDEO_720P, 75_600, 512),  # 21 x 45 x 80 (§11.3, seq_len in text2video.py)
        ("wan2.1-t2v-14b", Request(width=832, height=480, frames=81), 32_760, 512),  # 21 x 30 x 52
    ],
)
def test_token_counts(model_id: str, request_: Request, tokens: int, text: int) -> None:
    w = dit(model_id)
    assert w.image_tokens(request_) == tokens
    assert w.text_tokens == text


def test_flux_step_flops_hand_calculation() -> None:
    """FLUX.1-dev, 1024x1024, one forward (guidance-distilled: no CFG), N = 4096 + 512 = 4608, d = 3072,
    f = 12288 = 4d. Each of the 19 double and 38 single blocks has 12 d^2 weights per token
    (qkv 3d^2 + out d^2 + MLP 8d^2; single: d(3d+f) + (d+f)d = 12 d^2) and joint attention 4 N^2 d:
      57 x (2 x 4608 x 12 x 3072^2 + 4 x 4608^2 x 3072) = 57 x (1.0437e12 + 2.609e11) = 7.436e13 FLOPs.
    Embedders, modulation and norms add < 1%."""
    result = run_dit("flux.1-dev", IMAGE, steps=1)
    n, d = 4608, 3072
    hand = 57 * (2 * n * 12 * d**2 + 4 * n**2 * d)
    assert hand == pytest.approx(7.436e13, rel=1e-3)
    assert result.step_flops == pytest.approx(hand, rel=0.01)
    assert result.step_flops >= hand


def test_wan_forward_flops_hand_calculation() -> None:
    """Wan2.1 T2V-14B at 1280x720x81: N = 75,600, d = 5120, f = 13824, 40 blocks, 512 text tokens.
    Per block: per-token linears (self qkv + out 4 d^2, cross q + out 2 d^2, MLP 2 d f):
    2 N (6 d^2 + 2 d f) = 2 x 75600 x (1.573e8 + 1.416e8) = 4.519e13; self-attention 4 N^2 d = 1.1705e14;
    cross-attention 4 N 512 d = 7.93e11; text K/V 2 x 512 x 2 d^2 = 5.4e10. Sum 1.6309e14, x 40 =
    6.524e15 per forward. models.md §11.3 gives ~6.8e15 with the 2 x 14e9 x N shortcut, which also
    charges the cross-attention K/V weights per video token (-4%). CFG runs two forwards a step."""
    result = run_dit("wan2.1-t2v-14b", VIDEO_720P, steps=1, cfg=True)
    n, d, f, t = 75_600, 5120, 13824, 512
    per_block = 2 * n * (6 * d**2 + 2 * d * f) + 4 * n**2 * d + 4 * n * t * d + 2 * t * 2 * d**2
    hand = 40 * per_block
    assert hand == pytest.approx(6.524e15, rel=1e-3)
    assert hand == pytest.approx(6.8e15, rel=0.05)
    assert result.forwards_per_step == 2
    assert result.step_flops / 2 == pytest.approx(hand, rel=0.01)


def test_video_attention_dominates_and_image_does_not() -> None:
    assert run_dit("wan2.1-t2v-14b", VIDEO_720P, steps=1).attention_share > 0.5
    assert run_dit("flux.1-dev", IMAGE, steps=1).attention_share < 0.3


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=2, max_value=4))
def test_time_linear_in_steps(steps: int, factor: int) -> None:
    one = run_dit("sd3.5-large", IMAGE, steps=steps)
    many = run_dit("sd3.5-large", IMAGE, steps=steps * factor)
    fixed = one.encoders_s + one.vae_s
    assert many.latency_s - fixed == pytest.approx(factor * (one.latency_s - fixed), rel=1e-9)
    assert many.step_s == pytest.approx(one.step_s, rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=16, max_value=96), st.integers(min_value=1, max_value=48))
def test_attention_share_grows_with_resolution(side_16: int, more_16: int) -> None:
    """Attention is quadratic in the tokens, the linears linear: its share of the step grows."""
    small = Request(width=16 * side_16, height=16 * side_16)
    large = Request(width=16 * (side_16 + more_16), height=16 * (side_16 + more_16))
    for model_id in ("flux.1-dev", "sd3.5-large"):
        assert run_dit(model_id, large, 1).attention_share > run_dit(model_id, small, 1).attention_share


def test_cfg_doubles_the_forward() -> None:
    with_cfg = run_dit("sd3.5-large", IMAGE, cfg=True)
    without = run_dit("sd3.5-large", IMAGE, cfg=False)
    assert with_cfg.step_flops == pytest.approx(2 * without.step_flops, rel=1e-9)
    assert without.step_s < with_cfg.step_s <= 2 * without.step_s  # batched: weights read once
    parallel = run_dit("sd3.5-large", IMAGE, cfg=True, cfg_parallel=True)
    assert parallel.scenario.gpus_per_request == 2
    assert parallel.step_s < 0.6 * with_cfg.step_s
    assert any(op["name"] == "cfg_all_gather" for op in parallel.step_ops)


def test_sequence_parallel_splits_the_video() -> None:
    one = run_dit("wan2.1-t2v-14b", VIDEO_720P, steps=1)
    eight = run_dit("wan2.1-t2v-14b", VIDEO_720P, steps=1, sp=8)
    assert eight.step_s < one.step_s / 6
    a2a = [op for op in eight.step_ops if "all_to_all" in op["name"]]
    assert a2a and all(op["communication_s"] > 0 for op in a2a)
    assert eight.step_flops == pytest.approx(one.step_flops, rel=0.01)  # SP conserves FLOPs
    attention = [op for op in eight.step_ops if op["name"] == "self_attention"]
    single = [op for op in one.step_ops if op["name"] == "self_attention"]  # cond + uncond: one row, count 2 x 40
    assert attention[0]["flops"] == pytest.approx(single[0]["flops"] / 8, rel=1e-9)


def test_memory_weights_and_no_quadratic_attention() -> None:
    """bf16 weights: 2 bytes per parameter; flash attention keeps activations linear in the tokens."""
    w = dit("wan2.1-t2v-14b")
    result = run_dit("wan2.1-t2v-14b", VIDEO_720P, steps=1)
    assert result.weights_bytes == pytest.approx(2 * w.parameter_counts().total)
    assert result.activation_bytes < 75_600 * 2 * 5120 * 20  # far below N^2 = 5.7e9 elements
    assert result.to_dict()["memory"]["fits"] is True


def test_llm_interface_refuses_dit() -> None:
    w = dit("flux.1-dev")
    assert w.kv_cache_bytes_per_token(Precision()) == 0.0
    with pytest.raises(Exception, match="diffusion transformer"):
        w.stage_boundary_bytes(None, Precision())  # type: ignore[arg-type]


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["estimate", *args])
    return result.exit_code, result.stdout + (result.stderr if result.stderr_bytes is not None else "")


def test_cli_issue_examples() -> None:
    code, text = _cli("--model", "flux.1-dev", "--hardware", "h100-sxm", "--resolution", "1024x1024", "--steps", "50")
    assert code == 0 and "latency_s" in text and "outputs_per_hour_per_gpu" in text
    code, text = _cli("--model", "wan2.1-t2v-14b", "--hardware", "h100-sxm", "--gpus", "8", "--sp", "8",
                      "--video", "1280x720x81", "--steps", "50", "--format", "json")  # fmt: skip
    assert code == 0
    data = json.loads(text)
    assert data["sp"] == 8 and data["image_tokens"] == 75_600 and data["latency_s"] > 0
    assert any(op["name"] == "ulysses_qkv_all_to_all" for op in data["step_ops"])


@pytest.mark.parametrize(
    "args",
    [
        ("--model", "llama-3.1-8b", "--resolution", "1024x1024"),
        ("--model", "llama-3.1-8b", "--sp", "4"),
        ("--model", "flux.1-dev", "--video", "1024x1024x9"),
        ("--model", "flux.1-dev", "--resolution", "1000x1000"),
        ("--model", "flux.1-dev", "--resolution", "big"),
        ("--model", "wan2.1-t2v-14b", "--sp", "3", "--gpus", "3"),
        ("--model", "wan2.1-t2v-14b", "--video", "1280x720x80"),
        ("--model", "flux.1-dev", "--no-cfg", "--cfg-parallel"),
        ("--model", "flux.1-dev", "--gen-len", "64"),
    ],
)
def test_cli_bad_combinations_exit_2(args: tuple[str, ...]) -> None:
    result = runner.invoke(app, ["estimate", "--hardware", "h100-sxm", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_cli_llm_sp_is_megatron_over_the_tp_group() -> None:
    def ttft(*extra: str) -> float:
        result = runner.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "2",
                                     "--no-ops", "--format", "json", *extra])  # fmt: skip
        assert result.exit_code == 0, result.output
        return float(json.loads(result.stdout)["ttft_s"])

    assert ttft("--sp", "1") == ttft()  # --sp 1: no sequence parallelism
    assert ttft("--sp", "2") != ttft()  # reduce-scatter + all-gather instead of all-reduce
    bad = runner.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "2",
                              "--sp", "4"])  # fmt: skip
    assert bad.exit_code == 2 and "must equal --tp" in bad.output


def test_model_list_shows_dits() -> None:
    result = runner.invoke(app, ["model", "list", "--format", "json"])
    kinds = {m["id"]: m["kind"] for m in json.loads(result.stdout)}
    assert kinds["flux.1-dev"] == kinds["wan2.1-t2v-14b"] == "dit"
    assert OpKind.ATTENTION.value == "attention"


# ---- diffusion language models (LLaDA, Dream) ---------------------------------------------------


@pytest.mark.parametrize(("model_id", "published"), [("llada-8b", 8.0e9), ("dream-7b", 7.61e9)])
def test_dlm_params_match_published(model_id: str, published: float) -> None:
    """LLaDA-8B: README 8B, derived 8.02B (models.md §10.1, §12). Dream-7B: the Qwen2.5-7B network
    (7.61B on the Qwen2.5-7B model card; models.md §10.2 derives 7.62B)."""
    assert get_workload(model_id).parameter_counts().total == pytest.approx(published, rel=0.02)


def _dlm(cache: str, prompt: int = 128, gen: int = 256, steps: int = 256, block: int = 32) -> float:
    from roofline.simulator.diffusion_lm import DlmScenario, estimate_dlm

    lm = get_workload("llada-8b")
    scenario = DlmScenario(prompt, gen, steps, block, cache)
    return estimate_dlm(lm, resolve_cluster(hardware="h100-sxm"), scenario).latency_s  # type: ignore[arg-type]


def test_dlm_step_flops_hand_calculation() -> None:
    """LLaDA vanilla, P + G = 384 tokens: per step 2 x P_nonembedding x 384 + 4 x 32 x 4096 x 384^2
    (bidirectional, models.md §10.3) with P_nonembedding = 8.016e9 - 126464 x 4096 = 7.498e9:
    5.758e12 + 7.73e10 = 5.835e12; x 256 steps = 1.494e15 FLOPs."""
    from roofline.simulator.diffusion_lm import DlmScenario, estimate_dlm

    lm = get_workload("llada-8b")
    result = estimate_dlm(lm, resolve_cluster(hardware="h100-sxm"), DlmScenario(128, 256, 256, 32))  # type: ignore[arg-type]
    hand = 256 * (2 * 7.498e9 * 384 + 4 * 32 * 4096 * 384**2)
    assert result.flops == pytest.approx(hand, rel=0.01)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 512), st.sampled_from([(64, 64), (128, 32), (256, 32), (256, 256)]), st.integers(1, 4))
def test_dual_cache_never_costs_more(prompt: int, gen_block: tuple[int, int], steps_per_block: int) -> None:
    gen, block = gen_block
    steps = gen // block * steps_per_block
    none, prefix, dual = (_dlm(c, prompt, gen, steps, block) for c in ("none", "prefix", "dual"))
    assert dual <= prefix * (1 + 1e-9) and prefix <= none * (1 + 1e-9)


def test_dlm_time_linear_in_steps() -> None:
    assert _dlm("none", steps=256) == pytest.approx(2 * _dlm("none", steps=128), rel=1e-9)


def test_cli_dlm_issue_example_and_compare() -> None:
    code, text = _cli("--model", "llada-8b", "--hardware", "h100-sxm", "--gen-len", "256", "--steps", "256",
                      "--block-len", "32")  # fmt: skip
    assert code == 0 and "tokens_per_s" in text
    code, text = _cli("--model", "dream-7b", "--hardware", "h100-sxm", "--isl", "256", "--gen-len", "256", "--cache",
                      "dual", "--block-len", "32", "--compare-ar", "llama-3.1-8b", "--format", "json")  # fmt: skip
    assert code == 0
    data = json.loads(text)
    assert data["cache"] == "dual" and data["memory"]["kv_cache_bytes"] > 0
    assert data["compare_ar"]["model"] == "llama-3.1-8b" and data["compare_ar"]["speedup_ratio"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ("--model", "llada-8b", "--gen-len", "100", "--block-len", "32"),
        ("--model", "llada-8b", "--cache", "triple"),
        ("--model", "llada-8b", "--resolution", "1024x1024"),
        ("--model", "llada-8b", "--gen-len", "64", "--steps", "3", "--block-len", "32"),
    ],
)
def test_cli_dlm_bad_combinations_exit_2(args: tuple[str, ...]) -> None:
    result = runner.invoke(app, ["estimate", "--hardware", "h100-sxm", *args])
    assert result.exit_code == 2, result.output
