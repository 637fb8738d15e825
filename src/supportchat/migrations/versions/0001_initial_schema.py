"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 16:14:28.328601
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import supportchat.storage.schema

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_presence",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=128), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", supportchat.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_agent_presence")),
    )
    with op.batch_alter_table("agent_presence", schema=None) as batch_op:
        batch_op.create_index("ix_agent_presence_agent", ["agent_id"], unique=False)
        batch_op.create_index("ix_agent_presence_node", ["node_id"], unique=False)

    op.create_table(
        "people",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("is_agent", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at", supportchat.storage.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
    )
    op.create_table(
        "ticket_counters",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_ticket_counters")),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("is_chat", sa.Boolean(), nullable=False),
        sa.Column("assigned_to", sa.String(length=128), nullable=True),
        sa.Column(
            "assigned_at", supportchat.storage.schema.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "created_at", supportchat.storage.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", supportchat.storage.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "resolved_at", supportchat.storage.schema.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("resolution_summary", sa.Text(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'in_progress', 'waiting_for_user', 'resolved', 'closed')",
            name=op.f("ck_tickets_status"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_to"], ["people.id"], name=op.f("fk_tickets_assigned_to_people")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["people.id"], name=op.f("fk_tickets_resolved_by_people")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["people.id"], name=op.f("fk_tickets_user_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("ticket_number", name=op.f("uq_tickets_ticket_number")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_assigned_status", ["assigned_to", "status"], unique=False)
        batch_op.create_index("ix_tickets_status_updated", ["status", "updated_at"], unique=False)
        batch_op.create_index("ix_tickets_user_created", ["user_id", "created_at"], unique=False)
        batch_op.create_index(
            "uq_tickets_one_active_per_user",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('open', 'in_progress', 'waiting_for_user')"),
            postgresql_where=sa.text("status IN ('open', 'in_progress', 'waiting_for_user')"),
        )

    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ticket_id", sa.String(length=24), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("sender_model", sa.String(length=16), nullable=False),
        sa.Column("is_admin_reply", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("client_message_id", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", supportchat.storage.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["people.id"], name=op.f("fk_messages_sender_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_messages_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "uq_messages_ticket_client_id", ["ticket_id", "client_message_id"], unique=True
        )
        batch_op.create_index("uq_messages_ticket_seq", ["ticket_id", "seq"], unique=True)

    op.create_table(
        "ticket_watchers",
        sa.Column("ticket_id", sa.String(length=24), nullable=False),
        sa.Column("agent_id", sa.String(length=128), nullable=False),
        sa.Column(
            "joined_at", supportchat.storage.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["people.id"], name=op.f("fk_ticket_watchers_agent_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_watchers_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_id", "agent_id", name=op.f("pk_ticket_watchers")),
    )
    with op.batch_alter_table("ticket_watchers", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_watchers_agent", ["agent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket_watchers", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_watchers_agent")

    op.drop_table("ticket_watchers")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("uq_messages_ticket_seq")
        batch_op.drop_index("uq_messages_ticket_client_id")

    op.drop_table("messages")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_tickets_one_active_per_user",
            sqlite_where=sa.text("status IN ('open', 'in_progress', 'waiting_for_user')"),
            postgresql_where=sa.text("status IN ('open', 'in_progress', 'waiting_for_user')"),
        )
        batch_op.drop_index("ix_tickets_user_created")
        batch_op.drop_index("ix_tickets_status_updated")
        batch_op.drop_index("ix_tickets_assigned_status")

    op.drop_table("tickets")
    op.drop_table("ticket_counters")
    op.drop_table("people")
    with op.batch_alter_table("agent_presence", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_presence_node")
        batch_op.drop_index("ix_agent_presence_agent")

    op.drop_table("agent_presence")
