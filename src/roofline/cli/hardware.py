"""`roofline hardware list|show`."""

from __future__ import annotations

import typer

from roofline.cli.common import OutputFormat, emit, text_format_option
from roofline.hardware_specs import load_catalog
from roofline.reports import tables
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
        "accelerators": [a.model_dump(mode="python", round_trip=False, exclude={"notes"}) for a in accelerators],
        "systems": [s.model_dump(mode="python") for s in systems],
        "links": [link.model_dump(mode="python") for link in links],
    }
    if fmt is OutputFormat.json:
        emit(to_json(_raw(data)))
    else:
        emit(to_csv([flatten(_raw(a.model_dump(mode="python"))) for a in accelerators]))  # type: ignore[arg-type]


def _raw(data: object) -> object:
    """model_dump(mode='python') keeps SI floats; enums become their values."""
    if isinstance(data, dict):
        return {k: _raw(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_raw(v) for v in data]
    return getattr(data, "value", data)


@app.command("show")
def show(
    hardware_id: str = typer.Argument(..., help="accelerator, system or link id"),
    fmt: OutputFormat = text_format_option(help="table (YAML-like, with units) or json (SI)"),
) -> None:
    """Show one accelerator, system or link with every number's source."""
    catalog = load_catalog()
    item = catalog.accelerators.get(hardware_id) or catalog.systems.get(hardware_id) or catalog.links.get(hardware_id)
    if item is None:
        catalog.accelerator(hardware_id)  # raises with close matches
        return
    if fmt is OutputFormat.json:
        emit(to_json(_raw(item.model_dump(mode="python"))))
    elif fmt is OutputFormat.csv:
        emit(to_csv([flatten(_raw(item.model_dump(mode="python")))]))  # type: ignore[arg-type]
    else:
        import yaml

        emit(yaml.safe_dump(item.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=120))
