"""`roofline model list|show|import`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from roofline.cli.common import OutputFormat, emit, text_format_option, write_new_file
from roofline.ir import Precision
from roofline.reports import tables
from roofline.reports.formats import to_csv, to_json
from roofline.workloads import get_workload, model_catalog
from roofline.workloads.hf_import import import_hf_config

app = typer.Typer(help="Models (workloads) in the catalog, and Hugging Face config import.", no_args_is_help=True)


def _summary(workload_id: str) -> dict[str, Any]:
    """Identity, parameter counts and KV bytes per token for the shipped formats (SI, counts)."""
    w = get_workload(workload_id)
    counts, precision = w.parameter_counts(), w.shipped_precision
    return {
        "id": w.id,
        "kind": w.kind,
        "name": w.name,
        "total_params": counts.total,
        "active_params": counts.active,
        "active_params_non_embedding": counts.active_non_embedding,
        "published_params": w.published_params,
        "published_active_params": w.published_active_params,
        "weight_dtype": precision.weight.value,
        "expert_weight_dtype": precision.experts.value,
        "kv_cache_dtype": precision.kv_cache.value,
        "kv_cache_bytes_per_token": w.kv_cache_bytes_per_token(precision),
        "kv_cache_bytes_per_token_bf16": w.kv_cache_bytes_per_token(Precision()),
    }


@app.command("list")
def list_models(fmt: OutputFormat = text_format_option()) -> None:
    """List the catalog's models."""
    models = sorted(model_catalog().values(), key=lambda m: m.id)
    if fmt is OutputFormat.table:
        tables.print_renderable(tables.model_list(models))
    elif fmt is OutputFormat.json:
        emit(to_json([_summary(m.id) for m in models]))
    else:
        emit(to_csv([_summary(m.id) for m in models]))


@app.command("show")
def show(
    model: str = typer.Argument(..., help="model id or path to a model YAML"),
    fmt: OutputFormat = text_format_option(help="table (YAML), json or csv"),
) -> None:
    """Show a model's architecture, parameter counts by component and KV bytes per token."""
    w = get_workload(model)
    data = {
        **w.model_dump(mode="json", exclude_none=True),
        **_summary(model),
        "parameters_by_component": w.parameter_counts().by_component,
    }
    if fmt is OutputFormat.json:
        emit(to_json(data))
    elif fmt is OutputFormat.csv:
        emit(to_csv([_summary(model)]))
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
