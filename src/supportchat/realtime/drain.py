"""Graceful shutdown of the Socket.IO side: finish what was started, refuse what was not.

On SIGTERM the server stops listening, then (here) refuses new events with a "shutting
down" error, waits for the events already being handled to finish (their writes commit
and their acknowledgements go out), and closes every connection at the transport level.
Clients see their transport close, which Socket.IO clients answer by reconnecting (to
another process, behind a load balancer) and resending what was never acknowledged,
with the same clientMessageId. A Socket.IO "disconnect" packet would instead tell
clients not to reconnect.
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


class _InProgress:
    """How many of something are in progress, and a way to wait until none is."""

    def __init__(self) -> None:
        self.count = 0
        self._none = asyncio.Event()
        self._none.set()

    @contextlib.contextmanager
    def one(self) -> Iterator[None]:
        self.count += 1
        self._none.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._none.set()

    async def until_none(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait
        """Wait until nothing is in progress; False if `timeout` passed first."""
        if self._none.is_set():
            return True
        try:
            await asyncio.wait_for(self._none.wait(), max(0.0, timeout))
        except TimeoutError:
            return False
        return True


class Drain:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self.closing = False
        self._events = _InProgress()

    @contextlib.contextmanager
    def task(self) -> Iterator[None]:
        """Wraps the handling of one event: refused once closing, counted until done."""
        if self.closing:
            raise ShuttingDown()
        with self._events.one():
            yield

    async def finish(self, grace_seconds: float) -> None:
        """Stop taking events, let the running ones end (up to `grace_seconds`), then
        close every connection so that its client reconnects elsewhere."""
        self.closing = True
        if not await self._events.until_none(grace_seconds):
            log.warning(
                "shutdown: %d event(s) still running after %.0f s",
                self._events.count,
                grace_seconds,
            )
        sockets = [s for s in self._sio.eio.sockets.values() if not s.closed]
        log.info("shutdown: closing %d connection(s)", len(sockets))
        closing = []
        for socket in sockets:
            if socket.upgraded:
                # Ends Engine.IO's writer after the packets already queued (the
                # acknowledgements just sent), which then closes the WebSocket. No CLOSE
                # packet: both the official and python-socketio's client read a bare close
                # as a lost transport and reconnect, while python-socketio's reads a CLOSE
                # packet as a deliberate disconnect and stays away. The server then
                # waits for the WebSocket's closing handshake (shutdown.py).
                socket.queue.put_nowait(None)
            else:
                # Long-polling: the CLOSE packet goes out with the next poll (the official
                # client reconnects on it).
                closing.append(asyncio.ensure_future(socket.close(wait=True)))
        if closing:
            done, late = await asyncio.wait(closing, timeout=FLUSH_SECONDS)
            for task in late:
                task.cancel()
            for task in done:
                if task.exception() is not None:
                    log.warning(
                        "shutdown: a connection did not close cleanly: %r", task.exception()
                    )
