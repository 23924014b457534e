"""Bad input across the commands: one `error:` line (or typer's usage box) and exit code 2, never a
traceback or a hang; and outputs that stay machine-readable. Cases found by a fuzzing pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roofline import hardware_specs
from roofline.cli.app import app

runner = CliRunner()
H100 = ["--hardware", "h100-sxm"]


def _fails_cleanly(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [
    ["estimate", "-m", "llama-3.1-8b", "--hardware", ""],  # empty id
    ["comm", "all-reduce", "--bytes", "1GiB", "--hardware", " "],
    ["estimate", "-m", "mixtral-8x7b", *H100, "--tp", "2", "--ep", "2", "--moe-imbalance", "nan"],
    ["estimate", "-m", "mixtral-8x7b", *H100, "--tp", "2", "--ep", "2", "--moe-imbalance", "inf"],
    ["estimate", "-m", "llada-8b", *H100, "--gen-len", "1000000000000"],  # was a MemoryError
    ["estimate", "-m", "llama-3.1-8b", *H100, "--isl", "1000000000000"],  # was a hang
    ["estimate", "-m", "llama-3.1-8b", *H100, "--isl", "131000", "--max-num-tokens", "1"],
    ["estimate", "-m", "deepseek-v3", "--hardware", "h200-sxm", "--tp", "8", "--ep", "8", "--mtp", "1000000"],
    ["serve", "-m", "llama-3.1-8b", *H100, "--max-throughput", "--num-requests", "1000000000000"],
    ["serve", "-m", "llama-3.1-8b", *H100, "--max-throughput", "--num-requests", "20", "--mtp", "1"],  # no MTP
    ["serve", "-m", "llama-3.1-8b", *H100, "--max-throughput", "--num-requests", "20", "--draft-tokens", "8"],
    ["serve", "-m", "llama-3.1-8b", *H100, "--max-throughput", "--draft-model", "llama-3.1-8b",
     "--draft-tokens", "1000000"],
    ["serve", "-m", "llama-3.1-8b", *H100, "--max-throughput", "--disaggregate", "1:3", "--gpus", "100"],
    ["sweep", "-m", "llama-3.1-8b", *H100, "-q", "--batch", "1:1000000:+1"],  # more values than an axis takes
    ["sweep", "-m", "llama-3.1-8b", *H100, "-q", "--request-rate", "1", "--num-requests", "1000000000000"],
    ["plan", "-m", "llama-3.1-8b", "--isl", "512", "--osl", "64", "--rate", "1", "--ttft-p99", "2s",
     "--tpot-p99", "50ms", *H100, "--recheck", "1000"],
    ["plan", "-m", "llama-3.1-8b", "--isl", "512", "--osl", "64", "--rate", "1", "--ttft-p99", "2s",
     "--tpot-p99", "50ms", *H100, "--price", "h100-sxm=nan"],
    ["plot", "roofline", "-m", "llama-3.1-8b", *H100, "-o", "/tmp/rb/p.png", "--dpi", "0"],
    ["plot", "roofline", "-m", "llama-3.1-8b", *H100, "-o", "/tmp/rb/p.png", "--dpi", "100000"],
])  # fmt: skip
def test_bad_input_exits_2(args: list[str]) -> None:
    _fails_cleanly(args)


def test_binary_and_degenerate_user_files(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 64)
    _fails_cleanly(["estimate", "-m", str(binary), *H100])
    _fails_cleanly(["estimate", "-m", "llama-3.1-8b", "--hardware", str(binary)])
    config = tmp_path / "config.json"
    config.write_bytes(b"\xff\xfe\x00\x81" * 64)
    _fails_cleanly(["model", "import", str(config)])
    # a hardware YAML with a bandwidth of 0: refused when loaded, not a ZeroDivisionError later
    shipped = Path(hardware_specs.__file__).parent / "data" / "accelerators" / "h100-sxm.yaml"
    zero = tmp_path / "zero.yaml"
    zero.write_text(shipped.read_text().replace("bandwidth: 3.35 TB/s", "bandwidth: 0 TB/s"))
    assert "bandwidth: 0 TB/s" in zero.read_text()
    _fails_cleanly(["estimate", "-m", "llama-3.1-8b", "--hardware", str(zero)])


def test_output_onto_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "out.xlsx"
    folder.mkdir()
    for args in (["estimate", "-m", "llama-3.1-8b", *H100, "--format", "xlsx", "-o", str(folder), "--force"],
                 ["sweep", "-m", "llama-3.1-8b", *H100, "-q", "-o", str(folder), "--force"]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "is a directory" in result.output, result.output


def test_json_is_strict_with_an_infinite_rate() -> None:
    """serve's load value is inf for max-throughput: written as the string "inf", which strict parsers
    (JavaScript, Python with parse_constant refusing) read."""
    result = runner.invoke(app, ["serve", "-m", "llama-3.1-8b", *H100, "--max-throughput", "--num-requests", "20",
                                 "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    assert json.loads(result.stdout, parse_constant=refuse)["load"] == "inf"


def test_trace_num_requests_takes_the_first_n(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,isl,osl\n" + "".join(f"{i * 0.5},128,16\n" for i in range(10)))
    result = runner.invoke(app, ["serve", "-m", "llama-3.1-8b", *H100, "--trace", str(trace), "--num-requests", "4",
                                 "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requests"] == 4
    spread = runner.invoke(app, ["serve", "-m", "llama-3.1-8b", *H100, "--trace", str(trace), "--isl-spread", "0.5"])
    assert spread.exit_code == 2
    bom = tmp_path / "bom.csv"  # as spreadsheets save "CSV UTF-8"
    bom.write_bytes(b"\xef\xbb\xbf" + trace.read_bytes())
    saved = runner.invoke(app, ["serve", "-m", "llama-3.1-8b", *H100, "--trace", str(bom), "--format", "json"])
    assert saved.exit_code == 0 and json.loads(saved.stdout)["requests"] == 10, saved.output


def test_validate_diffusion_rows_are_checked(tmp_path: Path) -> None:
    row = ("- {id: a, model: flux.1-dev, hardware: h100-sxm, gpus: 1, steps: 28, request: 1280x720x81, "
           "measured_latency_s: 5, scope: unknown, software: x, source: xyz, quote: q, confidence: low}\n")  # fmt: skip
    video = tmp_path / "video.yaml"
    video.write_text(row)
    _fails_cleanly(["validate", "--diffusion", "--data", str(video)])
    twice = tmp_path / "twice.yaml"
    twice.write_text((row.replace("1280x720x81", "1024x1024")) * 2)
    result = runner.invoke(app, ["validate", "--diffusion", "--data", str(twice)])
    assert result.exit_code == 2 and "appears twice" in result.output
