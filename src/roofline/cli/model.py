"""`roofline model list|show|import`."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from roofline.cli import tables
from roofline.cli.common import OutputFormat, emit, text_format_option, write_new_file
from roofline.cli.hardware import ShowFormat, show_format_option
from roofline.overrides import to_yaml
from roofline.reports.formats import to_csv, to_json
from roofline.workloads import get_workload, model_catalog
from roofline.workloads.hf_import import import_hf_config
from roofline.workloads.summary import model_summary

app = typer.Typer(help="Models (workloads) in the catalog, and Hugging Face config import.", no_args_is_help=True)


@app.command("list")
def list_models(fmt: OutputFormat = text_format_option()) -> None:
    """List the catalog's models."""
    models = sorted(model_catalog().values(), key=lambda m: m.id)
    if fmt is OutputFormat.table:
        tables.print_renderable(tables.model_list(models))
    elif fmt is OutputFormat.json:
        emit(to_json([model_summary(m) for m in models]))
    else:
        emit(to_csv([model_summary(m) for m in models]))


@app.command("show")
def show(
    model: str = typer.Argument(..., help="model id, path to a model YAML or to a Hugging Face config.json"),
    fmt: ShowFormat = show_format_option(
        "table (YAML), json, csv, or yaml (the model file alone: save it, edit it, use it with --model)"
    ),
) -> None:
    """Show a model's architecture, parameter counts by component and KV bytes per token."""
    w = get_workload(model)
    if fmt is ShowFormat.yaml:
        emit(to_yaml(w))
        return
    data = w.to_dict()
    if fmt is ShowFormat.json:
        emit(to_json(data))
    elif fmt is ShowFormat.csv:
        emit(to_csv([model_summary(w)]))
    else:
        emit(yaml.safe_dump(data, sort_keys=False, width=120))


@app.command("import")
def import_config(
    config: Path = typer.Argument(..., help="path to a local Hugging Face config.json"),
    output: Path | None = typer.Option(None, "-o", "--output", help="write the model YAML here (default: stdout)"),
    model_id: str | None = typer.Option(None, "--id", help="id for the model (default: the config's folder name)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file"),
) -> None:
    """Convert a Hugging Face config.json (Llama, Mistral, Qwen2/3) into a model YAML."""
    workload = import_hf_config(config, model_id)
    text = yaml.safe_dump(workload.model_dump(mode="json", exclude_none=True), sort_keys=False, width=120)
    if output is None:
        emit(text)
        return
    write_new_file(output, text, force)
    typer.echo(f"wrote {output} (id {workload.id}); use it with --model {output}", err=True)
