"""`roofline ui`: serve the interactive page (roofline.ui) on this machine until Ctrl-C."""

from __future__ import annotations

import ipaddress
import socket

import typer

from roofline.errors import RooflineError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ui_command(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on; anything but loopback is reachable "
                             "from other machines (a warning is printed)"),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="TCP port; 0 picks a free one"),
) -> None:  # fmt: skip
    """A local web page over the API: change model, hardware, batch, formats and see what moves."""
    from roofline.ui import create_app, require_extra

    require_extra()
    import uvicorn

    if not is_loopback(host):
        typer.echo(f"warning: --host {host} serves the page to other machines (no authentication)", err=True)
    server = uvicorn.Server(uvicorn.Config(create_app(), host=host, port=port, log_level="warning"))
    sockets = [_bind(host, port)]
    bound_port = sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"roofline ui: http://{shown}:{bound_port}/  (Ctrl-C stops it)")
    server.run(sockets=sockets)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RooflineError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock
