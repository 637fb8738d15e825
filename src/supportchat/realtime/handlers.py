"""Socket.IO events: each parses its payload, calls one domain action, answers the socket.

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

from ..domain import agents, messaging, tickets
from ..domain.context import Chat
from ..domain.errors import ChatError, Forbidden
from ..domain.identity import Actor
from ..domain.inputs import (
    CloseTicketInput,
    TicketMessageInput,
    TicketRef,
    TypingInput,
    parse,
)
from ..domain.typing import typing
from ..domain.views import closed_view as closed_payload
from ..domain.views import (
    joined_view,
    message_sent_payload,
    new_message_payload,
)
from .connections import Connections

log = logging.getLogger(__name__)

Ack = dict[str, Any]
Action = Callable[[str, Actor, Any], Awaitable[Any]]


class EventHandlers:
    def __init__(self, sio: socketio.AsyncServer, chat: Chat, connections: Connections) -> None:
        self.sio = sio
        self.chat = chat
        self.connections = connections

    def register(self) -> None:
        self.sio.on("connect", self.connections.connect)
        self.sio.on("disconnect", self.connections.disconnect)
        self._on("join_chat_room", self.join_chat_room)
        self._on("send_message", self.send_message)
        self._on("user_typing", self.typing)
        self._on("join_admin_room", self.join_admin_room, agent_only=True)
        self._on("join_chat", self.join_chat, agent_only=True)
        self._on("admin_send_message", self.send_message, agent_only=True)
        self._on("admin_close_chat", self.close_chat, agent_only=True)
        self._on("admin_typing", self.typing, agent_only=True)

    def _on(self, event: str, action: Action, *, agent_only: bool = False) -> None:
        async def handler(sid: str, *args: Any) -> Ack:
            data = args[0] if args else None
            try:
                actor = await self.connections.actor(sid)
            except KeyError:
                return {"success": False, "message": "Not connected", "code": "AUTH_ERROR"}
            if agent_only and not actor.is_agent:
                error = Forbidden("Admin privileges required")
                await self.sio.emit(
                    "error",
                    {
                        "type": error.kind,
                        "message": error.message,
                        "code": error.code,
                        "event": event,
                    },
                    to=sid,
                )
                return {"success": False, "message": error.message, "code": error.code}
            try:
                return {"success": True, "data": await action(sid, actor, data)}
            except ChatError as exc:
                return await self._refuse(sid, data, exc.kind, exc.message, exc.code)
            except Exception:
                log.exception("handler for %s failed", event)
                return await self._refuse(
                    sid, data, "message_failed", "Failed to process the request", "INTERNAL_ERROR"
                )

        self.sio.on(event, handler)

    async def _refuse(self, sid: str, data: Any, kind: str, message: str, code: str) -> Ack:
        ticket_id = data.get("ticketId") if isinstance(data, dict) else None
        await self.sio.emit(
            "chat_error",
            {
                "type": kind,
                "message": message,
                "code": code,
                "ticketId": ticket_id if isinstance(ticket_id, str) else None,
            },
            to=sid,
        )
        return {"success": False, "message": message, "code": code}

    # -- both roles -----------------------------------------------------------------------

    async def send_message(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """`send_message` (a user's message, or an agent's reply) and `admin_send_message`."""
        payload = parse(TicketMessageInput, data)
        sent = await messaging.send_message(
            self.chat, actor, payload.ticketId, payload, connection=sid
        )
        answer = message_sent_payload(sent.message)
        answer["duplicate"] = sent.duplicate
        await self.sio.emit("message_sent", answer, to=sid)
        return answer

    async def join_chat_room(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """A user's sockets already receive their tickets' events; joining checks the
        ticket is theirs and replays what came after `lastMessageId`. For an agent it
        is a join, as the earlier server's dashboard used it."""
        if actor.is_agent:
            return await self.join_chat(sid, actor, data)
        ref = parse(TicketRef, data)
        found = await tickets.resume_ticket(self.chat, actor, ref.ticketId, ref.lastMessageId)
        await self._replay(sid, found)
        ticket = found.ticket
        return {
            "ticketId": ticket.id,
            "ticketNumber": ticket.ticket_number,
            "status": ticket.status.value,
        }

    async def typing(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """`user_typing` from a user, `admin_typing` from an agent."""
        payload = parse(TypingInput, data)
        await typing(self.chat, actor, payload.ticketId, payload.isTyping)
        return {"ticketId": payload.ticketId, "isTyping": payload.isTyping}

    # -- agents ---------------------------------------------------------------------------

    async def join_admin_room(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        # Agent sockets are in the agents' audience from connection; kept for old clients.
        return {"joined": True}

    async def join_chat(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        ref = parse(TicketRef, data)
        joined = await agents.join_ticket(self.chat, actor, ref.ticketId, ref.lastMessageId)
        await self._replay(sid, joined)
        return joined_view(joined.ticket)

    async def close_chat(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        payload = parse(CloseTicketInput, data)
        closed = await agents.close_ticket(self.chat, actor, payload.ticketId, payload)
        return closed_payload(closed.ticket, already=closed.already)

    async def _replay(self, sid: str, found: tickets.Resumed) -> None:
        """Send this socket, as `new_message`, what it missed, in seq order."""
        for message in found.missed:
            await self.sio.emit("new_message", new_message_payload(found.ticket, message), to=sid)
