"""The launch data: per runtime, the engine version it describes and, per costed setting, the flag
(or extra-options key) that engine's own documentation names for it, with its source.

Files: `simulator/data/launch/<runtime>.yaml`; `hf_repos.yaml` maps catalog models to the Hugging
Face repository their launch command loads."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from roofline.errors import UnknownIdError
from roofline.yaml_io import read_yaml, validate_into

DATA_DIR = Path(__file__).resolve().parents[1] / "simulator" / "data" / "launch"
HF_REPOS_FILE = "hf_repos.yaml"

Form = Literal["value", "switch", "bool", "list", "json", "constant", "launcher"]
Scalar = bool | int | float | str


class SettingFlag(BaseModel):
    """How one costed setting reaches the engine: a command-line flag, a key of the extra options
    file (`option`, dotted for nesting) or a launcher put before the command.

    form: value (`--flag V`), switch (`--flag` when the value is > 1 or true), bool (`--flag` when
    true, `off_flag` when false), list (`--flag 1 2 4`), json (`--flag '{"key": V}'`), constant
    (`constant` whenever the setting has a value), launcher (`launcher` with {value}, before the
    command)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    setting: str = Field(description="a LaunchConfig field or property")
    flag: str | None = None
    option: str | None = None
    launcher: str | None = None
    form: Form = "value"
    off_flag: str | None = None
    key: str | None = Field(default=None, description="json form: the key of the JSON object")
    values: dict[str, str] | None = Field(default=None, description="roofline value -> the engine's spelling")
    missing: str | None = Field(default=None, description="what to do for a value `values` does not spell")
    default: Scalar | None = Field(default=None, description="the engine's default: not rendered")
    constant: Scalar | None = None
    scope: Literal["replica", "attention_rank"] = Field(
        default="replica", description="attention_rank: the replica's value split over its attention-DP ranks"
    )
    degree: Literal["tp_x_attn_dp"] | None = Field(
        default=None, description="the degree the engine derives for a switch (vLLM's expert parallel: tp x dp)"
    )
    attention_tp: int | None = Field(default=None, description="GPUs per attention-DP rank the engine runs")
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_target(self) -> SettingFlag:
        targets = [t for t in (self.flag, self.option, self.launcher) if t]
        if len(targets) != 1:
            raise ValueError(f"setting '{self.setting}': give exactly one of flag, option, launcher")
        if self.form == "json" and not self.key:
            raise ValueError(f"setting '{self.setting}': the json form needs a key")
        return self


class Unsupported(BaseModel):
    """A setting the engine version has no flag for: said in the notes when it differs from `default`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    setting: str
    why: str = Field(min_length=1)
    default: Scalar | None = None


class ExtraFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    flag: str
    source: str = Field(min_length=1)


class LaunchSpec(BaseModel):
    """One runtime's launch data. `command` holds the program and its fixed arguments with {model};
    a runtime without a command has a `note` instead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: str
    aliases: list[str] = Field(default_factory=list)
    engine: str
    version: str
    command: str | None = None
    note: str | None = None
    source: str = Field(min_length=1)
    extra_file: ExtraFile | None = None
    settings: list[SettingFlag] = Field(default_factory=list)
    unsupported: list[Unsupported] = Field(default_factory=list)

    @model_validator(mode="after")
    def _command_or_note(self) -> LaunchSpec:
        if (self.command is None) == (self.note is None):
            raise ValueError(f"runtime '{self.runtime}': give a command or a note, not both")
        if any(s.option for s in self.settings) and self.extra_file is None:
            raise ValueError(f"runtime '{self.runtime}': settings with an option key need extra_file")
        return self


def _spec_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(DATA_DIR.glob("*.yaml")) if p.name != HF_REPOS_FILE}


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    found = {runtime: runtime for runtime in _spec_paths()}
    for runtime in list(found):
        found.update(dict.fromkeys(load_spec(runtime).aliases, runtime))
    return found


def runtime_ids() -> list[str]:
    """Runtimes with launch data (aliases not included)."""
    return list(_spec_paths())


def resolve_runtime(runtime: str) -> str:
    """The runtime id for an id or alias ('gpt-fast' -> 'torch-cuda-graph')."""
    found = _aliases().get(runtime)
    if found is None:
        raise UnknownIdError("runtime", runtime, sorted(_aliases()))
    return found


@lru_cache(maxsize=16)
def load_spec(runtime: str) -> LaunchSpec:
    path = _spec_paths().get(runtime)
    if path is None:
        return load_spec(resolve_runtime(runtime))
    item = validate_into(LaunchSpec, read_yaml(path), f"'{path}'")
    assert isinstance(item, LaunchSpec)
    return item


@lru_cache(maxsize=1)
def _hf_repos() -> dict[str, str]:
    repos = read_yaml(DATA_DIR / HF_REPOS_FILE).get("repos") or {}
    return {str(k): str(v) for k, v in repos.items()}


def hf_repo(model_id: str) -> str | None:
    """The Hugging Face repository of a catalog model, None when the catalog does not name one."""
    return _hf_repos().get(model_id)
