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
    with pytest.raises(RooflineError, match="unsupported architecture 'mixtral'.*supported: llama"):
        import_hf_config(HF / "mixtral-8x7b" / "config.json")


def test_missing_fields_are_listed() -> None:
    with pytest.raises(RooflineError, match="lacks num_hidden_layers, intermediate_size"):
        import_hf_config(HF / "broken-llama" / "config.json")


def test_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(RooflineError, match="not valid JSON"):
        import_hf_config(bad)
