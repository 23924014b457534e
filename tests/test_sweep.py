"""`roofline sweep`: grids, CSV / XLSX / Parquet files, --force, skipped splits, --exact."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from roofline.cli.app import app
from roofline.hardware_specs import resolve_cluster
from roofline.simulator import ParallelPlan, Scenario, estimate
from roofline.workloads import get_workload

runner = CliRunner()
GRID = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm,b200", "--tp", "1,2", "--batch", "1:64:x8",
        "--isl", "512", "--osl", "64", "--quiet"]  # fmt: skip


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_csv_rows_and_derived_columns(tmp_path: Path) -> None:
    out = tmp_path / "grid.csv"
    result = runner.invoke(app, ["sweep", *GRID, "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _csv(out)
    assert len(rows) == 2 * 2 * 3  # hardware x tp x batch (1, 8, 64)
    for row in rows:
        batch, tpot, gpus = int(row["batch"]), float(row["tpot_s"]), int(row["gpus"])
        assert gpus == int(row["tp"])
        assert float(row["output_tokens_per_s"]) == pytest.approx(batch / tpot)
        assert float(row["output_tokens_per_s_per_gpu"]) == pytest.approx(batch / tpot / gpus)
    # one row against the full estimator
    row = next(r for r in rows if r["hardware"] == "b200" and r["tp"] == "2" and r["batch"] == "64")
    w = get_workload("llama-3.1-8b")
    full = estimate(
        w, resolve_cluster("b200", num_gpus=2), Scenario(64, 512, 64, w.shipped_precision, ParallelPlan(tp=2))
    )
    assert float(row["tpot_s"]) == pytest.approx(full.tpot_s, rel=0.05)
    assert float(row["ttft_batch_s"]) == pytest.approx(full.ttft_batch_s, rel=0.05)


def test_xlsx_workbook(tmp_path: Path) -> None:
    out, flat = tmp_path / "plan.xlsx", tmp_path / "plan.csv"
    assert runner.invoke(app, ["sweep", *GRID, "-o", str(out)]).exit_code == 0
    assert runner.invoke(app, ["sweep", *GRID, "-o", str(flat)]).exit_code == 0
    rows = _csv(flat)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Inputs", "Results", "Summary"]
    inputs = {r[0]: r[1] for r in book["Inputs"].iter_rows(min_row=2, values_only=True)}
    assert inputs["Models"] == "llama-3.1-8b" and inputs["Tool"].startswith("roofline ")
    assert inputs["Input lengths (tokens)"] == "512" and inputs["Output lengths (tokens)"] == "64"
    ws = book["Results"]
    header = [c.value for c in ws[1]]
    assert {"TPOT (ms)", "Prefill of the batch (ms)", "Memory per GPU incl. reserve (GiB)"} <= set(header)
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}{len(rows) + 1}"
    tpot = header.index("TPOT (ms)") + 1
    assert ws.cell(row=2, column=tpot).number_format == "#,##0.000"
    for i, row in enumerate(rows, start=2):  # same order, ms = s x 1000
        assert ws.cell(row=i, column=tpot).value == pytest.approx(float(row["tpot_s"]) * 1e3)
    summary = book["Summary"]
    assert "Highest throughput per GPU" in summary["A1"].value
    best = max((r for r in rows if r["fits"] == "True"), key=lambda r: float(r["output_tokens_per_s_per_gpu"]))
    top = dict(zip([c.value for c in summary[2]], [c.value for c in summary[3]], strict=True))
    assert (top["Hardware"], top["TP"], top["Batch (sequences)"]) == (
        best["hardware"],
        int(best["tp"]),
        int(best["batch"]),
    )


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "grid.csv"
    out.write_text("keep me\n")
    refused = runner.invoke(app, ["sweep", *GRID, "-o", str(out)])
    assert refused.exit_code == 2
    assert (
        refused.stderr.strip().count("\n") == 0 and "already exists" in refused.stderr and "--force" in refused.stderr
    )
    assert out.read_text() == "keep me\n"
    assert runner.invoke(app, ["sweep", *GRID, "-o", str(out), "--force"]).exit_code == 0
    assert len(_csv(out)) == 12


def test_parquet_needs_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    result = runner.invoke(app, ["sweep", *GRID, "-o", str(tmp_path / "grid.parquet")])
    assert result.exit_code == 2 and "pip install pyarrow" in result.stderr


def test_parquet_when_pyarrow_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pandas as pd

    out = tmp_path / "grid.parquet"
    assert runner.invoke(app, ["sweep", *GRID, "-o", str(out)]).exit_code == 0
    assert len(pd.read_parquet(out)) == 12


def test_unknown_suffix_and_skipped_splits(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["sweep", *GRID, "-o", str(tmp_path / "grid.txt")])
    assert bad.exit_code == 2 and ".xlsx" in bad.stderr
    skipped = runner.invoke(app, ["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "1,3",
                                  "--format", "csv", "--quiet"])  # fmt: skip
    assert skipped.exit_code == 0
    assert "skipped 1 of 2" in skipped.stderr and "--tp 3" in skipped.stderr
    assert len(list(csv.DictReader(skipped.stdout.splitlines()))) == 1


def test_exact_mode_matches_the_fast_path(tmp_path: Path) -> None:
    args = ["sweep", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--tp", "2", "--ep", "1,2", "--batch", "4,48",
            "--isl", "1024", "--osl", "32", "--quiet", "--format", "csv"]  # fmt: skip
    fast = list(csv.DictReader(runner.invoke(app, args).stdout.splitlines()))
    exact = list(csv.DictReader(runner.invoke(app, [*args, "--exact"]).stdout.splitlines()))
    assert len(fast) == len(exact) == 4
    for a, b in zip(fast, exact, strict=True):
        assert float(a["tpot_s"]) == pytest.approx(float(b["tpot_s"]), rel=0.05)
        assert float(a["memory_bytes"]) == pytest.approx(float(b["memory_bytes"]), rel=1e-9)
        assert a["fits"] == b["fits"]


def test_table_and_json_to_stdout() -> None:
    table = runner.invoke(app, ["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "1,2"])
    assert table.exit_code == 0 and "TPOT (ms)" in table.stdout and "2 configurations" in table.stdout
    data = runner.invoke(app, ["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--format", "json"])
    assert '"tpot_s"' in data.stdout and '"Models": "llama-3.1-8b"' in data.stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-num-tokens", "0"), ("--max-num-tokens", "-5"), ("--tp", "0"), ("--pp", "-1"), ("--ep", "0"),
     ("--attn-dp", "-2"), ("--batch", "0"), ("--batch", "-4"), ("--isl", "0"), ("--osl", "-1"),
     ("--request-rate", "abc"), ("--request-rate", "0"), ("--request-rate", "inf"), ("--request-rate", ","),
     ("--num-requests", "3")],
)  # fmt: skip
def test_bad_numbers_are_one_line_exit_2(option: str, value: str) -> None:
    args = ["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--quiet", option, value]
    out = runner.invoke(app, args)
    assert out.exit_code == 2, (out.output, out.exception)
    assert out.stderr.startswith("error:") and out.stderr.strip().count("\n") == 0, out.stderr
    assert "Traceback" not in out.output


SERVED = ["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "64,256", "--isl", "1024",
          "--osl", "256", "--request-rate", "2,40", "--num-requests", "120", "--quiet"]  # fmt: skip


def test_request_rates_serve_every_configuration(tmp_path: Path) -> None:
    """Load curves: each (configuration, rate) is one simulated point. At 2 requests/s the GPU keeps up
    (output = rate x osl); at 40 requests/s a 64-sequence batch limit saturates it and TTFT queues up,
    which a 256 limit relieves."""
    out = tmp_path / "load.csv"
    result = runner.invoke(app, [*SERVED, "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _csv(out)
    assert [(r["batch"], r["request_rate_per_s"]) for r in rows] == [("64", "2.0"), ("64", "40.0"), ("256", "2.0"),
                                                               ("256", "40.0")]  # fmt: skip
    low = rows[0]
    assert float(low["output_tokens_per_s"]) == pytest.approx(2 * 256, rel=0.15)
    assert float(low["ttft_p99_s"]) >= float(low["ttft_s"]) and float(low["tpot_p99_s"]) >= float(low["tpot_s"])
    assert float(rows[1]["ttft_s"]) > 10 * float(low["ttft_s"])  # saturated: requests wait for a slot
    assert float(rows[3]["ttft_s"]) < float(rows[1]["ttft_s"])
    assert float(rows[3]["mean_batch"]) > 64


def test_request_rates_in_the_workbook_and_not_with_exact(tmp_path: Path) -> None:
    out = tmp_path / "load.xlsx"
    assert runner.invoke(app, [*SERVED, "-o", str(out)]).exit_code == 0
    headers = [c.value for c in next(openpyxl.load_workbook(out)["Results"].iter_rows(max_row=1))]
    assert "Request rate (requests/s)" in headers and "TTFT p99 (ms)" in headers
    plain = tmp_path / "plain.xlsx"
    assert runner.invoke(app, ["sweep", *GRID, "-o", str(plain)]).exit_code == 0
    plain_headers = [c.value for c in next(openpyxl.load_workbook(plain)["Results"].iter_rows(max_row=1))]
    assert "Request rate (requests/s)" not in plain_headers  # estimate sweeps keep their columns
    exact = runner.invoke(app, [*SERVED, "--exact"])
    assert exact.exit_code == 2 and "--exact" in exact.output


def test_served_sweep_inputs_name_the_engine_and_skip_uneven_attention_dp() -> None:
    import json

    out = runner.invoke(app, ["sweep", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--weight-dtype", "fp8",
                              "--batch", "3,4", "--attn-dp", "2", "--ep", "2", "--request-rate", "1",
                              "--num-requests", "20", "--format", "json", "--quiet"])  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["inputs"]["Estimator"].startswith("serving simulator")
    assert data["inputs"]["Engine"] == "trtllm" and data["inputs"]["Engine step overhead (ms)"] > 0
    assert [r["batch"] for r in data["rows"]] == [4]  # 3 does not split over 2 attention-DP replicas
    assert any("does not split evenly" in reason for reason in data["skipped"])


@pytest.mark.parametrize("engine, tp, batch", [("torch-cuda-graph", 2, 4), ("torch-eager", 1, 1), ("vllm", 1, 16)])
def test_sweep_prices_a_runtime_as_estimate_does(engine: str, tp: int, batch: int) -> None:
    """One cost model: the sweep's rows (fast and exact) equal `estimate` with the same runtime: its
    vocabulary layout (gpt-fast keeps the LM head whole on every GPU), its CUDA-graph launch per step,
    an eager runtime's op-by-op dispatch (such sweeps run the full estimator)."""
    import roofline as rl

    e = rl.estimate("llama-3.1-8b", "h100-sxm", tp=tp, batch=batch, isl=1024, osl=128, runtime=engine).to_dict()
    for exact in (False, True):
        row = rl.sweep("llama-3.1-8b", "h100-sxm", tp=str(tp), batch=str(batch), isl="1024", osl="128", engine=engine,
                       exact=exact).to_dict()["rows"][0]  # fmt: skip
        assert row["tpot_s"] == pytest.approx(e["tpot_s"], rel=1e-9)
        assert row["ttft_batch_s"] == pytest.approx(e["ttft_batch_s"], rel=1e-9)


def test_plan_refuses_an_eager_runtime_in_one_line() -> None:
    result = CliRunner().invoke(app, ["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--isl", "512",
                                      "--osl", "128", "--rate", "1", "--ttft-p99", "2s", "--tpot-p99", "100ms",
                                      "--max-gpus", "2", "--engine", "torch-eager"])  # fmt: skip
    assert result.exit_code == 2
    assert "does not model torch-eager" in result.output and "Traceback" not in result.output
