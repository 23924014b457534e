"""The models training.csv names that the catalog lacked (issue 19): each resolves by the name the
file uses, its architecture counts its published size, and aliases resolve without clashing."""

from pathlib import Path

import pytest

from roofline.errors import RooflineError, UnknownIdError
from roofline.workloads import catalog as model_catalog_module
from roofline.workloads import get_workload, model_catalog

# (name as training.csv writes it, catalog id, published total, relative tolerance)
TRAINING_MODELS = [
    ("GPT3-175B", "gpt3-175b", 175e9, 0.03),  # Brown et al. 2020 Table 2.1
    ("GPT3-5B", "gpt3-5b", 5e9, 0.03),  # NeMo GPTConfig5B's nominal size
    ("Nemotron-340B", "nemotron-4-340b", 341e9, 0.03),  # report: 9.4B embedding + 331.6B other
    ("meta-llama/Llama-2-13b-hf", "llama-2-13b", 13.015864320e9, 0.03),  # HF safetensors count
    # nominal name only: 40 x (4 x 6144^2 + 2 x 6144 x 24576) + 2 x 256000 x 6144 = 21.27B, 3.3% under
    ("Nemotron-22B", "nemotron-22b", 22e9, 0.035),
]


@pytest.mark.parametrize(("name", "model_id", "published", "rel"), TRAINING_MODELS)
def test_training_csv_names_resolve_and_count_their_published_size(
    name: str, model_id: str, published: float, rel: float
) -> None:
    w = get_workload(name)
    assert w.id == model_id and w.published_params == pytest.approx(published, rel=0.001)
    assert w.parameter_counts().total == pytest.approx(published, rel=rel)


def test_every_model_training_csv_names_is_in_the_catalog() -> None:
    import csv

    path = Path(__file__).resolve().parents[1] / ".." / "shared" / "validation" / "training.csv"
    if not path.is_file():
        pytest.skip("shared/validation/training.csv is not beside this checkout")
    with path.open(encoding="utf-8") as handle:
        names = {row["model"] for row in csv.DictReader(handle)}
    for name in sorted(names):
        get_workload(name)  # raises UnknownIdError for a name the catalog cannot resolve


@pytest.mark.parametrize(
    ("model_id", "total"),
    [
        ("llama-2-13b", 13_015_864_320),  # HF meta-llama/Llama-2-13b-hf exact
        # layers 40 x (4 x 6144^2 + 2 x 6144 x 24576 + 4 x 6144 norms) + 2 x 256000 x 6144 + 2 x 6144
        ("nemotron-22b", 40 * (4 * 6144**2 + 2 * 6144 * 24576 + 4 * 6144) + 2 * 256000 * 6144 + 2 * 6144),
        # q, o 18432^2 each; k, v 8 x 192 x 18432 each; MLP 2 x 18432 x 73728; layernorm 4 x 18432
        ("nemotron-4-340b",
         96 * (2 * 18432**2 + 2 * 8 * 192 * 18432 + 2 * 18432 * 73728 + 4 * 18432) + 2 * 256000 * 18432 + 2 * 18432),
    ],
)  # fmt: skip
def test_parameter_counts_by_hand(model_id: str, total: int) -> None:
    assert get_workload(model_id).parameter_counts().total == total


def test_gpt3_is_a_plain_gelu_mlp_with_biases_and_one_shared_table() -> None:
    """GPT-3: 2 MLP matmuls (up 12288 -> 49152, down), bias on qkv (3 x 12288) and both MLP layers,
    LayerNorm weight+bias; input and output embeddings shared (one 50304 x 12288 table)."""
    w = get_workload("gpt3-175b")
    counts = w.parameter_counts().by_component
    assert counts["ffn_dense"] == 96 * (2 * 12288 * 49152 + 49152 + 12288)
    assert counts["attention"] == 96 * (4 * 12288**2 + 3 * 12288)
    assert counts["lm_head"] == 0.0 and counts["embedding"] == 50304 * 12288


def test_nemotron_mlp_has_two_matmuls_not_three() -> None:
    from roofline.ir import Placement, Precision, StepShape

    w = get_workload("nemotron-4-340b")
    ops = w.build_ops(StepShape("prefill", 1, 128, 128), Precision(), Placement(tp=1, layer_start=0, layer_end=96))
    names = {op.name for op in ops}
    assert "up_proj" in names and "gate_up_proj" not in names


def test_names_resolve_up_to_letter_case_and_by_alias() -> None:
    assert get_workload("LLAMA-2-13B").id == "llama-2-13b"
    assert get_workload("nvidia/nemotron-4-340b-base").id == "nemotron-4-340b"
    with pytest.raises(UnknownIdError):
        get_workload("GPT3-176B")


def test_packaged_aliases_never_name_another_model() -> None:
    models = model_catalog()
    ids = {m.casefold() for m in models}
    seen: dict[str, str] = {}
    for model_id, w in models.items():
        for alias in w.aliases or []:
            key = alias.casefold()
            assert key not in ids or key == model_id, (model_id, alias)
            assert seen.setdefault(key, model_id) == model_id, (model_id, alias)


def test_a_copy_by_base_does_not_take_the_base_aliases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "models"
    user.mkdir()
    (user / "deep.yaml").write_text("base: llama-2-13b\nid: llama-2-13b-deep\nnum_hidden_layers: 48\n")
    monkeypatch.setenv(model_catalog_module.ENV_VAR, str(user))
    assert model_catalog()["llama-2-13b-deep"].aliases is None
    assert get_workload("meta-llama/Llama-2-13b-hf").id == "llama-2-13b"


def test_an_alias_two_models_claim_is_refused_with_both_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "models"
    user.mkdir()
    (user / "twin.yaml").write_text("base: llama-2-13b\nid: twin\naliases: [LLAMA2-13B]\n")
    monkeypatch.setenv(model_catalog_module.ENV_VAR, str(user))
    with pytest.raises(RooflineError, match="claimed by llama-2-13b, twin"):
        get_workload("llama2-13b")
    assert get_workload("twin").id == "twin"
