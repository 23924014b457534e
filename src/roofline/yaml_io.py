"""Safe YAML loading into pydantic models, with errors that name the file and the field."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from roofline.errors import RooflineError


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RooflineError(f"cannot read '{path}': {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RooflineError(f"'{path}' is not a UTF-8 text file; give a YAML file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise RooflineError(f"'{path}'{where} is not valid YAML; check indentation and colons") from None
    if not isinstance(data, dict):
        raise RooflineError(f"'{path}' must hold a mapping of fields (key: value), not {type(data).__name__}")
    return data


def describe_validation_error(exc: ValidationError, origin: str) -> str:
    """The most telling error of a pydantic ValidationError as one line: '<origin>: field 'a.b': message'.

    An unknown (misspelled) key is reported before the 'missing' error it usually causes.
    """
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        missing = [".".join(str(p) for p in e["loc"]) for e in errors if e["type"] == "missing"]
        message = f"unknown field (misspelled {missing[0]!r}?)" if missing else "unknown field (misspelled?)"
    elif first["type"] == "missing":
        message = "required field is missing"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"field '{loc}': " if loc else ""
    return f"{origin}: {where}{message}{more}"


def validate_into(model: type[BaseModel], data: Mapping[str, Any], origin: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RooflineError(describe_validation_error(exc, origin)) from None


def load_model_file(path: Path, kinds: Mapping[str, type[BaseModel]]) -> BaseModel:
    """Load a YAML file whose `kind:` field picks the model class among `kinds`."""
    data = read_yaml(path)
    kind = str(data.get("kind"))
    if kind not in kinds:
        raise RooflineError(f"'{path}': field 'kind' must be one of {', '.join(kinds)}, got {kind!r}")
    return validate_into(kinds[kind], data, f"'{path}'")


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.y*ml") if p.suffix in {".yaml", ".yml"})
