"""uvicorn's server, with the Socket.IO drain run between "stop listening" and "close
the connections", the one moment at which it can still acknowledge the work in flight.

uvicorn alone would close every WebSocket at once and only then wait for HTTP requests:
an event being handled would commit without its acknowledgement ever reaching the
client (which would then resend it; idempotent, but a needless retry for every client of
every restart)."""

from __future__ import annotations

import logging
import socket

import uvicorn

from .realtime.drain import Drain

log = logging.getLogger(__name__)


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
        await super().shutdown(sockets)
