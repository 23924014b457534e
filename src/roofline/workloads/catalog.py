"""Model catalog: packaged YAML (workloads/data) plus user files by path or ROOFLINE_MODEL_PATH."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from roofline.errors import RooflineError, UnknownIdError
from roofline.workloads.base import WORKLOAD_KINDS, Workload
from roofline.yaml_io import load_model_file, yaml_files

DATA_DIR = Path(__file__).parent / "data"
ENV_VAR = "ROOFLINE_MODEL_PATH"


def load_workload_file(path: Path) -> Workload:
    item = load_model_file(path, WORKLOAD_KINDS)
    assert isinstance(item, Workload)
    return item


@lru_cache(maxsize=8)
def _load(user_dirs: tuple[Path, ...]) -> dict[str, Workload]:
    models: dict[str, Workload] = {}
    for directory in (DATA_DIR, *user_dirs):
        for path in yaml_files(directory):
            workload = load_workload_file(path)
            models[workload.id] = workload
    return models


def model_catalog() -> dict[str, Workload]:
    raw = os.environ.get(ENV_VAR, "")
    dirs = tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())
    for directory in dirs:
        if not directory.is_dir():
            raise RooflineError(f"{ENV_VAR} names '{directory}', which is not a directory; fix or unset it")
    return _load(dirs)


def get_workload(model: str) -> Workload:
    """A catalog id, or a path to a workload YAML file."""
    if model.endswith((".yaml", ".yml")):
        path = Path(model)
        if not path.is_file():
            raise RooflineError(f"model file '{model}' does not exist")
        return load_workload_file(path)
    catalog = model_catalog()
    if model not in catalog:
        raise UnknownIdError("model", model, list(catalog))
    return catalog[model]


def get_autoregressive(model: str) -> Workload:
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
