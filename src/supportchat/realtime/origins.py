"""Which browser origins may open a Socket.IO connection.

Browsers do not apply CORS to WebSocket handshakes, so the server must check Origin
itself: the page's own origin (scheme and Host of the request) is always allowed, and
so are the configured SUPPORTCHAT_CORS_ORIGINS. Non-browser clients send no Origin
and are judged by their token alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def origin_checker(configured: Iterable[str]) -> Callable[[str | None, dict[str, Any]], bool]:
    allowed = {origin.rstrip("/") for origin in configured}
    any_origin = "*" in allowed

    def allow(origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return True
        origin = origin.rstrip("/")
        if any_origin or origin in allowed:
            return True
        host = environ.get("HTTP_HOST")
        scheme = environ.get("wsgi.url_scheme", "http")
        # A WebSocket upgrade arrives as ws/wss: the page that opened it was http/https.
        scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
        return host is not None and origin == f"{scheme}://{host}"

    return allow
