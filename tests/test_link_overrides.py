"""What-if link bandwidth: `--set scale_up.bandwidth_per_gpu=...` / `scale_out.bandwidth_per_gpu=...`
(per GPU, per direction) in the library, the command line and the Python API."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import roofline.api as rl
from roofline.api.query import cluster_of
from roofline.errors import RooflineError
from roofline.hardware_specs import resolve_cluster
from roofline.overrides import apply_link_settings, parse_settings

SRC = str(Path(__file__).resolve().parents[1] / "src")
TP8 = dict(tp=8, batch=16, isl=2048, osl=256)


def decode_all_reduce_s(result: rl.Estimate) -> float:
    """The decode step's attention all-reduce (TP=8: one per layer, crossing NVLink)."""
    return next(r["time_s"] for r in result.records() if r["phase"] == "decode" and r["name"] == "attn_all_reduce")


def test_parse_settings_reads_link_bandwidths_with_units() -> None:
    settings = parse_settings(["scale_up.bandwidth_per_gpu=900GB/s", "scale_out.bandwidth_per_gpu=400Gb/s",
                               "memory.bandwidth=4TB/s"])  # fmt: skip
    assert settings.links == {"scale_up": 900e9, "scale_out": 50e9}
    assert settings.hardware == {"memory.bandwidth": "4TB/s"}
    assert parse_settings(["scale_up.bandwidth_per_gpu=1TB/s"])  # a link change alone is a setting


@pytest.mark.parametrize(
    ("item", "words"),
    [("scale_up.bandwidth_per_gpu=900", ["has no unit"]), ("scale_up.bandwidth_per_gpu=fast", ["'fast'"]),
     ("scale_up.bandwidth_per_gpu=0GB/s", ["above 0"]), ("scale_up.bandwidth_per_gpu=4GiB", ["'4GiB'"])],
)  # fmt: skip
def test_bad_link_bandwidth_is_one_line_naming_the_item(item: str, words: list[str]) -> None:
    with pytest.raises(RooflineError) as info:
        parse_settings([item])
    message = str(info.value)
    assert message.startswith(f"--set {item!r}") and "\n" not in message
    assert all(w in message for w in words), message


def test_the_per_gpu_figure_is_spread_over_the_gpus_ports() -> None:
    base = resolve_cluster(hardware="h100-sxm", num_gpus=16)
    changed = cluster_of("h100-sxm", None, 16, ["scale_up.bandwidth_per_gpu=900GB/s",
                                                "scale_out.bandwidth_per_gpu=100GB/s"])  # fmt: skip
    assert changed.scale_up.bandwidth_per_gpu_bytes_per_s == pytest.approx(900e9)
    assert changed.scale_up.ports_per_gpu == base.scale_up.ports_per_gpu  # 18 NVLinks, each faster
    assert changed.scale_up.link.latency == base.scale_up.link.latency
    assert changed.scale_up.link.achievable_fraction == base.scale_up.link.achievable_fraction
    assert changed.scale_out is not None and base.scale_out is not None
    assert changed.scale_out.bandwidth_per_gpu_bytes_per_s == pytest.approx(100e9)
    assert base.scale_up.bandwidth_per_gpu_bytes_per_s == pytest.approx(450e9)  # the catalog is untouched


def test_a_fabric_the_system_lacks_is_an_error() -> None:
    alone = dataclasses.replace(resolve_cluster(hardware="h100-sxm", num_gpus=8), scale_out=None)
    with pytest.raises(RooflineError, match=r"--set scale_out.bandwidth_per_gpu: system 'dgx-h100' has no scale-out"):
        apply_link_settings(alone, {"scale_out": 50e9})


def test_nvlink_bandwidth_moves_the_tp_all_reduce_and_nothing_else() -> None:
    base = rl.estimate("llama-3.1-70b", "h100-sxm", **TP8)
    double = rl.estimate("llama-3.1-70b", "h100-sxm", **TP8, set="scale_up.bandwidth_per_gpu=900GB/s")
    half = rl.estimate("llama-3.1-70b", "h100-sxm", **TP8, set="scale_up.bandwidth_per_gpu=225GB/s")
    assert decode_all_reduce_s(half) > decode_all_reduce_s(base) > decode_all_reduce_s(double)
    assert half.tpot_s > base.tpot_s > double.tpot_s
    gemm = [r["time_s"] for r in base.records() if r["op_class"] == "gemm"]
    assert [r["time_s"] for r in double.records() if r["op_class"] == "gemm"] == gemm


def test_the_command_line_takes_the_link_setting() -> None:
    item = "scale_up.bandwidth_per_gpu=900GB/s"
    args = ["estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "16", "--isl",
            "2048", "--osl", "256", "--set", item, "--format", "json"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "roofline.cli.app", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = rl.estimate("llama-3.1-70b", "h100-sxm", **TP8, set=[item])
    assert json.loads(done.stdout)["tpot_s"] == pytest.approx(expected.tpot_s, rel=1e-12)
    bad = subprocess.run([sys.executable, "-m", "roofline.cli.app", *args[:-4], "--set",
                          "scale_up.bandwidth_per_gpu=0GB/s"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, timeout=120)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --set 'scale_up.bandwidth_per_gpu=0GB/s': a link bandwidth must be above 0"
