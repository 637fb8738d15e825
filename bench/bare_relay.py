"""The bare stack: python-socketio under uvicorn, relaying messages with no auth and no
database, so that the real server's figures can be read as ratios to it.

It serves the event names the load generator uses, with the same fan-out as the real
server, and the same uvicorn and python-socketio settings as ``supportchat serve``
(websockets-sansio, httptools, uvloop, the orjson codec, the same packet size cap):

* connect: a socket whose ``auth.userType`` is ``admin`` joins the ``agents`` room (the
  token is not looked at);
* ``join_chat`` / ``join_chat_room {ticketId}``: the socket joins the ticket's room;
* ``send_message {ticketId, ...}``: ``new_message`` (the payload as received) to the
  ticket's room except the sender, ``user_message`` (the same) to ``agents``, and an
  acknowledgement ``{success, data: {clientMessageId}}``;
* ``admin_send_message``: the same without ``user_message``;
* HTTP: ``/health``, and ``/bytes/<n>``, a JSON body of n bytes (the counterpart of a
  REST answer of that size in the REST scenarios).

What the real server does besides (and the bare relay does not): verify the token,
check who may touch the ticket, store the message (one transaction, fsynced), count rate
limits, build the full message payloads, send ``message_sent`` to the sender, and guard
against stalled clients.

Run: ``python -m bench.bare_relay --host 127.0.0.1 --port 8001``.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
import uvicorn
from starlette.types import Receive, Scope, Send

from supportchat.realtime.codec import OrjsonCodec, Packet

MAX_PACKET = 65536  # SUPPORTCHAT_MAX_HTTP_BUFFER_SIZE's default
AGENTS = "agents"


def build() -> Any:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        json=OrjsonCodec,
        serializer=Packet,
        max_http_buffer_size=MAX_PACKET,
        cors_allowed_origins="*",
        logger=False,
        engineio_logger=False,
    )

    @sio.on("connect")  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if isinstance(auth, dict) and auth.get("userType") == "admin":
            await sio.enter_room(sid, AGENTS)

    async def join(sid: str, data: Any) -> dict[str, Any]:
        ticket_id = data["ticketId"]
        await sio.enter_room(sid, ticket_id)
        return {"success": True, "data": {"ticketId": ticket_id}}

    async def relay(sid: str, data: Any, *, to_agents: bool) -> dict[str, Any]:
        ticket_id = data["ticketId"]
        await sio.emit("new_message", data, to=ticket_id, skip_sid=sid)
        if to_agents:
            await sio.emit("user_message", data, to=AGENTS)
        return {"success": True, "data": {"clientMessageId": data.get("clientMessageId")}}

    async def send_message(sid: str, data: Any) -> dict[str, Any]:
        return await relay(sid, data, to_agents=True)

    async def admin_send_message(sid: str, data: Any) -> dict[str, Any]:
        return await relay(sid, data, to_agents=False)

    sio.on("join_chat", join)
    sio.on("join_chat_room", join)
    sio.on("send_message", send_message)
    sio.on("admin_send_message", admin_send_message)

    bodies: dict[int, bytes] = {}

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        """/health, and /bytes/<n>: a JSON body of n bytes, the bare-stack counterpart
        of a REST answer of that size (the REST scenarios compare against it)."""
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        body, status = b"", 404
        if path == "/health":
            body, status = b'{"status":"ok"}', 200
        elif path.startswith("/bytes/") and path[7:].isdigit():
            n = min(int(path[7:]), 64 * 1024 * 1024)
            if n not in bodies:
                bodies[n] = b'{"data":"' + b"x" * max(0, n - 11) + b'"}'
            body, status = bodies[n], 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def nothing() -> None:
        return None

    # on_startup makes engine.io answer the lifespan protocol itself.
    return socketio.ASGIApp(sio, other_asgi_app=http, on_startup=nothing)


def main() -> None:
    parser = argparse.ArgumentParser(description="bare python-socketio relay (benchmark baseline)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    config = uvicorn.Config(
        build(),
        host=args.host,
        port=args.port,
        log_level="warning",
        proxy_headers=True,
        ws="websockets-sansio",
        ws_max_size=MAX_PACKET + 1024,
        lifespan="on",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
