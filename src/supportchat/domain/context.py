"""What every domain action needs, and the one way they change data: a unit of work.

A unit of work is one database transaction plus the events it will cause. The events are
published only after the transaction has committed, so no client ever hears of data that
was rolled back, and an acknowledgement always refers to something already on disk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from ..storage.database import Database
from ..storage.repository import Repository
from .events import Event, Publisher
from .inputs import Rules
from .limits import RateLimits

T = TypeVar("T")


@dataclass(slots=True)
class Work:
    repo: Repository
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)


@dataclass(slots=True)
class Chat:
    db: Database
    publisher: Publisher
    rules: Rules
    limits: RateLimits
    presence_ttl_seconds: float = 45.0

    @asynccontextmanager
    async def work(self) -> AsyncIterator[Work]:
        async with self.db.write() as conn:
            work = Work(Repository(conn))
            yield work
        # Reached only when the block above committed.
        if work.events:
            await self.publisher.publish(work.events)

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
