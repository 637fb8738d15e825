"""Tables. Alembic migrations under supportchat/migrations create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

ACTIVE_STATUSES = ("open", "in_progress", "waiting_for_user")
_ACTIVE_SQL = "status IN ('open', 'in_progress', 'waiting_for_user')"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# The directory of people known from verified tokens, upserted as they act.
people = Table(
    "people",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("full_name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("role", String(64), nullable=True),
    Column("is_agent", Boolean, nullable=False, default=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("ticket_number", String(32), nullable=False, unique=True),
    Column("user_id", String(128), ForeignKey("people.id"), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("status", String(32), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("category", String(64), nullable=False),
    Column("is_chat", Boolean, nullable=False, default=True),
    Column("assigned_to", String(128), ForeignKey("people.id"), nullable=True),
    Column("assigned_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolved_by", String(128), ForeignKey("people.id"), nullable=True),
    Column("resolution_summary", Text, nullable=True),
    # The seq of the newest message; the next message takes last_seq + 1.
    Column("last_seq", Integer, nullable=False, default=0),
    CheckConstraint(
        "status IN ('open', 'in_progress', 'waiting_for_user', 'resolved', 'closed')",
        name="status",
    ),
    Index("ix_tickets_user_created", "user_id", "created_at"),
    Index("ix_tickets_status_updated", "status", "updated_at"),
    Index("ix_tickets_assigned_status", "assigned_to", "status"),
    # At most one active chat per user, enforced by the database so that concurrent
    # starts by one user cannot create two.
    Index(
        "uq_tickets_one_active_per_user",
        "user_id",
        unique=True,
        sqlite_where=text(_ACTIVE_SQL),
        postgresql_where=text(_ACTIVE_SQL),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("ticket_id", String(24), ForeignKey("tickets.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("sender_id", String(128), ForeignKey("people.id"), nullable=False),
    Column("sender_name", String(200), nullable=False),
    Column("sender_model", String(16), nullable=False),
    Column("is_admin_reply", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    Column("attachments", JSON, nullable=False),
    Column("client_message_id", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("uq_messages_ticket_seq", "ticket_id", "seq", unique=True),
    Index("uq_messages_ticket_client_id", "ticket_id", "client_message_id", unique=True),
)

# One counter row per year hands out ticket numbers; the row lock makes them unique.
ticket_counters = Table(
    "ticket_counters",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("last_value", Integer, nullable=False),
)

# Agents who joined a ticket receive its messages and typing on all of their sockets,
# from whichever process serves them, so membership lives here, not in a process.
ticket_watchers = Table(
    "ticket_watchers",
    metadata,
    Column("ticket_id", String(24), ForeignKey("tickets.id"), primary_key=True),
    Column("agent_id", String(128), ForeignKey("people.id"), primary_key=True),
    Column("joined_at", UTCDateTime, nullable=False),
    Index("ix_ticket_watchers_agent", "agent_id"),
)

# One row per connected agent socket; rows whose process stopped refreshing them expire.
agent_presence = Table(
    "agent_presence",
    metadata,
    Column("sid", String(64), primary_key=True),
    Column("agent_id", String(128), nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Index("ix_agent_presence_agent", "agent_id"),
    Index("ix_agent_presence_node", "node_id"),
)
