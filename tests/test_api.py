"""The Python API (`import roofline as rl`): one parameter rule shared with the CLI, results whose
`to_dict()` is exactly what the CLI prints with --format json, and a library that never prints,
exits, or imports the CLI's libraries."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import roofline as rl
from roofline.cli.app import app

runner = CliRunner()
SRC = Path(rl.__file__).parent
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _no_user_catalog_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)


def cli_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def normal(data: Any) -> Any:
    """JSON as the CLI writes it (infinities as strings): what a document round-trips to."""
    from roofline.reports.formats import to_json

    return json.loads(to_json(data))


# ---- the public surface ---------------------------------------------------------------------------


def test_all_names_resolve_and_are_documented() -> None:
    import roofline.api

    assert (SRC / "py.typed").is_file()
    assert set(rl._API) == set(roofline.api.__all__)
    for name in rl.__all__:
        value = getattr(rl, name)
        if callable(value) and name != "__version__":
            assert inspect.getdoc(value), name
    for function in ("estimate", "estimate_diffusion", "memory", "serve", "sweep", "plan", "validate", "comm",
                     "comm_sweep", "calibrate", "model", "hardware", "system"):  # fmt: skip
        assert function in rl.__all__ and callable(getattr(rl, function)), function
    assert issubclass(rl.DoesNotFitError, rl.RooflineError) and issubclass(rl.UnknownIdError, rl.RooflineError)
    assert issubclass(rl.TorchMissingError, rl.RooflineError)


def test_import_is_lazy_and_the_library_never_imports_typer_or_rich() -> None:
    """`import roofline` loads no numerical stack; the API runs without typer or rich (the CLI's)."""
    code = (
        "import sys, roofline as rl\n"
        "assert 'numpy' not in sys.modules and 'roofline.api' not in sys.modules, 'import roofline is not lazy'\n"
        "r = rl.estimate('llama-3.1-8b', 'h100-sxm', batch=4)\n"
        "rl.sweep('llama-3.1-8b', 'h100-sxm', batch='1,8')\n"
        "rl.comm('all-reduce', 'h100-sxm', bytes='1MiB')\n"
        "r.to_frame(); r._repr_html_()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich')]\n"
        "assert not bad, bad\n"
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in ("print", "exit", "quit"):
                found.append(f.id)
            if isinstance(f, ast.Attribute) and f.attr == "exit" and isinstance(f.value, ast.Name) and \
                    f.value.id == "sys":  # fmt: skip
                found.append("sys.exit")
            if isinstance(f, ast.Attribute) and f.attr in ("write", "flush") and isinstance(f.value, ast.Attribute) \
                    and f.value.attr in ("stdout", "stderr"):  # fmt: skip
                found.append(f"sys.{f.value.attr}.{f.attr}")
    return found


def test_the_library_never_prints_or_exits() -> None:
    """Outside cli/, no print(), no sys.exit(), no writes to stdout / stderr: results and exceptions only."""
    offenders = {}
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts:
            continue
        calls = _calls(ast.parse(path.read_text(encoding="utf-8")))
        if calls:
            offenders[str(path.relative_to(SRC))] = calls
    assert not offenders, offenders


# ---- one parameter rule: the CLI's long options, '-' -> '_', same defaults -----------------------

RENDERING = {"format", "output", "force", "ops", "quiet", "launch"}  # how the CLI shows a result, not what it computes


def _cli_params(path: list[str]) -> dict[str, Any]:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    params: dict[str, Any] = {}
    for p in command.params:
        if isinstance(p, typer.core.TyperArgument):
            params[p.name] = inspect.Parameter.empty if p.required else p.default
            continue
        long = next(o for o in p.opts if o.startswith("--"))
        default = inspect.Parameter.empty if p.required else p.default
        params[long[2:].replace("-", "_")] = default
    return params


def _api_params(*functions: Callable[..., Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for function in functions:
        for name, p in inspect.signature(function).parameters.items():
            if name != "progress":
                params[name] = p.default
    return params


def _same(cli: Any, api: Any) -> bool:
    if isinstance(cli, list | tuple) and isinstance(api, list | tuple):
        return list(cli) == list(api)
    return bool(cli == api) or (cli is None and api is None)


COMMANDS: list[tuple[list[str], tuple[Callable[..., Any], ...], set[str]]] = [
    (["estimate"], (rl.estimate, rl.estimate_diffusion), set()),
    (["memory"], (rl.memory,), set()),
    (["serve"], (rl.serve,), set()),
    (["sweep"], (rl.sweep,), set()),
    (["plan"], (rl.plan,), set()),
    (["validate"], (rl.validate,), set()),
    (["comm", "all-reduce"], (rl.comm,), {"collective"}),
    (["comm", "sweep"], (rl.comm_sweep,), set()),
    (["calibrate"], (rl.calibrate,), {"output"}),
]


@pytest.mark.parametrize(("path", "functions", "api_only"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS])
def test_each_function_takes_its_commands_options(path: list[str], functions: tuple[Callable[..., Any], ...],
                                                   api_only: set[str]) -> None:  # fmt: skip
    """Same names and defaults; the API adds only `ignore_memory`-style options the CLI has too. The
    exceptions are the rendering options (--format, -o, --force, --ops, --quiet), the collective of
    `comm` (a subcommand there), and calibrate's output directory (optional in Python)."""
    cli = _cli_params(path)
    api = _api_params(*functions)
    rendering = RENDERING - ({"output", "force"} if path == ["calibrate"] else set())
    assert set(cli) - rendering == set(api) - (api_only - set(cli)), set(cli) ^ set(api)
    for name in set(cli) - rendering - api_only:
        assert _same(cli[name], api[name]), (name, cli[name], api[name])
    for function in functions:  # model and hardware first, positional
        names = list(inspect.signature(function).parameters)
        first = names[:2]
        if path[0] in ("estimate", "memory", "serve", "sweep", "plan"):
            assert first == ["model", "hardware"], (function.__name__, first)


# ---- to_dict() is the document --format json prints ------------------------------------------------


def test_estimate_json_is_to_dict() -> None:
    args = dict(tp=8, batch=16, isl=2048, osl=256, weight_dtype="fp8")
    api = rl.estimate("llama-3.1-70b", "h100-sxm", **args)
    cli = cli_json("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "16",
                   "--isl", "2048", "--osl", "256", "--weight-dtype", "fp8")  # fmt: skip
    assert cli == normal(api.to_dict())
    no_ops = cli_json("estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "16",
                      "--isl", "2048", "--osl", "256", "--weight-dtype", "fp8", "--no-ops")  # fmt: skip
    assert no_ops == normal(api.to_dict(ops=False))


def test_estimate_of_a_diffusion_model_json_is_to_dict() -> None:
    api = rl.estimate_diffusion("flux.1-dev", "h100-sxm", resolution="1024x1024", steps=28, compile=True)
    cli = cli_json("estimate", "--model", "flux.1-dev", "--hardware", "h100-sxm", "--resolution", "1024x1024",
                   "--steps", "28", "--compile")  # fmt: skip
    assert cli == normal(api.to_dict())
    with pytest.raises(rl.RooflineError, match="estimate_diffusion"):
        rl.estimate("flux.1-dev", "h100-sxm")


def test_memory_json_is_to_dict() -> None:
    api = rl.memory("llama-3.1-405b", "h200-sxm", tp=8, isl=8192, osl=1024)
    cli = cli_json("memory", "--model", "llama-3.1-405b", "--hardware", "h200-sxm", "--tp", "8", "--isl", "8192",
                   "--osl", "1024")  # fmt: skip
    assert cli == normal(api.to_dict())


def test_serve_json_is_to_dict() -> None:
    api = rl.serve("llama-3.1-8b", "h100-sxm", isl=256, osl=32, request_rate=4, num_requests=40)
    cli = cli_json("serve", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--isl", "256", "--osl", "32",
                   "--request-rate", "4", "--num-requests", "40")  # fmt: skip
    assert cli == normal(api.to_dict())
    assert api.ttft_s == api.to_dict()["ttft_s"] > 0 and api.ttft_p99_s >= api.ttft_s * 0.5


def test_sweep_json_is_to_dict_and_frame_is_the_csv() -> None:
    api = rl.sweep("llama-3.1-8b", "h100-sxm,b200", tp=[1, 2], batch="1:64:x4", isl=512, osl=64)
    cli = cli_json("sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm,b200", "--tp", "1,2", "--batch",
                   "1:64:x4", "--isl", "512", "--osl", "64")  # fmt: skip
    assert cli == normal(api.to_dict())
    result = runner.invoke(app, ["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm,b200", "--tp", "1,2",
                                 "--batch", "1:64:x4", "--isl", "512", "--osl", "64", "--format", "csv"])  # fmt: skip
    import io

    import pandas as pd

    from_csv = pd.read_csv(io.StringIO(result.stdout))
    frame = api.to_frame()
    assert list(from_csv.columns) == list(frame.columns) and len(from_csv) == len(frame) == 2 * 2 * 4
    assert from_csv["tpot_s"].tolist() == pytest.approx(frame["tpot_s"].tolist())


def test_plan_json_is_to_dict() -> None:
    kw = dict(isl=512, osl=64, rate=2.0, ttft_p99="2s", tpot_p99="50ms", recheck=0, batch="8,32")
    api = rl.plan("llama-3.1-8b", "h100-sxm", **kw)
    cli = cli_json(
        "plan",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--isl",
        "512",
        "--osl",
        "64",
        "--rate",
        "2",
        "--ttft-p99",
        "2s",
        "--tpot-p99",
        "50ms",
        "--recheck",
        "0",
        "--batch",
        "8,32",
    )
    cli.pop("search_s"), (expected := normal(api.to_dict())).pop("search_s")  # wall time of the search
    assert cli == expected and api.feasible


def test_comm_json_is_to_dict() -> None:
    api = rl.comm("all-reduce", system="dgx-h100", bytes="256MiB")
    assert cli_json("comm", "all-reduce", "--system", "dgx-h100", "--bytes", "256MiB") == normal(api.to_dict())
    sweep = rl.comm_sweep("all-gather", "h100-sxm", min_bytes=1024, max_bytes="1MiB", factor=4)
    cli = cli_json("comm", "sweep", "all-gather", "--hardware", "h100-sxm", "--min-bytes", "1024", "--max-bytes",
                   "1MiB", "--factor", "4")  # fmt: skip
    assert cli == normal(sweep.to_dict()) and len(sweep.timings) == 6  # 1 KiB, 4 KiB ... 1 MiB


def test_validate_json_is_to_dict() -> None:
    data = FIXTURES / "validation_small.csv"
    api = rl.validate(data, scenario=["gemm", "memory_copy"])
    cli = cli_json("validate", "--data", str(data), "--scenario", "gemm", "--scenario", "memory_copy")
    assert cli == normal(api.to_dict())
    assert len(api.to_frame()) == len(api.records())


def test_validate_diffusion_json_is_to_dict() -> None:
    api = rl.validate(diffusion=True)
    assert cli_json("validate", "--diffusion") == normal(api.to_dict())
    assert len(api.to_frame()) == len(api.rows) > 20


def test_hardware_and_model_show_json_is_to_dict() -> None:
    from roofline.hardware_specs.catalog import get_link

    assert cli_json("hardware", "show", "h100-sxm") == normal(rl.hardware("h100-sxm").to_dict())
    assert cli_json("hardware", "show", "gb200-nvl72") == normal(rl.system("gb200-nvl72").to_dict())
    assert cli_json("hardware", "show", "nvlink5") == normal(get_link("nvlink5").to_dict())
    assert cli_json("model", "show", "deepseek-v3") == normal(rl.model("deepseek-v3").to_dict())
    config = str(FIXTURES / "hf" / "llama-3.1-8b" / "config.json")
    assert cli_json("model", "show", config) == normal(rl.Model.from_hf_config(config).to_dict())


# ---- results as values ------------------------------------------------------------------------------


def test_results_are_frozen_with_units_in_their_names() -> None:
    r = rl.estimate("llama-3.1-8b", "h100-sxm", batch=8)
    with pytest.raises(AttributeError):
        r.batch = 9  # type: ignore[misc]
    for name in ("ttft_s", "ttft_batch_s", "tpot_s", "e2e_s", "output_tokens_per_s", "kv_cache_bytes",
                 "weights_bytes"):  # fmt: skip
        assert isinstance(getattr(r, name), float), name
    frame = r.to_frame()
    assert {"phase", "name", "flops", "bytes", "time_s", "bound"} <= set(frame.columns)
    assert len(frame) == len(r.to_dict()["ops"])
    html = r._repr_html_()
    assert "<table>" in html and "TPOT" in html and len(html) < 20_000


def test_mean_request_ttft_by_hand() -> None:
    """16 prompts of 2048 tokens in 8192-token steps: 4 equal steps finishing 4 requests each, so the
    mean request waits (1 + 2 + 3 + 4) / 4 = 2.5 steps of the 4 the batch takes (no pipeline drain)."""
    r = rl.estimate("llama-3.1-70b", "h100-sxm", tp=8, batch=16, isl=2048, osl=256)
    assert r.ttft_s == pytest.approx(r.ttft_batch_s * 2.5 / 4, rel=1e-12)
    one = rl.estimate("llama-3.1-70b", "h100-sxm", tp=8, batch=1, isl=2048, osl=256)
    assert one.ttft_s == one.ttft_batch_s
    long = rl.estimate("llama-3.1-8b", "h100-sxm", batch=3, isl=16384, osl=16)  # 2 chunks a prompt, one at a time
    assert long.ttft_s == pytest.approx(long.ttft_batch_s * 2 / 3, rel=1e-12)  # rounds end at 1/3, 2/3, 3/3


# ---- a configuration that does not fit ---------------------------------------------------------------


def test_a_configuration_that_does_not_fit_is_said_first_and_not_timed() -> None:
    r = rl.estimate("llama-3.1-70b", "h100-sxm")
    assert not r.fits and not r.timed and r.memory.total_bytes > r.memory.capacity_bytes
    with pytest.raises(rl.DoesNotFitError, match="ignore_memory=True"):
        _ = r.tpot_s
    d = r.to_dict()
    assert d["fits"] is False and d["tpot_s"] is None and d["ttft_s"] is None and d["ops"] == []
    assert "fits with --tp 2" in r.fit_hint
    text = runner.invoke(app, ["estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm"]).stdout
    assert text.startswith("DOES NOT FIT.") and "TPOT" not in text
    hypothetical = rl.estimate("llama-3.1-70b", "h100-sxm", ignore_memory=True)
    assert hypothetical.hypothetical and hypothetical.tpot_s > 0
    marked = runner.invoke(app, ["estimate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--ignore-memory",
                                 "--no-ops"]).stdout  # fmt: skip
    assert marked.startswith("DOES NOT FIT.") and "HYPOTHETICAL" in marked and "TPOT" in marked


def test_sweep_rows_that_do_not_fit_show_no_latency() -> None:
    table = rl.sweep("llama-3.1-70b", "h100-sxm", tp="1,8", batch=1)
    rows = {r["tp"]: r for r in table.records()}
    assert rows[1]["fits"] is False and rows[1]["tpot_s"] is None and rows[1]["output_tokens_per_s_per_gpu"] is None
    assert rows[8]["fits"] is True and rows[8]["tpot_s"] > 0
    shown = rl.sweep("llama-3.1-70b", "h100-sxm", tp="1,8", batch=1, ignore_memory=True).records()
    assert shown[0]["hypothetical"] is True and shown[0]["tpot_s"] > 0
    assert table.best()[0]["tp"] == 8


def test_plan_rows_that_do_not_fit_show_no_latency() -> None:
    report = rl.plan("llama-3.1-405b", "h100-sxm", isl=1000, osl=100, rate=1, ttft_p99="1s", tpot_p99="5ms",
                     max_gpus=8, recheck=0)  # fmt: skip
    assert not report.feasible
    closest = report.to_dict()["closest"]
    unfit = [r for r in closest if any(f.startswith("memory") for f in r["failed"])]
    fitting = [r for r in closest if r not in unfit]
    assert unfit and all(r["tpot_p99_s"] is None and r["tokens_per_s_per_gpu"] is None for r in unfit)
    assert not [f for r in unfit for f in r["failed"] if f.startswith(("TPOT", "TTFT"))]
    assert fitting and all(r["tpot_p99_s"] > 0 for r in fitting)


# ---- one KV-capacity rule, windows respected --------------------------------------------------------


def test_estimate_and_serve_share_one_kv_capacity_rule() -> None:
    """serve's KV budget is memory's capacity rule times the engine's KV share (here 1)."""
    served = rl.serve("llama-3.1-8b", "h100-sxm", isl=1024, osl=128, max_throughput=True, num_requests=10,
                      engine="vllm", kv_memory_fraction=1.0, max_num_tokens=8192)  # fmt: skip
    memory = rl.memory("llama-3.1-8b", "h100-sxm", isl=1024, osl=128, max_num_tokens=8192)
    assert served.kv_capacity_tokens == memory.memory.kv_capacity_tokens
    assert memory.memory.max_batch == memory.memory.kv_capacity_tokens // (1024 + 128)


def test_max_context_never_exceeds_the_models_window() -> None:
    m = rl.memory("llama-3.1-8b", "h200-sxm", tp=8)  # 141 GB x 8 would hold millions of tokens
    assert m.memory.max_context_tokens == m.memory.context_window_tokens == 131072
    assert m.memory.kv_capacity_tokens > 131072


def test_context_window_warning_is_returned_not_printed() -> None:
    r = rl.estimate("llama-3.1-8b", "h100-sxm", isl=130000, osl=2000)
    assert r.warnings and "context window" in r.warnings[0]
    result = runner.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--isl", "130000",
                                 "--osl", "2000", "--format", "json"])  # fmt: skip
    assert json.loads(result.stdout)["warnings"] == list(r.warnings)
    assert "warning: " in result.stderr
