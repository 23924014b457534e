"""CLI over the workload families: every catalog model estimates at a sensible layout; MoE options."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from roofline.cli.app import app

runner = CliRunner()

# model -> (hardware, layout options) as engines would run it
LAYOUTS: dict[str, tuple[str, list[str]]] = {
    "llama-3.1-8b": ("h100-sxm", []),
    "llama-3.1-405b": ("h200-sxm", ["--tp", "8", "--weight-dtype", "fp8"]),
    "mixtral-8x7b": ("h100-sxm", ["--tp", "2"]),
    "mixtral-8x22b": ("h100-sxm", ["--tp", "8", "--ep", "8"]),
    "qwen3-30b-a3b": ("h100-sxm", ["--tp", "2", "--ep", "2"]),
    "qwen3-235b-a22b": ("h200-sxm", ["--tp", "8", "--ep", "8"]),
    "llama-4-scout": ("h100-sxm", ["--tp", "4"]),
    "llama-4-maverick": ("h200-sxm", ["--tp", "8", "--ep", "8"]),
    "gpt-oss-20b": ("h100-sxm", []),
    "gpt-oss-120b": ("h100-sxm", []),
    "kimi-k2": ("b200", ["--attn-dp", "8", "--ep", "8"]),
    "deepseek-v3": ("h200-sxm", ["--attn-dp", "8", "--ep", "8"]),
    "deepseek-r1": ("h200-sxm", ["--tp", "8", "--ep", "8"]),
    "deepseek-v3.2": ("h200-sxm", ["--attn-dp", "8", "--ep", "8"]),
    "deepseek-v4-flash": ("b200", ["--tp", "4", "--ep", "4"]),
    "deepseek-v4-pro": ("b200", ["--attn-dp", "8", "--ep", "8"]),
    "nemotron-3-nano": ("h100-sxm", []),
    "nemotron-3-super": ("b200", ["--tp", "2", "--ep", "2"]),
    "nemotron-3-ultra": ("b200", ["--tp", "8", "--ep", "8", "--weight-dtype", "fp4"]),
}


def _json(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("model", sorted(LAYOUTS))
def test_every_family_estimates_and_fits_at_its_usual_layout(model: str) -> None:
    hardware, options = LAYOUTS[model]
    data = _json("estimate", "--model", model, "--hardware", hardware, *options, "--batch", "8", "--isl", "1024",
                 "--osl", "64", "--format", "json", "--no-ops")  # fmt: skip
    assert data["tpot_s"] > 0 and data["ttft_s"] > 0
    assert data["memory"]["fits"], data["memory"]


def test_model_show_reports_the_issue_keys_for_every_model() -> None:
    for model in LAYOUTS:
        data = _json("model", "show", model, "--format", "json")
        assert {"total_params", "active_params", "kv_cache_bytes_per_token", "parameters_by_component"} <= set(data)
        assert data["active_params"] <= data["total_params"]


def test_shipped_formats_are_the_default_and_can_be_overridden() -> None:
    shipped = _json("estimate", "--model", "gpt-oss-120b", "--hardware", "h100-sxm", "--format", "json", "--no-ops")
    assert (shipped["precision"]["weight"], shipped["precision"]["kv_cache"]) == ("bf16", "bf16")
    forced = _json("estimate", "--model", "gpt-oss-120b", "--hardware", "h100-sxm", "--expert-dtype", "bf16",
                   "--format", "json", "--no-ops")  # fmt: skip
    # MXFP4 experts (4.25 bits) hold ~61 GiB; bf16 experts would need ~4x as much
    assert forced["memory"]["weights_bytes"] > 3.5 * shipped["memory"]["weights_bytes"]
    assert not forced["memory"]["fits"]


def test_per_operator_rows_show_moe_parts() -> None:
    data = _json("estimate", "--model", "nemotron-3-super", "--hardware", "b200", "--tp", "2", "--ep", "2",
                 "--format", "json")  # fmt: skip
    names = {row["name"] for row in data["ops"]}
    assert {"router", "moe_dispatch", "moe_combine", "expert_up", "expert_down", "latent_down_proj",
            "latent_up_proj", "ssm_scan"} <= names  # fmt: skip
    assert data["parallel"]["ep"] == 2


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", "mixtral-8x7b", "--tp", "2", "--ep", "3"], "--ep 3 must divide"),
        (["--model", "llama-3.1-8b", "--tp", "2", "--ep", "2"], "has no experts"),
        (["--model", "deepseek-v3", "--attn-dp", "8", "--ep", "4"], "--ep 4 with 8 GPUs per stage"),
        (["--model", "deepseek-v3", "--attn-dp", "8"], "--attn-dp 8 needs --ep 8"),
        (["--model", "mixtral-8x7b", "--moe-imbalance", "0.5"], "--moe-imbalance"),
    ],
)
def test_bad_expert_options(args: list[str], says: str) -> None:
    result = runner.invoke(app, ["estimate", "--hardware", "h200-sxm", *args])
    assert result.exit_code == 2
    assert says in result.stderr and result.stderr.count("\n") == 1
