"""The one entry point of validation: `run_validation`, what `roofline validate` calls and renders.

It checks the arguments as the command takes them (the messages name the options), finds the
default measurements file and returns a frozen report: `ValidationReport` for a measurements CSV,
`DiffusionValidation` for the diffusion latencies. No printing: progress goes to the callback.

The rows are predicted in chunks (`predict_chunk`), which `roofline.executors.run_chunks` runs here,
on local processes or on a Dask cluster; the chunks' rows are put back in file order, so the report
is the same wherever they ran. A chunk holds whole serving runs (the rows that share one
simulation), those of one model and hardware side by side so a process reuses what it loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from roofline.errors import RooflineError
from roofline.executors import check_options, run_chunks
from roofline.validation.cases import SERVING_SCENARIOS, Case, read_cases
from roofline.validation.diffusion import DiffusionValidation
from roofline.validation.predict import Options, not_predicted
from roofline.validation.predict_runtimes import with_default_runtime
from roofline.validation.report import ValidationReport, predict_cases, select, summarize

Progress = Callable[[int, int], None]  # (rows done, rows in all)
CHUNKS_PER_JOB = 8  # small chunks even out the uneven cost of serving runs over the processes
MAX_RUNS_PER_CHUNK = 8
DASK_JOBS = 64  # the chunking of a Dask run: its workers are not counted here

# src/roofline/validation/run.py -> parents[3] is the repository root; its sibling shared/ holds the data
DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "validation" / "published.csv"


def default_data_path(data: Path | None = None) -> Path:
    """`data` when given, else the published file beside the repository; RooflineError when it is absent."""
    if data is not None:
        return data
    if not DEFAULT_DATA.is_file():
        raise RooflineError(f"no --data given and the default file '{DEFAULT_DATA}' does not exist; pass --data FILE")
    return DEFAULT_DATA


@dataclass(frozen=True)
class RowChunk:
    """Rows to predict in one task: light, picklable data (the cases), nothing loaded."""

    cases: tuple[Case, ...]
    max_requests: int | None


def predict_chunk(chunk: RowChunk) -> ValidationReport:
    """The rows of one chunk, predicted (what a worker runs)."""
    return predict_cases(chunk.cases, Options(max_requests=chunk.max_requests))


def chunk_cases(cases: Sequence[Case], max_requests: int | None, jobs: int) -> list[RowChunk]:
    """The cheap rows (kernels, skipped rows) in one chunk, then the serving runs, grouped by model
    and hardware, a few runs per chunk; one chunk in all when there is at most one serving run."""
    runs: dict[tuple[object, ...], list[Case]] = {}
    cheap: list[Case] = []
    for case in cases:
        if case.scenario in SERVING_SCENARIOS and not_predicted(case) is None:
            runs.setdefault(case.run_key(), []).append(case)
        else:
            cheap.append(case)
    if len(runs) <= 1:
        return [RowChunk(tuple(cases), max_requests)]
    ordered = sorted(runs.values(), key=lambda rows: (rows[0].model, rows[0].hardware, rows[0].num_gpus, rows[0].line))
    per_chunk = max(1, min(MAX_RUNS_PER_CHUNK, math.ceil(len(ordered) / (jobs * CHUNKS_PER_JOB))))
    chunks = [RowChunk(tuple(cheap), max_requests)] if cheap else []
    for start in range(0, len(ordered), per_chunk):
        rows = [case for run in ordered[start : start + per_chunk] for case in run]
        chunks.append(RowChunk(tuple(rows), max_requests))
    return chunks


def merge_reports(parts: Sequence[ValidationReport]) -> ValidationReport:
    """The chunks' rows back in file order, summarised over all of them."""
    rows = sorted((r for part in parts for r in part.rows), key=lambda r: r.case.line)
    skipped = sorted((s for part in parts for s in part.skipped), key=lambda s: s.case.line)
    return ValidationReport(tuple(rows), tuple(skipped), summarize(rows))


def predict_file(path: Path, scenarios: Sequence[str] = (), max_requests: int | None = None,
                 progress: Progress | None = None, *, executor: str = "local", jobs: int | None = 1,
                 scheduler: str | None = None, runtime: str | None = None) -> ValidationReport:  # fmt: skip
    """Read `path` (the whole file is checked), keep the rows of `scenarios`, predict them in chunks
    on the executor and summarise; `progress(done, total)` once per row as its chunk finishes.
    `runtime`: the runtime of model-level rows whose `runtime` column is empty (default: trtllm)."""
    if max_requests is not None and max_requests < 1:
        raise RooflineError(f"max requests must be at least 1, got {max_requests}")
    workers = check_options(executor, jobs, scheduler)
    cases = with_default_runtime(select(read_cases(path), scenarios), runtime)
    chunks = chunk_cases(cases, max_requests, DASK_JOBS if executor == "dask" else workers)
    done_rows = 0

    def finished(index: int) -> None:
        nonlocal done_rows
        for _ in chunks[index].cases:
            done_rows += 1
            if progress is not None:
                progress(done_rows, len(cases))

    parts = run_chunks(predict_chunk, chunks, executor=executor, jobs=workers, scheduler=scheduler, done=finished)
    return merge_reports(parts)


def run_validation(
    data: Path | None, scenarios: Sequence[str] = (), max_requests: int | None = None, diffusion: bool = False,
    progress: Progress | None = None, *, executor: str = "local", jobs: int | None = None,
    scheduler: str | None = None, runtime: str | None = None,
) -> ValidationReport | DiffusionValidation:  # fmt: skip
    """Predict the rows of `data` (default: the published file; with `diffusion`, the packaged
    diffusion latencies) and summarise the errors. `scenarios` keeps those rows only (all when
    empty); `max_requests` caps the simulated requests of each serving run. The rows run on `jobs`
    local processes (None: the machine's cores), or with `executor="dask"` on the Dask cluster at
    `scheduler`; the report is the same. RooflineError (one line) for a bad argument or a
    malformed file."""
    if diffusion:
        if scenarios or max_requests is not None or runtime is not None:
            raise RooflineError(
                "--scenario, --max-requests and --runtime are for the LLM measurements, not --diffusion"
            )
        check_options(executor, jobs, scheduler)
        return DiffusionValidation.from_file(data)
    return predict_file(default_data_path(data), scenarios, max_requests, progress, executor=executor, jobs=jobs,
                        scheduler=scheduler, runtime=runtime)  # fmt: skip
