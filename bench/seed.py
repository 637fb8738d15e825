"""A large database for the REST scenarios, written straight into SQLite (the API would
take hours to create a million messages): users with several chats each, most of them
resolved, some active, each with a conversation of user and agent messages.

The rows are what the server itself writes (same id format, ticket numbers, timestamps
as SQLAlchemy stores them on SQLite); the schema comes from ``supportchat migrate``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

USER_PREFIX = "seed-user-"
AGENT_PREFIX = "seed-agent-"


@dataclass(frozen=True)
class SeedShape:
    users: int = 20_000
    tickets: int = 100_000
    messages: int = 1_000_000
    active: int = 1_000  # active chats (the newest chat of the first ``active`` users)
    agents: int = 20

    @property
    def tickets_per_user(self) -> int:
        return max(1, self.tickets // self.users)

    @property
    def messages_per_ticket(self) -> int:
        return max(1, self.messages // self.tickets)


def _ts(moment: datetime) -> str:
    """How SQLAlchemy's DateTime stores a (naive UTC) datetime on SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _oid(seconds: int, n: int) -> str:
    """24 hex digits ordered by creation time, like the server's ids."""
    return f"{seconds & 0xFFFFFFFF:08x}{n:016x}"


def seed(db_path: Path, shape: SeedShape) -> float:
    """Fill the migrated database at ``db_path``; returns the seconds it took."""
    t = time.monotonic()
    now = datetime.now(UTC).replace(tzinfo=None)
    year = now.year
    start = now - timedelta(days=300)
    per_user = shape.tickets_per_user
    per_ticket = shape.messages_per_ticket
    total = shape.users * per_user
    step = timedelta(days=299) / total
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    stamp = _ts(now)
    db.executemany(
        "INSERT INTO people (id, full_name, email, role, is_agent, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            *(
                (f"{USER_PREFIX}{i}", f"Seed User {i}", f"u{i}@seed.example.com", None, 0, stamp)
                for i in range(shape.users)
            ),
            *(
                (
                    f"{AGENT_PREFIX}{a}",
                    f"Seed Agent {a}",
                    f"a{a}@seed.example.com",
                    "admin",
                    1,
                    stamp,
                )
                for a in range(shape.agents)
            ),
        ],
    )

    def tickets() -> Iterator[tuple[object, ...]]:
        for k in range(total):
            user, nth = divmod(k, per_user)
            created = start + step * k
            active = user < shape.active and nth == per_user - 1
            if active:
                created = now - timedelta(minutes=30) + timedelta(seconds=user % 1800)
            agent = f"{AGENT_PREFIX}{k % shape.agents}"
            updated = created + timedelta(seconds=per_ticket)
            yield (
                _oid(int(created.timestamp()), k),
                f"TKT-{year}-{k + 1:06d}",
                f"{USER_PREFIX}{user}",
                f"Chat Support - {created.month}/{created.day}/{created.year}",
                "in_progress" if active else "resolved",
                "medium",
                "general_inquiry",
                1,
                agent,
                _ts(created),
                _ts(created),
                _ts(updated),
                None if active else _ts(updated),
                None if active else agent,
                None if active else "Chat session completed successfully",
                per_ticket,
            )

    db.executemany(
        "INSERT INTO tickets (id, ticket_number, user_id, subject, status, priority, category, "
        "is_chat, assigned_to, assigned_at, created_at, updated_at, resolved_at, resolved_by, "
        "resolution_summary, last_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        tickets(),
    )

    def messages() -> Iterator[tuple[object, ...]]:
        n = 0
        for tid, user_id, agent_id, created in db.execute(
            "SELECT id, user_id, assigned_to, created_at FROM tickets ORDER BY id"
        ).fetchall():
            base = datetime.strptime(created, "%Y-%m-%d %H:%M:%S.%f")
            for seq in range(1, per_ticket + 1):
                n += 1
                agent = seq % 2 == 0
                moment = base + timedelta(seconds=seq)
                yield (
                    _oid(int(moment.timestamp()), n),
                    tid,
                    seq,
                    agent_id if agent else user_id,
                    "Seed Agent" if agent else "Seed User",
                    "Admin" if agent else "DTUser",
                    1 if agent else 0,
                    f"Message {seq} of this chat: " + "lorem ipsum dolor sit amet " * 3,
                    "[]",
                    None,
                    _ts(moment),
                )

    db.executemany(
        "INSERT INTO messages (id, ticket_id, seq, sender_id, sender_name, sender_model, "
        "is_admin_reply, body, attachments, client_message_id, created_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        messages(),
    )
    db.execute(
        "INSERT INTO ticket_counters (year, last_value) VALUES (?, ?) "
        "ON CONFLICT (year) DO UPDATE SET last_value = excluded.last_value",
        (year, total),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.monotonic() - t
