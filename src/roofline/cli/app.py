"""The `roofline` command. Bad input is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from roofline import __version__
from roofline.cli import comm, estimate, hardware, model, serve, validate
from roofline.errors import RooflineError


class _UserErrorsExit2(TyperGroup):
    """Turns a RooflineError anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except RooflineError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="roofline",
    cls=_UserErrorsExit2,
    help="Predict how LLM workloads run on accelerators: latency, throughput, memory fit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(hardware.app, name="hardware")
app.add_typer(model.app, name="model")
app.add_typer(comm.app, name="comm")
app.command("estimate")(estimate.estimate_command)
app.command("memory")(estimate.memory_command)
app.command("sweep")(__import__("roofline.cli.sweep", fromlist=["sweep_command"]).sweep_command)
app.command("plan")(__import__("roofline.cli.plan", fromlist=["plan_command"]).plan_command)
app.command("validate")(validate.validate_command)
app.command("serve")(serve.serve_command)
app.command("report")(__import__("roofline.cli.report", fromlist=["report_command"]).report_command)
app.command("plot")(__import__("roofline.cli.plot", fromlist=["plot_command"]).plot_command)
app.command("calibrate")(__import__("roofline.cli.calibrate", fromlist=["calibrate_command"]).calibrate_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"roofline {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    """roofline: what-if answers for LLM inference hardware."""


def main() -> None:
    try:
        app()
    except RooflineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
