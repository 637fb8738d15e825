"""The documented Socket.IO events: each parses its payload, calls one domain action and
answers the socket (see dispatch.py for how answers and failures are sent)."""

from __future__ import annotations

from typing import Any

import socketio

from ..domain import agents, messaging, presence, tickets
from ..domain.context import Chat
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
)
from .catchup import GatedManager
from .dispatch import Dispatcher


class EventHandlers:
    def __init__(self, sio: socketio.AsyncServer, chat: Chat, delivery: GatedManager) -> None:
        self.sio = sio
        self.chat = chat
        self.delivery = delivery

    def register(self, dispatch: Dispatcher) -> None:
        dispatch.on("join_chat_room", self.join_chat_room)
        dispatch.on("send_message", self.send_message)
        dispatch.on("user_typing", self.typing)
        dispatch.on("join_admin_room", self.join_admin_room, agent_only=True)
        dispatch.on("join_chat", self.join_chat, agent_only=True)
        dispatch.on("admin_send_message", self.send_message, agent_only=True)
        dispatch.on("admin_close_chat", self.close_chat, agent_only=True)
        dispatch.on("admin_typing", self.typing, agent_only=True)

    async def send_roster(self, sid: str, actor: Actor) -> None:
        """On connect, an agent socket is sent an `admin_status_update` for each agent
        online (itself included), so that a dashboard knows who is there without
        waiting for them to come and go. An update committed while the roster is read
        may reach the socket before it; the next change of that agent corrects it."""
        if not actor.is_agent:
            return
        for status in await presence.roster(self.chat):
            await self.sio.emit("admin_status_update", status, to=sid)

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
            joined = await self.join_chat(sid, actor, data)
            # The earlier server answered an agent's join_chat_room with this event.
            await self.sio.emit(
                "chat_room_joined",
                {"ticketId": joined["ticketId"], "ticketNumber": joined["ticketNumber"]},
                to=sid,
            )
            return joined
        ref = parse(TicketRef, data)
        async with self.delivery.gate(sid, ref.ticketId) as gate:
            found = await tickets.resume_ticket(self.chat, actor, ref.ticketId, ref.lastMessageId)
            self.delivery.replay(gate, found.ticket, found.missed)
        ticket = found.ticket
        return {
            "ticketId": ticket.id,
            "ticketNumber": ticket.ticket_number,
            "status": ticket.status.value,
        }

    async def typing(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """`user_typing` from a user, `admin_typing` from an agent."""
        payload = parse(TypingInput, data)
        delivered = await typing(self.chat, actor, payload.ticketId, payload.isTyping)
        return {"ticketId": payload.ticketId, "isTyping": payload.isTyping, "delivered": delivered}

    # -- agents ---------------------------------------------------------------------------

    async def join_admin_room(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        # Agent sockets are in the agents' audience from connection; kept for old clients.
        return {"joined": True}

    async def join_chat(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        ref = parse(TicketRef, data)
        async with self.delivery.gate(sid, ref.ticketId) as gate:
            joined = await agents.join_ticket(self.chat, actor, ref.ticketId, ref.lastMessageId)
            self.delivery.replay(gate, joined.ticket, joined.missed)
            # The acknowledgement carries the whole transcript.
            gate.covered(joined.ticket.messages)
        return joined_view(joined.ticket)

    async def close_chat(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        payload = parse(CloseTicketInput, data)
        closed = await agents.close_ticket(self.chat, actor, payload.ticketId, payload)
        return closed_payload(closed.ticket, already=closed.already)
