"""`roofline report`: a self-contained HTML page, checked as text and in a real headless browser.

The browser is Chromium from the system packages. When neither `chromium` nor `chromium-browser` is
on PATH and we are root with apt-get, the session fixture installs it once (`apt-get update` then
`apt-get install chromium`, a minute or two); otherwise the browser tests are skipped with the
reason. With Chromium present the browser tests take about 15 s.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from roofline.cli.app import app
from roofline.hardware_specs import resolve_cluster
from roofline.reports import html
from tests.conftest import run

runner = CliRunner()
ARGS = ["--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "16", "--isl", "2048",
        "--osl", "256"]  # fmt: skip
INSTALL_TIMEOUT_S = 900
BROWSER_TIMEOUT_S = 60
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---- the browser -------------------------------------------------------------------------------


def _on_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _apt(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _install_chromium() -> str | None:
    """apt-get update, check that the package exists, install it; the reason when it cannot."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "Chromium is not installed and cannot be installed here (needs root and apt-get)"
    lock = "-o", "DPkg::Lock::Timeout=120"
    try:
        update = _apt("apt-get", "update", "-qq", *lock, timeout=300)
        if update.returncode != 0:
            return f"apt-get update failed: {update.stderr.strip()[-300:]}"
        policy = _apt("apt-cache", "policy", "chromium", timeout=60).stdout
        if "Candidate:" not in policy or "Candidate: (none)" in policy:
            return "no 'chromium' package in the apt sources"
        install = _apt("apt-get", "install", "-y", "-qq", "--no-install-recommends", *lock, "chromium",
                       timeout=INSTALL_TIMEOUT_S)  # fmt: skip
        if install.returncode != 0:
            return f"apt-get install chromium failed: {install.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired as exc:
        return f"installing Chromium timed out ({exc.cmd[0]} after {exc.timeout:.0f} s)"
    return None if _on_path() else "apt-get installed chromium but it is not on PATH"


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _on_path()
    if path is None:
        reason = _install_chromium()
        path = _on_path()
        if path is None:
            pytest.skip(f"browser test skipped: {reason}")
    assert path is not None
    return path


def _browser(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", "--enable-logging=stderr",
               "--v=0", *args]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _console_errors(stderr: str) -> list[str]:
    """Page errors Chromium logs: uncaught script errors and failed loads (net::ERR_...)."""
    return [line for line in stderr.splitlines() if "Uncaught" in line or re.search(r"\bnet::ERR_|\bERR_FILE", line)]


# ---- the page ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = runner.invoke(app, ["report", *ARGS, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stderr and "warning" not in result.stderr
    return out


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text
    assert not re.search(r"<script|<link|<iframe|@import|url\(", text, re.IGNORECASE)
    for src in re.findall(r'src="([^"]*)"', text):
        assert src.startswith("data:image/png;base64,")


def test_page_content(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for heading in ("Summary", "Memory per GPU", "Figures", "Operators", "Assumptions",
                    "Hardware numbers and their sources"):  # fmt: skip
        assert f">{heading}" in text, heading
    for fact in ("llama-3.1-70b", "h100-sxm", "dgx-h100", "tp 8, pp 1", "weights bf16", "roofline ", "UTC",
                 "prefill of the batch (last request", "TPOT (mean decode step)", "output tokens/s", "fits in memory",
                 "Prefill of the batch", "One decode step", "qkv_proj", "Engine token budget per step",
                 "Achievable memory bandwidth", "Kernel-time model"):  # fmt: skip
        assert fact in text, fact
    cluster = resolve_cluster("h100-sxm", num_gpus=8)
    acc = cluster.accelerator
    for source in (acc.memory.source, acc.compute.source, acc.efficiency.source, cluster.system.source,
                   cluster.scale_up.link.source):  # fmt: skip
        first_words = escape(source.split("(")[0].strip())
        assert first_words in text, source
    assert '<a href="https://www.nvidia.com/en-us/data-center/h100/">' in text


def test_embedded_figures_are_real_pngs(page: Path) -> None:
    images = _images(page.read_text(encoding="utf-8"))
    assert len(images) == 3
    for png in images:
        assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.width >= 500 and image.height >= 300
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 20  # a drawing, not a blank


def test_page_in_a_headless_browser(page: Path, chromium: str, tmp_path: Path) -> None:
    dom = _browser(chromium, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert "<title>roofline report: llama-3.1-70b on 8 x h100-sxm (dgx-h100)</title>" in dom.stdout
    assert "TTFT (mean request, batch arriving at once)" in dom.stdout and "qkv_proj" in dom.stdout
    assert dom.stdout.count("<img") == 3 and dom.stdout.count('src="data:image/png;base64,') == 3
    assert _console_errors(dom.stderr) == []
    shot = tmp_path / "page.png"
    taken = _browser(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000",
                     "--hide-scrollbars", page.as_uri())  # fmt: skip
    assert _console_errors(taken.stderr) == []
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 50  # text, tables and a figure, not a blank page
    assert max(count for count, _ in colors) < 0.97 * 1280 * 2000
    if os.environ.get("ROOFLINE_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["ROOFLINE_KEEP_SCREENSHOT"])


# ---- the builder and the command ---------------------------------------------------------------


def test_text_is_escaped() -> None:
    text = html.estimate_page(run(), [("model", "<script>alert(1)</script> & co")], [("note", 'a "b" <c>')],
                              [("Memory", "<x>", "see https://example.com/a?b=1&c=2 <now>")],
                              [("<fig> & title", PNG_SIGNATURE)], "max(a, b) < c")  # fmt: skip
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    assert "a &quot;b&quot; &lt;c&gt;" in text and "&lt;fig&gt; &amp; title" in text
    assert '<a href="https://example.com/a?b=1&amp;c=2">' in text and "&lt;now&gt;" in text
    assert "max(a, b) &lt; c" in text


def test_without_the_plotting_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import roofline.reports

    monkeypatch.setitem(sys.modules, "roofline.reports.plots", None)  # the import raises ImportError
    monkeypatch.delattr(roofline.reports, "plots", raising=False)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning: no figures" in result.stderr
    text = out.read_text(encoding="utf-8")
    assert "No figures in this report" in text and "<img" not in text and "TTFT" in text


def _error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_refuses_to_overwrite_and_non_html_names(tmp_path: Path) -> None:
    existing = tmp_path / "old.html"
    existing.write_text("keep me")
    assert "--force" in _error(["report", *ARGS, "-o", str(existing)])
    assert existing.read_text() == "keep me"
    assert ".html" in _error(["report", *ARGS, "-o", str(tmp_path / "report.pdf")])
    assert "unknown model" in _error(["report", "--model", "nope", "-o", str(tmp_path / "r.html")])
    result = runner.invoke(app, ["report", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--no-figures",
                                 "-o", str(existing), "--force"])  # fmt: skip
    assert result.exit_code == 0 and "TTFT" in existing.read_text()


@pytest.fixture(autouse=True)
def _no_user_catalog_dirs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)
    yield
