"""Response shapes, for the OpenAPI document at /docs.

Routes build their bodies with domain/views.py; these models describe those bodies, and
the test suite checks real responses against them so that the document stays true.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Envelope(Out, Generic[T]):
    success: bool
    message: str
    data: T


class ErrorDetail(Out):
    field: str
    message: str


class ErrorOut(Out):
    success: bool = False
    message: str
    code: str | None = None
    errors: list[ErrorDetail] | None = None


class PersonOut(Out):
    id: str = Field(alias="_id")
    fullName: str
    email: str


class AttachmentOut(Out):
    fileName: str
    fileUrl: str
    fileType: str | None = None


class MessageOut(Out):
    id: str = Field(alias="_id")
    sender: str
    senderName: str
    senderModel: str = Field(description='"DTUser" or "Admin"')
    message: str
    isAdminReply: bool
    timestamp: str
    attachments: list[AttachmentOut]
    seq: int = Field(description="Position of the message in its chat: 1, 2, 3, ...")
    clientMessageId: str | None = None


class TicketOut(Out):
    id: str = Field(alias="_id")
    ticketNumber: str
    subject: str
    status: str
    priority: str
    category: str
    isChat: bool
    createdAt: str
    lastUpdated: str
    userId: PersonOut
    assignedTo: PersonOut | None
    assignedAt: str | None
    resolvedAt: str | None
    resolvedBy: PersonOut | None
    resolutionSummary: str | None
    messages: list[MessageOut]


class StartedOut(Out):
    ticketId: str
    ticketNumber: str
    status: str
    subject: str
    priority: str
    category: str
    createdAt: str
    messages: list[MessageOut]
    isExisting: bool


class PaginationOut(Out):
    currentPage: int
    totalPages: int
    totalChats: int
    hasNextPage: bool
    hasPrevPage: bool
    limit: int


class HistoryOut(Out):
    chats: list[TicketOut]
    pagination: PaginationOut


class TicketDataOut(Out):
    ticket: TicketOut


class SentOut(Out):
    messageId: str
    timestamp: str
    ticketStatus: str
    seq: int
    clientMessageId: str | None = None
    duplicate: bool = Field(description="True when clientMessageId repeated an earlier send")


class MessagesPageOut(Out):
    messages: list[MessageOut]
    hasMore: bool


class UserActiveOut(Out):
    activeChats: list[TicketOut]
    count: int


class AgentQueueOut(Out):
    chats: list[TicketOut]
    count: int
    pagination: PaginationOut


class JoinedOut(Out):
    ticketId: str
    ticketNumber: str
    assignedTo: str | None
    assignedAgent: PersonOut | None
    status: str
    userId: str
    userName: str
    userEmail: str
    messages: list[MessageOut]


class ClosedOut(Out):
    ticketId: str
    ticketNumber: str
    status: str
    resolvedAt: str | None
    resolvedBy: PersonOut | None
    resolutionSummary: str | None
    alreadyClosed: bool


class HealthOut(Out):
    status: str
    database: str
    redis: str | None = None  # only with SUPPORTCHAT_REDIS_URL set


def errors_doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route can give, for the OpenAPI document."""
    text = {
        400: "Invalid input",
        401: "Missing, invalid or expired token",
        403: "Agents only",
        404: "Chat ticket not found (or not yours)",
        409: "The chat is closed",
        503: "Database unavailable",
    }
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}
