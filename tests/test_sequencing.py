"""The per-process sequencer (realtime/sequencing.py): a ticket's live messages go out in
seq order and once, whatever order they arrive in from other processes, and a gap that
does not close by itself is filled from a reader (the database in the server)."""

from __future__ import annotations

import asyncio

from supportchat.realtime.sequencing import Pending, Sequencer

GAP_WAIT = 0.05


class Sink:
    """Records what the sequencer delivers, by ticket."""

    def __init__(self) -> None:
        self.out: list[tuple[str, int]] = []

    def deliver(self, ticket: str, seq: int) -> Pending:
        return Pending(seq, lambda: self.out.append((ticket, seq)))

    def admit(self, sequencer: Sequencer, ticket: str, seq: int) -> None:
        sequencer.admit(ticket, seq, self.deliver(ticket, seq).deliver)

    def seqs(self, ticket: str) -> list[int]:
        return [seq for t, seq in self.out if t == ticket]


async def test_in_order_messages_go_out_at_once_and_repeats_are_dropped() -> None:
    sink, sequencer = Sink(), Sequencer(gap_wait=GAP_WAIT)
    for seq in (4, 5, 5, 6, 4):
        sink.admit(sequencer, "t", seq)
    assert sink.seqs("t") == [4, 5, 6]
    assert sequencer.duplicates_dropped == 2


async def test_a_message_after_a_gap_waits_for_the_missing_one() -> None:
    sink, sequencer = Sink(), Sequencer(gap_wait=5.0)
    for seq in (1, 3, 4):
        sink.admit(sequencer, "t", seq)
    assert sink.seqs("t") == [1], "3 and 4 must wait for 2"
    sink.admit(sequencer, "t", 2)
    assert sink.seqs("t") == [1, 2, 3, 4]


async def test_tickets_are_independent() -> None:
    sink, sequencer = Sink(), Sequencer(gap_wait=5.0)
    for ticket, seq in (("a", 1), ("b", 7), ("a", 3), ("b", 8)):
        sink.admit(sequencer, ticket, seq)
    assert sink.seqs("a") == [1]
    assert sink.seqs("b") == [7, 8]


async def test_a_gap_that_stays_open_is_read_back_then_the_held_ones_follow() -> None:
    sink = Sink()
    asked: list[tuple[str, int, int]] = []

    async def fetch(ticket: str, after: int, before: int) -> list[Pending]:
        asked.append((ticket, after, before))
        return [sink.deliver(ticket, seq) for seq in range(after + 1, before)]

    sequencer = Sequencer(fetch, gap_wait=GAP_WAIT)
    for seq in (10, 13, 15):
        sink.admit(sequencer, "t", seq)
    await asyncio.sleep(GAP_WAIT * 6)
    assert asked[0] == ("t", 10, 13)
    assert sink.seqs("t") == [10, 11, 12, 13, 14, 15]
    assert sequencer.gaps_filled == 3
    # The missing ones arriving late from the message queue are not sent again.
    sink.admit(sequencer, "t", 11)
    sink.admit(sequencer, "t", 14)
    assert sink.seqs("t") == [10, 11, 12, 13, 14, 15]


async def test_a_gap_the_reader_cannot_fill_is_skipped_after_the_wait() -> None:
    async def fetch(ticket: str, after: int, before: int) -> list[Pending]:
        raise ConnectionError("database down")

    sink = Sink()
    sequencer = Sequencer(fetch, gap_wait=GAP_WAIT)
    for seq in (1, 3):
        sink.admit(sequencer, "t", seq)
    await asyncio.sleep(GAP_WAIT * 6)
    assert sink.seqs("t") == [1, 3], "held messages must not wait for ever"
    sink.admit(sequencer, "t", 4)
    assert sink.seqs("t") == [1, 3, 4]


async def test_seqs_from_before_the_first_one_heard_go_out_late_once() -> None:
    sink, sequencer = Sink(), Sequencer(gap_wait=GAP_WAIT)
    # This process heard of the ticket first at 7; 6 was still on its way.
    for seq in (7, 6, 6, 8):
        sink.admit(sequencer, "t", seq)
    assert sink.seqs("t") == [7, 6, 8]
