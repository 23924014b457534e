"""Request presets for diffusion transformers (`--preset 1024px`, `--preset 720p-5s`): sizes in
`dit_presets.yaml`; a video preset's seconds become frames at the model's frame rate."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from roofline.errors import RooflineError, UnknownIdError
from roofline.workloads.diffusion_dit import DiffusionTransformer, Request
from roofline.yaml_io import read_yaml, validate_into

PRESETS_FILE = Path(__file__).parent / "dit_presets.yaml"


class Preset(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    seconds: float | None = Field(default=None, gt=0, description="video length; None: an image")
    note: str = ""


@lru_cache(maxsize=1)
def presets() -> dict[str, Preset]:
    raw = read_yaml(PRESETS_FILE)
    return {name: validate_into(Preset, spec, f"preset '{name}'") for name, spec in raw.items()}  # type: ignore[misc]


def parse_size(text: str, option: str, parts: int) -> tuple[int, ...]:
    """'1024x1024' (parts 2) or '1280x720x81' (parts 3) as positive integers."""
    match = re.fullmatch(r"\s*" + r"\s*[xX]\s*".join([r"(\d+)"] * parts) + r"\s*", text)
    if not match:
        shape = "WxH" if parts == 2 else "WxHxF"
        raise RooflineError(f"{option} must look like {shape}, e.g. {'1024x1024' if parts == 2 else '1280x720x81'}")
    values = tuple(int(v) for v in match.groups())
    if min(values) < 1:
        raise RooflineError(f"{option}: every size must be at least 1")
    return values


def frames_for(dit: DiffusionTransformer, seconds: float) -> int:
    """Frames of `seconds` of video at the model's rate, 4n+1 for a causal VAE (Wan: 5 s -> 81)."""
    if dit.frames_per_second is None:
        raise RooflineError(f"{dit.id} has no frames_per_second in its YAML; give --video WxHxF instead")
    frames = round(dit.frames_per_second * seconds)
    stride = dit.vae_stride[0]
    if dit.causal_time:
        return stride * max(1, round(frames / stride)) + 1
    return max(1, frames)


def preset_request(dit: DiffusionTransformer, name: str, batch: int) -> Request:
    table = presets()
    if name not in table:
        raise UnknownIdError("preset", name, list(table))
    p = table[name]
    if p.seconds is None:
        return Request(width=p.width, height=p.height, frames=1, batch=batch)
    if not dit.is_video:
        raise RooflineError(f"{dit.id} makes images: preset '{name}' is a video; pick an image preset "
                            f"({', '.join(n for n, q in table.items() if q.seconds is None)})")  # fmt: skip
    return Request(width=p.width, height=p.height, frames=frames_for(dit, p.seconds), batch=batch)
