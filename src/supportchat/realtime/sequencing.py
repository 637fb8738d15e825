"""Each ticket's live `new_message` events delivered by this process in seq order, once.

One process publishes a ticket's events in commit order (domain/ordering.py). Several
processes do not: when process A stores seq 5 and process B seq 6 a moment later, each
publishes its own, and a third process can hear 6 from the message queue before 5. A
message queue that was down for a while loses what was published meanwhile, and a
process hears neither 5 nor anything about it.

So every process tracks, per ticket, the newest seq it has delivered. A message that
follows it goes out at once; one after a gap waits `GAP_WAIT_SECONDS` for the missing
ones, which are then read from the database (every seq up to a published one is
committed: seqs are taken in the transaction that stores the message). A seq already
delivered is dropped, so a message that arrives both from the queue and from the
database goes out once.

A process that starts in the middle of a chat cannot know what came before the first
seq it hears of that ticket; one below it that arrives later was never delivered here,
so it goes out late rather than not at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# How long a message after a gap waits for the missing ones before they are read from
# the database. Between processes on one Redis a message takes about a millisecond.
GAP_WAIT_SECONDS = 0.25
# A ticket nobody wrote to for this long is forgotten; so is the oldest when more than
# MAX_TRACKED are known (memory follows the chats that are moving).
FORGET_AFTER_SECONDS = 900.0
MAX_TRACKED = 200_000

Deliver = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Pending:
    """A message and how to deliver it: one held back behind a gap, or one read back from
    the database to fill the gap."""

    seq: int
    deliver: Deliver


# Reads the messages of a ticket with after < seq < before, in seq order.
Fetch = Callable[[str, int, int], Awaitable[list[Pending]]]


@dataclass(slots=True)
class _Track:
    last: int  # every seq up to here was delivered (or given up on)
    first: int  # the first seq heard of; nothing below it was delivered, except `early`
    touched: float
    early: set[int] = field(default_factory=set)
    held: dict[int, Pending] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    filling: bool = False


class Sequencer:
    def __init__(self, fetch: Fetch | None = None, gap_wait: float = GAP_WAIT_SECONDS) -> None:
        self.fetch = fetch  # set once the domain exists (app.py)
        self.gap_wait = gap_wait
        self._tracks: OrderedDict[str, _Track] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self.gaps_filled = 0  # messages read back from the database
        self.duplicates_dropped = 0

    def admit(self, ticket_id: str, seq: int, deliver: Deliver) -> None:
        """Deliver this message of the ticket now, later (after a gap), or not at all
        (already delivered)."""
        moment = time.monotonic()
        track = self._tracks.get(ticket_id)
        if track is None:
            self._tracks[ticket_id] = _Track(last=seq, first=seq, touched=moment)
            self._forget_idle(moment)
            deliver()
            return
        self._tracks.move_to_end(ticket_id)
        track.touched = moment
        if seq <= track.last or seq in track.held:
            if seq < track.first and seq not in track.early:
                track.early.add(seq)  # from before this process heard of the ticket
                deliver()
            else:
                self.duplicates_dropped += 1
            return
        if seq == track.last + 1:
            track.last = seq
            deliver()
            self._flush(track)
            return
        track.held[seq] = Pending(seq, deliver)
        if track.timer is None and not track.filling:
            track.timer = asyncio.get_running_loop().call_later(
                self.gap_wait, self._spawn_fill, ticket_id
            )

    def delivered_up_to(self, ticket_id: str) -> int | None:
        track = self._tracks.get(ticket_id)
        return track.last if track is not None else None

    def _flush(self, track: _Track) -> None:
        while track.last + 1 in track.held:
            pending = track.held.pop(track.last + 1)
            track.last = pending.seq
            pending.deliver()
        if not track.held and track.timer is not None:
            track.timer.cancel()
            track.timer = None

    def _spawn_fill(self, ticket_id: str) -> None:
        task = asyncio.ensure_future(self._fill(ticket_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, ticket_id: str) -> None:
        track = self._tracks.get(ticket_id)
        if track is None:
            return
        track.timer = None
        if not track.held:
            return
        track.filling = True
        try:
            before = min(track.held)
            fetched: list[Pending] = []
            if self.fetch is not None:
                try:
                    fetched = await self.fetch(ticket_id, track.last, before)
                except Exception:
                    log.exception(
                        "could not read back seqs %d..%d of %s",
                        track.last + 1,
                        before - 1,
                        ticket_id,
                    )
            for message in fetched:
                if track.last < message.seq < before:
                    track.last = message.seq
                    self.gaps_filled += 1
                    message.deliver()
            if track.last + 1 < before:
                # Not in the database either (or it could not be read): go on without
                # them; a client that reconnects catches up from its last message.
                log.warning("seqs %d..%d of %s skipped", track.last + 1, before - 1, ticket_id)
                track.last = before - 1
            self._flush(track)
        finally:
            track.filling = False
        if track.held and track.timer is None:  # a new gap opened meanwhile
            track.timer = asyncio.get_running_loop().call_later(
                self.gap_wait, self._spawn_fill, ticket_id
            )

    def _forget_idle(self, moment: float) -> None:
        while self._tracks:
            ticket_id, oldest = next(iter(self._tracks.items()))
            too_many = len(self._tracks) > MAX_TRACKED
            if not too_many and moment - oldest.touched < FORGET_AFTER_SECONDS:
                return
            if oldest.held or oldest.filling:
                return  # still waiting for a gap: it will be touched again
            del self._tracks[ticket_id]
