"""The per-ticket publishing order (domain/ordering.py) on its own: a unit of work that
took its turn later publishes later, however the event loop schedules the two; a unit
of work that failed lets the next one go; and nothing is remembered once done.

The end-to-end proof (concurrent senders on one ticket, on PostgreSQL, every socket
seeing seq 1, 2, 3, ...) is tests/test_catchup_order.py."""

from __future__ import annotations

import asyncio

from supportchat.domain.ordering import PublishOrder


async def test_a_later_turn_publishes_after_the_earlier_one() -> None:
    order = PublishOrder()
    published: list[str] = []
    first = order.enter("ticket")
    second = order.enter("ticket")

    async def later() -> None:
        await second.wait()
        published.append("second")
        second.done()

    # The second unit of work is ready first; it must still wait for the first.
    waiting = asyncio.create_task(later())
    await asyncio.sleep(0.01)
    assert published == []
    published.append("first")
    first.done()
    await waiting
    assert published == ["first", "second"]
    assert len(order) == 0


async def test_other_tickets_do_not_wait() -> None:
    order = PublishOrder()
    busy = order.enter("a")
    other = order.enter("b")
    await asyncio.wait_for(other.wait(), 1)
    other.done()
    assert len(order) == 1  # only "a", still in progress
    busy.done()
    assert len(order) == 0


async def test_a_failed_unit_of_work_lets_the_next_one_go() -> None:
    order = PublishOrder()
    failed = order.enter("ticket")
    later = order.enter("ticket")
    waiting = asyncio.create_task(later.wait())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    failed.done()  # rolled back: it publishes nothing, but the chain moves on
    await asyncio.wait_for(waiting, 1)
    later.done()
    assert len(order) == 0


async def test_a_chain_of_three_publishes_in_turn_order() -> None:
    order = PublishOrder()
    turns = [order.enter("ticket") for _ in range(3)]
    published: list[int] = []

    async def unit(index: int) -> None:
        await turns[index].wait()
        published.append(index)
        turns[index].done()

    # Started in reverse: the loop runs the last one first.
    tasks = [asyncio.create_task(unit(i)) for i in reversed(range(3))]
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert published == [0, 1, 2]
    assert len(order) == 0


async def test_done_twice_is_harmless() -> None:
    order = PublishOrder()
    first = order.enter("ticket")
    first.done()
    second = order.enter("ticket")
    first.done()
    assert len(order) == 1  # the second turn is still remembered
    await asyncio.wait_for(second.wait(), 1)
    second.done()
    assert len(order) == 0
