"""The wrapper around every Socket.IO event handler.

Every handler answers through its acknowledgement (`{success, data}` or `{success:
false, message, code}`); failures tied to a ticket also go out as `chat_error`, failures
of the socket itself (an agent-only event from a user) as `error`. Nothing a client
sends can raise out of a handler and drop the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from ..domain.errors import ChatError, Forbidden, RateLimited
from ..domain.identity import Actor
from .connections import Connections
from .drain import Drain

log = logging.getLogger(__name__)

Ack = dict[str, Any]
Action = Callable[[str, Actor, Any], Awaitable[Any]]


class Dispatcher:
    def __init__(self, sio: socketio.AsyncServer, connections: Connections, drain: Drain) -> None:
        self.sio = sio
        self.connections = connections
        self.drain = drain

    def on(self, event: str, action: Action, *, agent_only: bool = False) -> None:
        async def handler(sid: str, *args: Any) -> Ack:
            data = args[0] if args else None
            try:
                actor = await self.connections.actor(sid)
            except KeyError:
                return {"success": False, "message": "Not connected", "code": "AUTH_ERROR"}
            if agent_only and not actor.is_agent:
                return await self._forbidden(sid, event)
            try:
                with self.drain.task():
                    return {"success": True, "data": await action(sid, actor, data)}
            except RateLimited as exc:
                return await self._refuse(
                    sid, data, exc.kind, exc.message, exc.code, retryAfter=exc.retry_after
                )
            except ChatError as exc:
                return await self._refuse(sid, data, exc.kind, exc.message, exc.code)
            except Exception:
                log.exception("handler for %s failed", event)
                return await self._refuse(
                    sid, data, "message_failed", "Failed to process the request", "INTERNAL_ERROR"
                )

        self.sio.on(event, handler)

    async def _forbidden(self, sid: str, event: str) -> Ack:
        error = Forbidden("Admin privileges required")
        await self.sio.emit(
            "error",
            {"type": error.kind, "message": error.message, "code": error.code, "event": event},
            to=sid,
        )
        return {"success": False, "message": error.message, "code": error.code}

    async def _refuse(
        self, sid: str, data: Any, kind: str, message: str, code: str, **extra: Any
    ) -> Ack:
        ticket_id = data.get("ticketId") if isinstance(data, dict) else None
        await self.sio.emit(
            "chat_error",
            {
                "type": kind,
                "message": message,
                "code": code,
                "ticketId": ticket_id if isinstance(ticket_id, str) else None,
                **extra,
            },
            to=sid,
        )
        return {"success": False, "message": message, "code": code, **extra}
