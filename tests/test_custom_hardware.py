"""What-if hardware and models: replace() copies, `base:` files, exact YAML round trips, `--set`
parsing, custom accelerators in resolve_cluster, and models from a Hugging Face config.json."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field
from typer.testing import CliRunner

from roofline.cli.app import app
from roofline.errors import RooflineError
from roofline.hardware_specs import (
    Accelerator,
    Link,
    System,
    get_accelerator,
    get_link,
    get_system,
    load_catalog,
    resolve_cluster,
)
from roofline.hardware_specs import catalog as hardware_catalog
from roofline.hardware_specs.schema import Frozen, MemorySpec
from roofline.overrides import Settings, apply_settings, parse_settings, replace_fields, to_yaml
from roofline.units import Dimension, format_exact, parse_quantity
from roofline.workloads import Workload, get_autoregressive, get_workload, model_catalog
from roofline.workloads import catalog as model_catalog_module
from roofline.workloads.dense import DenseTransformer
from roofline.workloads.diffusion_dit import DiffusionTransformer
from roofline.workloads.moe import MoETransformer

HF = Path(__file__).parent / "fixtures" / "hf"
TB = 1e12
GiB = 2.0**30
runner = CliRunner()


@pytest.fixture(autouse=True)
def _packaged_catalogs_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No user ROOFLINE_*_PATH; the catalogs cached with a test's directories are dropped afterwards."""
    monkeypatch.delenv(hardware_catalog.ENV_VAR, raising=False)
    monkeypatch.delenv(model_catalog_module.ENV_VAR, raising=False)
    yield
    hardware_catalog._load.cache_clear()
    model_catalog_module._load.cache_clear()


def h100() -> Accelerator:
    return load_catalog().accelerator("h100-sxm")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- exact quantities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dimension", "text"),
    [
        (80 * GiB, Dimension.BYTES, "80 GiB"),
        (79.65 * GiB, Dimension.BYTES, "79.65 GiB"),
        (50e6, Dimension.BYTES, "50 MB"),
        (228 * 2.0**10, Dimension.BYTES, "228 KiB"),
        (3.35e12, Dimension.BANDWIDTH, "3.35 TB/s"),
        (989.4e12, Dimension.FLOP_RATE, "989.4 TFLOP/s"),
        (2e-6, Dimension.TIME, "2 us"),
        (700.0, Dimension.POWER, "700 W"),
        (1.83e9, Dimension.FREQUENCY, "1.83 GHz"),
        (0.0, Dimension.BYTES, "0 B"),
    ],
)
def test_format_exact_picks_the_shortest_exact_unit(value: float, dimension: Dimension, text: str) -> None:
    assert format_exact(value, dimension) == text
    assert parse_quantity(text, dimension) == value


@given(
    st.floats(min_value=0, max_value=1e30, allow_nan=False, allow_infinity=False),
    st.sampled_from(list(Dimension)),
)
def test_format_exact_reads_back_identical(value: float, dimension: Dimension) -> None:
    assert parse_quantity(format_exact(value, dimension), dimension) == value


# ---- replace() --------------------------------------------------------------------------------------


def test_replace_takes_underscored_dotted_and_top_level_keys() -> None:
    base = h100()
    copy = base.replace(memory_bandwidth="10 TB/s", compute_bf16="2 PFLOP/s", runtime_reserve="4 GiB",
                        **{"sram.l2": "60 MB"})  # fmt: skip
    assert type(copy) is Accelerator
    assert copy.memory.bandwidth == 10 * TB and copy.compute.bf16 == 2e15
    assert copy.runtime_reserve == 4 * GiB and copy.sram.l2 == 60e6
    assert copy.memory.capacity == base.memory.capacity and copy.compute.fp8 == base.compute.fp8  # the rest kept
    assert base.memory.bandwidth == 3.35 * TB  # the original is unchanged


def test_replace_takes_si_numbers_from_python() -> None:
    copy = h100().replace(memory_bandwidth=10e12, runtime_reserve=4 * GiB)
    assert copy.memory.bandwidth == 10e12 and copy.runtime_reserve == 4 * GiB


def test_replace_mapping_fields_and_nested_models() -> None:
    base = h100()
    whole = base.replace(efficiency_matmul_fraction={"default": 0.5})  # a mapping field: replaced whole
    assert whole.efficiency.matmul_fraction == {"default": 0.5}
    one = base.replace(**{"efficiency.matmul_fraction.fp8": 0.6})  # one entry of it
    assert one.efficiency.matmul_fraction == {**base.efficiency.matmul_fraction, "fp8": 0.6}
    merged = base.replace(memory={"bandwidth": "4 TB/s"})  # a nested model: merged into
    assert merged.memory.bandwidth == 4 * TB and merged.memory.capacity == base.memory.capacity
    spec = MemorySpec(type="HBM3e", capacity="141 GB", bandwidth="4.8 TB/s", source="test spec")
    assert base.replace(memory=spec).memory == spec


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"memory_bandwidth": "0 TB/s"}, ["h100-sxm: field 'memory.bandwidth':", "greater than 0"]),
        ({"memory_bandwidth": -1.0}, ["h100-sxm: field 'memory.bandwidth':", "non-negative"]),
        ({"memory_bandwidth": "3 TFLOP/s"}, ["field 'memory.bandwidth'", "expected bytes/s"]),
        ({"memory_bandwith": "3 TB/s"}, ["h100-sxm: unknown field 'memory_bandwith'", "memory_bandwidth"]),
        ({"memory.bandwith": "3 TB/s"}, ["unknown field 'memory.bandwith'", "memory.bandwidth"]),
        ({"vendor": "intel"}, ["h100-sxm: field 'vendor'"]),
        ({"efficiency_matmul_fraction": {"bf16": 0.5}}, ["matmul_fraction needs a 'default' entry"]),
    ],
)
def test_replace_validates_like_yaml(changes: dict[str, object], words: list[str]) -> None:
    with pytest.raises(RooflineError) as info:
        h100().replace(**changes)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


class _Inner(Frozen):
    b: int = Field(default=1, gt=0)


class _Outer(Frozen):
    a_b: int = 0
    a: _Inner = _Inner()


def test_an_ambiguous_underscored_key_asks_for_the_dotted_path() -> None:
    with pytest.raises(RooflineError, match="could mean a_b or a.b; write the dotted path"):
        _Outer().replace(a_b=2)
    assert _Outer().replace(**{"a.b": 2}).a.b == 2


def test_replace_on_systems_and_links() -> None:
    dgx = get_system("dgx-h100")
    bigger = dgx.replace(gpus_per_node=16, gpus_per_domain=16, scale_up_ports_per_gpu=9)
    assert type(bigger) is System and bigger.gpus_per_node == 16 and bigger.scale_up.ports_per_gpu == 9
    with pytest.raises(RooflineError, match="dgx-h100: field 'gpus_per_domain'|must divide"):
        dgx.replace(gpus_per_domain=3)
    link = get_link("nvlink4").replace(bandwidth_per_port="50 GB/s", latency=1e-6)
    assert type(link) is Link and link.bandwidth_per_port == 50e9 and link.latency == 1e-6


@pytest.mark.parametrize(
    ("model", "cls", "changes"),
    [
        ("llama-3.1-8b", DenseTransformer, {"num_hidden_layers": 40}),
        ("mixtral-8x7b", MoETransformer, {"num_experts_per_tok": 4}),
        ("flux.1-dev", DiffusionTransformer, {"vae_params": 1e8, "default_steps": 20}),
    ],
)
def test_workload_replace_keeps_the_kind(model: str, cls: type[Workload], changes: dict[str, object]) -> None:
    base = get_workload(model)
    copy = base.replace(**changes)
    assert type(copy) is cls
    for key, value in changes.items():
        holder = copy.vae if key.startswith("vae_") else copy  # type: ignore[attr-defined]
        assert getattr(holder, key.removeprefix("vae_")) == value
    assert copy.id == base.id and copy != base


def test_workload_replace_reruns_the_kinds_rules() -> None:
    llama = get_workload("llama-3.1-8b")
    assert llama.replace(num_hidden_layers=40).parameter_counts().total > llama.parameter_counts().total
    with pytest.raises(RooflineError, match="llama-3.1-8b: field 'num_hidden_layers'"):
        llama.replace(num_hidden_layers=0)
    with pytest.raises(RooflineError, match="unknown field 'num_layer'"):
        llama.replace(num_layer=3)


def test_replace_fields_without_si_numbers_wants_units() -> None:
    with pytest.raises(RooflineError, match="bare number 4 has no unit"):
        replace_fields(h100(), {"runtime_reserve": 4}, si_numbers=False)


# ---- base: in YAML ----------------------------------------------------------------------------------


def test_accelerator_file_with_base(tmp_path: Path) -> None:
    path = write(tmp_path / "my.yaml", """\
base: h100-sxm
id: my-gpu
memory:
  bandwidth: 4.8 TB/s
efficiency:
  matmul_fraction: {fp8: 0.6}
  matmul_tiles: [{m: 64, n: 64}]
""")  # fmt: skip
    mine, base = get_accelerator(path), h100()
    assert mine == base.replace(id="my-gpu", memory_bandwidth="4.8 TB/s", efficiency_matmul_tiles=[{"m": 64, "n": 64}],
                                **{"efficiency.matmul_fraction.fp8": 0.6})  # fmt: skip
    assert mine.kind == "accelerator" and mine.default_system == "dgx-h100"  # kind and default system inherited
    assert mine.efficiency.matmul_fraction["bf16"] == base.efficiency.matmul_fraction["bf16"]  # mappings merge
    assert len(mine.efficiency.matmul_tiles) == 1  # lists replace
    assert get_accelerator(str(path)) == mine


def test_system_and_link_files_with_base(tmp_path: Path) -> None:
    text = "base: dgx-h100\nid: dgx-h100-ndr2\nscale_out: {ports_per_gpu: 2}\n"
    system = get_system(write(tmp_path / "s.yaml", text))
    assert system.kind == "system" and system.scale_out is not None and system.scale_out.ports_per_gpu == 2
    assert system.scale_out.link == "ib-ndr" and system.accelerator == "h100-sxm"
    link = get_link(write(tmp_path / "l.yaml", "base: nvlink4\nkind: link\nid: nvlink4-fast\nlatency: 1 us\n"))
    assert link.latency == 1e-6 and link.bandwidth_per_port == get_link("nvlink4").bandwidth_per_port


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("base: h100-sxm\nname: no id\n", ["field 'id' is required", "base: h100-sxm"]),
        ("base: h100-sxn\nid: x\n", ["field 'base'", "'h100-sxn'", "h100-sxm"]),
        ("base: dgx-h100\nkind: accelerator\nid: x\n", ["field 'base'", "unknown accelerator 'dgx-h100'"]),
        ("base: h100-sxm\nid: x\nmemory: {bandwidth: 4800}\n", ["field 'memory.bandwidth'", "bare number"]),
        ("base: h100-sxm\nid: x\nmemory: {bandwith: 4 TB/s}\n", ["field 'memory.bandwith'", "unknown field"]),
        ("base: [h100-sxm]\nid: x\n", ["field 'base' must be a catalog id"]),
    ],
)
def test_base_file_errors_are_one_line(tmp_path: Path, text: str, words: list[str]) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(RooflineError) as info:
        get_accelerator(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message


def test_base_files_in_the_hardware_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file may name as base a packaged entry or another file of the directory, even one read later."""
    write(tmp_path / "a-child.yaml", "base: z-parent\nid: child-gpu\nruntime_reserve: 5 GiB\n")
    write(tmp_path / "z-parent.yaml", "base: h100-sxm\nid: z-parent\nmemory: {bandwidth: 5 TB/s}\n")
    write(tmp_path / "override.yaml", "base: b200\nid: b200\nruntime_reserve: 6 GiB\n")  # tweaks the packaged entry
    monkeypatch.setenv(hardware_catalog.ENV_VAR, str(tmp_path))
    catalog = load_catalog()
    child = catalog.accelerator("child-gpu")
    assert child.memory.bandwidth == 5 * TB and child.runtime_reserve == 5 * GiB
    packaged = hardware_catalog._load(()).accelerators["b200"]
    assert catalog.accelerator("b200") == packaged.replace(runtime_reserve="6 GiB")
    assert resolve_cluster(hardware="child-gpu", num_gpus=8).system.id == "dgx-h100"


def test_model_file_with_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "m.yaml", "base: llama-3.1-8b\nid: llama-40\nnum_hidden_layers: 40\n")
    mine = get_workload(str(path))
    assert mine == get_workload("llama-3.1-8b").replace(id="llama-40", num_hidden_layers=40)
    assert get_autoregressive(path) == mine
    with pytest.raises(RooflineError, match="field 'base': unknown model 'llama-3.1-8c'; did you mean llama-3.1-8b"):
        get_workload(write(tmp_path / "bad.yaml", "base: llama-3.1-8c\nid: x\n"))
    with pytest.raises(RooflineError, match="field 'id' is required"):
        get_workload(write(tmp_path / "noid.yaml", "base: llama-3.1-8b\n"))
    user = tmp_path / "models"
    user.mkdir()
    write(user / "a.yaml", "base: b-wide\nid: a-deep\nnum_hidden_layers: 64\n")
    write(user / "b.yaml", "base: qwen3-8b\nid: b-wide\nintermediate_size: 20480\n")
    monkeypatch.setenv(model_catalog_module.ENV_VAR, str(user))
    models = model_catalog()
    assert models["a-deep"].num_hidden_layers == 64 and models["a-deep"].intermediate_size == 20480  # type: ignore[attr-defined]
    assert models["a-deep"].hidden_size == models["qwen3-8b"].hidden_size  # type: ignore[attr-defined]


# ---- exact YAML round trips ---------------------------------------------------------------------------


def _show_yaml(*args: str) -> str:
    result = runner.invoke(app, [*args, "--format", "yaml"])
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_every_hardware_entry_round_trips_through_show_yaml(tmp_path: Path) -> None:
    catalog = load_catalog()
    loaders = [(catalog.accelerators, get_accelerator), (catalog.systems, get_system), (catalog.links, get_link)]
    count = 0
    for entries, load in loaders:
        for item_id, item in entries.items():
            text = _show_yaml("hardware", "show", item_id)
            assert text == to_yaml(item)
            path = write(tmp_path / f"{item_id}.yaml", text)
            assert load(path) == item, item_id  # type: ignore[operator]
            count += 1
    assert count == len(catalog.accelerators) + len(catalog.systems) + len(catalog.links) > 40


def test_every_model_round_trips_through_show_yaml(tmp_path: Path) -> None:
    models = model_catalog()
    for model_id, workload in models.items():
        path = write(tmp_path / f"{model_id}.yaml", _show_yaml("model", "show", model_id))
        loaded = get_workload(path)
        assert loaded == workload and type(loaded) is type(workload), model_id
    assert len(models) > 20


def test_show_yaml_writes_units_not_bare_numbers() -> None:
    data = yaml.safe_load(_show_yaml("hardware", "show", "h100-sxm"))
    assert data["memory"]["bandwidth"] == "3.35 TB/s" and data["memory"]["capacity"] == "79.65 GiB"
    assert data["runtime_reserve"] == "3 GiB" and data["compute"]["fp6"] == "n/a"
    assert data["efficiency"]["kernel_overhead"] == "2 us"


def test_round_trip_of_a_what_if_copy(tmp_path: Path) -> None:
    copy = h100().replace(id="odd", memory_bandwidth=3.3333333333e12, runtime_reserve=1234567.0, compute_fp6=1e15)
    assert get_accelerator(write(tmp_path / "odd.yaml", to_yaml(copy))) == copy
    flux = get_workload("flux.1-dev").replace(id="flux-x", vae_params=1.23456789e8)
    assert get_workload(write(tmp_path / "flux-x.yaml", to_yaml(flux))) == flux


def test_show_formats_still_work_and_xlsx_is_refused() -> None:
    table = yaml.safe_load(runner.invoke(app, ["hardware", "show", "h100-sxm"]).stdout)
    assert table["memory"]["bandwidth"] == "3.35 TB/s"
    assert runner.invoke(app, ["hardware", "show", "h100-sxm", "--format", "json"]).exit_code == 0
    refused = runner.invoke(app, ["model", "show", "llama-3.1-8b", "--format", "xlsx"])
    assert refused.exit_code == 2 and "table, json or csv" in refused.output


# ---- --set KEY=VALUE ------------------------------------------------------------------------------------


def test_parse_settings_splits_hardware_and_model() -> None:
    settings = parse_settings(["memory.bandwidth=4TB/s", "compute.bf16=1.2PFLOP/s", "runtime_reserve=4GiB",
                               "model.num_hidden_layers=40", "model.tie_word_embeddings=true",
                               "efficiency.matmul_fraction={default: 0.5}"])  # fmt: skip
    assert settings == Settings(
        hardware={"memory.bandwidth": "4TB/s", "compute.bf16": "1.2PFLOP/s", "runtime_reserve": "4GiB",
                  "efficiency.matmul_fraction": {"default": 0.5}},
        model={"num_hidden_layers": 40, "tie_word_embeddings": True},
    )  # fmt: skip
    assert settings and not parse_settings([])


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("memory.bandwidth", ["'memory.bandwidth'", "--set KEY=VALUE"]),
        ("=4TB/s", ["'=4TB/s'", "--set KEY=VALUE"]),
        ("memory.bandwith=4TB/s", ["'memory.bandwith=4TB/s'", "memory.bandwidth", "--set KEY=VALUE"]),
        ("model.num_hiden_layers=4", ["'model.num_hiden_layers=4'", "num_hidden_layers", "--set KEY=VALUE"]),
        ("model.=4", ["'model.=4'", "--set KEY=VALUE"]),
    ],
)
def test_parse_settings_errors_name_the_item(item: str, words: list[str]) -> None:
    with pytest.raises(RooflineError) as info:
        parse_settings([item])
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_apply_settings_uses_replace() -> None:
    llama = get_workload("llama-3.1-8b")
    acc, model = apply_settings(h100(), llama, parse_settings(["memory.bandwidth=4TB/s", "model.num_hidden_layers=40"]))
    assert acc.memory.bandwidth == 4 * TB and model.num_hidden_layers == 40  # type: ignore[attr-defined]
    assert apply_settings(h100(), llama, Settings()) == (h100(), llama)
    with pytest.raises(RooflineError, match="field 'runtime_reserve': bare number 4 has no unit"):
        apply_settings(h100(), llama, parse_settings(["runtime_reserve=4"]))  # the command line is like YAML
    with pytest.raises(RooflineError, match="field 'memory.bandwidth'.*greater than 0"):
        apply_settings(h100(), llama, parse_settings(["memory.bandwidth=0TB/s"]))


# ---- custom accelerators in resolve_cluster -----------------------------------------------------------


def test_resolve_cluster_takes_objects_and_paths(tmp_path: Path) -> None:
    fast = h100().replace(id="fast-h100", memory_bandwidth="6.7 TB/s")
    one = resolve_cluster(hardware=fast)
    assert one.accelerator == fast and one.system.id == "dgx-h100"
    sixteen = resolve_cluster(hardware=fast, num_gpus=16)  # default_system inherited: two DGX H100 nodes
    assert sixteen.accelerator is fast and sixteen.num_nodes == 2 and sixteen.scale_up.link.id == "nvlink4"
    assert "fast-h100" not in load_catalog().accelerators  # the shared catalog is untouched
    path = write(tmp_path / "f.yaml", to_yaml(fast))
    assert resolve_cluster(hardware=path, num_gpus=8).accelerator == fast
    system = get_system("dgx-h100").replace(id="dgx-h100-x2", scale_out_ports_per_gpu=2)
    cluster = resolve_cluster(system=system, num_gpus=16)
    assert cluster.system == system and cluster.accelerator == h100() and cluster.scale_out is not None
    assert cluster.scale_out.ports_per_gpu == 2
    assert resolve_cluster(hardware=fast, system=system).accelerator == fast
    assert resolve_cluster(hardware=h100()) == resolve_cluster(hardware="h100-sxm")


def test_custom_accelerator_in_a_system_of_its_base(tmp_path: Path) -> None:
    """Rule: --system accepts a custom accelerator in its default system or in any system built
    for the accelerator its default system holds (a base: / replace() copy inherits default_system)."""
    path = write(tmp_path / "my.yaml", "base: h100-sxm\nid: my-gpu\nmemory: {bandwidth: 4 TB/s}\n")
    cluster = resolve_cluster(hardware=str(path), system="dgx-h100", num_gpus=16)
    assert cluster.accelerator.id == "my-gpu" and cluster.system.id == "dgx-h100" and cluster.num_nodes == 2
    mine = get_accelerator(path)
    half = get_system("dgx-h100").replace(id="half-dgx", gpus_per_node=4, gpus_per_domain=4)  # another H100 SXM node
    assert resolve_cluster(hardware=mine, system=half, num_gpus=4).accelerator == mine
    with pytest.raises(RooflineError, match="system 'h100-pcie-8' holds h100-pcie, not my-gpu"):
        resolve_cluster(hardware=mine, system="h100-pcie-8")  # a node of another accelerator
    with pytest.raises(RooflineError) as info:
        resolve_cluster(hardware=mine, system="hgx-b200")
    message = str(info.value)
    assert "system 'hgx-b200' holds b200, not my-gpu" in message and "`default_system: hgx-b200`" in message
    moved = mine.replace(default_system="hgx-b200")
    assert resolve_cluster(hardware=moved, system="hgx-b200", num_gpus=8).accelerator == moved


def test_catalog_accelerators_keep_their_system_rule_and_message() -> None:
    with pytest.raises(RooflineError) as info:
        resolve_cluster(hardware="h100-sxm", system="dgx-h200")
    assert str(info.value) == "system 'dgx-h200' holds h200-sxm, not h100-sxm; drop --hardware or pick another system"
    assert resolve_cluster(hardware="h100-sxm", system="dgx-h100").accelerator == h100()


def test_custom_accelerator_without_a_node_names_what_to_add() -> None:
    lonely = h100().replace(id="my-gpu", default_system=None)
    assert resolve_cluster(hardware=lonely).num_gpus == 1  # one device needs no node
    with pytest.raises(RooflineError) as info:
        resolve_cluster(hardware=lonely, num_gpus=2)
    message = str(info.value)
    assert message.startswith("'my-gpu' has no default_system; give one with --system ID")
    assert "add `default_system: dgx-h100` (or `base: h100-sxm`) to its YAML" in message and "2 GPUs" in message
    with pytest.raises(RooflineError, match="system 'dgx-h100' holds h100-sxm, not my-gpu"):
        resolve_cluster(hardware=lonely, system="dgx-h100")


# ---- models from a Hugging Face config.json ----------------------------------------------------------


def test_get_workload_takes_a_config_json_a_path_and_an_object() -> None:
    config = HF / "llama-3.1-8b" / "config.json"
    from_str, from_path = get_workload(str(config)), get_workload(config)
    assert from_str == from_path and from_str.id == "llama-3.1-8b" and type(from_str) is DenseTransformer
    assert from_str.num_hidden_layers == get_workload("llama-3.1-8b").num_hidden_layers  # type: ignore[attr-defined]
    assert Workload.from_hf_config(config, "mine").id == "mine"
    assert DenseTransformer.from_hf_config(config) == from_str
    assert get_autoregressive(config) == from_str
    assert get_workload(from_str) is from_str
    assert get_autoregressive(from_str) is from_str
    moe = get_workload(HF / "mixtral-8x7b" / "config.json")
    assert type(moe) is MoETransformer
    with pytest.raises(RooflineError, match="describes a moe model, not a DenseTransformer"):
        DenseTransformer.from_hf_config(HF / "mixtral-8x7b" / "config.json")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("missing/config.json", ["does not exist"]),
        ("llama-3.1-8b", ["is a directory", "config.json"]),
    ],
)
def test_get_workload_path_errors(name: str, words: list[str]) -> None:
    for path in (HF / name, str(HF / name)):
        with pytest.raises(RooflineError) as info:
            get_workload(path)
        for word in words:
            assert word in str(info.value), str(info.value)


def test_model_show_takes_a_config_json() -> None:
    shown = yaml.safe_load(_show_yaml("model", "show", str(HF / "qwen3-8b" / "config.json")))
    assert shown["id"] == "qwen3-8b" and shown["kind"] == "dense" and "base" not in shown
    assert math.isclose(shown["hidden_size"], get_workload("qwen3-8b").hidden_size)  # type: ignore[attr-defined]
