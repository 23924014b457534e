"""`roofline hardware list|show`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from roofline.cli import tables
from roofline.cli.common import XLSX_COMMANDS, OutputFormat, emit, text_format_option
from roofline.errors import RooflineError
from roofline.hardware_specs import load_catalog
from roofline.hardware_specs.catalog import get_hardware_item
from roofline.overrides import to_yaml
from roofline.reports.formats import flatten, to_csv, to_json

app = typer.Typer(help="Accelerators, links and systems in the catalog.", no_args_is_help=True)


@app.command("list")
def list_hardware(fmt: OutputFormat = text_format_option()) -> None:
    """List accelerators, systems and links."""
    catalog = load_catalog()
    accelerators = sorted(catalog.accelerators.values(), key=lambda a: a.id)
    systems = sorted(catalog.systems.values(), key=lambda s: s.id)
    links = sorted(catalog.links.values(), key=lambda link: link.id)
    if fmt is OutputFormat.table:
        tables.print_renderable(tables.hardware_list(accelerators))
        tables.print_renderable(tables.systems_table(systems))
        tables.print_renderable(tables.links_table(links))
        return
    data = {
        "accelerators": [{k: v for k, v in a.to_dict().items() if k != "notes"} for a in accelerators],
        "systems": [s.to_dict() for s in systems],
        "links": [link.to_dict() for link in links],
    }
    if fmt is OutputFormat.json:
        emit(to_json(data))
    else:
        emit(to_csv([flatten(a.to_dict()) for a in accelerators]))


class ShowFormat(StrEnum):
    """`show`'s formats: the common ones plus yaml, which reads back as a hardware or model file."""

    table = "table"
    json = "json"
    csv = "csv"
    yaml = "yaml"
    xlsx = "xlsx"  # refused with the commands that write workbooks named


def _no_xlsx(ctx: typer.Context, value: ShowFormat) -> ShowFormat:
    if value is ShowFormat.xlsx:
        raise RooflineError(f"'{ctx.command_path}' prints table, json or csv (or yaml); --format xlsx "
                            f"(with -o FILE.xlsx) is for {XLSX_COMMANDS}")  # fmt: skip
    return value


def show_format_option(help: str) -> Any:
    return typer.Option(ShowFormat.table, "--format", help=help, callback=_no_xlsx,
                        metavar="<table|json|csv|yaml>")  # fmt: skip


@app.command("show")
def show(
    hardware_id: str = typer.Argument(..., help="accelerator, system or link id (or a hardware YAML path)"),
    fmt: ShowFormat = show_format_option(
        "table (YAML-like, with units), json (SI), csv, or yaml (exact: save it, edit it, use it with --hardware)"
    ),
) -> None:
    """Show one accelerator, system or link with every number's source."""
    item = get_hardware_item(hardware_id)
    if fmt is ShowFormat.yaml:
        emit(to_yaml(item))
    elif fmt is ShowFormat.json:
        emit(to_json(item.to_dict()))
    elif fmt is ShowFormat.csv:
        emit(to_csv([flatten(item.to_dict())]))
    else:
        import yaml

        emit(yaml.safe_dump(item.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=120))
