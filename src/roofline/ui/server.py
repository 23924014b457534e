"""The ASGI app behind `roofline ui`: one static page, its script, plotly.js from the installed
`plotly` wheel, and JSON endpoints that call roofline.ui.service (the Python API).

A RooflineError (bad input) is HTTP 400 {"error": "error: <the line the CLI prints>"}; anything
else is a 500 with one generic line, the traceback only in the server's log."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from roofline.errors import RooflineError
from roofline.ui import service

LOG = logging.getLogger("roofline.ui")
STATIC = Path(str(resources.files("roofline.ui") / "static"))
Handler = Callable[[Request], Awaitable[Response]]


def plotly_js_path() -> Path:
    """plotly.min.js as the `plotly` package ships it (no CDN)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def guarded(handler: Handler) -> Handler:
    """Bad input -> 400 with the CLI's line; a bug -> 500 with one line (logged with its traceback)."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except RooflineError as exc:
            return _error(f"error: {exc}", 400)
        except Exception:
            LOG.exception("roofline ui: %s %s failed", request.method, request.url.path)
            return _error("error: internal error in roofline ui (the server's log has the details)", 500)

    return run


async def _state(request: Request) -> dict[str, str]:
    """The page's state: a flat JSON object of text fields (POST body) or the query string (GET)."""
    if request.method == "GET":
        return dict(request.query_params)
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise RooflineError(f"the request body is not JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise RooflineError("the request body must be a JSON object of the page's fields")
    return {str(k): "" if v is None else str(v) for k, v in body.items()}


def _uploads(request: Request) -> service.Uploads:
    uploads: service.Uploads = request.app.state.uploads
    return uploads


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def static_file(request: Request) -> Response:
    name = request.path_params["name"]
    known = {"app.js": "text/javascript", "style.css": "text/css"}
    if name not in known:
        return _error(f"error: no file '{name}'", 404)
    return FileResponse(STATIC / name, media_type=known[name])


async def plotly_js(request: Request) -> Response:
    return FileResponse(plotly_js_path(), media_type="text/javascript")


async def catalog(request: Request) -> Response:
    return JSONResponse(service.catalog())


async def estimate(request: Request) -> Response:
    return JSONResponse(service.estimate_view(await _state(request), _uploads(request)))


async def sweep_batch(request: Request) -> Response:
    return JSONResponse({"rows": service.sweep_batch(await _state(request), _uploads(request))})


async def upload(request: Request) -> Response:
    """One file of at most UPLOAD_LIMIT_BYTES, refused by its declared length before a byte is read
    (a body without Content-Length is refused: the multipart parser would spool it whole)."""
    limit = service.UPLOAD_LIMIT_BYTES
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise RooflineError(f"the upload has no Content-Length; send one file of at most {limit:,} bytes")
    if int(declared) > limit + 4096:  # the file plus the multipart framing
        raise RooflineError(f"the upload is {int(declared):,} bytes; uploads are limited to {limit:,} bytes "
                            "(a config.json or model YAML)")  # fmt: skip
    try:
        form = await request.form(max_files=1, max_fields=1)
    except HTTPException as exc:  # malformed multipart, too many parts
        raise RooflineError(f"the upload is not a form with one file ({exc.detail})") from None
    try:
        file: Any = form.get("file")
        if file is None or isinstance(file, str):
            raise RooflineError("upload a file in the form field 'file'")
        content = await file.read(service.UPLOAD_LIMIT_BYTES + 1)
        return JSONResponse(service.load_upload(file.filename or "upload", content, _uploads(request)))
    finally:
        await form.close()


async def export(request: Request) -> Response:
    state = dict(request.query_params)
    content, media, name = service.export(state, _uploads(request), state.pop("fmt", "json"))
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def create_app() -> Starlette:
    """The web page's app (an ASGI callable): `uvicorn.run(create_app())`, or starlette's TestClient."""
    routes = [
        Route("/", guarded(page)),
        Route("/static/{name}", guarded(static_file)),
        Route("/vendor/plotly.min.js", guarded(plotly_js)),
        Route("/api/catalog", guarded(catalog)),
        Route("/api/estimate", guarded(estimate), methods=["POST"]),
        Route("/api/sweep-batch", guarded(sweep_batch), methods=["POST"]),
        Route("/api/upload", guarded(upload), methods=["POST"]),
        Route("/api/export", guarded(export)),
    ]
    app = Starlette(routes=routes)
    app.state.uploads = service.Uploads()
    return app
