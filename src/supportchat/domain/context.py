"""What every domain action needs, and the one way they change data: a unit of work.

A unit of work is one database transaction plus the events it will cause. The events are
published only after the transaction has committed, so no client ever hears of data that
was rolled back, and an acknowledgement always refers to something already on disk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from ..storage.database import Database
from ..storage.repository import Repository
from .batching import GroupCommit
from .events import Event, Publisher
from .inputs import Rules
from .limits import RateLimits
from .ordering import PublishOrder, Turn

T = TypeVar("T")


@dataclass(slots=True)
class Work:
    repo: Repository
    order: PublishOrder
    events: list[Event] = field(default_factory=list)
    turns: dict[str, Turn] = field(default_factory=dict)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def in_turn(self, ticket_id: str) -> None:
        """Publish this work's events after those of earlier units of work on the ticket
        (domain/ordering.py). Call while holding the ticket's row lock."""
        if ticket_id not in self.turns:
            self.turns[ticket_id] = self.order.enter(ticket_id)


@dataclass(slots=True)
class Chat:
    db: Database
    publisher: Publisher
    rules: Rules
    limits: RateLimits
    presence_ttl_seconds: float = 45.0
    order: PublishOrder = field(default_factory=PublishOrder)
    # Sends, group-committed; made by domain/messaging.py on first use.
    sends: GroupCommit[Any, Any] | None = None

    @asynccontextmanager
    async def work(self) -> AsyncIterator[Work]:
        turns: dict[str, Turn] = {}
        try:
            async with self.db.write() as conn:
                work = Work(Repository(conn), self.order, turns=turns)
                yield work
            # Reached only when the block above committed.
            for turn in turns.values():
                await turn.wait()
            if work.events:
                await self.publisher.publish(work.events)
        finally:
            # Committed and published, rolled back or cancelled: the next in line goes.
            for turn in turns.values():
                turn.done()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Repository]:
        async with self.db.read() as conn:
            yield Repository(conn)

    async def retrying(self, action: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
        """Run a write action again when a uniqueness race made it lose to a concurrent one.

        Used where two requests may both see "nothing there yet" (a user's first chat, the
        same clientMessageId twice): the database's unique index picks the winner, and the
        loser's retry then finds the winner's row."""
        for attempt in range(attempts):
            try:
                return await action()
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")
