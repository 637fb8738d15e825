"""User-facing chat endpoints under /api/chat."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from ..domain import messaging, tickets
from ..domain.clock import iso
from ..domain.inputs import SendMessageInput, StartChatInput
from ..domain.views import message_view, pagination_view, ticket_view
from . import schemas as s
from .deps import ChatService, CurrentActor, CurrentUser
from .envelope import ok

router = APIRouter(prefix="/api/chat", tags=["chat"])


@router.post(
    "/start",
    status_code=201,
    response_model=s.Envelope[s.StartedOut],
    responses={
        200: {
            "model": s.Envelope[s.StartedOut],
            "description": "The user already had an active chat: the message was "
            "added to it (isExisting: true)",
        },
        **s.errors_doc(400, 401, 503),
    },
    summary="Start a chat session (creates its ticket)",
)
async def start_chat(
    chat: ChatService, user: CurrentUser, body: Annotated[StartChatInput | None, Body()] = None
) -> Response:
    started = await tickets.start_chat(chat, user, body or StartChatInput())
    ticket = started.ticket
    data = {
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "status": ticket.status.value,
        "subject": ticket.subject,
        "priority": ticket.priority,
        "category": ticket.category,
        "createdAt": iso(ticket.created_at),
        "messages": [message_view(m) for m in ticket.messages],
        "isExisting": started.is_existing,
    }
    if started.is_existing:
        return ok("Chat session already exists", data, 200)
    return ok("Chat session started successfully", data, 201)


@router.get(
    "/history",
    response_model=s.Envelope[s.HistoryOut],
    responses=s.errors_doc(400, 401, 503),
    summary="The user's chats, newest first",
)
async def history(
    chat: ChatService,
    user: CurrentUser,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, description="At most 100; larger values are capped")] = 10,
) -> Response:
    found = await tickets.history(chat, user, page, min(limit, 100))
    return ok(
        "Chat history retrieved successfully",
        {
            "chats": [ticket_view(t) for t in found.tickets],
            "pagination": pagination_view(found),
        },
    )


@router.get(
    "/active",
    response_model=s.Envelope[s.UserActiveOut],
    responses=s.errors_doc(401, 503),
    summary="The user's active chats",
)
async def active(chat: ChatService, user: CurrentUser) -> Response:
    found = await tickets.active_chats_of(chat, user)
    return ok(
        "Active chats retrieved successfully",
        {"activeChats": [ticket_view(t) for t in found], "count": len(found)},
    )


@router.get(
    "/{ticketId}",
    response_model=s.Envelope[s.TicketDataOut],
    responses=s.errors_doc(401, 404, 503),
    summary="One chat with all its messages (its owner, or any agent)",
)
async def get_ticket(chat: ChatService, actor: CurrentActor, ticketId: str) -> Response:
    ticket = await tickets.get_ticket(chat, actor, ticketId)
    return ok("Chat ticket retrieved successfully", {"ticket": ticket_view(ticket)})


@router.get(
    "/{ticketId}/messages",
    response_model=s.Envelope[s.MessagesPageOut],
    responses=s.errors_doc(400, 401, 404, 503),
    summary="Messages after a given one, in order (catch-up after a reconnect)",
)
async def messages_after(
    chat: ChatService,
    actor: CurrentActor,
    ticketId: str,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, description="At most 200; larger values are capped")] = 50,
) -> Response:
    page = await messaging.messages_after(chat, actor, ticketId, after, min(limit, 200))
    return ok(
        "Messages retrieved successfully",
        {"messages": [message_view(m) for m in page.messages], "hasMore": page.has_more},
    )


@router.post(
    "/{ticketId}/message",
    response_model=s.Envelope[s.SentOut],
    responses=s.errors_doc(400, 401, 404, 409, 503),
    summary="Send a message over REST (same events as a Socket.IO send)",
)
async def send_message(
    chat: ChatService,
    actor: CurrentActor,
    ticketId: str,
    body: Annotated[SendMessageInput | None, Body()] = None,
) -> Response:
    sent = await messaging.send_message(chat, actor, ticketId, body or SendMessageInput())
    data = {
        "messageId": sent.message.id,
        "timestamp": iso(sent.message.created_at),
        "ticketStatus": sent.ticket.status.value,
        "seq": sent.message.seq,
        "duplicate": sent.duplicate,
    }
    if sent.message.client_message_id is not None:
        data["clientMessageId"] = sent.message.client_message_id
    return ok("Message sent successfully", data)
