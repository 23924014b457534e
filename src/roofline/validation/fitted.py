"""Which measurement rows a constant was fitted on, so `validate` can tell them from held-out rows.

A YAML file of the package states what it fitted next to the constant, under the key `fitted_on`
at any depth:

    fitted_on: [p0368..p0369]                      # the constants of this mapping, fitted on these rows
    fitted_on: {memory_bandwidth_fraction: [p0368, p0369], matmul_fraction.fp8: [p0345]}

Each entry is a case id or an inclusive range `first..last` of ids that share a prefix and differ
in a zero-padded number (`ka00001..ka00096`). `fitted_rows()` collects every such list of every
YAML file under the package (hardware, engines, communication libraries, kernel curves, ...) into
case id -> the constants fitted on it ("<file stem>: <key path>"). A row listed there is scored,
but the summary reports the error on the other rows apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from roofline.errors import RooflineError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
KEY = "fitted_on"
_ID = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


def expand_ids(entry: str) -> list[str]:
    """`p0368` -> [p0368]; `p0368..p0371` -> [p0368, p0369, p0370, p0371]. RooflineError for a bad range."""
    first, sep, last = (part.strip() for part in entry.partition(".."))
    if not sep:
        return [first]
    a, b = _ID.match(first), _ID.match(last)
    if a is None or b is None or a["prefix"] != b["prefix"] or int(a["number"]) > int(b["number"]):
        raise RooflineError(f"fitted_on range '{entry}' must be 'first..last' of ids with one prefix, first <= last")
    width = len(a["number"])
    return [f"{a['prefix']}{n:0{width}d}" for n in range(int(a["number"]), int(b["number"]) + 1)]


def _entries(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(constant, entry) pairs of one `fitted_on` value: a list (the mapping's constants) or a mapping."""
    if isinstance(value, list):
        for entry in value:
            yield where, str(entry)
    elif isinstance(value, dict):
        for constant, entries in value.items():
            yield from _entries(
                entries if isinstance(entries, list) else [entries], f"{where}.{constant}" if where else str(constant)
            )
    else:
        raise RooflineError(f"{where}: fitted_on must be a list of case ids or a mapping of constant -> ids")


def _walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == KEY:
                yield from _entries(value, path)
            else:
                yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{path}[{index}]")


def fitted_in(data: Any, name: str) -> dict[str, list[str]]:
    """case id -> constants of one parsed YAML document named `name`."""
    rows: dict[str, list[str]] = {}
    for constant, entry in _walk(data, ""):
        label = f"{name}: {constant}" if constant else name
        for case_id in expand_ids(entry):
            rows.setdefault(case_id, []).append(label)
    return rows


@lru_cache(maxsize=1)
def fitted_rows() -> dict[str, tuple[str, ...]]:
    """Every row some packaged constant was fitted on -> the constants, from all package YAML files."""
    from roofline.yaml_io import read_yaml

    merged: dict[str, list[str]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if KEY not in text:
            continue
        for case_id, constants in fitted_in(read_yaml(path), path.stem).items():
            merged.setdefault(case_id, []).extend(constants)
    return {case_id: tuple(dict.fromkeys(constants)) for case_id, constants in merged.items()}


def compress_ids(case_ids: list[str] | tuple[str, ...]) -> list[str]:
    """The inverse of expand_ids over a list: runs of consecutive ids as `first..last`, in sorted order."""
    parsed = sorted((m["prefix"], int(m["number"]), len(m["number"]), cid) for cid in case_ids
                    if (m := _ID.match(cid)) is not None)  # fmt: skip
    out: list[str] = []
    run: list[tuple[str, int, int, str]] = []
    for item in parsed:
        if run and (item[0], item[1], item[2]) == (run[-1][0], run[-1][1] + 1, run[-1][2]):
            run.append(item)
            continue
        if run:
            out.append(run[0][3] if len(run) == 1 else f"{run[0][3]}..{run[-1][3]}")
        run = [item]
    if run:
        out.append(run[0][3] if len(run) == 1 else f"{run[0][3]}..{run[-1][3]}")
    return out
