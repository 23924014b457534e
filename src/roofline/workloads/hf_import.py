"""Import a local Hugging Face config.json into the workload schema.

Importers are registered per `model_type`; an architecture with no importer gets a clear error,
and a config that lacks a field the importer needs gets an error listing the missing fields.
Nothing is guessed silently and nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roofline.errors import RooflineError
from roofline.workloads.base import Workload
from roofline.workloads.dense import DenseTransformer
from roofline.yaml_io import validate_into

Importer = Callable[[dict[str, Any], str, str], Workload]
IMPORTERS: dict[str, Importer] = {}
_LATER = {
    "mixtral",
    "qwen2_moe",
    "qwen3_moe",
    "deepseek_v2",
    "deepseek_v3",
    "llama4",
    "gpt_oss",
    "nemotron_h",
    "mamba2",
    "jamba",
}


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RooflineError(f"cannot read '{path}': {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RooflineError(f"'{path}' is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, dict):
        raise RooflineError(f"'{path}' must be a JSON object (a Hugging Face config.json)")
    return data


def _require(config: dict[str, Any], fields: list[str], origin: str) -> None:
    missing = [f for f in fields if config.get(f) is None]
    if missing:
        raise RooflineError(
            f"{origin} lacks {', '.join(missing)}; add them to the config or write the model YAML by hand"
        )


def _import_dense(config: dict[str, Any], model_id: str, origin: str) -> Workload:
    required = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"]
    _require(config, required, origin)
    heads = config["num_attention_heads"]
    window = config.get("sliding_window") if config.get("use_sliding_window", True) else None
    window_layers = None
    if window is not None and config.get("layer_types"):
        window_layers = [i for i, t in enumerate(config["layer_types"]) if t == "sliding_attention"]
    elif window is not None and config.get("max_window_layers") is not None and "use_sliding_window" in config:
        # Qwen2: layers from max_window_layers on use the window
        window_layers = list(range(config["max_window_layers"], config["num_hidden_layers"]))
    act = config.get("hidden_act", "silu")
    data = {
        "kind": "dense",
        "id": model_id,
        "name": config.get("_name_or_path") or model_id,
        "source": f"imported from {origin} (model_type {config.get('model_type')})",
        "hidden_size": config["hidden_size"],
        "num_hidden_layers": config["num_hidden_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": config.get("num_key_value_heads") or heads,
        "head_dim": config.get("head_dim") or config["hidden_size"] // heads,
        "intermediate_size": config["intermediate_size"],
        "vocab_size": config["vocab_size"],
        "mlp": "gated",  # Llama, Mistral and Qwen2/3 all use gate_proj/up_proj/down_proj (SwiGLU)
        "hidden_act": act,
        "tie_word_embeddings": bool(config.get("tie_word_embeddings", False)),
        "attention_bias": bool(config.get("attention_bias", config.get("model_type") == "qwen2")),
        "mlp_bias": bool(config.get("mlp_bias", False)),
        "qk_norm": config.get("model_type") == "qwen3",
        "sliding_window": window,
        "sliding_window_layers": window_layers,
        "max_position_embeddings": config.get("max_position_embeddings"),
    }
    item = validate_into(DenseTransformer, data, origin)
    assert isinstance(item, Workload)
    return item


for _model_type in ("llama", "mistral", "qwen2", "qwen3"):
    IMPORTERS[_model_type] = _import_dense


def import_hf_config(path: Path, model_id: str | None = None) -> Workload:
    config = read_config(path)
    origin = f"'{path}'"
    model_type = config.get("model_type")
    if model_type is None:
        raise RooflineError(f"{origin} has no model_type; it does not look like a Hugging Face config.json")
    if model_type not in IMPORTERS:
        known = ", ".join(sorted(IMPORTERS))
        later = " (its workload family is not supported yet)" if model_type in _LATER else ""
        raise RooflineError(f"{origin}: unsupported architecture '{model_type}'{later}; supported: {known}")
    default_id = path.resolve().parent.name.lower() if path.name == "config.json" else path.stem.lower()
    return IMPORTERS[model_type](config, model_id or default_id, origin)
