"""A lean Socket.IO v5 client (Engine.IO v4, websocket transport only) for load generation.

python-socketio's AsyncClient costs a task, a queue and several futures per connection
and per packet; with thousands of sockets in one process it, not the server, becomes the
bottleneck. This client is one ``asyncio.Protocol`` per connection: the websocket frames
are parsed in ``data_received`` and each Socket.IO packet is handed to a listener
synchronously, with no task or future per packet.

What it speaks, and nothing more:

* HTTP/1.1 upgrade to ``/socket.io/?EIO=4&transport=websocket`` (no extensions, so no
  compression);
* RFC 6455 frames: text, binary (ignored), continuation, ping (answered), close. Client
  frames must be masked; the mask key is all zeros, which RFC 6455 allows and which
  leaves the payload as it is (the server still runs its unmasking code);
* Engine.IO: ``0`` open, ``2`` ping (answered ``3``), ``1`` close;
* Socket.IO on the default namespace: ``40`` connect with an auth payload, ``40{sid}``
  accepted, ``44{...}`` refused, ``42[...]`` events (``42<id>[...]`` with an ack id),
  ``43<id>[...]`` acknowledgements, ``41`` disconnect.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import orjson

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ZERO_MASK = b"\x00\x00\x00\x00"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

AckCallback = Callable[[list[Any], int], None]


class ConnectRefused(Exception):
    """The server answered the Socket.IO connect with ``44`` (e.g. a bad token)."""

    def __init__(self, data: Any) -> None:
        super().__init__(f"connection refused: {data!r}")
        self.data = data


class ConnectionLost(Exception):
    """The connection closed before the Socket.IO handshake completed."""


class Listener(Protocol):
    """Receives what a connection hears. Called synchronously from ``data_received``;
    ``now_ns`` is ``time.monotonic_ns()`` when the frame was parsed."""

    def on_event(self, conn: Connection, name: str, data: Any, now_ns: int) -> None: ...

    def on_close(self, conn: Connection) -> None: ...


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final, masked (zero key) client frame."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    return header + ZERO_MASK + payload


PONG_FRAME = frame(b"3")


class Connection(asyncio.Protocol):
    """One Socket.IO client connection. Create with :func:`connect`."""

    def __init__(
        self, host: str, port: int, auth: dict[str, Any], listener: Listener, tag: Any = None
    ) -> None:
        self.host = host
        self.port = port
        self.auth = auth
        self.listener = listener
        self.tag = tag  # whatever the owner wants to find again in a callback
        self.sid: str | None = None
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A handshake failure nobody waits for any more must not be logged as unretrieved.
        self.connected.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self._key = base64.b64encode(os.urandom(16))
        self._upgraded = False
        self._buf = bytearray()
        self._fragments: list[bytes] = []
        self._acks: dict[int, AckCallback] = {}
        self._next_ack = 1

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            b"Host: " + f"{self.host}:{self.port}".encode() + b"\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + self._key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._check_upgrade(bytes(buf[:end]))
            del buf[: end + 4]
            if self.closed:
                return
        now_ns = time.monotonic_ns()
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if size - pos < head + n:
                break
            start = pos + head
            payload = bytes(buf[start : start + n])
            pos = start + n
            self._on_frame(b0, payload, now_ns)
            if self.closed:
                break
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()

    # -- sending ---------------------------------------------------------------------------

    def emit(self, name: str, data: Any, ack: AckCallback | None = None) -> None:
        """Send an event; ``ack(args, now_ns)`` is called with the server's answer."""
        if self.transport is None or self.closed:
            raise ConnectionLost("not connected")
        body = orjson.dumps([name, data])
        if ack is None:
            packet = b"42" + body
        else:
            ack_id = self._next_ack
            self._next_ack += 1
            self._acks[ack_id] = ack
            packet = b"42" + str(ack_id).encode() + body
        self.transport.write(frame(packet))

    async def call(self, name: str, data: Any, within: float = 30.0) -> Any:
        """Emit and wait (at most ``within`` seconds) for the acknowledgement's first
        argument."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(args: list[Any], _now_ns: int) -> None:
            if not future.done():
                future.set_result(args[0] if args else None)

        self.emit(name, data, done)
        return await asyncio.wait_for(future, within)

    def close(self) -> None:
        """Close the websocket politely (the server sees a normal disconnect)."""
        if self.transport is not None and not self.closed:
            self.transport.write(frame(b"41") + frame(struct.pack("!H", 1000), OP_CLOSE))
            self.transport.close()
        self._closed()

    def abort(self) -> None:
        """Drop the TCP connection at once, as a crashed client or a lost network would."""
        if self.transport is not None:
            self.transport.abort()
        self._closed()

    # -- internals -------------------------------------------------------------------------

    def _check_upgrade(self, head: bytes) -> None:
        status, _, rest = head.partition(b"\r\n")
        expected = base64.b64encode(hashlib.sha1(self._key + WS_GUID).digest())
        headers = {}
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b" 101 " not in status + b" " or headers.get(b"sec-websocket-accept") != expected:
            self._fail(
                ConnectionLost(f"websocket upgrade refused: {status.decode(errors='replace')}")
            )
            return
        self._upgraded = True

    def _on_frame(self, b0: int, payload: bytes, now_ns: int) -> None:
        opcode = b0 & 0x0F
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            if not b0 & 0x80:  # a fragment: wait for the final one
                self._fragments.append(payload)
                return
            if self._fragments:
                payload = b"".join([*self._fragments, payload])
                self._fragments.clear()
            if opcode != OP_BINARY and payload:
                self._on_packet(payload, now_ns)
        elif opcode == OP_PING:
            assert self.transport is not None
            self.transport.write(frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            self.abort()

    def _on_packet(self, packet: bytes, now_ns: int) -> None:
        kind = packet[0]
        if kind == 0x34:  # "4": a Socket.IO packet
            sub = packet[1] if len(packet) > 1 else 0
            if sub == 0x32:  # "2": event
                if packet[2] == 0x5B:  # "[": no ack id
                    name, *args = orjson.loads(packet[2:])
                    self.listener.on_event(self, name, args[0] if args else None, now_ns)
                # (an event asking us for an ack: the server never sends one)
            elif sub == 0x33:  # "3": ack
                bracket = packet.index(b"[", 2)
                callback = self._acks.pop(int(packet[2:bracket]), None)
                if callback is not None:
                    callback(orjson.loads(packet[bracket:]), now_ns)
            elif sub == 0x30:  # "0": connected
                self.sid = orjson.loads(packet[2:]).get("sid") if len(packet) > 2 else None
                if not self.connected.done():
                    self.connected.set_result(None)
            elif sub == 0x34:  # "4": connect refused
                self._fail(ConnectRefused(orjson.loads(packet[2:]) if len(packet) > 2 else None))
            elif sub == 0x31:  # "1": disconnected by the server
                self.abort()
        elif kind == 0x32:  # "2": Engine.IO ping
            assert self.transport is not None
            self.transport.write(PONG_FRAME)
        elif kind == 0x30:  # "0": Engine.IO open: connect to the default namespace
            assert self.transport is not None
            self.transport.write(frame(b"40" + orjson.dumps(self.auth)))
        elif kind == 0x31:  # "1": Engine.IO close
            self.abort()

    def _fail(self, exc: Exception) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc)
        self.abort()

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._acks.clear()
        if not self.connected.done():
            self.connected.set_exception(ConnectionLost("connection closed during handshake"))
        self.listener.on_close(self)


async def connect(
    host: str,
    port: int,
    auth: dict[str, Any],
    listener: Listener,
    *,
    tag: Any = None,
    within: float = 30.0,
    local_host: str | None = None,
) -> Connection:
    """Open a websocket and complete the Socket.IO connect within ``within`` seconds;
    raises :class:`ConnectRefused` or :class:`ConnectionLost` (or ``OSError`` /
    ``TimeoutError``) on failure."""
    loop = asyncio.get_running_loop()
    local_addr = (local_host, 0) if local_host else None

    def make() -> Connection:
        return Connection(host, port, auth, listener, tag)

    _, conn = await asyncio.wait_for(
        loop.create_connection(make, host, port, local_addr=local_addr), within
    )
    try:
        await asyncio.wait_for(asyncio.shield(conn.connected), within)
    except BaseException:
        conn.abort()
        raise
    return conn
