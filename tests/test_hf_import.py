"""Hugging Face config.json import (local files only)."""

from pathlib import Path

import pytest

from roofline.errors import RooflineError
from roofline.workloads import get_workload
from roofline.workloads.hf_import import import_hf_config

HF = Path(__file__).parent / "fixtures" / "hf"


@pytest.mark.parametrize("name", ["llama-3.1-8b", "qwen3-8b", "mistral-7b"])
def test_import_matches_the_catalog_model(name: str) -> None:
    imported = import_hf_config(HF / name / "config.json")
    catalog = get_workload(name)
    assert imported.id == name  # from the folder name
    assert imported.parameter_counts().total == catalog.parameter_counts().total
    from roofline.ir import Precision

    assert imported.kv_cache_bytes_per_token(Precision()) == catalog.kv_cache_bytes_per_token(Precision())


def test_mistral_window_is_imported() -> None:
    imported = import_hf_config(HF / "mistral-7b" / "config.json")
    assert imported.sliding_window == 4096  # type: ignore[attr-defined]


def test_explicit_id() -> None:
    assert import_hf_config(HF / "llama-3.1-8b" / "config.json", "my-llama").id == "my-llama"


def test_unsupported_architecture_is_named() -> None:
    with pytest.raises(RooflineError, match="unsupported architecture .falcon.*supported: deepseek_v3"):
        import_hf_config(HF / "falcon-7b" / "config.json")


def test_missing_fields_are_listed() -> None:
    with pytest.raises(RooflineError, match="lacks num_hidden_layers, intermediate_size"):
        import_hf_config(HF / "broken-llama" / "config.json")


def test_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(RooflineError, match="not valid JSON"):
        import_hf_config(bad)


@pytest.mark.parametrize(
    "name", ["mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3", "gpt-oss-120b", "llama-4-maverick", "nemotron-3-nano"]
)
def test_import_of_each_family_matches_the_catalog(name: str) -> None:
    """Fixtures are the structural fields of the published Hugging Face configs (models.md §2-§9)."""
    imported = import_hf_config(HF / name / "config.json")
    catalog = get_workload(name)
    assert imported.kind == catalog.kind
    assert imported.parameter_counts().total == pytest.approx(catalog.parameter_counts().total, rel=1e-9)
    assert imported.parameter_counts().active == pytest.approx(catalog.parameter_counts().active, rel=1e-9)
    from roofline.ir import Precision

    assert imported.kv_cache_bytes_per_token(Precision()) == catalog.kv_cache_bytes_per_token(Precision())
    assert imported.weight_dtype == catalog.weight_dtype
    assert imported.expert_weight_dtype == catalog.expert_weight_dtype


def test_fields_the_importer_does_not_understand_are_refused(tmp_path: Path) -> None:
    import json

    config = json.loads((HF / "llama-3.1-8b" / "config.json").read_text())
    config.update(q_lora_rank=1536, num_local_experts=8)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(RooflineError, match="does not understand: num_local_experts, q_lora_rank"):
        import_hf_config(path)
