"""Typing indicators: relayed, never stored."""

from __future__ import annotations

from .access import access_ticket, ensure_active
from .context import Chat
from .errors import RateLimited
from .events import Audience, Event
from .identity import Actor
from .limits import Quota


async def typing(chat: Chat, actor: Actor, ticket_id: str, is_typing: bool) -> bool:
    """A user's typing goes to the agents following the chat; an agent's to the user.

    Returns False when the update was dropped: a client over its typing quota is
    throttled silently (the indicator is a hint, not data), so it cannot flood the
    other side's sockets."""
    async with chat.reading() as repo:
        ticket = await access_ticket(repo, actor, ticket_id)
        ensure_active(ticket)
        watchers = tuple(await repo.watchers(ticket.id))
    try:
        await chat.limits.charge(Quota.TYPING, actor.id, ticket.id)
    except RateLimited:
        return False
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
    return True
