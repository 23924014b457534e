"""A user's script, type-checked with `mypy --strict` (`make typecheck`): the API's annotations have to
carry a typed program through estimate, what-if copies, frames, sweeps, validate's overloads and
the errors without casts or `Any` leaking into the user's own names. It also runs
(`python tests/typing/api_user.py` from the repository root), quickly."""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

import pandas as pd

import roofline as rl

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def decode_speedup(model: str, bandwidth: str) -> float:
    """TPOT on an H100 over TPOT on a what-if H100 with `bandwidth`."""
    h100: rl.Hardware = rl.hardware("h100-sxm")
    faster = h100.replace(memory_bandwidth=bandwidth, id="h100-what-if")
    assert_type(faster, rl.Accelerator)
    base = rl.estimate(model, h100, tp=8, batch=16)
    what_if = rl.estimate(model, faster, tp=8, batch=16, set=["compute.bf16=1PFLOP/s"])
    return base.tpot_s / what_if.tpot_s


def fits_and_latency(model: str | rl.Model, hardware: str) -> tuple[bool, float | None]:
    r: rl.Estimate = rl.estimate(model, hardware, batch=8, isl=2048, osl=256)
    fits: bool = r.fits
    if not fits:
        try:
            _ = r.tpot_s
        except rl.DoesNotFitError as e:
            message: str = str(e)
            assert message.startswith("does not fit")
        return False, None
    ttft: float = r.ttft_s
    assert ttft <= r.ttft_batch_s
    return True, r.tpot_s


def per_op_frame() -> pd.DataFrame:
    r = rl.estimate("llama-3.1-8b", "h100-sxm", batch=4)
    frame: pd.DataFrame = r.to_frame()
    document: dict[str, object] = r.to_dict(ops=False)
    assert "ops" not in document
    text: str = r.to_json()
    assert text.startswith("{")
    return frame[frame["phase"] == "decode"]


def best_layout() -> tuple[int, int]:
    table: rl.SweepTable = rl.sweep("llama-3.1-70b", ["h100-sxm"], tp=[4, 8], batch="1,16", isl=1024, osl=128)
    frame = table.to_frame()
    fitting = frame[frame["fits"]]
    assert len(fitting) > 0
    best = table.best()[0]
    return int(best["tp"]), int(best["batch"])


def checked_against_measurements() -> float:
    report = rl.validate(FIXTURES / "validation_small.csv", scenario=["gemm"])
    assert_type(report, rl.ValidationReport)
    return max(abs(row.error) for row in report.rows)


def diffusion_groups() -> list[str]:
    """Not called below (it predicts every published diffusion latency): it is here for the overload."""
    report = rl.validate(diffusion=True)
    assert_type(report, rl.DiffusionValidation)
    return [group.group for group in report.summary]


def served_p99_ms() -> float:
    s: rl.ServeReport = rl.serve("llama-3.1-8b", "h100-sxm", isl=256, osl=32, request_rate=4, num_requests=20)
    return s.ttft_p99_s * 1e3


def collective_busbw_gbps() -> float:
    timing: rl.CollectiveTiming = rl.comm("all-reduce", system="dgx-h100", bytes="64MiB")
    sweep: rl.CollectiveSweep = rl.comm_sweep("all-gather", "h100-sxm", min_bytes=1024, max_bytes="1MiB", factor=4)
    assert len(sweep.timings) == 6
    return timing.busbw_bytes_per_s / 1e9


def error_line() -> str:
    try:
        rl.estimate("llama-3.1-7b", "h100-sxm")
    except rl.UnknownIdError as e:
        known: list[str] = e.known
        assert "llama-3.1-8b" in known
        return str(e)
    except rl.RooflineError:
        raise
    raise AssertionError("an unknown id must raise")


def main() -> None:
    assert decode_speedup("llama-3.1-70b", "6 TB/s") > 1.0
    assert fits_and_latency("llama-3.1-70b", "h100-sxm") == (False, None)
    fits, tpot = fits_and_latency(rl.Model.from_hf_config(FIXTURES / "hf" / "llama-3.1-8b" / "config.json"), "h100-sxm")
    assert fits and tpot is not None and tpot > 0
    layers: rl.Model = rl.model("llama-3.1-8b").replace(num_hidden_layers=16)
    assert fits_and_latency(layers, "h100-sxm")[0]
    assert len(per_op_frame()) > 0
    assert best_layout()[0] in (4, 8)
    assert checked_against_measurements() < 1.0
    assert served_p99_ms() > 0
    assert collective_busbw_gbps() > 0
    assert "did you mean" in error_line()


if __name__ == "__main__":
    main()
