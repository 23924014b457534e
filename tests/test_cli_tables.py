"""The CLI's table printer prints cell text as given: no rich markup or emoji codes are read in it."""

from __future__ import annotations

import pytest
from rich.table import Table

from roofline.cli.tables import print_renderable


def test_cell_text_is_printed_literally(capsys: pytest.CaptureFixture[str]) -> None:
    table = Table("id", "note")
    table.add_row("[bold]my-model[/bold]", "fits :smile: [red]no[/red]")
    print_renderable(table)
    out = capsys.readouterr().out
    assert "[bold]my-model[/bold]" in out  # a user's id with brackets is not taken for markup
    assert ":smile:" in out and "[red]no[/red]" in out
