"""Model catalog: packaged YAML (workloads/data) plus user files by path or ROOFLINE_MODEL_PATH.

A model YAML may say `base: ID` and give only the fields it changes (yaml_io.merge_base); a
local Hugging Face config.json is imported (never downloaded) wherever a model is named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from roofline.errors import RooflineError, UnknownIdError
from roofline.workloads.base import WORKLOAD_KINDS, Workload
from roofline.yaml_io import BaseLookup, in_base_order, load_model_data, read_yaml, yaml_files

DATA_DIR = Path(__file__).parent / "data"
ENV_VAR = "ROOFLINE_MODEL_PATH"


def _base_finder(models: Mapping[str, Workload]) -> BaseLookup:
    def find_base(base_id: str, kind: str | None) -> BaseModel:
        if base_id not in models:
            raise UnknownIdError("model", base_id, list(models))
        return models[base_id]

    return find_base


def _load_data(data: dict[str, Any], origin: str, models: Mapping[str, Workload]) -> Workload:
    if "base" in data and data.get("id") != data["base"] and "aliases" not in data:
        data = {**data, "aliases": None}  # a copy under a new id does not take its base's other names
    item = load_model_data(data, origin, WORKLOAD_KINDS, _base_finder(models))
    assert isinstance(item, Workload)
    return item


def load_workload_file(path: Path) -> Workload:
    """A model YAML; `base: ID` starts from the catalog model ID."""
    data = read_yaml(path)
    return _load_data(data, f"'{path}'", model_catalog() if "base" in data else {})


@lru_cache(maxsize=8)
def _load(user_dirs: tuple[Path, ...]) -> dict[str, Workload]:
    models: dict[str, Workload] = {}
    for directory in (DATA_DIR, *user_dirs):
        for path, data in in_base_order(yaml_files(directory), models.__contains__):
            workload = _load_data(data, f"'{path}'", models)
            models[workload.id] = workload
    return models


def _user_dirs() -> tuple[Path, ...]:
    raw = os.environ.get(ENV_VAR, "")
    dirs = tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())
    for directory in dirs:
        if not directory.is_dir():
            raise RooflineError(f"{ENV_VAR} names '{directory}', which is not a directory; fix or unset it")
    return dirs


def model_catalog() -> dict[str, Workload]:
    return _load(_user_dirs())


@lru_cache(maxsize=64)
def _packaged_alone(model_id: str) -> Workload | None:
    """The packaged model `model_id` from its own file (named by its id; a test checks they all are),
    read alone: the entry the whole catalog would hold, without reading and building the others.
    None where that takes the catalog (no such file, or a `base:`)."""
    path = DATA_DIR / f"{model_id}.yaml"
    if Path(model_id).name != model_id or not path.is_file():
        return None
    data = read_yaml(path)
    if "base" in data or data.get("id") != model_id:
        return None
    return _load_data(data, f"'{path}'", {})


def _catalog_entry(model_id: str) -> Workload | None:
    if not _user_dirs() and _load.cache_info().currsize == 0:  # packaged catalog only, not read yet
        alone = _packaged_alone(model_id)
        if alone is not None:
            return alone
    models = model_catalog()
    if model_id in models:
        return models[model_id]
    return _by_other_name(models, model_id)


def _by_other_name(models: Mapping[str, Workload], name: str) -> Workload | None:
    """The model whose id, or one of whose `aliases`, is `name` up to letter case (ids first)."""
    key = name.casefold()
    for names_of in (lambda w: [w.id], lambda w: w.aliases or []):
        found = sorted({w.id for w in models.values() if key in {n.casefold() for n in names_of(w)}})
        if len(found) > 1:
            raise RooflineError(f"model name '{name}' is claimed by {', '.join(found)}; give one of these ids")
        if found:
            return models[found[0]]
    return None


MODEL_SUFFIXES = (".yaml", ".yml", ".json")


def get_workload(model: str | os.PathLike[str] | Workload) -> Workload:
    """A model by catalog id (or, up to letter case, an id or one of a model's `aliases`), model YAML
    path, local Hugging Face config.json path, or object (returned as is)."""
    if isinstance(model, Workload):
        return model
    if not isinstance(model, str) or model.endswith(MODEL_SUFFIXES):
        return load_workload_path(Path(model))
    entry = _catalog_entry(model)
    if entry is not None:
        return entry
    if Path(model).exists():
        return load_workload_path(Path(model))
    raise UnknownIdError("model", model, list(model_catalog()))


def load_workload_path(path: Path) -> Workload:
    """A model YAML file (`base:` allowed) or a Hugging Face config.json (imported, not downloaded)."""
    if path.is_dir():
        hint = f"; give {path / 'config.json'}" if (path / "config.json").is_file() else ""
        raise RooflineError(f"model path '{path}' is a directory, not a model YAML or config.json{hint}")
    if not path.is_file():
        raise RooflineError(f"model file '{path}' does not exist")
    if path.suffix.lower() == ".json":
        return Workload.from_hf_config(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return load_workload_file(path)
    raise RooflineError(f"model file '{path}' must be a model YAML (.yaml) or a Hugging Face config (.json)")


def get_autoregressive(model: str | os.PathLike[str] | Workload) -> Workload:
    """`get_workload` for the commands that model autoregressive serving (memory, serve, plan, sweep,
    plot, report, validate): diffusion kinds are refused with the way to estimate them."""
    workload = get_workload(model)
    kind = workload.kind
    if kind == "dit":
        raise RooflineError(f"{workload.id} is a diffusion transformer (image/video) and this command models "
                            f"autoregressive language models; use roofline estimate --model {workload.id} "
                            "--resolution WxH | --video WxHxF | --preset NAME")  # fmt: skip
    if kind == "diffusion_lm":
        raise RooflineError(f"{workload.id} is a diffusion language model and this command models autoregressive "
                            f"decoding; use roofline estimate --model {workload.id} --gen-len N --steps S "
                            "--block-len B --cache none|prefix|dual")  # fmt: skip
    return workload
