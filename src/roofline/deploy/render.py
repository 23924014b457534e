"""launch_command: render the command that starts a runtime with a LaunchConfig, flag names from
the runtime's launch data (spec.py)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from roofline.deploy.config import LaunchConfig
from roofline.deploy.spec import LaunchSpec, SettingFlag, load_spec

CONTINUATION = " \\\n  "


@dataclass(frozen=True)
class LaunchCommand:
    """`command`: the shell command (empty for a runtime without one); `files`: {name: text} the
    command reads (TensorRT-LLM's extra LLM API options); `notes`: settings it cannot carry and
    how to run the replicas."""

    runtime: str
    engine: str
    version: str
    command: str
    files: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    config: LaunchConfig | None = None

    def text(self) -> str:
        """The command as a shell snippet: a header comment, the files as here-documents, the command,
        the notes as comments."""
        lines = [f"# {self.engine} {self.version}"]
        for name, body in self.files.items():
            lines += [f"cat > {name} <<'EOF'", body.rstrip("\n"), "EOF"]
        if self.command:
            lines.append(self.command)
        lines += [f"# note: {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "engine": self.engine, "version": self.version, "command": self.command,
                "files": dict(self.files), "notes": list(self.notes),
                "config": self.config.to_dict() if self.config else None}  # fmt: skip


@dataclass
class _Parts:
    args: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    launcher: str = ""
    notes: list[str] = field(default_factory=list)


def launch_command(runtime: str, config: LaunchConfig) -> LaunchCommand:
    """The command that starts `runtime` (an id or alias) with `config`'s settings."""
    spec = load_spec(runtime)
    if spec.command is None:
        return LaunchCommand(spec.runtime, spec.engine, spec.version, "", notes=(spec.note or "",), config=config)
    parts = _Parts()
    for setting in spec.settings:
        _check_degree(setting, config, parts, spec)
        _render(setting, _value(config, setting), parts, spec)
    parts.notes += _unsupported_notes(spec, config) + _replica_notes(config)
    files = {}
    if parts.options and spec.extra_file is not None:
        files[spec.extra_file.name] = _yaml_text(parts.options)
        parts.args.append(f"{spec.extra_file.flag} {spec.extra_file.name}")
    program = parts.launcher + spec.command.format(model=shlex.quote(config.model))
    command = CONTINUATION.join([program, *parts.args])
    return LaunchCommand(spec.runtime, spec.engine, spec.version, command, files, tuple(parts.notes), config)


def _value(config: LaunchConfig, setting: SettingFlag) -> Any:
    value = getattr(config, setting.setting)
    if setting.scope == "attention_rank" and isinstance(value, int):
        return -(-value // config.attn_dp)
    return value


def _render(setting: SettingFlag, value: Any, parts: _Parts, spec: LaunchSpec) -> None:
    if value is None:
        return
    if setting.values is not None:
        spelled = setting.values.get(str(value))
        if spelled is None:
            known, advice = ", ".join(setting.values), f"; {setting.missing}" if setting.missing else ""
            parts.notes.append(f"{spec.engine} {spec.version} {setting.flag or setting.option} has no value for "
                               f"{setting.setting} {value} (knows {known}): left out{advice}")  # fmt: skip
            return
        value = spelled
    if setting.default is not None and value == setting.default and setting.form in ("value", "launcher"):
        return
    _RENDERERS[setting.form](setting, value, parts)


def _check_degree(setting: SettingFlag, config: LaunchConfig, parts: _Parts, spec: LaunchSpec) -> None:
    """A note where the engine derives a degree other than the costed one (vLLM: EP = TP x DP)."""
    if setting.degree == "tp_x_attn_dp" and config.ep > 1 and config.ep != config.tp_x_attn_dp:
        parts.notes.append(f"{spec.engine} {spec.version} {setting.flag} spreads the experts over tp x data-parallel "
                           f"= {config.tp_x_attn_dp} GPUs, not the costed ep {config.ep}")  # fmt: skip


def _emit(setting: SettingFlag, value: Any, parts: _Parts) -> None:
    """A flag with a value, or an extra-options key."""
    if setting.option:
        _put(parts.options, setting.option, value)
    else:
        parts.args.append(f"{setting.flag} {_word(value)}")


def _switch(setting: SettingFlag, value: Any, parts: _Parts) -> None:
    if value is True or (not isinstance(value, bool) and isinstance(value, int) and value > 1):
        _flag_only(setting, setting.flag, parts)


def _bool(setting: SettingFlag, value: Any, parts: _Parts) -> None:
    if setting.option:
        _put(parts.options, setting.option, bool(value))
    elif value:
        _flag_only(setting, setting.flag, parts)
    elif setting.off_flag:
        _flag_only(setting, setting.off_flag, parts)


def _flag_only(setting: SettingFlag, flag: str | None, parts: _Parts) -> None:
    if setting.option:
        _put(parts.options, setting.option, True)
    else:
        parts.args.append(str(flag))


def _list(setting: SettingFlag, value: Any, parts: _Parts) -> None:
    items = [int(v) for v in value]
    if setting.option:
        _put(parts.options, setting.option, items)
    else:
        parts.args.append(" ".join([str(setting.flag), *(str(v) for v in items)]))


def _json(setting: SettingFlag, value: Any, parts: _Parts) -> None:
    body = {str(setting.key): list(value) if isinstance(value, tuple | list) else value}
    parts.args.append(f"{setting.flag} {shlex.quote(json.dumps(body, separators=(',', ':')))}")


def _constant(setting: SettingFlag, value: Any, parts: _Parts) -> None:
    _emit(setting, setting.constant, parts)


def _launcher(setting: SettingFlag, value: Any, parts: _Parts) -> None:
    parts.launcher = str(setting.launcher).format(value=value) + " "


_RENDERERS = {"value": _emit, "switch": _switch, "bool": _bool, "list": _list, "json": _json,
              "constant": _constant, "launcher": _launcher}  # fmt: skip


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return shlex.quote(str(value))


def _put(options: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = options
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def _yaml_text(options: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(options, sort_keys=False, default_flow_style=False)


def _unsupported_notes(spec: LaunchSpec, config: LaunchConfig) -> list[str]:
    notes = []
    for item in spec.unsupported:
        value = getattr(config, item.setting)
        if value is not None and value != item.default:
            notes.append(f"{item.setting} {value}: {item.why}")
    for setting in spec.settings:
        if setting.attention_tp is not None and config.attn_dp > 1 and config.tp != setting.attention_tp:
            notes.append(f"{spec.engine} {spec.version} runs {setting.attention_tp} GPU per attention-DP rank; "
                         f"the costed tp {config.tp} inside each attention rank has no flag")  # fmt: skip
    return notes


def _replica_notes(config: LaunchConfig) -> list[str]:
    notes = []
    if config.dp > 1:
        notes.append(f"{config.dp} replicas: run this command on each of {config.dp} groups of "
                     f"{config.gpus_per_replica} GPUs and balance requests over them")  # fmt: skip
    if config.cp > 1:
        notes.append(f"context parallelism (cp {config.cp}) is costed but not rendered: the launch data name no "
                     "flag for it")  # fmt: skip
    if config.mtp > 0:
        notes.append(f"speculative decoding with {config.mtp} MTP draft token(s) is costed but not rendered: add "
                     "the engine's speculative-decoding options")  # fmt: skip
    return notes
