"""Every query the service runs. Takes an open connection; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from ..domain.identity import Person
from ..domain.records import Message, PersonRef, Status, Ticket
from .schema import (
    agent_presence,
    messages,
    people,
    ticket_counters,
    ticket_watchers,
    tickets,
)

_user = people.alias("ticket_user")
_assignee = people.alias("assignee")
_resolver = people.alias("resolver")


def _ticket_query() -> Select[Any]:
    return select(
        tickets,
        _user.c.full_name.label("user_full_name"),
        _user.c.email.label("user_email"),
        _assignee.c.full_name.label("assignee_full_name"),
        _assignee.c.email.label("assignee_email"),
        _resolver.c.full_name.label("resolver_full_name"),
        _resolver.c.email.label("resolver_email"),
    ).select_from(
        tickets.join(_user, _user.c.id == tickets.c.user_id)
        .outerjoin(_assignee, _assignee.c.id == tickets.c.assigned_to)
        .outerjoin(_resolver, _resolver.c.id == tickets.c.resolved_by)
    )


def _ref(person_id: str | None, name: str | None, email: str | None) -> PersonRef | None:
    if person_id is None:
        return None
    return PersonRef(id=person_id, full_name=name or "", email=email or "")


def _ticket(row: RowMapping) -> Ticket:
    return Ticket(
        id=row["id"],
        ticket_number=row["ticket_number"],
        user=PersonRef(row["user_id"], row["user_full_name"], row["user_email"]),
        subject=row["subject"],
        status=Status(row["status"]),
        priority=row["priority"],
        category=row["category"],
        is_chat=row["is_chat"],
        assigned_to=_ref(row["assigned_to"], row["assignee_full_name"], row["assignee_email"]),
        assigned_at=row["assigned_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        resolved_at=row["resolved_at"],
        resolved_by=_ref(row["resolved_by"], row["resolver_full_name"], row["resolver_email"]),
        resolution_summary=row["resolution_summary"],
        last_seq=row["last_seq"],
    )


def _message(row: RowMapping) -> Message:
    return Message(
        id=row["id"],
        ticket_id=row["ticket_id"],
        seq=row["seq"],
        sender_id=row["sender_id"],
        sender_name=row["sender_name"],
        sender_model=row["sender_model"],
        is_admin_reply=row["is_admin_reply"],
        body=row["body"],
        attachments=list(row["attachments"] or []),
        client_message_id=row["client_message_id"],
        created_at=row["created_at"],
    )


# Statements of the hot paths, built once per dialect. Building a statement costs far
# more than running it (about 0.3 ms for a ticket query), and SQLAlchemy memoizes the
# cache key of a statement object, so a reused one also skips that; values go in as
# bound parameters (expanding ones for IN lists).
_PREPARED: dict[tuple[str, str], Any] = {}


class Repository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._dialect = conn.dialect.name

    def _prepared(self, name: str, build: Callable[[], Any]) -> Any:
        key = (name, self._dialect)
        stmt = _PREPARED.get(key)
        if stmt is None:
            stmt = _PREPARED[key] = build()
        return stmt

    def _insert(self, table: Any) -> Any:
        """An INSERT that supports ON CONFLICT on both engines."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- people -------------------------------------------------------------------------

    async def upsert_person(self, person: Person, at: datetime) -> None:
        await self.upsert_people([person], at)

    async def upsert_people(self, persons: Sequence[Person], at: datetime) -> None:
        """upsert_person for several people in one statement."""
        if not persons:
            return

        def build() -> Any:
            stmt = self._insert(people)
            table = stmt.excluded
            changed = (
                (people.c.full_name != table.full_name)
                | (people.c.email != table.email)
                | (people.c.role.is_distinct_from(table.role))
                | (people.c.is_agent != table.is_agent)
            )
            columns = ("full_name", "email", "role", "is_agent", "updated_at")
            return stmt.on_conflict_do_update(
                index_elements=[people.c.id],
                set_={k: getattr(table, k) for k in columns},
                where=changed,
            )

        stmt = self._prepared("upsert_people", build)
        rows = [
            {
                "id": p.id,
                "full_name": p.full_name,
                "email": p.email,
                "role": p.role,
                "is_agent": p.is_agent,
                "updated_at": at,
            }
            for p in persons
        ]
        await self.conn.execute(stmt, rows)

    # -- tickets --------------------------------------------------------------------------

    async def next_ticket_number(self, year: int) -> int:
        stmt = (
            self._insert(ticket_counters)
            .values(year=year, last_value=1)
            .on_conflict_do_update(
                index_elements=[ticket_counters.c.year],
                set_={"last_value": ticket_counters.c.last_value + 1},
            )
            .returning(ticket_counters.c.last_value)
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def insert_ticket(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(tickets).values(**values))

    async def get_ticket(self, ticket_id: str, *, for_update: bool = False) -> Ticket | None:
        locking = for_update and self._dialect == "postgresql"

        def build() -> Any:
            query = _ticket_query().where(tickets.c.id == bindparam("ticket_id"))
            return query.with_for_update(of=tickets) if locking else query

        query = self._prepared(f"get_ticket:{locking}", build)
        row = (await self.conn.execute(query, {"ticket_id": ticket_id})).mappings().first()
        return _ticket(row) if row else None

    async def tickets_for_update(self, ticket_ids: Sequence[str]) -> dict[str, Ticket]:
        """Several tickets by id, locked on PostgreSQL in id order (so two transactions
        locking overlapping sets cannot deadlock)."""
        if not ticket_ids:
            return {}

        def build() -> Any:
            query = _ticket_query().where(tickets.c.id.in_(bindparam("ids", expanding=True)))
            if self._dialect == "postgresql":
                query = query.order_by(tickets.c.id).with_for_update(of=tickets)
            return query

        query = self._prepared("tickets_for_update", build)
        params = {"ids": sorted(set(ticket_ids))}
        rows = (await self.conn.execute(query, params)).mappings()
        return {row["id"]: _ticket(row) for row in rows}

    async def save_ticket_states(self, changed: Sequence[Ticket]) -> None:
        """Write the position and conversation state of several tickets (held locked) in
        one statement."""
        if not changed:
            return
        stmt = self._prepared(
            "save_ticket_states",
            lambda: (
                update(tickets)
                .where(tickets.c.id == bindparam("ticket_id"))
                .values(
                    last_seq=bindparam("last_seq"),
                    status=bindparam("status"),
                    assigned_to=bindparam("assigned_to"),
                    assigned_at=bindparam("assigned_at"),
                    updated_at=bindparam("updated_at"),
                )
            ),
        )
        rows = [
            {
                "ticket_id": t.id,
                "last_seq": t.last_seq,
                "status": t.status.value,
                "assigned_to": t.assigned_to.id if t.assigned_to else None,
                "assigned_at": t.assigned_at,
                "updated_at": t.updated_at,
            }
            for t in changed
        ]
        await self.conn.execute(stmt, rows)

    async def active_ticket_of(self, user_id: str) -> Ticket | None:
        query = _ticket_query().where(
            tickets.c.user_id == user_id, tickets.c.status.in_(_active_values())
        )
        row = (await self.conn.execute(query)).mappings().first()
        return _ticket(row) if row else None

    async def active_tickets_of(self, user_id: str) -> list[Ticket]:
        query = (
            _ticket_query()
            .where(tickets.c.user_id == user_id, tickets.c.status.in_(_active_values()))
            .order_by(tickets.c.updated_at.desc())
        )
        return [_ticket(r) for r in (await self.conn.execute(query)).mappings()]

    async def history_of(self, user_id: str, *, offset: int, limit: int) -> list[Ticket]:
        query = (
            _ticket_query()
            .where(tickets.c.user_id == user_id)
            .order_by(tickets.c.created_at.desc(), tickets.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_ticket(r) for r in (await self.conn.execute(query)).mappings()]

    async def count_tickets_of(self, user_id: str) -> int:
        query = select(func.count()).select_from(tickets).where(tickets.c.user_id == user_id)
        return int((await self.conn.execute(query)).scalar_one())

    async def tickets_with_status(
        self, statuses: Iterable[Status], *, offset: int, limit: int
    ) -> list[Ticket]:
        order = (tickets.c.updated_at.desc(), tickets.c.id.desc())
        # The page's ids first, from the status index alone, and only then the joins with
        # people: joining every active ticket before sorting them cost 8 ms for a page of
        # 50 out of 1,000 on SQLite, this 1 ms.
        page = (
            select(tickets.c.id)
            .where(tickets.c.status.in_([s.value for s in statuses]))
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        )
        query = _ticket_query().where(tickets.c.id.in_(page.scalar_subquery())).order_by(*order)
        return [_ticket(r) for r in (await self.conn.execute(query)).mappings()]

    async def count_with_status(self, statuses: Iterable[Status]) -> int:
        query = (
            select(func.count())
            .select_from(tickets)
            .where(tickets.c.status.in_([s.value for s in statuses]))
        )
        return int((await self.conn.execute(query)).scalar_one())

    async def update_ticket(self, ticket_id: str, **values: Any) -> None:
        await self.conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))

    async def count_assigned_active(self, agent_id: str) -> int:
        query = (
            select(func.count())
            .select_from(tickets)
            .where(tickets.c.assigned_to == agent_id, tickets.c.status.in_(_active_values()))
        )
        return int((await self.conn.execute(query)).scalar_one())

    # -- messages -------------------------------------------------------------------------

    async def take_next_seq(self, ticket_id: str, **ticket_values: Any) -> int:
        """Reserve the ticket's next message position and update the ticket in one statement.

        The UPDATE locks the ticket row on PostgreSQL, so concurrent sends to one ticket
        take positions one after the other."""
        stmt = (
            update(tickets)
            .where(tickets.c.id == ticket_id)
            .values(last_seq=tickets.c.last_seq + 1, **ticket_values)
            .returning(tickets.c.last_seq)
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def insert_message(self, message: Message) -> None:
        await self.insert_messages([message])

    async def insert_messages(self, batch: Sequence[Message]) -> None:
        if not batch:
            return
        rows = [
            {
                "id": m.id,
                "ticket_id": m.ticket_id,
                "seq": m.seq,
                "sender_id": m.sender_id,
                "sender_name": m.sender_name,
                "sender_model": m.sender_model,
                "is_admin_reply": m.is_admin_reply,
                "body": m.body,
                "attachments": m.attachments,
                "client_message_id": m.client_message_id,
                "created_at": m.created_at,
            }
            for m in batch
        ]
        await self.conn.execute(self._prepared("insert_messages", lambda: insert(messages)), rows)

    async def messages_by_client_ids(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], Message]:
        """Messages by (ticket id, clientMessageId), for several in one query."""
        wanted = set(keys)
        if not wanted:
            return {}
        query = self._prepared(
            "messages_by_client_ids",
            lambda: select(messages).where(
                messages.c.ticket_id.in_(bindparam("ticket_ids", expanding=True)),
                messages.c.client_message_id.in_(bindparam("client_ids", expanding=True)),
            ),
        )
        params = {
            "ticket_ids": sorted({t for t, _ in wanted}),
            "client_ids": sorted({c for _, c in wanted}),
        }
        found: dict[tuple[str, str], Message] = {}
        for row in (await self.conn.execute(query, params)).mappings():
            key = (row["ticket_id"], row["client_message_id"])
            if key in wanted:
                found[key] = _message(row)
        return found

    async def message_by_client_id(self, ticket_id: str, client_message_id: str) -> Message | None:
        found = await self.messages_by_client_ids([(ticket_id, client_message_id)])
        return found.get((ticket_id, client_message_id))

    async def ticket_started_with(self, user_id: str, client_message_id: str) -> str | None:
        """The id of the user's ticket holding a message with this clientMessageId, if
        any (a retried start whose first answer was lost). Ids are unique per ticket
        whoever sent them, as for any send, so an agent's message counts too."""
        query = (
            select(messages.c.ticket_id)
            .join(tickets, tickets.c.id == messages.c.ticket_id)
            .where(
                tickets.c.user_id == user_id,
                messages.c.client_message_id == client_message_id,
            )
            .limit(1)
        )
        found: str | None = (await self.conn.execute(query)).scalar()
        return found

    async def message(self, ticket_id: str, message_id: str) -> Message | None:
        query = select(messages).where(
            messages.c.ticket_id == ticket_id, messages.c.id == message_id
        )
        row = (await self.conn.execute(query)).mappings().first()
        return _message(row) if row else None

    async def messages_of(
        self, ticket_ids: Sequence[str], latest: int | None = None
    ) -> dict[str, list[Message]]:
        """The messages of several tickets in one query, each list in seq order: all of
        them, or each ticket's last `latest`.

        A ticket's messages are numbered 1..last_seq without gaps (a position is taken in
        the transaction that stores the message), so its last `latest` are those after
        last_seq - latest: a range of the (ticket_id, seq) index, where a window function
        over every message of the tickets took ten times as long."""
        found: dict[str, list[Message]] = {ticket_id: [] for ticket_id in ticket_ids}
        if not ticket_ids or (latest is not None and latest <= 0):
            return found
        query = select(messages).where(messages.c.ticket_id.in_(list(ticket_ids)))
        if latest is not None:
            query = query.join(tickets, tickets.c.id == messages.c.ticket_id).where(
                messages.c.seq > tickets.c.last_seq - latest
            )
        query = query.order_by(messages.c.ticket_id, messages.c.seq)
        for row in (await self.conn.execute(query)).mappings():
            found[row["ticket_id"]].append(_message(row))
        return found

    async def tickets_written_since(self, since: datetime, limit: int) -> list[Ticket]:
        """Tickets changed at or after `since` (every message updates its ticket), oldest
        change first; through the (status, updated_at) index, one range per status."""
        query = (
            _ticket_query()
            .where(tickets.c.status.in_([s.value for s in Status]), tickets.c.updated_at >= since)
            .order_by(tickets.c.updated_at, tickets.c.id)
            .limit(limit)
        )
        return [_ticket(r) for r in (await self.conn.execute(query)).mappings()]

    async def messages_since(
        self, ticket_ids: Sequence[str], since: datetime
    ) -> dict[str, list[Message]]:
        """The messages of these tickets stored at or after `since`, each in seq order."""
        found: dict[str, list[Message]] = {ticket_id: [] for ticket_id in ticket_ids}
        if not found:
            return found
        query = (
            select(messages)
            .where(messages.c.ticket_id.in_(list(found)), messages.c.created_at >= since)
            .order_by(messages.c.ticket_id, messages.c.seq)
        )
        for row in (await self.conn.execute(query)).mappings():
            found[row["ticket_id"]].append(_message(row))
        return found

    async def messages_after(self, ticket_id: str, after_seq: int, limit: int) -> list[Message]:
        query = (
            select(messages)
            .where(messages.c.ticket_id == ticket_id, messages.c.seq > after_seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        return [_message(r) for r in (await self.conn.execute(query)).mappings()]

    # -- who follows a ticket ------------------------------------------------------------------

    async def add_watcher(self, ticket_id: str, agent_id: str, at: datetime) -> bool:
        """Make the agent follow the ticket; True if they did not already."""
        stmt = (
            self._insert(ticket_watchers)
            .values(ticket_id=ticket_id, agent_id=agent_id, joined_at=at)
            .on_conflict_do_nothing()
        )
        result = await self.conn.execute(stmt)
        return bool(result.rowcount)

    async def add_watchers(self, pairs: Iterable[tuple[str, str]], at: datetime) -> None:
        """add_watcher for several (ticket id, agent id) pairs in one statement."""
        rows = [{"ticket_id": t, "agent_id": a, "joined_at": at} for t, a in sorted(set(pairs))]
        if rows:
            stmt = self._prepared(
                "add_watchers", lambda: self._insert(ticket_watchers).on_conflict_do_nothing()
            )
            await self.conn.execute(stmt, rows)

    async def remove_watcher(self, ticket_id: str, agent_id: str) -> None:
        await self.conn.execute(
            delete(ticket_watchers).where(
                ticket_watchers.c.ticket_id == ticket_id, ticket_watchers.c.agent_id == agent_id
            )
        )

    async def watchers(self, ticket_id: str) -> list[str]:
        return (await self.watchers_of([ticket_id]))[ticket_id]

    async def watchers_of(self, ticket_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {ticket_id: [] for ticket_id in ticket_ids}
        if not found:
            return found
        query = self._prepared(
            "watchers_of",
            lambda: select(ticket_watchers.c.ticket_id, ticket_watchers.c.agent_id).where(
                ticket_watchers.c.ticket_id.in_(bindparam("ticket_ids", expanding=True))
            ),
        )
        for ticket_id, agent_id in await self.conn.execute(query, {"ticket_ids": list(found)}):
            found[ticket_id].append(agent_id)
        return found

    # -- presence -------------------------------------------------------------------------

    async def add_presence(self, sid: str, agent_id: str, node_id: str, at: datetime) -> None:
        """Record a connected agent socket. Idempotent: the presence heartbeat adds the
        rows of sockets in the agents' room that it does not find, and may find a socket
        whose own connect is adding its row at that moment."""
        await self.conn.execute(
            self._insert(agent_presence)
            .values(sid=sid, agent_id=agent_id, node_id=node_id, seen_at=at)
            .on_conflict_do_nothing()
        )

    async def presence_of_node(self, node_id: str) -> dict[str, str]:
        """This process's presence rows: socket id -> agent id."""
        query = select(agent_presence.c.sid, agent_presence.c.agent_id).where(
            agent_presence.c.node_id == node_id
        )
        return {row.sid: row.agent_id for row in await self.conn.execute(query)}

    async def remove_presence(self, sid: str) -> None:
        await self.conn.execute(delete(agent_presence).where(agent_presence.c.sid == sid))

    async def count_presence(self, agent_id: str, fresh_since: datetime) -> int:
        query = (
            select(func.count())
            .select_from(agent_presence)
            .where(agent_presence.c.agent_id == agent_id, agent_presence.c.seen_at >= fresh_since)
        )
        return int((await self.conn.execute(query)).scalar_one())

    async def touch_presence(self, node_id: str, at: datetime) -> None:
        await self.conn.execute(
            update(agent_presence).where(agent_presence.c.node_id == node_id).values(seen_at=at)
        )

    async def purge_presence(
        self, *, node_id: str | None = None, stale_before: datetime
    ) -> set[str]:
        """Drop stale rows (and a node's); the agents whose rows were dropped."""
        condition = agent_presence.c.seen_at < stale_before
        if node_id is not None:
            condition = condition | (agent_presence.c.node_id == node_id)
        stmt = delete(agent_presence).where(condition).returning(agent_presence.c.agent_id)
        return set((await self.conn.execute(stmt)).scalars())

    async def person_name(self, person_id: str) -> str | None:
        query = select(people.c.full_name).where(people.c.id == person_id)
        name: str | None = (await self.conn.execute(query)).scalar_one_or_none()
        return name

    async def agent_roster(self, fresh_since: datetime) -> list[tuple[str, str, int]]:
        """(id, name, active chats assigned) of every agent with a fresh presence row,
        by name: one statement, whatever the number of agents."""
        online = (
            select(agent_presence.c.agent_id)
            .where(agent_presence.c.seen_at >= fresh_since)
            .distinct()
            .subquery()
        )
        load = (
            select(tickets.c.assigned_to.label("agent_id"), func.count().label("active"))
            .where(tickets.c.status.in_(_active_values()), tickets.c.assigned_to.is_not(None))
            .group_by(tickets.c.assigned_to)
            .subquery()
        )
        query = (
            select(people.c.id, people.c.full_name, func.coalesce(load.c.active, 0))
            .select_from(
                online.join(people, people.c.id == online.c.agent_id).outerjoin(
                    load, load.c.agent_id == people.c.id
                )
            )
            .order_by(people.c.full_name, people.c.id)
        )
        return [(row[0], row[1], int(row[2])) for row in await self.conn.execute(query)]

    async def online_agents(self, fresh_since: datetime) -> list[str]:
        query = (
            select(agent_presence.c.agent_id)
            .where(agent_presence.c.seen_at >= fresh_since)
            .distinct()
        )
        return list((await self.conn.execute(query)).scalars())


def _active_values() -> list[str]:
    return [Status.OPEN.value, Status.IN_PROGRESS.value, Status.WAITING_FOR_USER.value]


__all__ = ["Repository"]
