"""A model described for people and tools: identity, parameter counts, shipped formats and KV bytes
per token (`roofline model list|show`, `rl.model(...)`); SI units and plain counts."""

from __future__ import annotations

from typing import Any

from roofline.ir import Precision
from roofline.workloads.base import Workload


def model_summary(w: Workload) -> dict[str, Any]:
    """Identity, parameter counts and KV bytes per token for the shipped formats (SI, counts)."""
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


def model_document(w: Workload) -> dict[str, Any]:
    """The architecture as written in its YAML, the summary, and the parameters by component."""
    return {
        **w.model_dump(mode="json", exclude_none=True),
        **model_summary(w),
        "parameters_by_component": w.parameter_counts().by_component,
    }
