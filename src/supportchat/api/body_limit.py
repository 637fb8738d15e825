"""Refuses request bodies over the configured size before they are held in memory.

A declared Content-Length over the limit is answered 413 at once; a chunked body is
read here up to the limit (so at most max_bytes are ever held) and refused with 413 as
soon as it passes it. It wraps the whole app, Engine.IO's long-polling included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Before refusing, what the client is still sending is read and thrown away (up to this
# much, for at most DRAIN_SECONDS), never held: answering and closing a connection with
# unread data makes the kernel reset it, and the client would never see the 413.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 5.0


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, cors_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.cors_origins = {origin.rstrip("/") for origin in cors_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            complete = await _drain(receive)
            await self._refuse(send, headers.get(b"origin"), close=not complete)
            return
        if declared is not None:
            # h11 enforces the declared length, so the body cannot be longer than this.
            await self.app(scope, receive, send)
            return
        # Chunked: read it here, at most max_bytes, then hand the app the same messages.
        chunks: list[Message] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks.append(message)
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                complete = not message.get("more_body", False) or await _drain(receive)
                await self._refuse(send, headers.get(b"origin"), close=not complete)
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, origin: bytes | None, *, close: bool) -> None:
        body = orjson.dumps(
            {
                "success": False,
                "message": f"Request body too large: the limit is {self.max_bytes} bytes",
                "code": "PAYLOAD_TOO_LARGE",
            }
        )
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if close:
            response_headers.append((b"connection", b"close"))
        # This answer bypasses the CORS middleware; an allowed page must still read it.
        if origin is not None and (
            "*" in self.cors_origins or origin.decode("latin-1").rstrip("/") in self.cors_origins
        ):
            response_headers.append((b"access-control-allow-origin", origin))
            response_headers.append((b"vary", b"Origin"))
        await send({"type": "http.response.start", "status": 413, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> bool:
    """Discard the rest of the body; True if it ended within the bounds."""
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while drained <= DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return False
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
    return False
