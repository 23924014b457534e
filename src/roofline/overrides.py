"""What-if copies of hardware and models, validated like the YAML files they come from.

- `replace_fields(obj, changes)`: what `Accelerator.replace(...)`, `System.replace(...)`,
  `Link.replace(...)` and `Workload.replace(...)` do. A key is a field (`runtime_reserve`), a
  nested field written with underscores (`memory_bandwidth` -> memory.bandwidth) or with dots
  (`**{"memory.bandwidth": ...}`), or one entry of a mapping field (`efficiency.matmul_fraction.fp8`).
  The copy is validated again by the same pydantic rules, so a bad value is one RooflineError line.
- `to_yaml(obj)`: YAML text that loads back into an equal object (quantities written exactly).
- `parse_settings(["memory.bandwidth=4TB/s", "model.num_hidden_layers=40"])` and
  `apply_settings(accelerator, workload, settings)`: the command line's `--set KEY=VALUE`.
- `scale_up.bandwidth_per_gpu=1.8TB/s` / `scale_out.bandwidth_per_gpu=50GB/s` in `--set`: a what-if
  link bandwidth (per GPU, per direction), applied to a resolved cluster by `apply_link_settings`.

Python callers work in SI: a plain number for a quantity is its SI value (`memory_bandwidth=4e12`).
`--set` reads like YAML, so there a quantity needs its unit (`--set memory.bandwidth=4TB/s`).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as replace_dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from roofline.errors import RooflineError
from roofline.units import SI_NUMBERS, Dimension, parse_quantity
from roofline.yaml_io import deep_merge, describe_validation_error, dump_yaml, model_to_data

if TYPE_CHECKING:
    from roofline.hardware_specs.cluster import Cluster
    from roofline.hardware_specs.schema import Accelerator
    from roofline.workloads.base import Workload

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str, ...]

# What a field path ends at: a nested model (a mapping given for it merges into it), a mapping
# field (its entries can be named one by one with dots), or any other value (replaced whole).
MODEL, MAPPING, VALUE = "model", "mapping", "value"


# ---- field paths ---------------------------------------------------------------------------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model class a field holds (`MemorySpec`, `Attachment | None`), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _nested_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        models = [m for m in map(_nested_model, typing.get_args(annotation)) if m is not None]
        return models[0] if len(models) == 1 else None
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_mapping(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return origin in (dict, Mapping) or annotation is dict


@lru_cache(maxsize=64)
def field_paths(model: type[BaseModel]) -> dict[Path_, str]:
    """Every field path of a model class, nested models included: ('memory', 'bandwidth') -> VALUE."""
    paths: dict[Path_, str] = {}
    for name, info in model.model_fields.items():
        nested = _nested_model(info.annotation)
        if nested is not None:
            paths[(name,)] = MODEL
            paths.update({(name, *sub): what for sub, what in field_paths(nested).items()})
        else:
            paths[(name,)] = MAPPING if _is_mapping(info.annotation) else VALUE
    return paths


def resolve_key(model: type[BaseModel], key: str) -> Path_:
    """The field path a key names; a RooflineError (without the object's name) when there is none
    or several. `memory_bandwidth` and `memory.bandwidth` both give ('memory', 'bandwidth')."""
    paths = field_paths(model)
    key = key.strip()
    if "." in key:
        path = tuple(key.split("."))
        if path in paths or (len(path) > 1 and paths.get(path[:-1]) == MAPPING and path[-1]):
            return path
        raise RooflineError(_unknown(model, key))
    matches = [p for p in paths if "_".join(p) == key]
    matches += [(*p, key[len("_".join(p)) + 1 :]) for p, what in paths.items()
                if what == MAPPING and key.startswith("_".join(p) + "_")]  # fmt: skip
    if len(matches) > 1:
        options = " or ".join(".".join(p) for p in matches)
        raise RooflineError(f"field '{key}' could mean {options}; write the dotted path")
    if not matches:
        raise RooflineError(_unknown(model, key))
    return matches[0]


def _unknown(model: type[BaseModel], key: str) -> str:
    names = [".".join(p) for p in field_paths(model)] + ["_".join(p) for p in field_paths(model)]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(dict.fromkeys(close))}?" if close else f"fields: {', '.join(model.model_fields)}"
    return f"unknown field '{key}'; {hint}"


# ---- replace -----------------------------------------------------------------------------------------


def _plain(value: Any, si_numbers: bool) -> Any:
    """Models given as values become their fields (SI floats, or exact unit strings where plain
    numbers would be refused), so they validate like the rest."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python") if si_numbers else model_to_data(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, si_numbers) for v in value)
    if isinstance(value, Mapping):
        return {k: _plain(v, si_numbers) for k, v in value.items()}
    return value


def _set(data: dict[str, Any], path: Path_, value: Any, what: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}  # an unset optional model starts empty
        node = node[part]
    old = node.get(path[-1])
    merge = what == MODEL and isinstance(old, Mapping) and isinstance(value, Mapping)
    node[path[-1]] = deep_merge(old, value) if merge else value  # type: ignore[arg-type]


def origin_of(obj: BaseModel) -> str:
    return str(getattr(obj, "id", None) or type(obj).__name__)


def replace_fields(obj: M, changes: Mapping[str, Any], si_numbers: bool = True) -> M:
    """A copy of `obj` (same class) with `changes`, validated by the class's own rules.

    With `si_numbers` (Python callers) a plain number for a quantity is its SI value; without it
    (the command line, like YAML) a quantity needs its unit. Errors: one line naming the object
    and the field, e.g. "h100-sxm: field 'memory.bandwidth': Input should be greater than 0".
    """
    model, origin = type(obj), origin_of(obj)
    paths = field_paths(model)
    data = obj.model_dump(mode="python") if si_numbers else model_to_data(obj)
    for key, value in changes.items():
        try:
            path = resolve_key(model, key)
        except RooflineError as exc:
            raise RooflineError(f"{origin}: {exc}") from None
        _set(data, path, _plain(value, si_numbers), paths.get(path, VALUE))
    try:
        return model.model_validate(data, context={SI_NUMBERS: si_numbers})
    except ValidationError as exc:
        raise RooflineError(describe_validation_error(exc, origin)) from None


# ---- YAML out --------------------------------------------------------------------------------------------


def to_yaml(obj: BaseModel) -> str:
    """YAML text of an Accelerator, System, Link or Workload that loads back into an equal object
    (`--hardware file.yaml`, `--model file.yaml`): quantities with units, written exactly."""
    return dump_yaml(model_to_data(obj))


# ---- --set KEY=VALUE --------------------------------------------------------------------------------------

SET_USAGE = ("--set KEY=VALUE takes an accelerator field (memory.bandwidth=4TB/s, compute.bf16=1.2PFLOP/s, "
             "runtime_reserve=4GiB), a link bandwidth per GPU per direction (scale_up.bandwidth_per_gpu=900GB/s, "
             "scale_out.bandwidth_per_gpu=50GB/s) or a model field (model.num_hidden_layers=40)")  # fmt: skip
# `--set` keys of the fabrics a GPU reaches its peers by -> the Cluster field holding that fabric
LINK_KEYS = {"scale_up.bandwidth_per_gpu": "scale_up", "scale_out.bandwidth_per_gpu": "scale_out"}


@dataclass(frozen=True)
class Settings:
    """`--set` items by target: accelerator fields, model fields (key -> value, as given) and link
    bandwidths (fabric, 'scale_up' or 'scale_out' -> bytes/s per GPU per direction)."""

    hardware: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    links: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.hardware or self.model or self.links)


def _scalar(text: str) -> Any:
    """A YAML scalar: 40 -> 40, true -> True, 4TB/s -> '4TB/s', {fp8: 0.6} -> a mapping."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _model_classes() -> list[type[BaseModel]]:
    from roofline.workloads import WORKLOAD_KINDS

    return list(WORKLOAD_KINDS.values())


def _check_model_key(key: str) -> None:
    problems: list[str] = []
    for kind in _model_classes():
        try:
            resolve_key(kind, key)
            return
        except RooflineError as exc:
            problems.append(str(exc))
    hints = [p for p in problems if "did you mean" in p or "could mean" in p]
    raise RooflineError((hints or problems or [f"unknown field '{key}'"])[0])


def parse_settings(settings: Sequence[str]) -> Settings:
    """`--set` items into accelerator and model changes; keys are checked, values parsed as YAML scalars.

    `memory.bandwidth=4TB/s` and `memory_bandwidth=4TB/s` change the accelerator (an optional
    `hardware.` prefix is allowed); `model.num_hidden_layers=40` changes the model;
    `scale_up.bandwidth_per_gpu=900GB/s` the scale-up fabric's bandwidth (per GPU, per direction).
    """
    from roofline.hardware_specs.schema import Accelerator

    hardware: dict[str, Any] = {}
    model: dict[str, Any] = {}
    links: dict[str, float] = {}
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RooflineError(f"--set {item!r} is not KEY=VALUE; {SET_USAGE}")
        if key in LINK_KEYS:
            links[LINK_KEYS[key]] = _link_bandwidth(item, text.strip())
            continue
        target, name = (model, key.removeprefix("model.")) if key.startswith("model.") else (hardware, key)
        name = name.removeprefix("hardware.")
        try:
            if not name:
                raise RooflineError("the field name is empty")
            _check_model_key(name) if target is model else resolve_key(Accelerator, name)
        except RooflineError as exc:
            raise RooflineError(f"--set {item!r}: {exc}; {SET_USAGE}") from None
        target[name] = _scalar(text.strip())
    return Settings(hardware=hardware, model=model, links=links)


def _link_bandwidth(item: str, text: str) -> float:
    """bytes/s of a link-bandwidth setting's value (a bandwidth with its unit, above zero)."""
    try:
        bandwidth = parse_quantity(text, Dimension.BANDWIDTH)
    except ValueError as exc:
        raise RooflineError(f"--set {item!r}: {exc}") from None
    if not 0 < bandwidth < float("inf"):
        raise RooflineError(f"--set {item!r}: a link bandwidth must be above 0")
    return bandwidth


def apply_link_settings(cluster: Cluster, links: Mapping[str, float]) -> Cluster:
    """The cluster with what-if link bandwidths (fabric -> bytes/s per GPU per direction): each
    fabric's link is a copy whose per-port bandwidth gives that per-GPU figure over the GPU's ports
    (its latency, achievable fraction and wiring unchanged). A fabric the system lacks is an error."""
    changed: dict[str, Any] = {}
    for name, bytes_per_s in links.items():
        fabric = getattr(cluster, name)
        if fabric is None:
            key = next(k for k, v in LINK_KEYS.items() if v == name)
            raise RooflineError(f"--set {key}: system '{cluster.system.id}' has no {name.replace('_', '-')} fabric")
        link = replace_fields(fabric.link, {"bandwidth_per_port": bytes_per_s / fabric.ports_per_gpu})
        changed[name] = replace_dataclass(fabric, link=link)
    return replace_dataclass(cluster, **changed) if changed else cluster


def apply_settings(accelerator: Accelerator, workload: Workload, settings: Settings) -> tuple[Accelerator, Workload]:
    """The accelerator and the model with the `--set` changes (each unchanged when none name it).

    The command line reads like YAML: a quantity needs its unit (`--set runtime_reserve=4GiB`).
    """
    if settings.hardware:
        accelerator = replace_fields(accelerator, settings.hardware, si_numbers=False)
    if settings.model:
        workload = replace_fields(workload, settings.model, si_numbers=False)
    return accelerator, workload
