"""Publishing a ticket's events in the order its transactions committed.

Two sends to one ticket are serialised by the database (the ticket's row lock, or
SQLite's single writer), so their seqs and commits come in one order. Their events are
published after the commit, by two coroutines, and nothing made the first one publish
first: under load the second could overtake it, and clients would see seq 6 before 5.

So a unit of work that changes a ticket takes a turn for it while it still holds the
ticket's lock; the turns of one ticket form a chain in lock order, and a unit of work
publishes only once the one before it in the chain has published or given up. That
orders what one process publishes; a message queue manager (Redis) keeps one
publisher's order, so every process delivers one process's events in that order.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

# A unit of work waits at most this long for the one before it to publish. Publishing
# takes microseconds; the bound only keeps one stuck publisher (a hung message queue)
# from stopping every later acknowledgement of the ticket.
TURN_TIMEOUT_SECONDS = 10.0


class Turn:
    """One unit of work's place in a ticket's chain."""

    __slots__ = ("_before", "_key", "_mine", "_order")

    def __init__(
        self, order: PublishOrder, key: str, before: asyncio.Event | None, mine: asyncio.Event
    ) -> None:
        self._order = order
        self._key = key
        self._before = before
        self._mine = mine

    async def wait(self) -> None:
        """Return once the previous unit of work on this key has published (or failed)."""
        if self._before is None or self._before.is_set():
            return
        try:
            await asyncio.wait_for(self._before.wait(), TURN_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("publishing for %s without waiting for an earlier, stuck one", self._key)

    def done(self) -> None:
        """Let the next unit of work on this key publish. Idempotent."""
        self._mine.set()
        self._order.forget(self._key, self._mine)


class PublishOrder:
    """The chains of turns of one process, by key (a ticket id)."""

    def __init__(self) -> None:
        self._last: dict[str, asyncio.Event] = {}

    def enter(self, key: str) -> Turn:
        """Take the next turn on a key. Call while holding the lock that orders the
        writes to it, so that the turns come in commit order."""
        mine = asyncio.Event()
        before = self._last.get(key)
        self._last[key] = mine
        return Turn(self, key, before, mine)

    def forget(self, key: str, event: asyncio.Event) -> None:
        # Only the newest turn of a key is remembered; once it is done nobody waits on
        # the key, so it is dropped and the map holds only tickets being written now.
        if self._last.get(key) is event:
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)
