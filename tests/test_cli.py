"""The `roofline` command line: every command and subcommand, output schemas, and bad input.

Driven in-process with typer's CliRunner (stdout and stderr are separate: `result.stdout`,
`result.stderr`; `result.output` holds both), plus two runs of the real console script.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from roofline import __version__
from roofline.cli.app import app
from roofline.units import Dimension, parse_quantity

REPO = Path(__file__).resolve().parents[1]
HF = Path(__file__).parent / "fixtures" / "hf"
HARDWARE_DATA = REPO / "src" / "roofline" / "hardware_specs" / "data"
H100_YAML = HARDWARE_DATA / "accelerators" / "h100-sxm.yaml"
LINK_YAML = HARDWARE_DATA / "links" / "nvlink4.yaml"

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_user_catalog_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ROOFLINE_*_PATH must not change what these tests see."""
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)


# ---- helpers -------------------------------------------------------------------------------------


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def ok(*args: str, env: dict[str, str] | None = None) -> Any:
    """Run a command that must succeed; a traceback or non-zero exit fails with what it printed."""
    result = invoke(*args, env=env)
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert result.exception is None
    return result


def as_json(*args: str, env: dict[str, str] | None = None) -> Any:
    result = ok(*args, "--format", "json", env=env)
    assert result.stderr == ""
    return json.loads(result.stdout)


def as_csv(*args: str) -> list[dict[str, str]]:
    result = ok(*args, "--format", "csv")
    return list(csv.DictReader(io.StringIO(result.stdout)))


def user_error(*args: str, env: dict[str, str] | None = None) -> str:
    """Bad input: exit code 2, nothing on stdout, one line 'error: ...' on stderr, no traceback."""
    result = invoke(*args, env=env)
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def estimate_json(*args: str) -> dict[str, Any]:
    data = as_json("estimate", *args)
    assert isinstance(data, dict)
    return data


def user_hardware(tmp_path: Path, name: str, new_id: str, replace: tuple[str, str] | None = None) -> Path:
    """A copy of the packaged h100-sxm.yaml under a new id, with one line changed."""
    text = H100_YAML.read_text(encoding="utf-8")
    assert "\nid: h100-sxm\n" in text
    text = text.replace("\nid: h100-sxm\n", f"\nid: {new_id}\n")
    if replace is not None:
        old, new = replace
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


LLAMA8 = ("--model", "llama-3.1-8b", "--hardware", "h100-sxm")
LLAMA70 = ("--model", "llama-3.1-70b", "--hardware", "h100-sxm")

ESTIMATE_KEYS = {
    "model",
    "runtime",
    "host",
    "hardware",
    "system",
    "num_gpus",
    "parallel",
    "batch",
    "batch_scope",
    "isl",
    "osl",
    "precision",
    "ideal",
    "fits",
    "timed",
    "hypothetical",
    "ttft_s",
    "ttft_batch_s",
    "tpot_s",
    "e2e_s",
    "e2e_batch_s",
    "output_tokens_per_s",
    "output_tokens_per_s_per_gpu",
    "decode_tokens_per_s",
    "decode_tokens_per_s_per_gpu",
    "prefill_tokens_per_s",
    "bounds",
    "prefill",
    "decode",
    "memory",
    "kv_cache_bytes",
    "weights_bytes",
    "warnings",
    "ops",
}
MEMORY_KEYS = {
    "weights_bytes",
    "kv_cache_bytes",
    "activation_bytes",
    "reserve_bytes",
    "capacity_bytes",
    "kv_cache_bytes_per_token",
    "kv_capacity_tokens",
    "max_batch",
    "max_context_tokens",
    "context_window_tokens",
    "total_bytes",
    "fits",
    "margin_bytes",
}
PHASE_KEYS = {
    "time_s",
    "time_no_overlap_s",
    "context_tokens",
    "flops",
    "bytes",
    "compute_s",
    "memory_s",
    "communication_s",
    "overhead_s",
    "host_s",
    "device_s",
    "bound",
}
OP_KEYS = {
    "phase",
    "name",
    "op_class",
    "kind",
    "count",
    "flops",
    "bytes",
    "compute_s",
    "memory_s",
    "communication_s",
    "overhead_s",
    "time_s",
    "bound",
    "detail",
    "arithmetic_intensity_flops_per_byte",
}
BOUNDS = {"compute", "memory", "communication", "overhead"}


# ---- help and version ----------------------------------------------------------------------------

ESTIMATE_OPTIONS = [
    "--model",
    "--hardware",
    "--system",
    "--gpus",
    "--tp",
    "--pp",
    "--batch",
    "--isl",
    "--osl",
    "--weight-dtype",
    "--kv-dtype",
    "--activation-dtype",
    "--reserve",
    "--format",
]


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ([], ["--version", "estimate", "memory", "hardware", "model"]),
        (["hardware"], ["list", "show"]),
        (["hardware", "list"], ["--format"]),
        (["hardware", "show"], ["hardware_id", "--format"]),
        (["model"], ["list", "show", "import"]),
        (["model", "list"], ["--format"]),
        (["model", "show"], ["model", "--format"]),
        (["model", "import"], ["config", "--output", "-o", "--id", "--force"]),
        (["estimate"], [*ESTIMATE_OPTIONS, "--ideal", "--no-ops"]),
        (["memory"], ESTIMATE_OPTIONS),
    ],
    ids=[
        "roofline",
        "hardware",
        "hardware-list",
        "hardware-show",
        "model",
        "model-list",
        "model-show",
        "model-import",
        "estimate",
        "memory",
    ],
)
def test_help(command: list[str], mentions: list[str]) -> None:
    result = ok(*command, "--help")
    assert "Usage: roofline" in result.stdout
    for word in mentions:
        assert word in result.stdout, f"{word!r} missing from `roofline {' '.join(command)} --help`"


def test_memory_has_no_estimate_only_options() -> None:
    text = ok("memory", "--help").stdout
    assert "--ideal" not in text
    assert "--no-ops" not in text


def test_bare_command_shows_help_not_a_traceback() -> None:
    for command in ([], ["hardware"], ["model"]):
        result = invoke(*command)
        assert isinstance(result.exception, SystemExit)
        assert "Usage: roofline" in result.output
        assert "Traceback" not in result.output


def test_version() -> None:
    result = ok("--version")
    assert result.stdout.strip() == f"roofline {__version__}"


# ---- hardware ------------------------------------------------------------------------------------


def test_hardware_list_table() -> None:
    text = ok("hardware", "list").stdout
    for word in ("h100-sxm", "b200", "mi300x", "dgx-h100", "gb200-nvl72", "nvlink4", "ib-ndr", "TB/s"):
        assert word in text


def test_hardware_list_json() -> None:
    data = as_json("hardware", "list")
    assert set(data) == {"accelerators", "systems", "links"}
    accelerators = {a["id"]: a for a in data["accelerators"]}
    assert {"h100-sxm", "h200-sxm", "a100-sxm-80gb", "b200", "mi300x"} <= set(accelerators)
    assert "dgx-h100" in {s["id"] for s in data["systems"]}
    assert "nvlink4" in {link["id"] for link in data["links"]}
    assert all(a["kind"] == "accelerator" for a in data["accelerators"])
    assert "notes" not in accelerators["h100-sxm"]


def test_hardware_list_csv() -> None:
    result = invoke("hardware", "list", "--format", "csv")
    assert result.exception is None, repr(result.exception)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    ids = [row["id"] for row in rows]
    assert {"h100-sxm", "b200", "a100-sxm-80gb"} <= set(ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("item", "kind"), [("h100-sxm", "accelerator"), ("dgx-h100", "system"), ("nvlink4", "link")])
def test_hardware_show_each_kind(item: str, kind: str) -> None:
    table = ok("hardware", "show", item).stdout
    shown = yaml.safe_load(table)
    assert shown["id"] == item and shown["kind"] == kind
    data = as_json("hardware", "show", item)
    assert data["id"] == item and data["kind"] == kind
    (row,) = as_csv("hardware", "show", item)
    assert row["id"] == item and row["kind"] == kind


def test_hardware_show_accelerator_table_has_units_and_sources() -> None:
    shown = yaml.safe_load(ok("hardware", "show", "h100-sxm").stdout)
    assert shown["memory"]["bandwidth"] == "3.35 TB/s"
    assert shown["default_system"] == "dgx-h100"
    assert shown["memory"]["source"] and shown["compute"]["source"]


def test_hardware_show_system_json() -> None:
    data = as_json("hardware", "show", "dgx-h100")
    assert data["accelerator"] == "h100-sxm"
    assert data["gpus_per_node"] == 8
    assert data["scale_up"]["link"] == "nvlink4"


def test_hardware_show_json_is_si() -> None:
    data = as_json("hardware", "show", "h100-sxm")
    assert data["memory"]["bandwidth"] == pytest.approx(3.35e12)
    assert data["compute"]["bf16"] == pytest.approx(989.4e12)
    assert isinstance(data["memory"]["capacity"], float)


def test_hardware_list_json_is_si() -> None:
    data = as_json("hardware", "list")
    h100 = next(a for a in data["accelerators"] if a["id"] == "h100-sxm")
    assert h100["memory"]["bandwidth"] == pytest.approx(3.35e12)
    nvlink4 = next(link for link in data["links"] if link["id"] == "nvlink4")
    assert isinstance(nvlink4["bandwidth_per_port"], float)


# ---- model list / show ---------------------------------------------------------------------------

CATALOG_MODELS = {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "mistral-7b", "qwen3-8b"}


def test_model_list_table() -> None:
    text = ok("model", "list").stdout
    for model_id in CATALOG_MODELS:
        assert model_id in text
    assert "KV / token" in text


def test_model_list_json_and_csv_agree() -> None:
    data = as_json("model", "list")
    by_id = {m["id"]: m for m in data}
    assert CATALOG_MODELS <= set(by_id)
    assert by_id["llama-3.1-70b"]["kv_cache_bytes_per_token_bf16"] == 327680
    assert 7.9e9 < by_id["llama-3.1-8b"]["total_params"] < 8.1e9
    rows = as_csv("model", "list")
    assert [row["id"] for row in rows] == [m["id"] for m in data]
    assert {"id", "kind", "name", "total_params", "kv_cache_bytes_per_token_bf16"} <= set(rows[0])


def test_model_show_formats() -> None:
    shown = yaml.safe_load(ok("model", "show", "llama-3.1-8b").stdout)
    assert shown["id"] == "llama-3.1-8b"
    assert shown["num_hidden_layers"] == 32
    data = as_json("model", "show", "llama-3.1-8b")
    assert data["id"] == "llama-3.1-8b"
    assert data["num_key_value_heads"] == 8
    assert data["kv_cache_bytes_per_token_bf16"] == 131072  # 2 x 32 layers x 8 heads x 128 x 2 B
    assert data["total_params"] == pytest.approx(sum(data["parameters_by_component"].values()))
    assert data["kv_cache_bytes_per_token"] == 131072  # shipped bf16
    assert data["active_params"] == data["total_params"]  # dense
    (row,) = as_csv("model", "show", "llama-3.1-8b")
    assert row["id"] == "llama-3.1-8b"
    assert float(row["total_params"]) == data["total_params"]


# ---- model import --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llama-3.1-8b", "qwen3-8b", "mistral-7b"])
def test_model_import_to_stdout(name: str) -> None:
    result = ok("model", "import", str(HF / name / "config.json"))
    data = yaml.safe_load(result.stdout)
    assert data["id"] == name  # the config's folder name
    assert data["kind"] == "dense"
    catalog = as_json("model", "show", name)
    for key in (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "vocab_size",
    ):
        assert data[key] == catalog[key], key


def test_model_import_explicit_id() -> None:
    data = yaml.safe_load(ok("model", "import", str(HF / "mistral-7b" / "config.json"), "--id", "my-mistral").stdout)
    assert data["id"] == "my-mistral"
    assert data["sliding_window"] == 4096


def test_model_import_output_file_force_and_use(tmp_path: Path) -> None:
    config = str(HF / "llama-3.1-8b" / "config.json")
    out = tmp_path / "my-llama.yaml"
    result = ok("model", "import", config, "-o", str(out), "--id", "my-llama")
    assert result.stdout == ""
    assert str(out) in result.stderr
    written = out.read_bytes()
    assert yaml.safe_load(written)["id"] == "my-llama"

    # again without --force: refused, file untouched
    message = user_error("model", "import", config, "-o", str(out), "--id", "other-id")
    assert str(out) in message and "--force" in message
    assert out.read_bytes() == written

    # with --force: overwritten
    ok("model", "import", config, "--output", str(out), "--id", "other-id", "--force")
    assert yaml.safe_load(out.read_text())["id"] == "other-id"

    # the written YAML is a model: same numbers as the catalog's llama-3.1-8b
    mine = estimate_json("--model", str(out), "--hardware", "h100-sxm", "--no-ops")
    catalog = estimate_json(*LLAMA8, "--no-ops")
    assert mine["model"] == "other-id"
    assert mine["tpot_s"] == pytest.approx(catalog["tpot_s"])
    assert mine["weights_bytes"] == catalog["weights_bytes"]
    assert as_json("model", "show", str(out))["id"] == "other-id"
    assert as_json("memory", "--model", str(out), "--hardware", "h100-sxm")["model"] == "other-id"


def test_model_path_env_adds_to_the_catalog(tmp_path: Path) -> None:
    ok("model", "import", str(HF / "qwen3-8b" / "config.json"), "-o", str(tmp_path / "q.yaml"), "--id", "my-qwen")
    env = {"ROOFLINE_MODEL_PATH": str(tmp_path)}
    ids = {m["id"] for m in as_json("model", "list", env=env)}
    assert "my-qwen" in ids and "llama-3.1-8b" in ids
    data = as_json("estimate", "--model", "my-qwen", "--hardware", "h100-sxm", "--no-ops", env=env)
    assert data["model"] == "my-qwen"


# ---- estimate: table, JSON schema and values -----------------------------------------------------


def test_estimate_table() -> None:
    text = ok("estimate", *LLAMA70, "--tp", "8", "--batch", "16", "--isl", "2048", "--osl", "256").stdout
    assert "llama-3.1-70b on 8 x h100-sxm (dgx-h100)" in text
    for label in (
        "TTFT",
        "TPOT",
        "end-to-end latency",
        "output tokens/s",
        "Memory per GPU",
        "fits",
        "max batch",
        "16 x 2048 / 256",
        "qkv_proj",
        "attn_all_reduce",
        "decode",
    ):
        assert label in text, label


def test_estimate_table_no_ops() -> None:
    text = ok("estimate", *LLAMA8, "--no-ops").stdout
    assert "TPOT" in text and "Memory per GPU" in text
    assert "qkv_proj" not in text and "operators" not in text


@pytest.fixture(scope="module")
def tp8_json() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before the autouse fixture
        mp.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
        mp.delenv("ROOFLINE_MODEL_PATH", raising=False)
        return estimate_json(*LLAMA70, "--tp", "8", "--batch", "4", "--isl", "2048", "--osl", "256")


def test_estimate_json_top_level_keys(tp8_json: dict[str, Any]) -> None:
    assert set(tp8_json) == ESTIMATE_KEYS


def test_estimate_json_nested_keys(tp8_json: dict[str, Any]) -> None:
    assert set(tp8_json["memory"]) == MEMORY_KEYS
    assert set(tp8_json["parallel"]) == {"tp", "pp", "dp", "ep", "attn_dp", "cp"}
    assert set(tp8_json["precision"]) == {"weight", "experts", "activation", "kv_cache"}
    assert set(tp8_json["prefill"]) == PHASE_KEYS
    assert set(tp8_json["decode"]) == PHASE_KEYS
    assert {"ttft_batch_no_overlap_s", "tpot_no_overlap_s"} <= set(tp8_json["bounds"])


def test_estimate_json_ops_rows(tp8_json: dict[str, Any]) -> None:
    ops = tp8_json["ops"]
    assert ops
    for row in ops:
        assert set(row) == OP_KEYS, row
        assert row["phase"] in {"prefill", "decode"}
        assert row["bound"] in BOUNDS
        assert row["time_s"] >= 0 and row["count"] >= 1
    names = {row["name"] for row in ops}
    assert {"qkv_proj", "attention", "lm_head", "attn_all_reduce"} <= names
    assert {row["phase"] for row in ops} == {"prefill", "decode"}


def test_estimate_json_values(tp8_json: dict[str, Any]) -> None:
    d = tp8_json
    assert (d["model"], d["hardware"], d["system"]) == ("llama-3.1-70b", "h100-sxm", "dgx-h100")
    assert (d["batch"], d["isl"], d["osl"]) == (4, 2048, 256)
    assert d["parallel"] == {"tp": 8, "pp": 1, "dp": 1, "ep": 1, "attn_dp": 1, "cp": 1}
    assert d["precision"] == {"weight": "bf16", "experts": "bf16", "activation": "bf16", "kv_cache": "bf16"}
    assert d["ideal"] is False and d["fits"] is True and d["timed"] is True and d["hypothetical"] is False
    for key in (
        "ttft_s",
        "ttft_batch_s",
        "tpot_s",
        "e2e_s",
        "e2e_batch_s",
        "output_tokens_per_s",
        "decode_tokens_per_s",
        "prefill_tokens_per_s",
    ):
        assert isinstance(d[key], float) and d[key] > 0, key
    assert d["ttft_s"] < d["e2e_s"] <= d["e2e_batch_s"]
    # 4 prompts of 2048 tokens fit one 8192-token prefill step: every request's TTFT is the batch's
    assert d["ttft_s"] == pytest.approx(d["ttft_batch_s"])
    assert d["e2e_s"] == pytest.approx(d["ttft_s"] + (d["osl"] - 1) * d["tpot_s"])
    assert d["prefill"]["bound"] in BOUNDS and d["decode"]["bound"] in BOUNDS
    assert d["prefill"]["communication_s"] > 0  # tp 8 all-reduces
    # the README's definitions
    assert d["output_tokens_per_s"] == pytest.approx(d["batch"] * d["osl"] / d["e2e_batch_s"])
    assert d["decode_tokens_per_s"] == pytest.approx(d["batch"] / d["tpot_s"])
    assert d["output_tokens_per_s_per_gpu"] == pytest.approx(d["output_tokens_per_s"] / d["num_gpus"])
    assert d["kv_cache_bytes"] == d["memory"]["kv_cache_bytes"]
    assert d["weights_bytes"] == d["memory"]["weights_bytes"]
    assert d["memory"]["kv_cache_bytes_per_token"] == 327680


def test_no_ops_drops_only_ops() -> None:
    with_ops = estimate_json(*LLAMA8)
    without = estimate_json(*LLAMA8, "--no-ops")
    assert "ops" in with_ops and "ops" not in without
    assert set(without) == ESTIMATE_KEYS - {"ops"}
    assert without["tpot_s"] == with_ops["tpot_s"]


@pytest.mark.parametrize(
    ("options", "plan"),
    [
        ([], (1, 1, 1)),
        (["--tp", "8"], (8, 1, 1)),
        (["--tp", "4", "--pp", "2"], (4, 2, 1)),
        (["--pp", "4"], (1, 4, 1)),
        (["--gpus", "16", "--tp", "8"], (8, 1, 2)),
        (["--gpus", "32", "--tp", "4", "--pp", "2"], (4, 2, 4)),
    ],
)
def test_num_gpus_is_tp_pp_dp(options: list[str], plan: tuple[int, int, int]) -> None:
    d = estimate_json(*LLAMA70, *options, "--no-ops")
    parallel = d["parallel"]
    assert (parallel["tp"], parallel["pp"], parallel["dp"]) == plan
    assert d["num_gpus"] == plan[0] * plan[1] * plan[2]


def test_sixteen_gpus_tp8_is_two_dgx_nodes_two_replicas() -> None:
    two = estimate_json(*LLAMA70, "--gpus", "16", "--tp", "8", "--no-ops")
    one = estimate_json(*LLAMA70, "--tp", "8", "--no-ops")
    assert two["system"] == "dgx-h100"
    assert two["num_gpus"] == 16 and two["parallel"]["dp"] == 2
    assert two["num_gpus"] // as_json("hardware", "show", "dgx-h100")["gpus_per_node"] == 2
    # data-parallel replicas: same latency, twice the throughput, same per-GPU throughput
    assert two["tpot_s"] == pytest.approx(one["tpot_s"])
    assert two["output_tokens_per_s"] == pytest.approx(2 * one["output_tokens_per_s"])
    assert two["output_tokens_per_s_per_gpu"] == pytest.approx(one["output_tokens_per_s_per_gpu"])


def test_system_alone_picks_its_accelerator() -> None:
    d = estimate_json("--model", "llama-3.1-8b", "--system", "gb200-nvl72", "--gpus", "72", "--tp", "8", "--no-ops")
    assert (d["hardware"], d["system"], d["num_gpus"], d["parallel"]["dp"]) == ("gb200", "gb200-nvl72", 72, 9)


def test_kv_bytes_per_token_llama70b() -> None:
    bf16 = estimate_json("--model", "llama-3.1-70b", "--hardware", "h200-sxm", "--tp", "8", "--no-ops")
    assert bf16["memory"]["kv_cache_bytes_per_token"] == 327680  # 2 x 80 layers x 8 KV heads x 128 x 2 B
    fp8 = estimate_json(
        "--model", "llama-3.1-70b", "--hardware", "h200-sxm", "--tp", "8", "--kv-dtype", "fp8", "--no-ops"
    )
    assert fp8["memory"]["kv_cache_bytes_per_token"] == 163840
    assert fp8["precision"]["kv_cache"] == "fp8"


def test_kv_cache_bytes_follow_batch_and_context() -> None:
    d = estimate_json(*LLAMA8, "--batch", "8", "--isl", "1000", "--osl", "24", "--no-ops")
    memory = d["memory"]
    assert memory["kv_cache_bytes"] == 8 * (1000 + 24) * memory["kv_cache_bytes_per_token"]


def test_weight_dtype_fp8_on_h100() -> None:
    bf16 = estimate_json(*LLAMA8, "--no-ops")
    fp8 = estimate_json(*LLAMA8, "--weight-dtype", "fp8", "--no-ops")
    assert fp8["precision"]["weight"] == "fp8" and fp8["precision"]["kv_cache"] == "fp8"
    assert fp8["weights_bytes"] < bf16["weights_bytes"]
    assert fp8["tpot_s"] < bf16["tpot_s"]


def test_int4_weights_default_to_fp8_kv() -> None:
    d = estimate_json(*LLAMA8, "--weight-dtype", "int4", "--no-ops")
    assert d["precision"] == {"weight": "int4", "experts": "int4", "activation": "bf16", "kv_cache": "fp8"}


def test_reserve_option() -> None:
    d = estimate_json(*LLAMA8, "--reserve", "4 GiB", "--no-ops")
    assert d["memory"]["reserve_bytes"] == 4 * 2**30
    default = estimate_json(*LLAMA8, "--no-ops")
    packaged = parse_quantity(yaml.safe_load(H100_YAML.read_text())["runtime_reserve"], Dimension.BYTES)
    assert default["memory"]["reserve_bytes"] == packaged  # h100-sxm.yaml runtime_reserve


def test_ideal_is_faster() -> None:
    real = estimate_json(*LLAMA8, "--no-ops")
    ideal = estimate_json(*LLAMA8, "--ideal", "--no-ops")
    assert ideal["ideal"] is True and real["ideal"] is False
    assert 0 < ideal["tpot_s"] < real["tpot_s"]
    assert ideal["ttft_s"] < real["ttft_s"]


def test_ideal_table_says_ideal() -> None:
    assert "(ideal roofline)" in ok("estimate", *LLAMA8, "--ideal", "--no-ops").stdout


def test_not_fitting_is_an_answer_in_estimate() -> None:
    d = estimate_json(*LLAMA8, "--batch", "5000", "--no-ops")
    assert d["memory"]["fits"] is False
    assert d["memory"]["margin_bytes"] < 0


# ---- estimate: CSV -------------------------------------------------------------------------------


def test_estimate_csv_operator_rows() -> None:
    rows = as_csv("estimate", *LLAMA70, "--tp", "8")
    assert rows
    assert {"phase", "name", "time_s", "bound"} <= set(rows[0])
    assert set(rows[0]) == OP_KEYS
    assert {row["phase"] for row in rows} == {"prefill", "decode"}
    assert all(row["bound"] in BOUNDS for row in rows)
    assert all(float(row["time_s"]) >= 0 for row in rows)
    ops = estimate_json(*LLAMA70, "--tp", "8")["ops"]
    assert [row["name"] for row in rows] == [op["name"] for op in ops]


def test_estimate_csv_no_ops_is_one_summary_row() -> None:
    (row,) = as_csv("estimate", *LLAMA8, "--no-ops")
    d = estimate_json(*LLAMA8, "--no-ops")
    assert float(row["tpot_s"]) == pytest.approx(d["tpot_s"])
    assert row["model"] == "llama-3.1-8b"
    assert {"parallel.tp", "memory.fits", "decode.bound"} <= set(row)


# ---- memory --------------------------------------------------------------------------------------


def test_memory_405b_fits_on_eight_h200() -> None:
    d = as_json(
        "memory", "--model", "llama-3.1-405b", "--hardware", "h200-sxm", "--tp", "8", "--isl", "8192", "--osl", "1024"
    )
    assert set(d) == {"model", "hardware", "system", "num_gpus", "parallel", "batch", "batch_scope", "isl", "osl",
                      "precision", "fits", "memory", "warnings"}  # fmt: skip
    assert set(d["memory"]) == MEMORY_KEYS
    assert (d["model"], d["hardware"], d["system"], d["num_gpus"]) == ("llama-3.1-405b", "h200-sxm", "dgx-h200", 8)
    m = d["memory"]
    assert d["fits"] is True and m["fits"] is True
    assert m["max_batch"] >= 1
    assert m["margin_bytes"] > 0
    assert m["total_bytes"] <= m["capacity_bytes"]


def test_memory_70b_on_one_h100_does_not_fit_and_is_not_an_error() -> None:
    d = as_json("memory", *LLAMA70)
    m = d["memory"]
    assert d["fits"] is False
    assert m["margin_bytes"] < 0
    assert m["weights_bytes"] > 140e9  # 70.6 B parameters x 2 B
    assert m["weights_bytes"] > m["capacity_bytes"]
    assert m["max_batch"] == 0 and m["kv_capacity_tokens"] == 0
    assert m["kv_cache_bytes_per_token"] == 327680
    text = ok("memory", *LLAMA70).stdout
    assert text.startswith("DOES NOT FIT.") and "fits with --tp 2" in text  # said first, with a layout that fits
    assert "NO" in text and "margin" in text


def test_memory_table_and_csv() -> None:
    text = ok("memory", *LLAMA8).stdout
    for label in (
        "weights",
        "KV cache",
        "activations",
        "runtime reserve",
        "capacity",
        "fits",
        "yes",
        "max batch",
        "max context",
    ):
        assert label in text, label
    (row,) = as_csv("memory", *LLAMA8)
    assert row["model"] == "llama-3.1-8b" and row["fits"] == "True"
    assert float(row["memory.kv_cache_bytes_per_token"]) == 131072


def test_memory_matches_estimate_memory() -> None:
    options = ("--tp", "4", "--pp", "2", "--batch", "8", "--isl", "4096", "--osl", "512")
    memory = as_json("memory", *LLAMA70, *options)
    estimate = estimate_json(*LLAMA70, *options, "--no-ops")
    assert memory["memory"] == estimate["memory"]  # one memory document
    for key in ("model", "hardware", "system", "num_gpus", "parallel", "batch", "isl", "osl", "precision", "fits"):
        assert memory[key] == estimate[key], key


# ---- user hardware files -------------------------------------------------------------------------


def test_user_hardware_yaml_with_double_bandwidth(tmp_path: Path) -> None:
    path = user_hardware(tmp_path, "my-gpu.yaml", "my-gpu", ("bandwidth: 3.35 TB/s", "bandwidth: 6.7 TB/s"))
    mine = estimate_json("--model", "llama-3.1-8b", "--hardware", str(path), "--no-ops")
    h100 = estimate_json(*LLAMA8, "--no-ops")
    assert mine["hardware"] == "my-gpu"
    assert h100["decode"]["bound"] == "memory"
    assert mine["tpot_s"] < h100["tpot_s"]
    assert mine["decode"]["memory_s"] == pytest.approx(h100["decode"]["memory_s"] / 2)
    assert "my-gpu" in ok("estimate", "--model", "llama-3.1-8b", "--hardware", str(path), "--no-ops").stdout


def test_hardware_path_env(tmp_path: Path) -> None:
    user_hardware(tmp_path, "env-gpu.yaml", "env-gpu", ("bandwidth: 3.35 TB/s", "bandwidth: 6.7 TB/s"))
    env = {"ROOFLINE_HARDWARE_PATH": str(tmp_path)}
    ids = {a["id"] for a in as_json("hardware", "list", env=env)["accelerators"]}
    assert {"env-gpu", "h100-sxm"} <= ids
    assert as_json("hardware", "show", "env-gpu", env=env)["id"] == "env-gpu"
    d = as_json("estimate", "--model", "llama-3.1-8b", "--hardware", "env-gpu", "--no-ops", env=env)
    assert d["hardware"] == "env-gpu"


def test_hardware_yaml_typo_names_file_and_field(tmp_path: Path) -> None:
    path = user_hardware(tmp_path, "typo-gpu.yaml", "typo-gpu", ("  bandwidth: 3.35 TB/s", "  bandwdith: 3.35 TB/s"))
    message = user_error("estimate", "--model", "llama-3.1-8b", "--hardware", str(path))
    assert str(path) in message
    assert "bandwdith" in message  # the key as the user wrote it
    assert "memory.bandwidth" in message  # what it should be


def test_hardware_yaml_bare_number(tmp_path: Path) -> None:
    path = user_hardware(tmp_path, "bare-gpu.yaml", "bare-gpu", ("bandwidth: 3.35 TB/s", "bandwidth: 3.35"))
    message = user_error("memory", "--model", "llama-3.1-8b", "--hardware", str(path))
    assert str(path) in message
    assert "memory.bandwidth" in message
    assert "unit" in message


def test_hardware_yaml_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: accelerator\nid: [oops\n", encoding="utf-8")
    message = user_error("estimate", "--model", "llama-3.1-8b", "--hardware", str(path))
    assert str(path) in message and "YAML" in message


# ---- bad input: one line, exit code 2 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["estimate", "--model", "llama-3.1-7b", "--hardware", "h100-sxm"],
            ["llama-3.1-7b", "llama-3.1-70b"],
            id="unknown-model",
        ),
        pytest.param(
            ["memory", "--model", "llama-3.1-7b", "--hardware", "h100-sxm"],
            ["llama-3.1-7b", "llama-3.1-70b"],
            id="memory-unknown-model",
        ),
        pytest.param(
            ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100"], ["'h100'", "h100-sxm"], id="unknown-hardware"
        ),
        pytest.param(["estimate", *LLAMA70, "--tp", "3"], ["--tp 3", "divisible"], id="tp-not-dividing-heads"),
        pytest.param(["memory", *LLAMA70, "--tp", "3"], ["--tp 3", "divisible"], id="memory-tp-not-dividing-heads"),
        pytest.param(["estimate", *LLAMA8, "--batch", "-1"], ["--batch", "-1"], id="batch-negative"),
        pytest.param(["estimate", *LLAMA8, "--batch", "0"], ["--batch", "0"], id="batch-zero"),
        pytest.param(["memory", *LLAMA8, "--batch", "0"], ["--batch", "0"], id="memory-batch-zero"),
        pytest.param(["estimate", *LLAMA8, "--isl", "0"], ["--isl"], id="isl-zero"),
        pytest.param(["estimate", *LLAMA8, "--osl", "0"], ["--osl"], id="osl-zero"),
        pytest.param(["estimate", *LLAMA8, "--tp", "0"], ["--tp"], id="tp-zero"),
        pytest.param(["estimate", *LLAMA8, "--pp", "0"], ["--pp"], id="pp-zero"),
        pytest.param(
            ["estimate", *LLAMA70, "--gpus", "12", "--tp", "8"], ["--gpus 12", "multiple", "8"], id="gpus-not-multiple"
        ),
        pytest.param(["estimate", *LLAMA8, "--weight-dtype", "fp9"], ["fp9", "bf16"], id="weight-dtype-unknown"),
        pytest.param(["estimate", *LLAMA8, "--kv-dtype", "fp9"], ["fp9"], id="kv-dtype-unknown"),
        pytest.param(["estimate", *LLAMA8, "--reserve", "4"], ["--reserve", "'4'", "GiB"], id="reserve-no-unit"),
        pytest.param(["estimate", *LLAMA8, "--reserve", "-4 GiB"], ["--reserve", "-4 GiB"], id="reserve-negative"),
        pytest.param(
            ["estimate", *LLAMA8, "--reserve", "4 GB/s"], ["--reserve", "4 GB/s"], id="reserve-wrong-dimension"
        ),
        pytest.param(
            ["estimate", "--model", "llama-3.1-8b", "--system", "dgx-h100", "--hardware", "b200"],
            ["dgx-h100", "b200"],
            id="system-hardware-mismatch",
        ),
        pytest.param(
            ["estimate", "--model", "llama-3.1-8b", "--system", "dgx-h1000"],
            ["dgx-h1000", "dgx-h100"],
            id="unknown-system",
        ),
        pytest.param(["memory", "--model", "llama-3.1-8b"], ["--hardware", "--system"], id="no-hardware-no-system"),
        pytest.param(
            ["estimate", "--model", "no/such/model.yaml", "--hardware", "h100-sxm"],
            ["no/such/model.yaml"],
            id="model-file-missing",
        ),
        pytest.param(
            ["estimate", "--model", "llama-3.1-8b", "--hardware", "no/such/gpu.yaml"],
            ["no/such/gpu.yaml"],
            id="hardware-file-missing",
        ),
        pytest.param(
            ["estimate", "--model", "llama-3.1-8b", "--hardware", str(LINK_YAML)],
            ["nvlink4.yaml", "link"],
            id="hardware-file-is-a-link",
        ),
        pytest.param(
            ["estimate", "--model", str(H100_YAML), "--hardware", "h100-sxm"],
            ["h100-sxm.yaml", "kind"],
            id="model-file-is-hardware",
        ),
        pytest.param(["model", "show", "nope"], ["'nope'", "llama-3.1-8b"], id="model-show-unknown"),
        pytest.param(["model", "show", "llama-3.1-7b"], ["llama-3.1-70b"], id="model-show-close-match"),
        pytest.param(["hardware", "show", "nope"], ["'nope'", "h100-sxm"], id="hardware-show-unknown"),
        pytest.param(["hardware", "show", "h100"], ["'h100'", "h100-sxm"], id="hardware-show-close-match"),
        pytest.param(
            ["model", "import", str(HF / "falcon-7b" / "config.json")],
            ["falcon-7b/config.json", "unsupported architecture 'falcon'", "llama"],
            id="import-falcon",
        ),
        pytest.param(
            ["model", "import", str(HF / "broken-llama" / "config.json")],
            ["broken-llama/config.json", "num_hidden_layers", "intermediate_size"],
            id="import-broken",
        ),
        pytest.param(["model", "import", "no/such/config.json"], ["no/such/config.json"], id="import-missing-file"),
        pytest.param(["model", "import", str(REPO / "README.md")], ["README.md", "JSON"], id="import-not-json"),
        pytest.param(
            ["model", "import", str(HF / "llama-3.1-8b" / "config.json"), "-o", "no/such/dir/x.yaml"],
            ["no/such/dir/x.yaml"],
            id="import-output-dir-missing",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], expected: list[str]) -> None:
    message = user_error(*args)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


def test_hardware_path_env_not_a_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    message = user_error("estimate", *LLAMA8, env={"ROOFLINE_HARDWARE_PATH": str(missing)})
    assert "ROOFLINE_HARDWARE_PATH" in message and str(missing) in message


def test_gpus_zero_message() -> None:
    message = user_error("estimate", *LLAMA8, "--gpus", "0")
    assert "--gpus" in message and "at least 1" in message


def test_activation_dtype_int4_is_rejected() -> None:
    message = user_error("estimate", *LLAMA8, "--activation-dtype", "int4")
    assert "int4" in message


def test_click_usage_errors_exit_2_without_traceback() -> None:
    for args in (
        ["estimate", *LLAMA8, "--format", "xml"],
        ["estimate", *LLAMA8, "--batch", "abc"],
        ["estimate", "--hardware", "h100-sxm"],
        ["hardware", "show"],
        ["frobnicate"],
    ):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert isinstance(result.exception, SystemExit)
        assert result.stdout == ""
        assert "Traceback" not in result.output


# ---- the real console script ---------------------------------------------------------------------


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "roofline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "roofline.cli.app"]


def _run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOFLINE_")}
    return subprocess.run([*_console_script(), *args], capture_output=True, text=True, timeout=60, env=env, cwd=REPO)


def test_console_script_bad_model_is_one_line_no_traceback() -> None:
    proc = _run_script("estimate", "--model", "llama-3.1-7b", "--hardware", "h100-sxm")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    assert "llama-3.1-70b" in lines[0]
    assert "Traceback" not in proc.stderr


def test_console_script_json_is_clean_on_stdout() -> None:
    proc = _run_script("estimate", *LLAMA8, "--format", "json", "--no-ops")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    tpot = json.loads(proc.stdout)["tpot_s"]  # `| jq .tpot_s`
    assert isinstance(tpot, float) and tpot > 0
