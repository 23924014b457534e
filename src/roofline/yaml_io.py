"""Safe YAML loading into pydantic models, with errors that name the file and the field."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from roofline.errors import RooflineError, UnknownIdError
from roofline.units import EXACT_UNITS

# libyaml's scanner and parser when PyYAML has them (several times faster), under the same safe
# constructor: the data are the same as yaml.safe_load's
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Finds the entry a file's `base:` names: (base id, the file's kind or None) -> the catalog entry;
# raises UnknownIdError for an id it does not hold.
BaseLookup = Callable[[str, str | None], BaseModel]


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RooflineError(f"cannot read '{path}': {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RooflineError(f"'{path}' is not a UTF-8 text file; give a YAML file") from None
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)
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


def validate_into(
    model: type[BaseModel], data: Mapping[str, Any], origin: str, context: dict[str, Any] | None = None
) -> BaseModel:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise RooflineError(describe_validation_error(exc, origin)) from None


def model_to_data(item: BaseModel) -> dict[str, Any]:
    """The mapping a YAML file would hold to load `item` again: quantities as exact unit strings,
    enums as their values, and fields left out where they are None by default."""
    data = item.model_dump(mode="json", context={EXACT_UNITS: True})
    return _drop_default_nones(item, data)


def _drop_default_nones(item: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    fields = type(item).model_fields
    out: dict[str, Any] = {}
    for name, value in data.items():
        field = fields.get(name)
        if value is None and field is not None and not field.is_required() and field.get_default() is None:
            continue
        nested = getattr(item, name, None)
        if isinstance(nested, BaseModel) and isinstance(value, dict):
            value = _drop_default_nones(nested, value)
        elif isinstance(nested, list) and isinstance(value, list):
            pairs = zip(nested, value, strict=True)
            value = [_drop_default_nones(n, v) if isinstance(n, BaseModel) else v for n, v in pairs]
        out[name] = value
    return out


def dump_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=120)


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` over `base`: mappings merge key by key, everything else (lists too) replaces."""
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        merged[key] = deep_merge(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return merged


def merge_base(data: dict[str, Any], origin: str, find_base: BaseLookup | None) -> dict[str, Any]:
    """A file that says `base: ID` gives only what it changes: the rest comes from the catalog entry ID.

    `kind` may be left out (the base's is used); `id` is required (the copy needs its own name,
    or the base's own id to replace the catalog entry).
    """
    if "base" not in data:
        return data
    data = dict(data)
    base_id = data.pop("base")
    if not isinstance(base_id, str) or not base_id.strip():
        raise RooflineError(f"{origin}: field 'base' must be a catalog id, got {base_id!r}")
    if "id" not in data:
        raise RooflineError(f"{origin}: field 'id' is required with base: {base_id} (give the new entry its own id)")
    if find_base is None:
        raise RooflineError(f"{origin}: field 'base' is not supported here")
    kind = data.get("kind")
    try:
        base = find_base(base_id, str(kind) if kind is not None else None)
    except UnknownIdError as exc:
        raise RooflineError(f"{origin}: field 'base': {exc}") from None
    return deep_merge(model_to_data(base), data)


def in_base_order(paths: Iterable[Path], known: Callable[[str], bool]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The files' mappings in name order, except that a file whose `base:` is the id of a later file
    waits for it. `known(id)` says whether the catalog being built holds an id yet (the caller adds
    each file before asking for the next). A cycle of bases comes out as is and fails on its base."""
    pending = {path: read_yaml(path) for path in paths}
    while pending:
        path = next((p for p, d in pending.items() if not _waits(d, known, pending)), next(iter(pending)))
        yield path, pending.pop(path)


def _waits(data: Mapping[str, Any], known: Callable[[str], bool], pending: Mapping[Path, Mapping[str, Any]]) -> bool:
    base = data.get("base")
    return (isinstance(base, str) and not known(base)
            and any(other.get("id") == base and other is not data for other in pending.values()))  # fmt: skip


def load_model_data(
    data: dict[str, Any], origin: str, kinds: Mapping[str, type[BaseModel]], find_base: BaseLookup | None = None
) -> BaseModel:
    """Validate the mapping of one file whose `kind:` field picks the model class among `kinds`."""
    data = merge_base(data, origin, find_base)
    kind = str(data.get("kind"))
    if kind not in kinds:
        raise RooflineError(f"{origin}: field 'kind' must be one of {', '.join(kinds)}, got {kind!r}")
    return validate_into(kinds[kind], data, origin)


def load_model_file(path: Path, kinds: Mapping[str, type[BaseModel]], find_base: BaseLookup | None = None) -> BaseModel:
    """Load a YAML file whose `kind:` field picks the model class among `kinds`; `base: ID` (with
    `find_base`) starts from a catalog entry."""
    return load_model_data(read_yaml(path), f"'{path}'", kinds, find_base)


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.y*ml") if p.suffix in {".yaml", ".yml"})


# The measurement rows a constant of a YAML file was fitted on (roofline.validation.fitted reads them):
# a list of case ids / `first..last` ranges for the constants of that mapping, or constant -> such a list.
FittedOn = list[str] | dict[str, list[str]]
