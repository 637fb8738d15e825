"""X-RateLimit-* headers on every authenticated REST response, so that clients can pace
themselves before they are refused. Pure ASGI: no per-request task or body buffering."""

from __future__ import annotations

import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..domain.limits import Window


class RateLimitHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                window = scope.get("state", {}).get("rate_window")
                already = any(
                    name == b"x-ratelimit-limit" for name, _ in message.get("headers", [])
                )
                # A 429 already describes the quota that refused it; don't add a second set.
                if isinstance(window, Window) and not already:
                    message.setdefault("headers", [])
                    message["headers"] = [
                        *message["headers"],
                        (b"x-ratelimit-limit", str(window.limit).encode()),
                        (b"x-ratelimit-remaining", str(window.remaining).encode()),
                        (b"x-ratelimit-reset", str(math.ceil(window.reset_at)).encode()),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
