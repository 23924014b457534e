"""Shared CLI pieces: output formats, option types, writing files without clobbering."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

from roofline.errors import RooflineError


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def emit(text: str) -> None:
    sys.stdout.write(text)


def write_new_file(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise RooflineError(f"'{path}' already exists; pass --force to overwrite it")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RooflineError(f"cannot write '{path}': {exc.strerror}") from None
