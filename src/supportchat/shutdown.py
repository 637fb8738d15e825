"""uvicorn's server, with the Socket.IO drain run between "stop listening" and "close
the connections", the one moment at which it can still acknowledge the work in flight.

uvicorn alone would close every WebSocket at once and only then wait for HTTP requests:
an event being handled would commit without its acknowledgement ever reaching the
client (which would then resend it; idempotent, but a needless retry for every client of
every restart)."""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .realtime.drain import Drain

log = logging.getLogger(__name__)

# How long the WebSockets' closing handshakes may take once the drain has closed them.
CLOSE_HANDSHAKE_SECONDS = 2.0


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, grace_seconds: float) -> None:
        super().__init__(config)
        self._drain = drain
        self._grace_seconds = grace_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting connections first (uvicorn does it again below; closing twice
        # is harmless), so that the load balancer sends new clients elsewhere.
        for server in self.servers:
            server.close()
        log.info("shutdown: finishing Socket.IO events in flight")
        await self._drain.finish(self._grace_seconds)
        await self._websockets_closed(CLOSE_HANDSHAKE_SECONDS)
        await super().shutdown(sockets)

    async def _websockets_closed(self, timeout: float) -> None:  # noqa: ASYNC109 - bounded
        """Wait until each WebSocket the drain closed has finished its closing handshake.

        uvicorn's shutdown closes a connection at once, even one waiting for its peer's
        close frame. A client still sending at that moment leaves unread data on the
        server's side, so the close goes out as a TCP reset, and a reset makes the
        client's system discard what it had received but not yet read: the last
        acknowledgements, written a moment before. Once the peer has answered the close
        frame, it has read everything sent before it. A peer that does not answer (it
        stopped reading) holds the exit up for `timeout` at most."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            still_open = sum(
                isinstance(c, WebSocketsSansIOProtocol) for c in self.server_state.connections
            )
            if not still_open:
                return
            if loop.time() >= deadline:
                log.warning("shutdown: %d WebSocket(s) still closing; closing them", still_open)
                return
            await asyncio.sleep(0.02)
