"""Typing indicators: relayed, never stored."""

from __future__ import annotations

from .access import access_ticket, ensure_active
from .context import Chat
from .events import Audience, Event
from .identity import Actor


async def typing(chat: Chat, actor: Actor, ticket_id: str, is_typing: bool) -> None:
    """A user's typing goes to the agents following the chat; an agent's to the user."""
    async with chat.reading() as repo:
        ticket = await access_ticket(repo, actor, ticket_id)
        ensure_active(ticket)
        watchers = tuple(await repo.watchers(ticket.id))
    if actor.is_agent:
        event = Event(
            "agent_typing",
            {
                "ticketId": ticket.id,
                "agentName": actor.name,
                "agentId": actor.id,
                "isTyping": is_typing,
            },
            Audience(users=(ticket.user.id,)),
        )
    else:
        event = Event(
            "user_typing",
            {
                "ticketId": ticket.id,
                "userName": actor.name,
                "userId": actor.id,
                "isTyping": is_typing,
            },
            Audience(agents=watchers),
        )
    await chat.publisher.publish([event])
