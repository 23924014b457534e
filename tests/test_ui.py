"""`roofline ui`: the JSON API (starlette's TestClient) and the page in a real headless Chromium
(Playwright's sync API with the system's chromium binary)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the optional extra roofline[ui] is not installed")
pytest.importorskip("uvicorn", reason="the optional extra roofline[ui] is not installed")
pytest.importorskip("plotly", reason="the optional extra roofline[ui] is not installed")

import roofline.api as rl  # noqa: E402
from roofline.ui import MISSING_EXTRA, create_app, service  # noqa: E402
from roofline.units import format_time  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

SRC = str(Path(__file__).resolve().parents[1] / "src")
STATE = {"model": "llama-3.1-70b", "hardware": "h100-sxm", "tp": "8", "batch": "16", "isl": "2048", "osl": "256"}
KWARGS = dict(tp=8, batch=16, isl=2048, osl=256)


@pytest.fixture(scope="module")
def client() -> Any:
    pytest.importorskip("httpx", reason="starlette's TestClient needs httpx (the ui-test extra)")
    from starlette.testclient import TestClient

    return TestClient(create_app())


def cli_error(*args: str) -> str:
    """The line `roofline ARGS` prints on stderr (exit code 2)."""
    done = subprocess.run([sys.executable, "-m", "roofline.cli.app", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    return done.stderr.strip().splitlines()[-1]


# ---------------------------------------------------------------- the API


def test_estimate_is_the_library_estimate(client: Any) -> None:
    response = client.post("/api/estimate", json=STATE)
    assert response.status_code == 200
    view = response.json()
    expected = rl.estimate("llama-3.1-70b", "h100-sxm", **KWARGS)
    assert view["result"]["tpot_s"] == pytest.approx(expected.tpot_s, rel=1e-12)
    assert view["result"]["ttft_s"] == pytest.approx(expected.ttft_s, rel=1e-12)
    assert view["headline"]["tpot"] == format_time(expected.tpot_s)
    assert view["headline"]["throughput"] == f"{expected.output_tokens_per_s:,.0f} tok/s"
    assert len(view["result"]["ops"]) == len(expected.ops)
    # every drawn point is an operator row with FLOPs and bytes: x = FLOPs / bytes, y = FLOPs / time
    point = max(view["roofline"]["points"], key=lambda p: p["time_s"])
    row = next(r for r in expected.records() if r["name"] == point["name"] and r["phase"] == point["phase"])
    assert point["intensity_flops_per_byte"] == pytest.approx(row["flops"] / row["bytes"])
    assert point["achieved_flops_per_s"] == pytest.approx(row["flops"] / row["time_s"])
    times = view["breakdown"]["time_s"]
    assert sum(times["decode"].values()) == pytest.approx(expected.tpot_s)


def test_what_if_overrides_are_the_cli_set(client: Any) -> None:
    state = {**STATE, "bandwidth": "6TB/s", "memory": "141GB"}
    view = client.post("/api/estimate", json=state).json()
    changes = ["memory.bandwidth=6TB/s", "memory.capacity=141GB"]
    expected = rl.estimate("llama-3.1-70b", "h100-sxm", **KWARGS, set=changes)
    assert view["result"]["tpot_s"] == pytest.approx(expected.tpot_s, rel=1e-12)
    assert view["result"]["tpot_s"] < client.post("/api/estimate", json=STATE).json()["result"]["tpot_s"]


def decode_op_s(ops: list[dict[str, Any]], name: str) -> float:
    return next(float(op["time_s"]) for op in ops if op["phase"] == "decode" and op["name"] == name)


def test_link_bandwidth_what_if_is_the_cli_set(client: Any) -> None:
    """GB/s per GPU per direction of the scale-up link: the TP=8 all-reduce moves exactly as with --set."""
    view = client.post("/api/estimate", json={**STATE, "scale_up_gb_per_s": "900"}).json()
    expected = rl.estimate("llama-3.1-70b", "h100-sxm", **KWARGS, set=["scale_up.bandwidth_per_gpu=900GB/s"])
    base = rl.estimate("llama-3.1-70b", "h100-sxm", **KWARGS)
    shown = decode_op_s(view["result"]["ops"], "attn_all_reduce")
    assert shown == pytest.approx(decode_op_s(expected.records(), "attn_all_reduce"), rel=1e-12)
    assert shown < decode_op_s(base.records(), "attn_all_reduce")
    assert view["result"]["tpot_s"] == pytest.approx(expected.tpot_s, rel=1e-12)
    assert view["links"]["scale_up"]["gb_per_s"] == pytest.approx(900)
    assert client.post("/api/estimate", json=STATE).json()["links"]["scale_up"]["gb_per_s"] == pytest.approx(450)
    response = client.post("/api/estimate", json={**STATE, "scale_up_gb_per_s": "0"})
    assert response.status_code == 400
    line = cli_error("estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--set",
                     "scale_up.bandwidth_per_gpu=0GB/s")  # fmt: skip
    assert response.json() == {"error": line}


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [("batch", "-1", "--batch"), ("model", "llama-9", "--model"), ("hardware", "h999", "--hardware"),
     ("weight_dtype", "fp7", "--weight-dtype")],
)  # fmt: skip
def test_bad_input_is_the_cli_line(client: Any, field: str, value: str, flag: str) -> None:
    response = client.post("/api/estimate", json={**STATE, field: value})
    assert response.status_code == 400
    args = ["estimate", "-m", STATE["model"], "--hardware", STATE["hardware"], "--tp", "8", "--batch", "16"]
    assert response.json() == {"error": cli_error(*args, flag, value)}


def test_not_a_number_is_one_line(client: Any) -> None:
    response = client.post("/api/estimate", json={**STATE, "batch": "many"})
    assert response.status_code == 400
    assert response.json() == {"error": "error: --batch: 'many' is not a whole number"}


TRAIN_STATE = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "gpus": "8", "tp": "2", "pp": "1", "cp": "1",
               "ep": "1", "global_batch": "128", "micro_batch": "2", "seq_len": "4096", "precision": "fp8-cs",
               "recompute": "selective", "task": "sft", "tokens": "1e10"}  # fmt: skip
TRAIN_KWARGS = dict(gpus=8, tp=2, global_batch=128, micro_batch=2, seq_len=4096, precision="fp8-cs",
                    recompute="selective", task="sft", tokens=1e10)  # fmt: skip


def test_train_is_the_library_train(client: Any) -> None:
    response = client.post("/api/train", json=TRAIN_STATE)
    assert response.status_code == 200, response.text
    view = response.json()
    expected = rl.train("llama-3.1-8b", "h100-sxm", **TRAIN_KWARGS)
    assert view["result"]["step_time_s"] == pytest.approx(expected.step_time_s, rel=1e-12)
    assert view["result"]["mfu"] == pytest.approx(expected.mfu, rel=1e-12)
    assert view["result"]["layout"]["tp"] == 2 and view["result"]["layout"]["task"] == "sft"
    assert view["headline"]["step time"] == format_time(expected.step_time_s)
    assert view["headline"]["tokens/s/GPU"] == f"{expected.tokens_per_s_per_gpu:,.0f}"
    assert view["headline"]["MFU"] == f"{expected.mfu:.1%}"
    assert view["result"]["gpu_hours"] == pytest.approx(expected.gpu_hours, rel=1e-12)
    m = expected.step.memory
    assert view["memory_bytes"] == {"parameters": m.params_bytes, "gradients": m.grads_bytes,
                                    "optimizer states": m.optimizer_bytes, "activations": m.activations_bytes,
                                    "reserve": m.reserve_bytes}  # fmt: skip
    assert sum(view["memory_bytes"].values()) == pytest.approx(m.total_bytes)
    assert view["parts_s"] == pytest.approx(dict(expected.step.parts))
    assert view["overview"] == [[name, str(value)] for name, value in expected.overview()]


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [("tp", "3", "--tp"), ("precision", "fp7", "--precision"), ("task", "rlhf", "--task"),
     ("global_batch", "100", "--global-batch"), ("model", "llama-9", "--model")],
)  # fmt: skip
def test_bad_train_input_is_the_cli_line(client: Any, field: str, value: str, flag: str) -> None:
    response = client.post("/api/train", json={"model": "llama-3.1-8b", "hardware": "h100-sxm", field: value})
    assert response.status_code == 400
    args = ["train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm"]
    assert response.json() == {"error": cli_error(*args, flag, value)}


def test_train_not_a_number_is_one_line(client: Any) -> None:
    response = client.post("/api/train", json={"tokens": "lots"})
    assert response.status_code == 400
    assert response.json() == {"error": "error: --tokens: 'lots' is not a number"}


def test_sweep_over_batch_is_one_estimate_each(client: Any) -> None:
    rows = client.post("/api/sweep-batch", json=STATE).json()["rows"]
    assert [r["batch"] for r in rows] == list(service.SWEEP_BATCHES)
    expected = rl.estimate("llama-3.1-70b", "h100-sxm", **{**KWARGS, "batch": 64})
    assert rows[6]["tpot_s"] == pytest.approx(expected.tpot_s)
    assert rows[6]["output_tokens_per_s"] == pytest.approx(expected.output_tokens_per_s)


def test_upload_config_json(client: Any) -> None:
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
              "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
              "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
              "torch_dtype": "bfloat16"}  # fmt: skip
    response = client.post("/api/upload", files={"file": ("config.json", json.dumps(config).encode())})
    assert response.status_code == 200, response.text
    token = response.json()["model"]
    view = client.post("/api/estimate", json={**STATE, "model": token, "tp": "1"}).json()
    assert view["result"]["tpot_s"] > 0
    assert view["result"]["parallel"]["tp"] == 1


def test_upload_model_yaml_with_a_base(client: Any) -> None:
    text = b"base: llama-3.1-8b\nid: my-llama\nname: My Llama\nnum_hidden_layers: 16\n"
    response = client.post("/api/upload", files={"file": ("mine.yaml", text)})
    assert response.status_code == 200, response.text
    state = {**STATE, "model": response.json()["model"], "tp": "1"}
    half = client.post("/api/estimate", json=state).json()["result"]
    full = rl.estimate("llama-3.1-8b", "h100-sxm", **{**KWARGS, "tp": 1})
    assert half["model"] == "my-llama"
    assert half["weights_bytes"] < 0.6 * full.weights_bytes  # 16 of 32 layers (plus the embeddings)


def test_bad_upload_is_one_line_naming_the_users_file(client: Any) -> None:
    response = client.post("/api/upload", files={"file": ("my-config.json", b"{not json")})
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("error: 'my-config.json' is not valid JSON")
    assert "roofline-ui-" not in message and "\n" not in message


def test_upload_size_limit(client: Any) -> None:
    huge = b" " * (service.UPLOAD_LIMIT_BYTES + 10)
    response = client.post("/api/upload", files={"file": ("config.json", huge)})
    assert response.status_code == 400
    assert "uploads are limited to 1,048,576 bytes" in response.json()["error"]


def test_upload_without_a_length_is_refused(client: Any) -> None:
    """A chunked body has no Content-Length to refuse it by before reading it: refused outright."""
    boundary = "xyz"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="config.json"\r\n\r\n'.encode()
    body = head + b" " * (service.UPLOAD_LIMIT_BYTES + 100) + f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = client.post(
        "/api/upload", content=chunks(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "error: the upload has no Content-Length; send one file of at most 1,048,576 bytes"
    }


def test_a_path_is_not_a_model(client: Any, tmp_path: Path) -> None:
    """The page names catalog ids and uploads only: never a file on the server."""
    path = tmp_path / "model.yaml"
    path.write_text("id: x\n")
    response = client.post("/api/estimate", json={**STATE, "model": str(path)})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"error: unknown model '{path}'")


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_is_what_the_cli_writes(client: Any, fmt: str) -> None:
    response = client.get("/api/export", params={**STATE, "fmt": fmt})
    assert response.status_code == 200
    args = ["estimate", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "16", "--isl",
            "2048", "--osl", "256", "--format", fmt]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "roofline.cli.app", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert response.text == done.stdout


def test_export_html_is_the_report_page(client: Any) -> None:
    response = client.get("/api/export", params={**STATE, "fmt": "html"})
    assert response.status_code == 200
    page = response.text
    assert page.lower().startswith("<!doctype html>")
    expected = rl.estimate("llama-3.1-70b", "h100-sxm", **KWARGS)
    assert "llama-3.1-70b" in page and "h100-sxm" in page and "<img" in page  # the report's figures
    assert format_time(expected.tpot_s) in page


def test_export_html_is_the_bytes_roofline_report_writes(client: Any, tmp_path: Path) -> None:
    """One library function writes both (roofline.reports.report_page): the same page, but for the minute."""
    import re

    from typer.testing import CliRunner

    from roofline.cli.app import app

    state = {**STATE, "scale_up_gb_per_s": "900"}
    page = client.get("/api/export", params={**state, "fmt": "html"}).content
    out = tmp_path / "report.html"
    args = ["report", "-m", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "16", "--isl", "2048",
            "--osl", "256", "--set", "scale_up.bandwidth_per_gpu=900GB/s", "-o", str(out)]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    minute = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d UTC")
    assert len(minute.findall(page)) == 1
    assert minute.sub(b"DATE", page) == minute.sub(b"DATE", out.read_bytes())
    assert b"NVLink 4 (Hopper)" in page


def test_not_fitting_is_an_answer_and_export_refuses_it(client: Any) -> None:
    state = {**STATE, "tp": "1"}
    view = client.post("/api/estimate", json=state).json()
    expected = rl.estimate("llama-3.1-70b", "h100-sxm", **{**KWARGS, "tp": 1})
    assert not expected.fits
    assert view["headline"]["fit"] == expected.does_not_fit_message() and "tpot" not in view["headline"]
    assert view["roofline"] is None and not view["result"]["timed"]
    response = client.get("/api/export", params={**state, "fmt": "xlsx"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"error: {expected.does_not_fit_message()}; add --ignore-memory")
    timed = client.post("/api/estimate", json={**state, "ignore_memory": "1"}).json()
    assert timed["result"]["hypothetical"] and timed["headline"]["tpot"]


def test_export_xlsx_is_a_workbook(client: Any) -> None:
    response = client.get("/api/export", params={**STATE, "fmt": "xlsx"})
    assert response.status_code == 200
    assert response.content[:2] == b"PK"  # a zip: the xlsx container
    assert 'filename="roofline-llama-3.1-70b-h100-sxm.xlsx"' in response.headers["content-disposition"]


def test_unknown_export_format(client: Any) -> None:
    response = client.get("/api/export", params={**STATE, "fmt": "pdf"})
    assert response.status_code == 400
    assert response.json() == {"error": "error: --format 'pdf': export json, csv, xlsx or html"}


def test_assets_are_local(client: Any) -> None:
    page = client.get("/").text
    assert 'src="/vendor/plotly.min.js"' in page and "http" not in page.replace("http-equiv", "")
    assert client.get("/vendor/plotly.min.js").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../server.py").status_code == 404


def test_a_bug_is_a_500_line_not_a_traceback(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(service, "estimate_view", broken)
    response = client.post("/api/estimate", json=STATE)
    assert response.status_code == 500
    assert response.json() == {"error": "error: internal error in roofline ui (the server's log has the details)"}


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from roofline.errors import RooflineError
    from roofline.ui import require_extra

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(RooflineError, match=r"roofline ui needs the optional extra: pip install 'roofline\[ui\]'"):
        require_extra()
    assert MISSING_EXTRA == "roofline ui needs the optional extra: pip install 'roofline[ui]'"


def test_public_host_warns() -> None:
    from roofline.cli.ui import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


# ---------------------------------------------------------------- the page in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    import uvicorn

    port = free_port()
    running = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started, "the ui server did not start"
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no chromium binary on PATH (make install adds it with apt-get where it can)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the ui-test extra)")
    with sync_api.sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    tab = context.new_page()
    tab.set_default_timeout(15000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], f"the page's script failed: {errors}"


def settled(page: Any) -> None:
    """The page has drawn the answer to its current inputs."""
    page.wait_for_function("document.body.dataset.started === '1' && document.body.dataset.busy === ''",
                           timeout=20000)  # fmt: skip


def test_page_answers_as_the_library(page: Any, server: str) -> None:
    page.goto(server + "/")
    settled(page)
    default = rl.estimate("llama-3.1-70b", "h100-sxm", tp=8, batch=16, isl=2048, osl=256)
    assert page.text_content("#tpot") == format_time(default.tpot_s)
    page.select_option("#hardware", "h200-sxm")
    page.fill("#batch", "32")
    page.wait_for_function("new URLSearchParams(location.search).get('batch') === '32'")
    settled(page)
    changed = rl.estimate("llama-3.1-70b", "h200-sxm", tp=8, batch=32, isl=2048, osl=256)
    assert page.text_content("#tpot") == format_time(changed.tpot_s)
    assert page.text_content("#ttft") == format_time(changed.ttft_s)
    assert format_time(changed.tpot_s) != format_time(default.tpot_s)


def test_page_updates_fast(page: Any, server: str) -> None:
    """An input change is drawn within 200 ms (debounce 100 ms + estimate + sweep + plotly)."""
    page.goto(server + "/?model=llama-3.1-70b&hardware=h100-sxm&tp=8&batch=16&isl=2048&osl=256")
    settled(page)
    times, answers, draws = [], [], []
    for batch in ("20", "24", "28", "32", "36"):  # the best of five: a busy 2-core machine delays some
        start = time.perf_counter()
        page.fill("#batch", batch)
        page.wait_for_function(f"new URLSearchParams(location.search).get('batch') === '{batch}'")
        settled(page)
        times.append(time.perf_counter() - start)
        answers.append(float(page.evaluate("document.body.dataset.answerMs")))
        draws.append(float(page.evaluate("document.body.dataset.drawMs")))
    print(
        f"page update: in the page {answers} ms (drawing {draws} ms); seen by the test "
        f"{[round(t * 1e3) for t in times]} ms"
    )
    assert min(answers) < 200


def test_bad_upload_shows_the_error_line(page: Any, server: str, tmp_path: Path) -> None:
    page.goto(server + "/")
    settled(page)
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert page.text_content("#error").startswith("error: 'config.json' is not valid JSON")
    page.fill("#batch", "-1")
    page.wait_for_function("document.getElementById('error').textContent.includes('--batch')")
    assert page.text_content("#error") == "error: --batch must be at least 1, got -1"
    assert "Traceback" not in page.content()


def test_shared_url_reproduces_the_view(page: Any, server: str, browser: Any) -> None:
    page.goto(server + "/")
    settled(page)
    page.select_option("#hardware", "b200")
    page.fill("#tp", "4")
    page.select_option("#weight_dtype", "fp8")
    page.wait_for_function("new URLSearchParams(location.search).get('weight_dtype') === 'fp8'")
    settled(page)
    page.click("#pin")
    settled(page)
    page.fill("#batch", "64")
    page.wait_for_function("new URLSearchParams(location.search).get('batch') === '64'")
    settled(page)
    shared, shown = page.url, page.text_content("#tpot")
    compared = page.inner_text("#compare")
    other = browser.new_context(viewport={"width": 1400, "height": 1300}).new_page()
    other.goto(shared)
    settled(other)
    assert other.text_content("#tpot") == shown
    assert other.input_value("#hardware") == "b200" and other.input_value("#weight_dtype") == "fp8"
    assert other.inner_text("#compare") == compared
    expected = rl.estimate("llama-3.1-70b", "b200", tp=4, batch=64, isl=2048, osl=256, weight_dtype="fp8")
    assert shown == format_time(expected.tpot_s)
    other.context.close()


def test_link_bandwidth_input_moves_tpot_as_the_library(page: Any, server: str) -> None:
    page.goto(server + "/?model=llama-3.1-70b&hardware=h100-sxm&tp=8&batch=16&isl=2048&osl=256")
    settled(page)
    assert page.get_attribute("#scale_up_gb_per_s", "placeholder") == "NVLink 4 (Hopper): 450 GB/s"
    page.click("#pin")
    settled(page)
    page.fill("#scale_up_gb_per_s", "900")
    page.wait_for_function("new URLSearchParams(location.search).get('scale_up_gb_per_s') === '900'")
    settled(page)
    faster = rl.estimate("llama-3.1-70b", "h100-sxm", **KWARGS, set=["scale_up.bandwidth_per_gpu=900GB/s"])
    base = rl.estimate("llama-3.1-70b", "h100-sxm", **KWARGS)
    assert page.text_content("#tpot") == format_time(faster.tpot_s) != format_time(base.tpot_s)
    compared = page.inner_text("#compare")
    assert "scale-up link per GPU\t900 GB/s\t450 GB/s" in compared
    assert format_time(base.tpot_s) in compared and format_time(faster.tpot_s) in compared


def train_settled(page: Any) -> None:
    page.wait_for_function("document.body.dataset.started === '1' && document.body.dataset.trainBusy === ''",
                           timeout=30000)  # fmt: skip


def test_training_tab_answers_as_the_library(page: Any, server: str, browser: Any) -> None:
    page.goto(server + "/")
    settled(page)
    assert page.is_hidden("#train")
    page.click("#tab_train")
    train_settled(page)
    assert page.is_visible("#train") and page.is_hidden("#infer")
    default = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, tp=1)
    assert page.text_content("#t_step_time") == format_time(default.step_time_s)
    page.fill("#t_tp", "2")
    page.wait_for_function("new URLSearchParams(location.search).get('t.tp') === '2'")
    train_settled(page)
    changed = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, tp=2)
    assert page.text_content("#t_step_time") == format_time(changed.step_time_s) != format_time(default.step_time_s)
    assert page.text_content("#t_mfu") == f"{changed.mfu:.1%}"
    assert page.locator("#train_memory .barlayer .trace").count() == 5  # params, grads, optimizer, activations, reserve
    page.fill("#t_tokens", "1e10")
    page.wait_for_function("new URLSearchParams(location.search).get('t.tokens') === '1e10'")
    train_settled(page)
    with_tokens = rl.train("llama-3.1-8b", "h100-sxm", gpus=8, tp=2, tokens=1e10)
    assert page.text_content("#t_gpu_hours") == f"{with_tokens.gpu_hours:,.0f} GPU-hours"
    shared = page.url
    assert "tab=train" in shared
    other = browser.new_context(viewport={"width": 1400, "height": 1300}).new_page()
    other.goto(shared)
    train_settled(other)
    assert other.is_visible("#train") and other.input_value("#t_tp") == "2"
    assert other.text_content("#t_step_time") == format_time(changed.step_time_s)
    other.context.close()
    page.fill("#t_tp", "3")
    page.wait_for_function("document.getElementById('train_error').textContent.includes('--gpus')")
    args = ["train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "3"]
    assert page.text_content("#train_error") == cli_error(*args)


def test_roofline_is_drawn(page: Any, server: str) -> None:
    pinned = "&b.model=llama-3.1-70b&b.hardware=h200-sxm&b.tp=8&b.batch=16&b.isl=2048&b.osl=256&b.weight_dtype=fp8"
    page.goto(server + "/?model=llama-3.1-70b&hardware=h100-sxm&tp=8&batch=16&isl=2048&osl=256" + pinned)
    settled(page)
    b = rl.estimate("llama-3.1-70b", "h200-sxm", tp=8, batch=16, isl=2048, osl=256, weight_dtype="fp8")
    assert format_time(b.tpot_s) in page.inner_text("#compare")
    assert page.locator("#sweep .scatterlayer .trace").count() == 2
    points = page.locator("#roofline .scatterlayer .point").count()
    expected = len(client_points())
    assert points >= expected > 10
    shot = page.locator("#roofline").screenshot()
    assert non_background_share(shot) > 0.03
    biggest = max(client_points(), key=lambda p: p["time_s"])
    trace = 3 if biggest["phase"] == "prefill" else 4  # after the bf16 / fp8 roofs
    order = [p for p in client_points() if p["phase"] == biggest["phase"]].index(biggest)
    box = page.locator(f"#roofline .scatterlayer .trace:nth-child({trace}) .point").nth(order).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # plotly listens on its drag layer
    page.wait_for_selector("#roofline .hoverlayer .hovertext")
    hover = page.text_content("#roofline .hoverlayer .hovertext") or ""
    assert biggest["name"] in hover and f"time {biggest['time']}" in hover and f"bound: {biggest['bound']}" in hover
    assert "FLOPs" in hover and "kernel:" in hover
    target = os.environ.get("ROOFLINE_UI_SCREENSHOT")
    if target:
        page.screenshot(path=target, full_page=True)


def client_points() -> list[dict[str, Any]]:
    result = rl.estimate("llama-3.1-70b", "h100-sxm", tp=8, batch=16, isl=2048, osl=256)
    return service.roofline_view(result)["points"]


def non_background_share(png: bytes) -> float:
    """The share of pixels that are not (near) white, read with matplotlib's PNG reader."""
    import io

    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    return float(np.mean(np.any(pixels < 0.94, axis=-1)))


# ---------------------------------------------------------------- the command


def test_help_does_not_import_the_web_stack() -> None:
    code = (
        "import sys\nfrom roofline.cli.app import main\nsys.argv = ['roofline', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'plotly')"
        " or m.startswith('roofline.ui')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=120)  # fmt: skip
    assert "ui         A local web page over the API" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


def test_command_prints_the_url_and_warns_on_a_public_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from roofline.cli.app import app

    served: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.extend(sockets or []))
    local = CliRunner().invoke(app, ["ui"])
    assert local.exit_code == 0, local.output
    assert local.stdout.startswith("roofline ui: http://127.0.0.1:")
    assert "warning" not in local.stderr
    port = int(local.stdout.split(":")[3].split("/")[0])
    assert served[0].getsockname() == ("127.0.0.1", port) and port > 0
    public = CliRunner().invoke(app, ["ui", "--host", "0.0.0.0"])
    assert public.exit_code == 0, public.output
    assert public.stderr == "warning: --host 0.0.0.0 serves the page to other machines (no authentication)\n"
    for sock in served:
        sock.close()


def test_command_without_the_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from typer.testing import CliRunner

    from roofline.cli.app import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "starlette" else real(name, *a))
    result = CliRunner().invoke(app, ["ui"])
    assert result.exit_code == 2
    assert result.stderr == "error: roofline ui needs the optional extra: pip install 'roofline[ui]'\n"


def test_link_fields_take_a_bare_number_as_gb_per_s_or_a_value_with_its_unit() -> None:
    from roofline.ui.service import LINK_OVERRIDES, _settings

    name, key = next(iter(LINK_OVERRIDES.items()))
    assert _settings({name: "900"}) == [f"{key}=900GB/s"]
    assert _settings({name: "1.8TB/s"}) == [f"{key}=1.8TB/s"]  # not "1.8TB/sGB/s"
