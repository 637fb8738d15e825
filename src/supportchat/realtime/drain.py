"""Graceful shutdown of the Socket.IO side: finish what was started, refuse what was not.

On SIGTERM the server stops listening, then (here) refuses new events with a "shutting
down" error, waits for the events already being handled to finish (their writes commit
and their acknowledgements go out), and closes every connection at the Engine.IO level.
Clients see their transport close, which Socket.IO clients answer by reconnecting (to
another process, behind a load balancer) and resending what was never acknowledged,
with the same clientMessageId. A Socket.IO "disconnect" packet would instead tell the
official client not to reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import socketio

from ..domain.errors import ShuttingDown

log = logging.getLogger(__name__)

FLUSH_SECONDS = 2.0


class Drain:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self.closing = False
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def task(self) -> Iterator[None]:
        """Wraps the handling of one event: refused once closing, counted until done."""
        if self.closing:
            raise ShuttingDown()
        self._running += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def finish(self, grace_seconds: float) -> None:
        """Stop taking events, let the running ones end (up to `grace_seconds`), then
        close every connection so that its client reconnects elsewhere."""
        self.closing = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        except TimeoutError:
            log.warning(
                "shutdown: %d event(s) still running after %.0f s", self._running, grace_seconds
            )
        sockets = list(self._sio.eio.sockets.values())
        log.info("shutdown: closing %d connection(s)", len(sockets))
        # Each close queues a CLOSE packet behind the acknowledgements just sent and waits
        # for the queue to be written out; a client that stopped reading must not hold
        # the shutdown up, hence the bound.
        closing = [asyncio.ensure_future(socket.close(wait=True)) for socket in sockets]
        if closing:
            done, late = await asyncio.wait(closing, timeout=FLUSH_SECONDS)
            for task in late:
                task.cancel()
            for task in done:
                if task.exception() is not None:
                    log.warning(
                        "shutdown: a connection did not close cleanly: %r", task.exception()
                    )
