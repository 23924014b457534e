"""Shared CLI pieces: output formats, option types, writing files without clobbering."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from roofline.cli import tables
from roofline.errors import RooflineError
from roofline.files import write_whole

XLSX_COMMANDS = "estimate, serve, validate and sweep"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def emit(text: str) -> None:
    sys.stdout.write(text)


def write_new_file(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise RooflineError(f"'{path}' already exists; pass --force to overwrite it")
    try:
        write_whole(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))  # the whole file or none
    except OSError as exc:
        raise RooflineError(f"cannot write '{path}': {exc.strerror}") from None


def _no_xlsx(ctx: typer.Context, value: OutputFormat) -> OutputFormat:
    if value is OutputFormat.xlsx:
        raise RooflineError(f"'{ctx.command_path}' prints table, json or csv; --format xlsx (with -o FILE.xlsx) "
                            f"is for {XLSX_COMMANDS}")  # fmt: skip
    return value


def text_format_option(help: str = "table, json or csv") -> Any:
    """--format of the commands that print only table, json or csv: xlsx is one line, exit 2."""
    return typer.Option(OutputFormat.table, "--format", help=help, callback=_no_xlsx, metavar="<table|json|csv>")


@dataclass(frozen=True)
class Output:
    """Where a command's answer goes: stdout, or `-o FILE` (never over an existing file without
    --force). xlsx is binary, so it needs -o FILE.xlsx; `-o FILE.xlsx` alone means xlsx. Checked
    before the work starts, so a slow command does not fail at the end."""

    fmt: OutputFormat
    path: Path | None = None
    force: bool = False

    @classmethod
    def check(cls, fmt: OutputFormat, path: Path | None, force: bool) -> Output:
        is_xlsx_name = path is not None and path.suffix.lower() == ".xlsx"
        if is_xlsx_name and fmt is OutputFormat.table:
            fmt = OutputFormat.xlsx
        if fmt is OutputFormat.xlsx and path is None:
            raise RooflineError("--format xlsx writes a binary workbook: add -o FILE.xlsx")
        if fmt is OutputFormat.xlsx and not is_xlsx_name:
            raise RooflineError(f"--format xlsx: the output file name must end in .xlsx, got '{path}'")
        if is_xlsx_name and fmt is not OutputFormat.xlsx:
            raise RooflineError(f"-o {path}: a .xlsx file takes --format xlsx, not {fmt.value}")
        if path is not None and path.is_dir():
            raise RooflineError(f"-o {path} is a directory; give a file name")
        if path is not None and path.exists() and not force:
            raise RooflineError(f"'{path}' already exists; pass --force to overwrite it")
        return cls(fmt, path, force)

    def text(self, text: str) -> None:
        if self.path is None:
            emit(text)
        else:
            write_new_file(self.path, text, self.force)

    def table(self, renderable: object) -> None:
        """A rich renderable: to the terminal, or as plain text to the file."""
        if self.path is None:
            tables.print_renderable(renderable)
            return
        buffer = io.StringIO()
        Console(file=buffer, width=140, no_color=True, force_terminal=False).print(renderable)
        self.text(buffer.getvalue())

    def workbook(self, write: Callable[[Path], None]) -> None:
        assert self.fmt is OutputFormat.xlsx and self.path is not None
        try:
            write_whole(self.path, write)
        except OSError as exc:
            raise RooflineError(f"cannot write '{self.path}': {exc.strerror}") from None
        typer.echo(f"wrote {self.path}", err=True)


def warn(message: str) -> None:
    """A warning from the library's result, on stderr (stdout stays the answer)."""
    typer.echo(f"warning: {message}", err=True)
