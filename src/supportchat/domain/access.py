"""Fetching a ticket and checking who may touch it, in one step, so the check is never skipped.

A user only ever sees their own tickets; for any other ticket, theirs or nobody's, they
get the same "not found", so they never learn that another user's ticket exists.
"""

from __future__ import annotations

from ..storage.repository import Repository
from .errors import ChatClosed, Forbidden, TicketNotFound
from .identity import Actor
from .inputs import require_ticket_id
from .records import Ticket


async def access_ticket(
    repo: Repository, actor: Actor, ticket_id: str, *, for_update: bool = False
) -> Ticket:
    ticket = await repo.get_ticket(require_ticket_id(ticket_id), for_update=for_update)
    return visible(ticket, actor)


def visible(ticket: Ticket | None, actor: Actor) -> Ticket:
    """The ticket, if the actor may touch it: any agent, or the user who owns it."""
    if ticket is None:
        raise TicketNotFound()
    if not actor.is_agent and ticket.user.id != actor.id:
        raise TicketNotFound()
    return ticket


def ensure_active(ticket: Ticket) -> None:
    if not ticket.status.is_active:
        raise ChatClosed()


def require_agent(actor: Actor) -> None:
    if not actor.is_agent:
        raise Forbidden("Admin privileges required")
