"""Slow and stalled clients: bound what the server holds for a socket that does not read.

Why this exists. python-engineio gives every socket an unbounded ``asyncio.Queue`` of
outgoing packets, and an emit never waits for the client: it only appends to that queue.
A websocket's writer task takes packets off the queue and hands them to uvicorn, whose
``send`` waits while the TCP transport is paused (write buffer over its high-water mark),
which is the case as soon as the peer stops reading and the kernel buffers are full. From
then on every event for that socket (an agent socket gets every ``user_message``) stays in
the queue. Measured on this server (5 KB messages, one agent socket that never reads):

* websocket: the kernel absorbs ~2.8 MB (Send-Q), then the queue grows by one packet per
  message: +29 MiB RSS after ~1,900 queued packets, +47 MiB after ~4,100 (the client sent
  blind Engine.IO pongs, so it outlived engine.io's ping timeout until uvicorn's own
  keepalive gave up); with no stalled client the same flood grows RSS by ~3 MiB.
* the memory is never given back: when engine.io finally closes the socket (ping timeout),
  its websocket handler stays blocked on the writer, which is blocked in ``send``, so the
  queue, the writer's batch and the TCP connection (still ESTABLISHED) live on for as long
  as the peer keeps the connection open without reading. A graceful close cannot help:
  the close frame waits behind the same backpressure, and ``transport.close()`` waits for
  a buffer that never drains.
* a long-polling client that never polls but POSTs blind pongs keeps its socket alive
  forever: +133 MiB after 12,500 messages and still growing linearly.

What this does. ``SlowClientGuard.run`` looks at every engine.io socket every
``slow_client_check_seconds``; a socket with more than ``max_queued_packets`` packets
queued at two checks in a row (a client that reads can be over it for a moment) is
disconnected for real: python-socketio's disconnect handlers run (presence is
cleared, the other agents see ``admin_status_update``), the queue is emptied, the socket
leaves ``eio.sockets``, and its websocket's TCP connection is aborted, which unblocks the
writer and ends the handler. The same check covers long-polling sockets (their queue is the
only buffer), so it is an absolute cap for every transport. Between being seen over the
limit and being cut, a queue can grow by what is emitted in two intervals; the writer can
also hold one batch it took off the queue before blocking, so what a socket can pin is
bounded by about twice the limit plus two intervals' worth of events.

The guard also aborts a websocket whose engine.io socket has been closed (by engine.io's
own ping timeout, say) for ``ORPHAN_GRACE_SECONDS`` while its connection is still open: that
is the stuck handler described above, which nothing else would ever end.

To abort a connection the guard needs its transport, which ASGI does not expose: the ASGI
wrapper (``wrap``) takes it from uvicorn's protocol, whose bound method is the ``send`` the
app receives, and learns the connection's engine.io sid from the URL (an upgrade from
polling) or from the OPEN packet (a direct websocket connection). Under another server, or
behind a middleware that wraps ``send``, no transport is found: the socket is still closed
and its queue emptied, and only the blocked writer's last batch stays until the peer goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# How long a websocket may stay open after its engine.io socket was closed. Nothing is sent
# on it any more, and a client that behaves closes it at once on engine.io's CLOSE packet;
# one that does not (it stopped reading, or ignores the packet) only holds resources.
ORPHAN_GRACE_SECONDS = 5.0


class _Abortable(Protocol):
    def abort(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


@dataclass(eq=False)
class _Connection:
    """One websocket connection under the Socket.IO path."""

    transport: _Abortable | None
    sid: str | None = None
    orphaned_at: float | None = None  # when its engine.io socket was first seen closed/gone
    aborted: bool = False

    def abort(self) -> bool:
        """Drop the TCP connection at once; False if the transport is unknown."""
        if self.aborted or self.transport is None:
            return False
        self.aborted = True
        # Linger 0: the kernel resets the connection and frees its send buffer (MBs for a
        # peer that stopped reading) instead of keeping an orphan in FIN-WAIT-1 that
        # still tries to deliver it, as a plain close would.
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError, TypeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()
        return True


class SlowClientGuard:
    def __init__(
        self,
        sio: Any,
        *,
        max_queued_packets: int,
        interval: float,
        path: str = "/socket.io/",
    ) -> None:
        self._sio = sio
        self._eio = sio.eio
        self.max_queued_packets = max_queued_packets
        self.interval = interval
        self._path = path if path.endswith("/") else path + "/"
        self._connections: dict[str, set[_Connection]] = {}
        # Sockets over the limit at the last check: cut if they still are at this one.
        self._over: set[str] = set()

    # -- ASGI: remember each websocket's transport under its engine.io sid ---------------

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            path = str(scope.get("path", "")).rstrip("/") + "/"
            if scope["type"] != "websocket" or not path.startswith(self._path):
                await app(scope, receive, send)
                return
            conn = _Connection(_transport_of(send))
            sid = _query_sid(scope)
            downstream = send
            if sid is not None:  # an upgrade from long-polling names its socket
                self._register(sid, conn)
            else:
                first = True

                async def sniffing_send(message: Message) -> None:
                    # A new websocket connection's first frame is engine.io's OPEN packet,
                    # which carries the sid the server just generated.
                    nonlocal first
                    if first and message["type"] == "websocket.send":
                        first = False
                        found = _open_packet_sid(message.get("text"))
                        if found is not None:
                            self._register(found, conn)
                    await send(message)

                downstream = sniffing_send
            try:
                await app(scope, receive, downstream)
            finally:
                self._unregister(conn)

        return guarded

    def _register(self, sid: str, conn: _Connection) -> None:
        conn.sid = sid
        self._connections.setdefault(sid, set()).add(conn)

    def _unregister(self, conn: _Connection) -> None:
        if conn.sid is None:
            return
        conns = self._connections.get(conn.sid)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._connections[conn.sid]

    # -- the check --------------------------------------------------------------------------

    async def run(self) -> None:
        """Check forever (a background task of the app's lifespan)."""
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("slow-client check failed")
            await asyncio.sleep(self.interval)

    async def check(self) -> None:
        # A socket is cut when its queue is over the limit at two checks in a row. Once
        # is not enough: a client that reads can have a moment over it (a burst of sends
        # answered by one group commit queues a message_sent and an ack for each at
        # once), which its writer sends within milliseconds; a stalled one stays over.
        over = []
        still_over = set()
        for sid, eio_socket in list(self._eio.sockets.items()):
            if eio_socket.closed or eio_socket.closing:
                continue
            queued = eio_socket.queue.qsize()
            if queued <= self.max_queued_packets:
                continue
            if sid in self._over:
                over.append(self._cut(sid, eio_socket, queued))
            else:
                still_over.add(sid)
        self._over = still_over
        if over:
            for result in await asyncio.gather(*over, return_exceptions=True):
                if isinstance(result, BaseException):
                    log.error("disconnecting a slow client failed", exc_info=result)
        self._abort_orphans(time.monotonic())

    async def _cut(self, sid: str, eio_socket: Any, queued: int) -> None:
        # Memory and TCP first, whatever the disconnect handlers below do or how long they
        # take (they write presence to the database). Aborting the transport makes uvicorn
        # fail the writer's pending send, and the engine.io handler then unwinds by itself.
        aborted = [conn.abort() for conn in self._connections.pop(sid, set())]
        _drain(eio_socket.queue)
        log.warning(
            "disconnecting slow client %s (%s): %d packets queued, limit %d%s",
            sid,
            self._peer(sid),
            queued,
            self.max_queued_packets,
            "; websocket aborted" if any(aborted) else "",
        )
        try:
            # abort=True: no CLOSE packet, it could never be delivered. This sets
            # `closing` before its first await, so the unwinding handler's own close
            # (reason "transport close") is a no-op and the handlers run once, here.
            await eio_socket.close(
                wait=False, abort=True, reason=self._eio.reason.SERVER_DISCONNECT
            )
        finally:
            _drain(eio_socket.queue)  # what was emitted to it while the handlers ran
            eio_socket.queue.put_nowait(None)  # ends a pending long-poll or an idle writer
            if self._eio.sockets.get(sid) is eio_socket:
                del self._eio.sockets[sid]

    def _abort_orphans(self, now: float) -> None:
        for sid, conns in list(self._connections.items()):
            eio_socket = self._eio.sockets.get(sid)
            gone = eio_socket is None or eio_socket.closed
            for conn in list(conns):
                if not gone:
                    conn.orphaned_at = None
                elif conn.orphaned_at is None:
                    conn.orphaned_at = now
                elif now - conn.orphaned_at >= ORPHAN_GRACE_SECONDS and conn.abort():
                    if eio_socket is not None:
                        _drain(eio_socket.queue)
                    log.warning(
                        "aborted websocket of closed socket %s: still open %.0f s after close",
                        sid,
                        now - conn.orphaned_at,
                    )

    def _peer(self, sid: str) -> str:
        environ = getattr(self._sio, "environ", None) or {}  # python-socketio's, by eio sid
        return str(environ.get(sid, {}).get("REMOTE_ADDR", "unknown peer"))


def _drain(queue: asyncio.Queue[Any]) -> None:
    """Empty a queue, marking each item done (so that a ``queue.join()`` in engine.io's
    ``close(wait=True)`` returns instead of waiting for a writer that will never run)."""
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        queue.task_done()


def _transport_of(send: Send) -> _Abortable | None:
    """The transport behind uvicorn's ``send`` (a bound method of its protocol)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if callable(getattr(transport, "abort", None)):
        return cast(_Abortable, transport)
    return None


def _query_sid(scope: Scope) -> str | None:
    raw = scope.get("query_string", b"")
    query = parse_qs(raw.decode("latin-1") if isinstance(raw, bytes) else str(raw))
    values = query.get("sid")
    return values[0] if values and values[0] else None


def _open_packet_sid(text: Any) -> str | None:
    if not isinstance(text, str) or not text.startswith("0{"):
        return None
    try:
        sid = orjson.loads(text[1:]).get("sid")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return sid if isinstance(sid, str) else None
