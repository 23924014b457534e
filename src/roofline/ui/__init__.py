"""`roofline ui`: an interactive web page over the Python API (the optional extra `roofline[ui]`).

`create_app()` builds the ASGI app; the web stack (starlette, uvicorn, plotly) is imported only
when it is called, so a missing extra is one RooflineError line naming it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roofline.errors import RooflineError

if TYPE_CHECKING:
    from starlette.applications import Starlette

EXTRA_MODULES = ("starlette", "uvicorn", "plotly", "multipart")  # multipart: python-multipart (uploads)
MISSING_EXTRA = "roofline ui needs the optional extra: pip install 'roofline[ui]'"


def require_extra() -> None:
    """One line naming the extra when starlette, uvicorn or plotly is not installed."""
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in EXTRA_MODULES):
        raise RooflineError(MISSING_EXTRA)


def create_app() -> Starlette:
    require_extra()
    from roofline.ui.server import create_app as build

    return build()
