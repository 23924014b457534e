"""The README's example outputs are what the commands print today.

Each example in README.md is an indented line `$ roofline ...` followed by a fenced block with its
output. The test runs the command and compares the text line by line. After a deliberate change of
the output, refresh the README with:

    ROOFLINE_UPDATE_README=1 .venv/bin/python -m pytest tests/test_readme.py
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roofline.cli.app import app

README = Path(__file__).parents[1] / "README.md"
EXAMPLE = re.compile(r"^    \$ (roofline [^\n]+)\n\n```[a-z]*\n(.*?)```$", re.MULTILINE | re.DOTALL)


def examples(text: str) -> list[re.Match[str]]:
    return list(EXAMPLE.finditer(text))


def run(command: str) -> str:
    args = shlex.split(command)[1:]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "140"})
    assert result.exit_code == 0, result.output
    return "\n".join(line.rstrip() for line in result.stdout.splitlines()) + "\n"


def test_readme_has_examples() -> None:
    found = examples(README.read_text(encoding="utf-8"))
    assert len(found) >= 2 and any("estimate" in m.group(1) for m in found)


@pytest.mark.parametrize("index", range(len(examples(README.read_text(encoding="utf-8")))))
def test_readme_example_output_is_current(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)
    text = README.read_text(encoding="utf-8")
    match = examples(text)[index]
    printed = run(match.group(1))
    shown = "\n".join(line.rstrip() for line in match.group(2).splitlines()) + "\n"
    if os.environ.get("ROOFLINE_UPDATE_README") and printed != shown:
        README.write_text(text[: match.start(2)] + printed + text[match.end(2) :], encoding="utf-8")
        return
    assert printed == shown, f"README example `{match.group(1)}` is out of date; see this file's docstring"
