"""`--launch` on `roofline estimate` and `roofline plan`: after the answer, the command that starts
the runtime with the configuration it costed (roofline.deploy); with --format json, a "launch" key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from roofline.cli.common import OutputFormat, emit
from roofline.errors import RooflineError

if TYPE_CHECKING:
    from roofline.api.estimates import Estimate
    from roofline.api.planning import PlanReport
    from roofline.deploy import LaunchCommand

LAUNCH = typer.Option(
    False, "--launch",
    help="also print the command that starts the runtime (trtllm-serve, vllm serve, sglang) with this configuration",
)  # fmt: skip
# TODO(lead): estimate's --runtime picks the runtime once it lands; until then estimate launches trtllm
DEFAULT_RUNTIME = "trtllm"


def check(launch: bool, fmt: OutputFormat) -> None:
    """--launch goes with table or json output (a CSV or a workbook has no place for a command)."""
    if launch and fmt not in (OutputFormat.table, OutputFormat.json):
        raise RooflineError(f"--launch prints with --format table or json, not {fmt.value}")


def refuse_for_diffusion(launch: bool, model: str) -> None:
    if launch:
        raise RooflineError(f"--launch renders serving commands for language models; {model} is a diffusion model")


def for_result(launch: bool, result: Estimate | PlanReport, runtime: str | None) -> LaunchCommand | None:
    """The launch command when --launch is given (None otherwise, and for a plan that found nothing)."""
    if not launch or getattr(result, "feasible", True) is False:
        return None
    from roofline.api.launch import launch_command

    return launch_command(runtime or DEFAULT_RUNTIME, result)


def with_launch(data: dict[str, Any], command: LaunchCommand | None, asked: bool | None = None) -> dict[str, Any]:
    """The JSON document with its "launch" key when --launch is given (null: nothing to launch)."""
    if not (command is not None if asked is None else asked):
        return data
    return {**data, "launch": command.to_dict() if command is not None else None}


def show(command: LaunchCommand | None, fmt: OutputFormat, asked: bool | None = None) -> None:
    """After a table: the command as a shell snippet (json carries it in its "launch" key)."""
    if fmt is not OutputFormat.table:
        return
    if command is not None:
        emit("\n" + command.text())
    elif asked:
        emit("\n# nothing to launch: no configuration meets every target\n")
