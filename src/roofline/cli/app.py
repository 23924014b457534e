"""The `roofline` command. Bad input is one line on stderr and exit code 2, never a traceback.

Each subcommand's module is imported only when that command runs (or shows its own --help):
`roofline --help` and `roofline estimate` do not pay for the planner, the serving simulator,
openpyxl or matplotlib.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo, TyperInfo

from roofline import __version__
from roofline.errors import RooflineError


class _Entry(NamedTuple):
    module: str
    attribute: str  # a command function, or a typer.Typer for a group of commands
    summary: str  # the first paragraph of the command's help: what `roofline --help` lists


# In the order `roofline --help` lists them; a test keeps each summary equal to the command's own help.
COMMANDS: dict[str, _Entry] = {
    "estimate": _Entry("roofline.cli.estimate", "estimate_command",
                       "Prefill and decode latency, throughput and memory for one configuration; for diffusion "
                       "models\n(DiT image/video, diffusion LMs) the time per image, video or request instead."),
    "memory": _Entry("roofline.cli.estimate", "memory_command",
                     "Does it fit? Weights, KV cache, activations, reserve; the largest batch and context that fit."),
    "sweep": _Entry("roofline.cli.sweep", "sweep_command",
                    "Estimate a grid of configurations (lists and ranges of parallelism, batch, lengths, formats)."),
    "plan": _Entry("roofline.cli.plan", "plan_command",
                   "Cheapest configurations that serve --rate within TTFT and TPOT p99 targets, and the Pareto "
                   "frontier."),
    "train": _Entry("roofline.cli.train", "train_command",
                    "Training step time by part, tokens/s/GPU, model TFLOP/s and MFU, memory per GPU; time and cost "
                    "for --tokens."),
    "validate": _Entry("roofline.cli.validate", "validate_command",
                       "Predict each row of a measurements file; print prediction, measurement and error, then MAPE "
                       "per metric."),
    "serve": _Entry("roofline.cli.serve", "serve_command",
                    "Serve a load: tokens/s, TTFT / TPOT / end-to-end latency percentiles, batch and queueing."),
    "report": _Entry("roofline.cli.report", "report_command",
                     "Write one estimate as a self-contained HTML page with figures and the source of every hardware "
                     "number."),
    "plot": _Entry("roofline.cli.plot", "plot_command",
                   "Draw a roofline, a time/memory breakdown, scaling curves or a hardware comparison (a diffusion\n"
                   "model: the roofline of its denoising steps)."),
    "calibrate": _Entry("roofline.cli.calibrate", "calibrate_command",
                        "Measure the device with PyTorch, compare with the cost model, write "
                        "DIR/<hardware>-calibrated.yaml."),
    "ui": _Entry("roofline.cli.ui", "ui_command",
                 "A local web page over the API: change model, hardware, batch, formats and see what moves."),
    "hardware": _Entry("roofline.cli.hardware", "app", "Accelerators, links and systems in the catalog."),
    "model": _Entry("roofline.cli.model", "app", "Models (workloads) in the catalog, and Hugging Face config import."),
    "comm": _Entry("roofline.cli.comm", "app",
                   "Collective communication: time, algbw and busbw as nccl-tests reports them."),
}  # fmt: skip


def load_command(name: str, group: TyperGroup) -> Any:
    """The click command `name` as `app.command(name)` / `app.add_typer(..., name=name)` would build it."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        return typer.main.get_group_from_info(
            TyperInfo(target, name=name), pretty_exceptions_short=app.pretty_exceptions_short,
            suggest_commands=group.suggest_commands, rich_markup_mode=group.rich_markup_mode,
        )  # fmt: skip
    return typer.main.get_command_from_info(
        CommandInfo(name=name, callback=target), pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=group.rich_markup_mode,
    )  # fmt: skip


class _LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name: every name is known at once, a command is built (its module
    imported) the first time it is looked up."""

    def __init__(self, group: TyperGroup, given: MutableMapping[str, Any]) -> None:
        self._group = group
        self._names = [*COMMANDS, *(name for name in given if name not in COMMANDS)]
        self._built: dict[str, Any] = dict(given)

    def built(self, name: str) -> Any:
        return self._built.get(name)

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = load_command(name, self._group)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


class _RooflineGroup(TyperGroup):
    """The top-level group: lists every command from COMMANDS without importing it, builds the
    one that runs; a RooflineError anywhere below is one line on stderr and exit code 2."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lazy = _LazyCommands(self, self.commands)
        self.commands = self.lazy

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.lazy)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command if built, else a stand-in with its name and summary (enough for the listing)."""
        built = self.lazy.built(cmd_name)
        if built is not None or cmd_name not in COMMANDS:
            return built
        return TyperCommand(name=cmd_name, help=COMMANDS[cmd_name].summary, rich_markup_mode=self.rich_markup_mode)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None:
            command = self.lazy[name]
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except RooflineError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="roofline",
    cls=_RooflineGroup,
    help="Predict how LLM workloads run on accelerators: latency, throughput, memory fit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"roofline {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    """roofline: what-if answers for LLM inference hardware."""


# Pydantic finds its plugins by scanning every installed package's entry points (importlib.metadata)
# the first time it builds a validator: about 10 ms of start-up that the CLI, which uses none, skips.
# A user who sets the variable keeps their choice.
PYDANTIC_PLUGINS_OFF = ("PYDANTIC_DISABLE_PLUGINS", "__all__")


def main() -> None:
    os.environ.setdefault(*PYDANTIC_PLUGINS_OFF)
    try:
        app()
    except RooflineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
