"""Events of the earlier server and its shipped web client, beyond the API document.

Each is a thin alias over the same domain actions as its documented twin (CONTRACT.md,
"Compatibility"), so ownership, role and state rules are never written twice; only the
event names and answer payloads differ.
"""

from __future__ import annotations

from typing import Any

import socketio

from ..domain import agents, tickets
from ..domain.clock import iso
from ..domain.context import Chat
from ..domain.identity import Actor
from ..domain.inputs import QueueQuery, StartChatInput, TicketRef, parse
from ..domain.records import Ticket
from ..domain.views import message_view, ticket_view
from .dispatch import Dispatcher
from .handlers import EventHandlers


class CompatHandlers:
    def __init__(self, sio: socketio.AsyncServer, chat: Chat, documented: EventHandlers) -> None:
        self.sio = sio
        self.chat = chat
        self.documented = documented

    def register(self, dispatch: Dispatcher) -> None:
        dispatch.on("start_chat", self.start_chat)
        dispatch.on("get_chat_history", self.get_chat_history)
        dispatch.on("rejoin_ticket", self.rejoin_ticket)
        dispatch.on("leave_chat_room", self.leave_chat_room)
        dispatch.on("join_ticket", self.join_ticket, agent_only=True)
        dispatch.on("close_chat", self.documented.close_chat, agent_only=True)
        dispatch.on("get_active_chats", self.get_active_chats, agent_only=True)
        dispatch.on("get_admin_active_tickets", self.get_active_chats, agent_only=True)

    async def start_chat(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """Like POST /api/chat/start, answered with `chat_started`."""
        started = await tickets.start_chat(
            self.chat, actor.as_user(), parse(StartChatInput, data), connection=sid
        )
        answer = {
            **_summary(started.ticket),
            "messages": [message_view(m) for m in started.ticket.messages],
            "isExisting": started.is_existing,
        }
        await self.sio.emit("chat_started", answer, to=sid)
        return answer

    async def get_chat_history(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        ref = parse(TicketRef, data)
        ticket = await tickets.get_ticket(self.chat, actor, ref.ticketId)
        answer = {
            **_summary(ticket),
            "subject": ticket.subject,
            "messages": [message_view(m) for m in ticket.messages],
            "createdAt": iso(ticket.created_at),
            "lastUpdated": iso(ticket.updated_at),
        }
        await self.sio.emit("chat_history", answer, to=sid)
        return answer

    async def rejoin_ticket(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """A reconnecting client's way back into a chat: the whole chat, then (with
        `lastMessageId`) what it missed as `new_message` events."""
        ref = parse(TicketRef, data)
        delivery = self.documented.delivery
        async with delivery.gate(sid, ref.ticketId) as gate:
            found = await tickets.resume_ticket(self.chat, actor, ref.ticketId, ref.lastMessageId)
            ticket = found.ticket
            answer = {
                **_summary(ticket),
                "messages": [message_view(m) for m in ticket.messages],
                "lastUpdated": iso(ticket.updated_at),
            }
            await self.sio.emit("ticket_rejoined", answer, to=sid)
            delivery.replay(gate, ticket, found.missed)
            gate.covered(ticket.messages)
        return answer

    async def join_ticket(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """An agent's join (as `join_chat`), answered with `ticket_joined`."""
        joined = await self.documented.join_chat(sid, actor, data)
        answer = {
            "ticketId": joined["ticketId"],
            "ticketNumber": joined["ticketNumber"],
            "userName": joined["userName"],
            "userEmail": joined["userEmail"],
            "messages": joined["messages"],
            "status": joined["status"],
            "assignedTo": joined["assignedTo"],
        }
        await self.sio.emit("ticket_joined", answer, to=sid)
        return answer

    async def leave_chat_room(self, sid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """An agent stops following a chat. A user's sockets always follow their own
        chats (CONTRACT.md), so for a user this only checks the chat is theirs."""
        ref = parse(TicketRef, data)
        if actor.is_agent:
            ticket = await agents.leave_ticket(self.chat, actor, ref.ticketId)
        else:
            ticket = (await tickets.resume_ticket(self.chat, actor, ref.ticketId, None)).ticket
        return {"ticketId": ticket.id, "left": actor.is_agent}

    async def get_active_chats(self, sid: str, actor: Actor, data: Any) -> list[dict[str, Any]]:
        """`get_active_chats` and `get_admin_active_tickets {status}`, answered with
        `active_chats` (a list of tickets, as in GET /api/chat/admin/active; `page`, `limit`
        and `messages` as there too)."""
        found = await tickets.tickets_for_agents(self.chat, actor, parse(QueueQuery, data))
        answer = [ticket_view(t) for t in found.tickets]
        await self.sio.emit("active_chats", answer, to=sid)
        return answer

    async def send_active_tickets(self, sid: str, actor: Actor) -> None:
        """On connect, a user socket with active chats is told about them."""
        if actor.is_agent:
            return
        found = await tickets.active_chats_of(self.chat, actor)
        if found:
            await self.sio.emit(
                "active_tickets", {"tickets": [ticket_view(t) for t in found]}, to=sid
            )


def _summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "status": ticket.status.value,
    }
