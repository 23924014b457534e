"""What the commands that can run long share (validate, sweep, serve): a progress bar on stderr,
and the options saying where their work runs (--jobs, --executor, --scheduler) and --quiet.

The bar appears only once the work has run for SHOW_AFTER_S (a quick command prints nothing extra), only
when stderr is a terminal, never with --quiet, and it is erased when the work ends. The library
reports progress through callbacks; this module turns them into the bar.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn

SHOW_AFTER_S = 1.0

EXECUTOR = typer.Option(
    "local",
    "--executor",
    metavar="<local|dask>",
    help="where the work runs: local (--jobs processes) or dask (the cluster at --scheduler; roofline[dask])",
)
SCHEDULER = typer.Option(None, "--scheduler", help="with --executor dask: the scheduler's address, tcp://HOST:8786")
QUIET = typer.Option(False, "--quiet", "-q", help="no progress bar")


def jobs_option(default: int | None, default_text: str) -> Any:
    return typer.Option(default, "--jobs", "-j", help=f"local processes to run on (default: {default_text})")


class Bar:
    """One task's bar, drawn from SHOW_AFTER_S on: `counted` shows done/total (the total may come
    with the first update); otherwise a bar without an end and the time (serve)."""

    def __init__(self, label: str, total: float | None, counted: bool) -> None:
        columns: list[ProgressColumn] = [TextColumn(label), BarColumn()]
        if counted:
            columns.append(MofNCompleteColumn())
        columns.append(TimeElapsedColumn())
        self._progress = Progress(*columns, console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task(label, total=total)
        self._timer = threading.Timer(SHOW_AFTER_S, self._progress.start)
        self._timer.daemon = True

    def advance(self, amount: float) -> None:
        self._progress.advance(self._task, amount)

    def update(self, done: float, total: float | None = None) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def open(self) -> None:
        self._timer.start()

    def close(self) -> None:
        self._timer.cancel()
        self._timer.join()  # a bar being started finishes starting before it is stopped
        self._progress.stop()


def wanted(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(label: str, quiet: bool, total: float | None = None, counted: bool = True) -> Iterator[Bar | None]:
    """A Bar while the block runs (None when it would not be shown: --quiet or stderr not a terminal)."""
    if not wanted(quiet):
        yield None
        return
    bar = Bar(label, total, counted)
    bar.open()
    try:
        yield bar
    finally:
        bar.close()
