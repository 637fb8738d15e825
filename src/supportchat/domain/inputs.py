"""What clients may send, checked the same way whichever transport carried it.

The models check shapes and types (REST bodies and Socket.IO payloads alike); `Rules`
checks what depends on configuration (lengths, categories). Unknown fields such as
`senderModel`, `timestamp`, `status` or `assignedTo` are dropped: the server decides
who sent what, when, and in which state a ticket is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidInput, TicketNotFound
from .ids import is_valid_id
from .records import PRIORITIES, Status

ClientMessageId = Field(default=None, min_length=1, max_length=64)


class Input(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        """Refuse text no database can store as sent: NUL (PostgreSQL rejects it) and lone
        UTF-16 surrogates (not encodable as UTF-8), instead of failing at the INSERT."""
        if isinstance(value, str) and not is_storable(value):
            raise ValueError("text must not contain NUL characters or unpaired surrogates")
        return value


def is_storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Attachment(Input):
    fileName: str = Field(min_length=1, max_length=255)
    fileUrl: str = Field(min_length=1, max_length=2048)
    fileType: str | None = Field(default=None, max_length=127)


class StartChatInput(Input):
    message: str | None = Field(default=None, description="The opening message (required)")
    category: str | None = Field(
        default=None, max_length=64, description="One of the configured categories"
    )
    priority: str | None = Field(
        default=None, max_length=16, description="low, medium, high or urgent"
    )
    attachments: list[Attachment] | None = None
    clientMessageId: str | None = ClientMessageId


class SendMessageInput(Input):
    message: str | None = Field(default=None, description="The message text (required)")
    attachments: list[Attachment] | None = None
    clientMessageId: str | None = ClientMessageId


class CloseChatInput(Input):
    resolutionSummary: str | None = Field(default=None, max_length=5000)


class TicketRef(Input):
    ticketId: str = Field(max_length=64)
    lastMessageId: str | None = Field(default=None, max_length=64)


class StatusFilterInput(Input):
    status: str | None = Field(default=None, max_length=32)


# The agents' queue is paged, and each chat in it carries only its latest messages: with
# no bound, one dashboard asking for `?status=resolved` on a year's data, or for the
# active floor at full load, returns megabytes and holds the server for seconds. The
# document's dashboard reads the last message of each chat as a preview; a whole
# conversation comes from joining it.
QUEUE_PAGE_DEFAULT = 500
QUEUE_PAGE_MAX = 500
QUEUE_MESSAGES_DEFAULT = 50
QUEUE_MESSAGES_MAX = 500


class QueueQuery(StatusFilterInput):
    """Which page of the agents' queue, and how many of each chat's latest messages."""

    page: int = Field(default=1, ge=1, le=1_000_000)
    limit: int = Field(default=QUEUE_PAGE_DEFAULT, ge=1, le=QUEUE_PAGE_MAX)
    messages: int = Field(default=QUEUE_MESSAGES_DEFAULT, ge=0, le=QUEUE_MESSAGES_MAX)


class TypingInput(Input):
    ticketId: str = Field(max_length=64)
    isTyping: bool = True


class TicketMessageInput(SendMessageInput):
    ticketId: str = Field(max_length=64)


class CloseTicketInput(CloseChatInput):
    ticketId: str = Field(max_length=64)


M = TypeVar("M", bound=Input)


def parse(model: type[M], data: Any) -> M:
    """Validate a payload into `model`, turning every failure into one clear InvalidInput."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("Payload must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc) from None


def invalid_from(exc: ValidationError) -> InvalidInput:
    errors = [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return InvalidInput(f"Invalid request: {summary}", errors=errors)


def require_ticket_id(value: str) -> str:
    """A malformed ticket id can name no ticket: it is answered like an unknown one."""
    if not is_valid_id(value):
        raise TicketNotFound()
    return value


@dataclass(frozen=True, slots=True)
class Rules:
    """The limits and vocabularies that configuration sets."""

    categories: tuple[str, ...]
    default_category: str
    max_message_length: int
    max_attachments: int

    def text(self, value: str | None, *, missing: str) -> str:
        if value is None or not value.strip():
            raise InvalidInput(missing)
        if len(value) > self.max_message_length:
            raise InvalidInput(
                f"Message is too long: {len(value)} characters, "
                f"the limit is {self.max_message_length}"
            )
        return value

    def category(self, value: str | None) -> str:
        if value is None or value == "":
            return self.default_category
        return _one_of(value, self.categories, "category")

    def priority(self, value: str | None) -> str:
        if value is None or value == "":
            return "medium"
        return _one_of(value, PRIORITIES, "priority")

    def attachments(self, value: list[Attachment] | None) -> list[dict[str, Any]]:
        if not value:
            return []
        if len(value) > self.max_attachments:
            raise InvalidInput(
                f"Too many attachments: {len(value)}, the limit is {self.max_attachments}"
            )
        for item in value:
            url = urlsplit(item.fileUrl)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise InvalidInput("Attachment fileUrl must be an http(s) URL")
        return [item.model_dump() for item in value]

    @staticmethod
    def status_filter(value: str | None) -> tuple[Status, ...]:
        """`active` (the default) means the three active statuses; else one status."""
        if value is None or value == "" or value == "active":
            return (Status.OPEN, Status.IN_PROGRESS, Status.WAITING_FOR_USER)
        return (Status(_one_of(value, ["active", *(s.value for s in Status)], "status")),)


def _one_of(value: str, allowed: Iterable[str], name: str) -> str:
    allowed = list(allowed)
    if value not in allowed:
        shown = value if len(value) <= 64 else value[:64] + "..."
        raise InvalidInput(f"Invalid {name} '{shown}'. Valid values: {', '.join(allowed)}")
    return value
