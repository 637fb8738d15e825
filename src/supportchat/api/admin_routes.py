"""Agent endpoints under /api/chat/admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from ..domain import agents, tickets
from ..domain.inputs import (
    QUEUE_MESSAGES_DEFAULT,
    QUEUE_MESSAGES_MAX,
    QUEUE_PAGE_DEFAULT,
    QUEUE_PAGE_MAX,
    CloseChatInput,
    QueueQuery,
    parse,
)
from ..domain.views import closed_view, joined_view, pagination_view, ticket_view
from . import schemas as s
from .deps import ChatService, CurrentAgent
from .envelope import ok

router = APIRouter(prefix="/api/chat/admin", tags=["agents"])


@router.get(
    "/active",
    response_model=s.Envelope[s.AgentQueueOut],
    responses=s.errors_doc(400, 401, 403, 503),
    summary="Active chats for the agents' dashboard",
)
async def active(
    chat: ChatService,
    agent: CurrentAgent,
    status: Annotated[
        str | None,
        Query(description="active (open, in_progress, waiting_for_user) or one status"),
    ] = "active",
    # The ranges are the domain's (QueueQuery); parse() below refuses what is out of them.
    page: Annotated[int, Query(description="Which page, from 1")] = 1,
    limit: Annotated[
        int, Query(description=f"Chats per page, 1 to {QUEUE_PAGE_MAX}")
    ] = QUEUE_PAGE_DEFAULT,
    messages: Annotated[
        int,
        Query(description=f"How many of each chat's latest messages, 0 to {QUEUE_MESSAGES_MAX}"),
    ] = QUEUE_MESSAGES_DEFAULT,
) -> Response:
    query = parse(
        QueueQuery, {"status": status, "page": page, "limit": limit, "messages": messages}
    )
    found = await tickets.tickets_for_agents(chat, agent, query)
    label = "Active" if status in (None, "", "active") else f"'{status}'"
    return ok(
        f"{label} chat tickets retrieved successfully",
        {
            "chats": [ticket_view(t) for t in found.tickets],
            "count": len(found.tickets),
            "pagination": pagination_view(found),
        },
    )


@router.post(
    "/join/{ticketId}",
    response_model=s.Envelope[s.JoinedOut],
    responses=s.errors_doc(401, 403, 404, 409, 503),
    summary="Join a chat: follow it, and take it if nobody has it",
)
async def join(chat: ChatService, agent: CurrentAgent, ticketId: str) -> Response:
    joined = await agents.join_ticket(chat, agent, ticketId)
    return ok("Successfully joined chat as admin", joined_view(joined.ticket))


@router.post(
    "/close/{ticketId}",
    response_model=s.Envelope[s.ClosedOut],
    responses=s.errors_doc(400, 401, 403, 404, 503),
    summary="Close a chat and resolve its ticket",
)
async def close(
    chat: ChatService,
    agent: CurrentAgent,
    ticketId: str,
    body: Annotated[CloseChatInput | None, Body()] = None,
) -> Response:
    closed = await agents.close_ticket(chat, agent, ticketId, body or CloseChatInput())
    message = (
        "Chat session was already closed"
        if closed.already
        else ("Chat session closed successfully")
    )
    return ok(message, closed_view(closed.ticket, already=closed.already))
