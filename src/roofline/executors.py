"""Where chunks of independent work run: in this process, on a pool of local processes, or on a
Dask distributed cluster. `validate` (chunks of rows) and `sweep` (chunks of configurations) hand
their chunks to `run_chunks` and get the results back in chunk order, whatever order they
finished in, so the output does not depend on where the work ran.

A chunk function must be importable by name (a module-level function) and its chunks and results
picklable: the process pool and Dask send them to other processes. Dask is an optional extra
(`pip install 'roofline[dask]'`), imported only when `executor="dask"` is asked for.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Literal, TypeVar

from roofline.errors import RooflineError

Chunk = TypeVar("Chunk")
Out = TypeVar("Out")
Executor = Literal["local", "dask"]
Done = Callable[[int], None]  # called with the index of each chunk as it finishes

EXECUTORS = ("local", "dask")
CONNECT_TIMEOUT_S = 5.0  # how long to wait for a Dask scheduler before saying it cannot be reached
DASK_RESUBMITS = 3  # resubmissions of a chunk whose worker died (on top of Dask's own rescheduling)
# Modules a pool worker imports once, before it is forked: the workers start warm.
WORKER_PRELOAD = ["roofline.validation.run", "roofline.planner.sweep"]


def default_jobs() -> int:
    """The machine's cores (1 when the count is unknown)."""
    return os.cpu_count() or 1


def executor_named(name: str) -> Executor:
    """The executor of that name (the command line's --executor); RooflineError for another."""
    if name == "local":
        return "local"
    if name == "dask":
        return "dask"
    raise RooflineError(f"unknown executor '{name}'; known: {', '.join(EXECUTORS)}")


def check_options(executor: str, jobs: int | None, scheduler: str | None) -> int:
    """The number of local processes to use; RooflineError (one line) for a bad combination."""
    executor_named(executor)
    if jobs is not None and jobs < 1:
        raise RooflineError(f"--jobs must be at least 1, got {jobs}")
    if executor == "dask" and not scheduler:
        raise RooflineError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.1:8786)")
    if executor == "dask":
        _distributed()  # the extra is installed: said before any work starts
    if executor != "dask" and scheduler:
        raise RooflineError("--scheduler is the address of a Dask scheduler: add --executor dask")
    return default_jobs() if jobs is None else jobs


def run_chunks(fn: Callable[[Chunk], Out], chunks: Sequence[Chunk], *, executor: str = "local",
               jobs: int | None = 1, scheduler: str | None = None, done: Done | None = None) -> list[Out]:  # fmt: skip
    """`fn(chunk)` for every chunk, results in chunk order. `executor="local"` runs them in this
    process (jobs 1, or a single chunk) or on `jobs` processes of this machine (None: its cores);
    `executor="dask"` on the workers of the Dask scheduler at `scheduler`. `done(i)` is called as
    chunk i finishes. An exception of `fn` propagates (a RooflineError stays one)."""
    workers = check_options(executor, jobs, scheduler)
    fn = _OneLineErrors(fn)
    if executor == "dask":
        assert scheduler is not None
        return _run_dask(fn, chunks, scheduler, done)
    if workers == 1 or len(chunks) <= 1:
        return _run_here(fn, chunks, done)
    return _run_processes(fn, chunks, min(workers, len(chunks)), done)


class _OneLineErrors:
    """`fn` with its RooflineError re-raised as a plain RooflineError of the same message: a
    subclass with its own constructor arguments (UnknownIdError) cannot be unpickled on the way
    back from another process."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, chunk: Any) -> Any:
        try:
            return self.fn(chunk)
        except RooflineError as exc:
            raise RooflineError(str(exc)) from None


def _run_here(fn: Callable[[Chunk], Out], chunks: Sequence[Chunk], done: Done | None) -> list[Out]:
    results = []
    for index, chunk in enumerate(chunks):
        results.append(fn(chunk))
        if done is not None:
            done(index)
    return results


def _pool_context() -> Any:
    """forkserver where the platform has it: workers forked from a clean, pre-imported server (no
    fork of a process running threads, such as a progress bar's); spawn elsewhere."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


def _run_processes(fn: Callable[[Chunk], Out], chunks: Sequence[Chunk], workers: int,
                   done: Done | None) -> list[Out]:  # fmt: skip
    results: dict[int, Out] = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context())
    finished_all = False
    try:
        pending: dict[Future[Out], int] = {pool.submit(fn, chunk): i for i, chunk in enumerate(chunks)}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                results[index] = future.result()
                if done is not None:
                    done(index)
        finished_all = True
    finally:  # a failed chunk or Ctrl-C: the chunks not started are dropped, not waited for
        pool.shutdown(wait=finished_all, cancel_futures=True)
    return [results[i] for i in range(len(chunks))]


# ---- Dask ---------------------------------------------------------------------------------------


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise RooflineError("--executor dask needs Dask distributed: pip install 'roofline[dask]'") from None
    return distributed


def _check_address(scheduler: str) -> None:
    """A malformed address is said at once (a Client made with one lingers and times out at exit)."""
    from distributed.comm import parse_address, registry
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        if scheme not in registry.backends:
            raise ValueError(f"unknown scheme '{scheme}'")
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as exc:
        raise RooflineError(f"--scheduler '{scheduler}' is not a Dask scheduler address such as "
                            f"tcp://10.0.0.1:8786 ({exc})") from None  # fmt: skip


def _connect(distributed: Any, scheduler: str) -> Any:
    _check_address(scheduler)
    try:
        return distributed.Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RooflineError(f"cannot reach the Dask scheduler at '{scheduler}' within {CONNECT_TIMEOUT_S:g} s "
                            f"({why})") from None  # fmt: skip


def _lost_worker_errors(distributed: Any) -> tuple[type[BaseException], ...]:
    """What a chunk whose worker died (or lost its connection) raises: resubmitted, not fatal."""
    from distributed.comm.core import CommClosedError

    return (distributed.KilledWorker, CommClosedError)


def _run_dask(fn: Callable[[Chunk], Out], chunks: Sequence[Chunk], scheduler: str, done: Done | None) -> list[Out]:
    distributed = _distributed()
    lost = _lost_worker_errors(distributed)
    results: dict[int, Out] = {}
    with _connect(distributed, scheduler) as client:
        futures = {client.submit(fn, chunk, pure=False): i for i, chunk in enumerate(chunks)}
        attempts = dict.fromkeys(range(len(chunks)), 0)
        queue = distributed.as_completed(list(futures), loop=client.loop)
        for future in queue:
            index = futures.pop(future)
            try:
                results[index] = future.result()
            except lost as exc:
                attempts[index] += 1
                if attempts[index] > DASK_RESUBMITS:
                    raise RooflineError(
                        f"chunk {index + 1} of {len(chunks)} lost its Dask worker "
                        f"{attempts[index]} times; giving up ({type(exc).__name__})"
                    ) from None
                retry = client.submit(fn, chunks[index], pure=False)
                futures[retry] = index
                queue.add(retry)
                continue
            if done is not None:
                done(index)
    return [results[i] for i in range(len(chunks))]
