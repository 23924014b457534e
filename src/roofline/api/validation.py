"""`rl.validate`: predict every row of a measurements file (or the packaged diffusion latencies) and
report the error of each, with MAPE per scenario and metric."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, overload

from roofline.api.query import items
from roofline.executors import Executor
from roofline.validation import DiffusionValidation, ValidationReport, run_validation

Progress = Callable[[int, int], None]  # (rows done, rows in all)


@overload
def validate(data: str | os.PathLike[str] | None = None, *, scenario: str | Sequence[str] = (),
             max_requests: int | None = None, diffusion: Literal[False] = False,
             progress: Progress | None = None, jobs: int | None = None, executor: Executor = "local",
             scheduler: str | None = None, runtime: str | None = None) -> ValidationReport: ...  # fmt: skip


@overload
def validate(data: str | os.PathLike[str] | None = None, *, scenario: str | Sequence[str] = (),
             max_requests: int | None = None, diffusion: Literal[True],
             progress: Progress | None = None, jobs: int | None = None, executor: Executor = "local",
             scheduler: str | None = None, runtime: str | None = None) -> DiffusionValidation: ...  # fmt: skip


def validate(data: str | os.PathLike[str] | None = None, *, scenario: str | Sequence[str] = (),
             max_requests: int | None = None, diffusion: bool = False,
             progress: Progress | None = None, jobs: int | None = None, executor: Executor = "local",
             scheduler: str | None = None,
             runtime: str | None = None) -> ValidationReport | DiffusionValidation:  # fmt: skip
    """Predict each row of `data` (a CSV in the schema of shared/validation/README.md; default the
    published measurements beside the repository) and report predicted, measured and error per row,
    then MAPE per scenario and metric (`roofline validate`). `scenario`: only rows of these
    scenarios; `max_requests`: cap each serving run's simulated requests; `diffusion`: the packaged
    diffusion-model latencies (or `data` as a YAML file in their schema) instead. `progress(done,
    total)` is called per row as it finishes. The rows run on `jobs` processes of this machine
    (None: its cores), or with `executor="dask"` on the workers of the Dask scheduler at `scheduler`
    ("tcp://host:8786", needs roofline[dask]); the report is the same wherever they ran. `runtime`: the
    runtime profile (id or alias: vllm, sglang, torch-eager ...) of model-level rows whose `runtime`
    column is empty (default: TensorRT-LLM, the public tables' engine); rows naming theirs keep it."""
    path = None if data is None else Path(data)
    return run_validation(path, items(scenario), max_requests, diffusion, progress, executor=executor, jobs=jobs,
                          scheduler=scheduler, runtime=runtime)  # fmt: skip
