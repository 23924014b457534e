"""The documentation runs: every ```python block of docs/python-api.md (in order, in one namespace,
from the repository root; blocks fenced ```python no-run are shown, not run) and the notebook
examples/capacity-planning.ipynb (executed by a Jupyter kernel on this interpreter)."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "python-api.md"
NOTEBOOK = ROOT / "examples" / "capacity-planning.ipynb"
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the block's first code line in the Markdown file
    info: str  # the fence's info string: "python", "python no-run", "console" ...
    code: str

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def runs(self) -> bool:
        return self.language == "python" and "no-run" not in self.info.split()[1:]


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with the line each one's code starts on."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        fence, info, start = opened["fence"], opened["info"].strip(), i + 1
        body: list[str] = []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence[0] * len(fence))
                                      and set(lines[i].strip()) == {fence[0]}):  # fmt: skip
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{DOC.name}:{start}: the code block opened here is never closed")
        blocks.append(Block(start + 1, info, "\n".join(body) + "\n"))
        i += 1
    return blocks


def test_code_blocks_are_found_with_their_lines() -> None:
    text = "intro\n```python\na = 1\n```\n\n```python no-run\nboom()\n```\n````console\n$ x\n````\n"
    blocks = code_blocks(text)
    assert [(b.line, b.info, b.runs) for b in blocks] == [(3, "python", True), (7, "python no-run", False),
                                                          (10, "console", False)]  # fmt: skip
    assert blocks[0].code == "a = 1\n"


@pytest.fixture
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog only (no user directories), the repository root as the working directory."""
    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)
    monkeypatch.chdir(ROOT)


@pytest.mark.usefixtures("_plain_environment")
def test_python_api_page_runs() -> None:
    """Each block runs after the ones before it, as a reader would paste them into one session.
    A failing block names its line in the page; its traceback points at the page's lines."""
    blocks = [b for b in code_blocks(DOC.read_text(encoding="utf-8")) if b.runs]
    assert len(blocks) >= 15, "docs/python-api.md lost its examples"
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    started = time.perf_counter()
    for block in blocks:
        # pad so that line numbers in the traceback are the page's own
        code = compile("\n" * (block.line - 1) + block.code, str(DOC.relative_to(ROOT)), "exec")
        try:
            exec(code, namespace)
        except Exception as exc:
            exc.add_note(f"in the python block of {DOC.relative_to(ROOT)} at line {block.line}")
            raise
    elapsed = time.perf_counter() - started
    assert elapsed < 60, f"docs/python-api.md takes {elapsed:.0f} s to run; keep its examples quick"


def test_no_run_blocks_are_few_and_still_python() -> None:
    """Blocks that are not run are at least valid Python, and stay the exception."""
    shown = [b for b in code_blocks(DOC.read_text(encoding="utf-8")) if b.language == "python" and not b.runs]
    assert len(shown) <= 3, [b.line for b in shown]
    for block in shown:
        compile(block.code, f"{DOC.name}:{block.line}", "exec")


# ---- the notebook ----------------------------------------------------------------------------------------


def test_notebook_is_committed_without_outputs() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has no code"
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the notebook's outputs"


def test_capacity_planning_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executes every cell in a kernel of this very interpreter (a kernelspec written to a temporary
    directory, so no installed or user kernelspec decides which Python runs), from the notebook's
    folder as Jupyter would. A cell that raises fails the test with its traceback."""
    import nbformat
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.delenv("ROOFLINE_HARDWARE_PATH", raising=False)
    monkeypatch.delenv("ROOFLINE_MODEL_PATH", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend: figures become outputs
    kernels = tmp_path / "kernels"
    write_kernel_spec(path=str(kernels / "roofline-test"))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    spec = specs.get_kernel_spec("roofline-test")
    assert spec.argv[0] == sys.executable, spec.argv
    manager = KernelManager(kernel_name="roofline-test", kernel_spec_manager=specs)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, km=manager, timeout=120, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})  # fmt: skip
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{NOTEBOOK.relative_to(ROOT)} failed:\n{exc}")
    elapsed = time.perf_counter() - started
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook draws no figure"
    assert elapsed < 90, f"the notebook takes {elapsed:.0f} s; keep it quick"


@pytest.mark.usefixtures("_plain_environment")
def test_typed_user_script_runs() -> None:
    """tests/typing/api_user.py is type-checked by `make typecheck`; here it runs, so its claims hold."""
    import runpy

    runpy.run_path(str(ROOT / "tests" / "typing" / "api_user.py"), run_name="__main__")
