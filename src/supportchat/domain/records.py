"""What the domain reads and writes: plain records, independent of the storage engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_USER = "waiting_for_user"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({Status.OPEN, Status.IN_PROGRESS, Status.WAITING_FOR_USER})

PRIORITIES = ("low", "medium", "high", "urgent")


@dataclass(frozen=True, slots=True)
class PersonRef:
    id: str
    full_name: str
    email: str


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    ticket_id: str
    seq: int
    sender_id: str
    sender_name: str
    sender_model: str  # "DTUser" or "Admin", as the earlier server named them
    is_admin_reply: bool
    body: str
    attachments: list[dict[str, Any]]
    client_message_id: str | None
    created_at: datetime


@dataclass(slots=True)
class Ticket:
    id: str
    ticket_number: str
    user: PersonRef
    subject: str
    status: Status
    priority: str
    category: str
    is_chat: bool
    assigned_to: PersonRef | None
    assigned_at: datetime | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolved_by: PersonRef | None
    resolution_summary: str | None
    last_seq: int
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TicketPage:
    """One page of a list of tickets (a user's history, the agents' queue)."""

    tickets: list[Ticket]
    total: int
    page: int
    limit: int

    @property
    def total_pages(self) -> int:
        return (self.total + self.limit - 1) // self.limit
