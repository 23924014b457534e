"""Where validate and sweep run their chunks (roofline.executors): in this process, on local
processes (--jobs) or on a Dask cluster (--executor dask --scheduler ADDRESS). The answer must not
depend on where the work ran; a worker lost mid-run costs time, not rows; bad options, a missing
extra and an unreachable scheduler are one line and exit 2; an output file is whole or absent."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import roofline as rl
from roofline import executors
from roofline.cli import running
from roofline.cli import sweep as sweep_cli
from roofline.cli.app import app
from roofline.errors import RooflineError
from roofline.files import write_whole
from roofline.reports.formats import to_json
from roofline.validation.cases import read_cases
from roofline.validation.run import chunk_cases, merge_reports, predict_chunk

FIXTURE = Path(__file__).parent / "fixtures" / "validation_small.csv"
runner = CliRunner()
# A sweep served at one rate whose 6 configurations make 2 chunks (SERVED_CHUNK_CONFIGS = 4),
# one configuration not splittable (tp 8 over 8 KV heads is fine; batch 2 over attn_dp 4 is not).
SERVED = {"batch": "8,16", "tp": "1,2,4", "isl": 256, "osl": 32, "request_rate": 4.0, "num_requests": 10}


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise RooflineError("three is not allowed")
    return x


def _validate_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["validate", "--data", str(FIXTURE), "--max-requests", "40", "--format", "json",
                                 *args])  # fmt: skip
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# ---- this machine ----------------------------------------------------------------------------------


def test_results_come_back_in_chunk_order() -> None:
    finished: list[int] = []
    assert executors.run_chunks(_square, [3, 1, 2, 5], jobs=2, done=finished.append) == [9, 1, 4, 25]
    assert sorted(finished) == [0, 1, 2, 3]
    assert executors.run_chunks(_square, [3, 1, 2], jobs=1) == [9, 1, 4]


def test_an_error_of_a_chunk_in_another_process_stays_one_line() -> None:
    with pytest.raises(RooflineError, match="three is not allowed"):
        executors.run_chunks(_fail_on_three, [1, 2, 3, 4], jobs=2)


def test_validate_with_one_job_or_two_prints_the_same() -> None:
    one, two = _validate_json("--jobs", "1"), _validate_json("--jobs", "2")
    assert one == two
    assert [r["case_id"] for r in one["rows"]] == ["t01", "t02", "t03", "t04", "t05", "t06", "t07", "t10", "t12",
                                                   "t13"]  # fmt: skip


def test_rows_are_chunked_by_serving_run_and_merged_in_file_order() -> None:
    cases = read_cases(FIXTURE)
    chunks = chunk_cases(cases, 40, jobs=2)
    assert len(chunks) > 2  # the cheap rows, then the serving runs
    runs = [{c.run_key() for c in chunk.cases} for chunk in chunks[1:]]
    assert all(not a & b for i, a in enumerate(runs) for b in runs[i + 1 :])  # a run is never split
    assert sorted(c.line for chunk in chunks for c in chunk.cases) == [c.line for c in cases]
    merged = merge_reports([predict_chunk(chunk) for chunk in reversed(chunks)])
    assert [r.case.line for r in merged.rows] == sorted(r.case.line for r in merged.rows)


def test_progress_counts_every_row_when_chunks_run_elsewhere() -> None:
    calls: list[tuple[int, int]] = []
    rl.validate(FIXTURE, max_requests=40, jobs=2, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 14) for i in range(1, 15)]


def test_sweep_with_processes_equals_the_sweep_here() -> None:
    here = rl.sweep("llama-3.1-8b", "h100-sxm", **SERVED)  # type: ignore[arg-type]
    there = rl.sweep("llama-3.1-8b", "h100-sxm", jobs=2, **SERVED)  # type: ignore[arg-type]
    assert len(here.table) == 6
    assert to_json(here.to_dict()) == to_json(there.to_dict())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--executor", "spark"], "unknown executor 'spark'"),
        (["--executor", "dask"], "--executor dask needs --scheduler"),
        (["--scheduler", "tcp://127.0.0.1:8786"], "add --executor dask"),
    ],
)
def test_bad_executor_options_are_one_line(args: list[str], message: str) -> None:
    for command in (["validate", "--data", str(FIXTURE)], ["sweep", "-m", "llama-3.1-8b", "--hardware", "h100-sxm"]):
        result = runner.invoke(app, [*command, *args])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_missing_dask_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    for command in (["validate", "--data", str(FIXTURE)], ["sweep", "-m", "llama-3.1-8b", "--hardware", "h100-sxm"]):
        result = runner.invoke(app, [*command, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:8786"])
        assert result.exit_code == 2, result.output
        assert "pip install 'roofline[dask]'" in result.output


def test_progress_bar_only_on_a_terminal_without_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with running.progress_bar("rows", quiet=False) as bar:
        assert bar is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with running.progress_bar("rows", quiet=True) as bar:
        assert bar is None
    with running.progress_bar("rows", quiet=False) as bar:
        assert bar is not None
        bar.update(3, 10)  # a quick run: closed before SHOW_AFTER_S, never drawn
    assert not bar._progress.live.is_started


# ---- output files: whole or absent -----------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")

    def half_then_fail(path: Path) -> None:
        path.write_text("half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_whole(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    write_whole(target, lambda path: path.write_text("new\n"))
    assert target.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_sweep_output_is_not_left_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "grid.csv"
    target.write_text("the previous sweep\n")

    def failing_csv(rows: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sweep_cli, "to_csv", failing_csv)
    result = runner.invoke(app, ["sweep", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "-o", str(target), "--force"])
    assert result.exit_code == 2 and "cannot write" in result.output
    assert target.read_text() == "the previous sweep\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.csv"]


# ---- Dask --------------------------------------------------------------------------------------------


def test_unreachable_scheduler_is_one_line_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1.0)
    start = time.perf_counter()
    result = runner.invoke(app, ["validate", "--data", str(FIXTURE), "--scenario", "gemm", "--executor", "dask",
                                 "--scheduler", "tcp://127.0.0.1:9"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in result.output
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize(("address", "why"), [("nonsense", "missing port"), ("foo://1.2.3.4:1", "unknown scheme")])
def test_malformed_scheduler_address_is_one_line(address: str, why: str) -> None:
    pytest.importorskip("distributed")
    result = runner.invoke(app, ["sweep", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--executor", "dask",
                                 "--scheduler", address])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"--scheduler '{address}' is not a Dask scheduler address" in result.output and why in result.output


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes of one thread each (processes: a test kills one)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as local:  # fmt: skip
        yield local


def test_validate_on_dask_equals_the_local_run(cluster: Any) -> None:
    local = rl.validate(FIXTURE, max_requests=40, jobs=1)
    remote = rl.validate(FIXTURE, max_requests=40, executor="dask", scheduler=cluster.scheduler_address)
    assert to_json(remote.to_dict()) == to_json(local.to_dict())
    printed = _validate_json("--executor", "dask", "--scheduler", cluster.scheduler_address)
    assert printed == json.loads(to_json(local.to_dict()))


def test_sweep_on_dask_equals_the_local_run(cluster: Any) -> None:
    here = rl.sweep("llama-3.1-8b", "h100-sxm", **SERVED)  # type: ignore[arg-type]
    there = rl.sweep("llama-3.1-8b", "h100-sxm", executor="dask", scheduler=cluster.scheduler_address,
                     **SERVED)  # type: ignore[arg-type]  # fmt: skip
    assert to_json(here.to_dict()) == to_json(there.to_dict())
    fast = {"tp": "1,2,4,8", "batch": "1:64:x2"}
    assert (
        rl.sweep("llama-3.1-70b", "h100-sxm,b200", **fast).to_dict()
        == rl.sweep(
            "llama-3.1-70b", "h100-sxm,b200", executor="dask", scheduler=cluster.scheduler_address, **fast
        ).to_dict()
    )


def test_a_worker_lost_mid_run_has_its_chunk_run_again(cluster: Any, tmp_path: Path) -> None:
    """The first chunk to start kills its worker process; the rows still all come back, the same."""
    marker = tmp_path / "killed-a-worker"

    def die_once(chunk: Any) -> Any:  # a closure: sent to the workers by value
        if not marker.exists():
            marker.touch()
            os._exit(1)
        return predict_chunk(chunk)

    chunks = chunk_cases(read_cases(FIXTURE), 40, jobs=2)
    parts = executors.run_chunks(die_once, chunks, executor="dask", scheduler=cluster.scheduler_address)
    assert marker.exists()
    local = rl.validate(FIXTURE, max_requests=40, jobs=1)
    assert to_json(merge_reports(parts).to_dict()) == to_json(local.to_dict())
