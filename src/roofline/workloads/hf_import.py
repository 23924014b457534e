"""Import a local Hugging Face config.json into the workload schema.

One importer per `model_type`, registered in IMPORTERS. Each reads the fields it maps through a
`ConfigReader`, which remembers what was used: fields that are missing are reported together,
and fields that are neither mapped nor known to be harmless (tokenizer ids, initialisation,
dropout, RoPE scaling, router training knobs ...) make the import fail with their names, so a
config with structure the importer does not understand is refused rather than guessed.
Nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roofline.errors import RooflineError
from roofline.workloads.base import WORKLOAD_KINDS, Workload
from roofline.yaml_io import validate_into

# Fields that do not change the shape or cost of inference.
HARMLESS = frozenset(
    """architectures model_type torch_dtype dtype transformers_version _name_or_path auto_map
    bos_token_id eos_token_id pad_token_id initializer_range initializer_factor rms_norm_eps layer_norm_eps
    layer_norm_epsilon norm_eps rope_theta rope_scaling rope_parameters rope_interleave partial_rotary_factor
    use_cache attention_dropout hidden_dropout residual_dropout embedding_dropout pretraining_tp output_router_logits
    router_aux_loss_coef router_jitter_noise router_z_loss_coef norm_topk_prob routed_scaling_factor scoring_func
    topk_method n_group topk_group aux_loss_alpha seq_aux ep_size moe_layer_freq use_qk_norm attn_temperature_tuning
    floor_scale attn_scale time_step_limit time_step_min time_step_max time_step_floor rescale_prenorm_residual
    residual_in_fp32 use_conv_bias mamba_proj_bias mamba_hidden_act mlp_hidden_act mlp_bias
    hidden_act use_mamba_kernels num_logits_to_keep sliding_window_pattern swiglu_limit initial_context_length
    rope_ntk_alpha rope_ntk_beta cache_implementation router_dtype num_attention_layers
    mamba_ssm_cache_dtype use_bias expand residual_multiplier attention_multiplier logits_scaling
    """.split()
)

Importer = Callable[["ConfigReader"], dict[str, Any]]
IMPORTERS: dict[str, Importer] = {}
_MISSING = object()


class ConfigReader:
    def __init__(self, config: dict[str, Any], origin: str) -> None:
        self.config, self.origin = config, origin
        self.used: set[str] = set()
        self.missing: list[str] = []

    def req(self, key: str) -> Any:
        self.used.add(key)
        value = self.config.get(key)
        if value is None:
            self.missing.append(key)
        return value

    def opt(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        value = self.config.get(key, _MISSING)
        return default if value is _MISSING or value is None else value

    def finish(self) -> None:
        if self.missing:
            raise RooflineError(
                f"{self.origin} lacks {', '.join(self.missing)}; add them to the config or write the model YAML by hand"
            )
        unknown = sorted(set(self.config) - self.used - HARMLESS)
        if unknown:
            raise RooflineError(
                f"{self.origin} has fields this importer does not understand: {', '.join(unknown)}; "
                "write the model YAML by hand (roofline model show ID --format json shows the schema)"
            )


def register(*model_types: str) -> Callable[[Importer], Importer]:
    def decorate(fn: Importer) -> Importer:
        for model_type in model_types:
            IMPORTERS[model_type] = fn
        return fn

    return decorate


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RooflineError(f"cannot read '{path}': {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RooflineError(f"'{path}' is not a UTF-8 text file; give a config.json") from None
    except json.JSONDecodeError as exc:
        raise RooflineError(f"'{path}' is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, dict):
        raise RooflineError(f"'{path}' must be a JSON object (a Hugging Face config.json)")
    return data


# ---- shared pieces --------------------------------------------------------------------------------


def _attention(r: ConfigReader) -> dict[str, Any]:
    heads = r.req("num_attention_heads")
    hidden = r.req("hidden_size")
    head_dim = r.opt("head_dim") or (hidden // heads if hidden and heads else None)
    return {
        "hidden_size": hidden,
        "num_hidden_layers": r.req("num_hidden_layers"),
        "num_attention_heads": heads,
        "num_key_value_heads": r.opt("num_key_value_heads") or heads,
        "head_dim": head_dim,
        "vocab_size": r.req("vocab_size"),
        "tie_word_embeddings": bool(r.opt("tie_word_embeddings", False)),
        "max_position_embeddings": r.opt("max_position_embeddings"),
        "attention_bias": bool(r.opt("attention_bias", False)),
    }


def _window(r: ConfigReader, layers: int | None) -> dict[str, Any]:
    r.used.update({"sliding_window", "max_window_layers", "layer_types"})
    window = r.opt("sliding_window") if r.opt("use_sliding_window", True) else None
    if window is None:
        return {}
    types = r.opt("layer_types")
    if types:
        return {"sliding_window": window,
                "sliding_window_layers": [i for i, t in enumerate(types) if t == "sliding_attention"]}  # fmt: skip
    start = r.opt("max_window_layers")
    if start is not None and "use_sliding_window" in r.config and layers:  # Qwen2: layers >= start use it
        return {"sliding_window": window, "sliding_window_layers": list(range(start, layers))}
    return {"sliding_window": window}


def _quantization(r: ConfigReader) -> dict[str, Any]:
    q = r.opt("quantization_config")
    if not q:
        return {}
    method = str(q.get("quant_method", "")).lower()
    algo = str(q.get("quant_algo", "")).lower()
    if method == "fp8" or algo == "fp8":
        return {"weight_dtype": "fp8"}
    if method == "mxfp4":
        return {"expert_weight_dtype": "mxfp4"}
    if "nvfp4" in algo or method == "nvfp4":
        return {"weight_dtype": "fp4"}
    raise RooflineError(f"{r.origin}: quantization {method or algo!r} is not understood; give --weight-dtype instead")


# ---- families -------------------------------------------------------------------------------------


@register("llama", "mistral", "qwen2", "qwen3")
def _dense(r: ConfigReader) -> dict[str, Any]:
    data = {"kind": "dense", **_attention(r), "intermediate_size": r.req("intermediate_size"), "mlp": "gated"}
    data["qk_norm"] = r.config.get("model_type") == "qwen3"
    if r.config.get("model_type") == "qwen2":
        data["attention_bias"] = True
    return {**data, **_window(r, data["num_hidden_layers"]), **_quantization(r)}


@register("mixtral", "qwen2_moe", "qwen3_moe")
def _moe(r: ConfigReader) -> dict[str, Any]:
    mixtral = r.config.get("model_type") == "mixtral"
    data = {"kind": "moe", **_attention(r)}
    data["qk_norm"] = r.config.get("model_type") == "qwen3_moe"
    if mixtral:
        data.update(num_experts=r.req("num_local_experts"), moe_intermediate_size=r.req("intermediate_size"))
    else:
        data.update(num_experts=r.req("num_experts"), moe_intermediate_size=r.req("moe_intermediate_size"),
                    intermediate_size=r.opt("intermediate_size", 0))  # fmt: skip
        shared = r.opt("shared_expert_intermediate_size", 0)
        if shared:
            data.update(num_shared_experts=1, shared_expert_intermediate_size=shared)
        data["moe_layer_step"] = r.opt("decoder_sparse_step", 1)
        if r.opt("mlp_only_layers"):
            raise RooflineError(f"{r.origin}: mlp_only_layers (dense layers among MoE layers) is not supported")
    data["num_experts_per_tok"] = r.req("num_experts_per_tok")
    return {**data, **_window(r, data["num_hidden_layers"]), **_quantization(r)}


@register("gpt_oss")
def _gpt_oss(r: ConfigReader) -> dict[str, Any]:
    data = {"kind": "moe", **_attention(r), "attention_sinks": True, "router_bias": True}
    data.update(num_experts=r.req("num_local_experts"), moe_intermediate_size=r.req("intermediate_size"),
                num_experts_per_tok=r.opt("num_experts_per_tok") or r.req("experts_per_token"))  # fmt: skip
    r.used.add("experts_per_token")
    return {**data, **_window(r, data["num_hidden_layers"]), **_quantization(r)}


@register("llama4", "llama4_text")
def _llama4(r: ConfigReader) -> dict[str, Any]:
    text = r.config.get("text_config")
    if text is not None:  # Llama4ForConditionalGeneration: the language model is text_config
        inner = ConfigReader(text, f"{r.origin} text_config")
        r.used.update(r.config)  # the vision tower is not modelled
        data = _llama4(inner)
        inner.finish()
        return data
    data = {"kind": "moe", **_attention(r)}
    layers = data["num_hidden_layers"]
    rope = r.opt("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(layers)]  # 1 = RoPE (chunked) layer
    chunk = r.opt("attention_chunk_size")
    data.update(
        num_experts=r.req("num_local_experts"), num_experts_per_tok=r.req("num_experts_per_tok"),
        moe_intermediate_size=r.req("intermediate_size"), num_shared_experts=1,
        shared_expert_intermediate_size=r.config.get("intermediate_size"),
        intermediate_size=r.opt("intermediate_size_mlp", 0), moe_layer_step=r.opt("interleave_moe_layer_step", 1),
    )  # fmt: skip
    if chunk:
        data.update(attention_chunk_size=chunk, chunked_layers=[i for i, use in enumerate(rope) if use])
    r.used.update({"moe_layers", "no_rope_layer_interval", "for_llm_compressor"})
    return {**data, **_quantization(r)}


@register("deepseek_v3", "deepseek_v32", "kimi_k2")
def _deepseek(r: ConfigReader) -> dict[str, Any]:
    data = {"kind": "mla_moe", **_attention(r), "router_bias": True}
    data.update(
        q_lora_rank=r.opt("q_lora_rank"), kv_lora_rank=r.req("kv_lora_rank"),
        qk_nope_head_dim=r.req("qk_nope_head_dim"), qk_rope_head_dim=r.req("qk_rope_head_dim"),
        v_head_dim=r.req("v_head_dim"), intermediate_size=r.req("intermediate_size"),
        first_k_dense_replace=r.opt("first_k_dense_replace", 0), num_experts=r.req("n_routed_experts"),
        num_experts_per_tok=r.req("num_experts_per_tok"), num_shared_experts=r.opt("n_shared_experts", 0),
        moe_intermediate_size=r.req("moe_intermediate_size"),
        num_nextn_predict_layers=r.opt("num_nextn_predict_layers", 0),
        n_group=r.opt("n_group") or 1, topk_group=r.opt("topk_group") or 1,
    )  # fmt: skip
    data["head_dim"] = None
    if r.opt("index_topk"):
        data.update(index_topk=r.opt("index_topk"), index_n_heads=r.req("index_n_heads"),
                    index_head_dim=r.req("index_head_dim"))  # fmt: skip
    return {**data, **_quantization(r)}


_BLOCK_CHARS = {"mamba": "M", "moe": "E", "attention": "*", "mlp": "-"}


@register("nemotron_h")
def _nemotron_h(r: ConfigReader) -> dict[str, Any]:
    pattern = r.opt("hybrid_override_pattern")
    if pattern is None:
        types = r.req("layers_block_type") or []
        pattern = "".join(_BLOCK_CHARS.get(t, "?") for t in types)
    else:
        r.used.add("layers_block_type")
    r.used.add("num_hidden_layers")
    data = {
        "kind": "hybrid", "hidden_size": r.req("hidden_size"), "vocab_size": r.req("vocab_size"),
        "hybrid_override_pattern": pattern, "tie_word_embeddings": bool(r.opt("tie_word_embeddings", False)),
        "num_attention_heads": r.req("num_attention_heads"), "num_key_value_heads": r.req("num_key_value_heads"),
        "head_dim": r.opt("head_dim") or r.req("attention_head_dim"),
        "mamba_num_heads": r.req("mamba_num_heads"), "mamba_head_dim": r.req("mamba_head_dim"),
        "ssm_state_size": r.req("ssm_state_size"), "n_groups": r.req("n_groups"), "conv_kernel": r.req("conv_kernel"),
        "chunk_size": r.opt("chunk_size", 128), "intermediate_size": r.opt("intermediate_size", 0),
        "num_experts": r.opt("n_routed_experts", 0), "num_experts_per_tok": r.opt("num_experts_per_tok", 0),
        "moe_intermediate_size": r.opt("moe_intermediate_size", 0), "moe_latent_size": r.opt("moe_latent_size"),
        "num_shared_experts": r.opt("n_shared_experts", 0),
        "shared_expert_intermediate_size": r.opt("moe_shared_expert_intermediate_size", 0),
        "max_position_embeddings": r.opt("max_position_embeddings"),
    }  # fmt: skip
    r.used.update({"attention_head_dim", "head_dim", "attention_bias"})
    if r.opt("num_nextn_predict_layers", 0):
        data["mtp_pattern"] = r.opt("mtp_hybrid_override_pattern") or "*E"
    r.used.add("mtp_hybrid_override_pattern")
    return {**data, **_quantization(r)}


def import_hf_config(path: Path, model_id: str | None = None) -> Workload:
    config = read_config(path)
    origin = f"'{path}'"
    model_type = config.get("model_type")
    if model_type is None:
        raise RooflineError(f"{origin} has no model_type; it does not look like a Hugging Face config.json")
    if model_type not in IMPORTERS:
        known = ", ".join(sorted(IMPORTERS))
        raise RooflineError(f"{origin}: unsupported architecture '{model_type}'; supported: {known}")
    reader = ConfigReader(config, origin)
    try:
        data = IMPORTERS[model_type](reader)
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise RooflineError(f"{origin}: a field has an unexpected type or value ({exc}); check the config") from None
    reader.finish()
    default_id = path.resolve().parent.name.lower() if path.name == "config.json" else path.stem.lower()
    data.update(id=model_id or default_id, name=config.get("_name_or_path") or model_id or default_id,
                source=f"imported from {origin} (model_type {model_type})")  # fmt: skip
    data = {k: v for k, v in data.items() if v is not None}
    item = validate_into(WORKLOAD_KINDS[data["kind"]], data, origin)
    assert isinstance(item, Workload)
    return item
