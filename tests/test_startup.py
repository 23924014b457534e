"""Start-up: the CLI imports only what the command it runs needs (issue 16). The times themselves
are measured by benchmarks/speed.py; here, what each command imports and that the lazy top-level
group lists and runs the same commands as one built eagerly."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import roofline
from roofline.cli import app as app_module

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "matplotlib", "openpyxl", "torch")
ESTIMATE = ["estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8"]


def _modules_after(argv: list[str]) -> dict[str, Any]:
    """Run `roofline ARGV` in a fresh interpreter (in-process main()); its exit code, output and modules."""
    code = (
        "import io, json, sys\n"
        f"sys.argv = ['roofline', *{argv!r}]\n"
        "from roofline.cli.app import main\n"
        "out, sys.stdout = sys.stdout, io.StringIO()\n"
        "try:\n    main()\n    code = 0\nexcept SystemExit as exc:\n    code = exc.code or 0\n"
        "text, sys.stdout = sys.stdout.getvalue(), out\n"
        "print(json.dumps({'code': code, 'text': text, 'modules': sorted(sys.modules)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("ROOFLINE_HARDWARE_PATH", None)
    env.pop("ROOFLINE_MODEL_PATH", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _loaded(modules: list[str], prefix: str) -> list[str]:
    return [m for m in modules if m == prefix or m.startswith(prefix + ".")]


def test_estimate_imports_no_heavy_or_unrelated_module() -> None:
    run = _modules_after(ESTIMATE)
    assert run["code"] == 0 and "TPOT" in run["text"]
    modules = run["modules"]
    for heavy in (*HEAVY, "numpy"):
        assert not _loaded(modules, heavy), heavy
    for unrelated in ("roofline.planner", "roofline.simulator.serving", "roofline.simulator.fast",
                      "roofline.api.diffusion", "roofline.simulator.diffusion", "roofline.validation",
                      "roofline.reports.workbook", "roofline.cli.sweep", "roofline.cli.serve",
                      "roofline.deploy", "roofline.api.launch", "roofline.calibration", "roofline.training",
                      "roofline.executors", "roofline.cli.plan", "roofline.cli.validate", "roofline.cli.report",
                      "roofline.cli.plot", "roofline.cli.calibrate", "roofline.cli.hardware", "roofline.cli.model",
                      "roofline.cli.comm", "roofline.cli.train", "roofline.api.planning", "roofline.api.sweeps",
                      "roofline.reports.assumptions", "roofline.reports.xlsx_views"):  # fmt: skip
        assert not _loaded(modules, unrelated), unrelated
    # a dense model's estimate loads no MoE kernel data, no runtime host model without --runtime, no html
    unneeded = ("roofline.simulator.grouped_gemm", "roofline.workloads.moe_kernels", "roofline.simulator.host", "html")
    for module in unneeded:
        assert not _loaded(modules, module), module


def test_estimate_reads_the_hardware_it_uses_not_the_whole_catalog() -> None:
    """`estimate --hardware h100-sxm` reads the accelerator, its node, links and host CPU (each file
    alone), not every packaged hardware file; the answer is the one the whole catalog gives."""
    from roofline.hardware_specs import catalog, resolve_cluster

    catalog._load.cache_clear()
    catalog._packaged_alone.cache_clear()
    alone = resolve_cluster(hardware="h100-sxm", num_gpus=16)
    assert catalog._load.cache_info().currsize == 0  # the whole catalog was not read
    read = {(kind, item_id) for kind, item_id in _cached_keys(catalog._packaged_alone)}
    assert read == {("accelerator", "h100-sxm"), ("system", "dgx-h100"), ("host_cpu", "xeon-8480c"),
                    ("link", "nvlink4"), ("link", "ib-ndr"), ("link", "pcie5")}  # fmt: skip
    whole = resolve_cluster(hardware="h100-sxm", num_gpus=16, catalog=catalog.load_catalog())
    assert alone == whole


def _cached_keys(function: Any) -> list[tuple[Any, ...]]:
    """The argument tuples an lru_cache'd function holds (probing it with each packaged file's id)."""
    from roofline.hardware_specs import catalog

    held = []
    for kind, directory in catalog._KIND_DIRS.items():
        for path in sorted((catalog.DATA_DIR / directory).glob("*.yaml")):
            hits = function.cache_info().hits
            function(kind, path.stem)
            if function.cache_info().hits > hits:
                held.append((kind, path.stem))
    return held


def test_every_packaged_hardware_file_is_named_by_its_id_and_loads_alone_as_in_the_catalog() -> None:
    from roofline.hardware_specs import catalog
    from roofline.yaml_io import read_yaml, yaml_files

    whole = catalog.load_catalog()
    tables = {"accelerator": whole.accelerators, "link": whole.links, "system": whole.systems,
              "host_cpu": whole.host_cpus}  # fmt: skip
    for kind, directory in catalog._KIND_DIRS.items():
        files = yaml_files(catalog.DATA_DIR / directory)
        assert [read_yaml(p)["id"] for p in files] == [p.stem for p in files]
        assert sorted(tables[kind]) == sorted(p.stem for p in files)
        for item_id, item in tables[kind].items():
            alone = catalog._packaged_alone(kind, item_id)
            assert alone is None or alone == item, item_id  # None: a file with base: comes from the catalog
    assert catalog._packaged_alone("accelerator", "dgx-h100") is None  # a system is no accelerator
    assert catalog._packaged_alone("accelerator", "../accelerators/h100-sxm") is None


def test_a_cluster_named_otherwise_takes_the_whole_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths, user directories, ids without a file of their own: the whole catalog (and its errors)."""
    from roofline.errors import RooflineError
    from roofline.hardware_specs import catalog, resolve_cluster

    catalog._load.cache_clear()
    with pytest.raises(RooflineError, match="is a system, not an accelerator"):
        resolve_cluster(hardware="dgx-h100")
    assert catalog._load.cache_info().currsize == 1
    catalog._load.cache_clear()
    with pytest.raises(RooflineError, match="holds b200, not h100-sxm"):
        resolve_cluster(hardware="h100-sxm", system="hgx-b200")
    monkeypatch.setenv(catalog.ENV_VAR, str(tmp_path))
    assert resolve_cluster(hardware="h100-sxm").system.id == "dgx-h100"
    assert catalog._load.cache_info().currsize == 1  # ROOFLINE_HARDWARE_PATH: the catalog with the user's files


def test_help_imports_no_command_module() -> None:
    run = _modules_after(["--help"])
    assert run["code"] == 0 and "estimate" in run["text"]
    modules = run["modules"]
    for heavy in (*HEAVY, "numpy", "pydantic", "yaml"):
        assert not _loaded(modules, heavy), heavy
    roofline_modules = {m for m in modules if m.startswith("roofline")}
    assert roofline_modules == {"roofline", "roofline.cli", "roofline.cli.app", "roofline.errors"}


def test_version_is_pyprojects() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    project = text[text.index("[project]") :]
    match = re.search(r'^version\s*=\s*"([^"]+)"', project, flags=re.MULTILINE)
    assert match is not None
    assert roofline.__version__ == match.group(1)


def _eager_app() -> typer.Typer:
    """The top-level app as it was built before the lazy group: every command registered at import."""
    eager = typer.Typer(name="roofline", help=app_module.app.info.help, no_args_is_help=True,
                        pretty_exceptions_enable=False, add_completion=False)  # fmt: skip
    eager.callback()(app_module.main_callback)
    for name, entry in app_module.COMMANDS.items():
        target = getattr(__import__(entry.module, fromlist=[entry.attribute]), entry.attribute)
        if isinstance(target, typer.Typer):
            eager.add_typer(target, name=name)
        else:
            eager.command(name)(target)
    return eager


def test_each_summary_is_the_first_paragraph_of_its_commands_help() -> None:
    group: Any = typer.main.get_command(app_module.app)
    for name in app_module.COMMANDS:
        command = group.commands[name]  # built on lookup
        first = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
        assert app_module.COMMANDS[name].summary == first, name
        assert not command.hidden and not command.deprecated


@pytest.mark.parametrize("argv", [["--help"], [], ["estimat"], ["hardware", "--help"], ["estimate", "--help"],
                                  ["comm", "--help"], ["--version"]])  # fmt: skip
def test_lazy_group_prints_what_the_eager_one_does(argv: list[str]) -> None:
    runner = CliRunner()
    lazy = runner.invoke(app_module.app, argv, terminal_width=80)
    eager = runner.invoke(_eager_app(), argv, terminal_width=80)
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)
    assert lazy.output.strip()


def test_commands_mapping_lists_every_command_in_order() -> None:
    group: Any = typer.main.get_command(app_module.app)
    assert list(group.commands) == list(app_module.COMMANDS)
    assert "estimate" in group.commands and "nope" not in group.commands
    with pytest.raises(KeyError):
        group.commands["nope"]


def test_user_error_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app_module.app, ["estimate", "--model", "nope", "--hardware", "h100-sxm"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: ") and "nope" in result.output


def test_estimate_of_a_dense_model_builds_only_its_kind() -> None:
    modules = _modules_after(ESTIMATE)["modules"]
    kinds = {m for m in modules if m.startswith("roofline.workloads.") and m.rsplit(".", 1)[1] in
             {"moe", "mla", "deepseek_v4", "hybrid", "diffusion_dit", "diffusion_lm"}}  # fmt: skip
    assert not kinds and "roofline.workloads.dense" in modules


def test_every_packaged_model_file_is_named_by_its_id_and_loads_alone_as_in_the_catalog() -> None:
    from roofline.workloads import catalog
    from roofline.yaml_io import read_yaml, yaml_files

    files = yaml_files(catalog.DATA_DIR)
    assert [read_yaml(p)["id"] for p in files] == [p.stem for p in files]
    whole = catalog.model_catalog()
    assert sorted(whole) == sorted(p.stem for p in files)
    for model_id, model in whole.items():
        alone = catalog._packaged_alone(model_id)
        assert alone is None or alone == model, model_id  # None: a file with base: comes from the catalog


def test_kinds_are_listed_in_order_and_load_on_lookup() -> None:
    from roofline.workloads import WORKLOAD_KINDS
    from roofline.workloads.moe import MoETransformer

    assert list(WORKLOAD_KINDS)[:7] == ["dense", "moe", "deepseek_v4", "dit", "diffusion_lm", "hybrid", "mla_moe"]
    assert WORKLOAD_KINDS["moe"] is MoETransformer and "nope" not in WORKLOAD_KINDS
    with pytest.raises(KeyError):
        WORKLOAD_KINDS["nope"]


def test_cli_skips_pydantic_plugin_discovery_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    from roofline.cli.app import main

    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(sys, "argv", ["roofline", "--version"])
    with pytest.raises(SystemExit):
        main()
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "logfire")
    with pytest.raises(SystemExit):
        main()
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "logfire"
