"""The web UI (web/, built by `make install` into supportchat/webui/): the landing page at
`/`, the customer chat at `/chat`, the agent dashboard at `/agent`, the embeddable
widget at `/widget.js`, and their hashed assets under `/assets/`.

The pages are static: each gets its token from the host application (in the URL
fragment, which browsers never send to a server) or, in demo mode only, from
api/demo_routes.py. Their headers forbid everything they do not need: scripts and
connections only to this origin, no plugins, no framing by other sites."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

BUILD_DIR = Path(__file__).resolve().parents[1] / "webui"

PAGES = {"/": "index.html", "/chat": "chat.html", "/agent": "agent.html"}

# 'self' covers this origin's ws:/wss: too (CSP Level 3), which Socket.IO needs. No
# inline styles or scripts: the pages set styles only through the DOM (which CSP allows),
# and the browser tests fail on any violation.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new build must reach browsers at once; the hashed assets it names are cached.
    "Cache-Control": "no-cache",
}
# The widget runs inside other sites' pages: it is fetched by their <script> tags, and
# may be loaded from any origin (the API itself still checks SUPPORTCHAT_CORS_ORIGINS).
WIDGET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    "Cross-Origin-Resource-Policy": "cross-origin",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>supportchat</title></head>
<body><h1>supportchat is running</h1>
<p>The web UI has not been built: run <code>make install</code> (it needs Node.js and npm),
then reload. The API is at <a href="/docs">/docs</a>.</p></body></html>
"""


class HashedAssets(StaticFiles):
    """Vite names each asset after its content hash, so a name never changes meaning."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install_pages(api: FastAPI, build_dir: Path = BUILD_DIR) -> None:
    """The routes, decided once at start: a server started without a build answers
    every page with how to build it."""
    built = (build_dir / "index.html").is_file()
    for route, name in PAGES.items():
        page = _file(build_dir / name, "text/html", PAGE_HEADERS) if built else _not_built
        api.add_api_route(route, page, methods=["GET"], include_in_schema=False)
    widget = build_dir / "widget.js"
    if widget.is_file():
        serve = _file(widget, "text/javascript", WIDGET_HEADERS)
        api.add_api_route("/widget.js", serve, methods=["GET"], include_in_schema=False)
    if (build_dir / "assets").is_dir():
        api.mount("/assets", HashedAssets(directory=build_dir / "assets"))


Handler = Callable[[Request], Awaitable[Response]]


async def _not_built(request: Request) -> Response:
    return HTMLResponse(NOT_BUILT, 503, headers={"Cache-Control": "no-cache"})


def _file(path: Path, media_type: str, headers: dict[str, str]) -> Handler:
    async def serve(request: Request) -> Response:
        return FileResponse(path, media_type=media_type, headers=headers)

    return serve
