"""Group commit of sends (domain/batching.py, domain/messaging.py).

First the batching itself, on its own: requests that arrive while a batch is being
written go together in the next one; a request refused alone does not refuse the
others; a failed batch fails all of its requests and nothing else; a sender that stops
waiting does not stop the writer.

Then a real server: a burst of concurrent sends that mixes good ones, repeats of one
clientMessageId, a closed chat, another user's chat and a malformed id must answer
each as if it had been sent alone, and store exactly the good ones, each once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from support import Api, Person, PersonFactory, get_ticket, ok_data, start_chat
from supportchat.domain.batching import GroupCommit


class Recorder:
    """A writer that records its batches; it waits for `release` before answering the
    first one, so that later requests queue up behind it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def write(self, requests: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(requests))
        if len(self.batches) == 1:
            await self.release.wait()
        return [ValueError(f"odd {r}") if r % 2 else r * 10 for r in requests]


async def test_requests_queued_behind_a_batch_go_together_in_the_next() -> None:
    recorder = Recorder()
    batcher: GroupCommit[int, int] = GroupCommit(recorder.write)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)  # the writer takes [0] and waits
    later = [asyncio.create_task(batcher.submit(n)) for n in (2, 4, 6)]
    await asyncio.sleep(0.01)
    assert recorder.batches == [[0]]
    recorder.release.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [20, 40, 60]
    assert recorder.batches == [[0], [2, 4, 6]]


async def test_a_refused_request_does_not_refuse_the_others() -> None:
    recorder = Recorder()
    recorder.release.set()
    batcher: GroupCommit[int, int] = GroupCommit(recorder.write)
    outcomes = await asyncio.gather(*(batcher.submit(n) for n in (2, 3, 4)), return_exceptions=True)
    assert outcomes[0] == 20 and outcomes[2] == 40
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "odd 3"


async def test_a_failed_batch_fails_its_requests_only() -> None:
    calls: list[list[int]] = []

    async def write(requests: Sequence[int]) -> list[int | Exception]:
        calls.append(list(requests))
        if 13 in requests:
            raise ConnectionError("database gone")
        return list(requests)

    batcher: GroupCommit[int, int] = GroupCommit(write)
    failed = await asyncio.gather(batcher.submit(13), batcher.submit(1), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in failed), failed
    assert await batcher.submit(7) == 7  # the writer goes on
    assert calls == [[13, 1], [7]]


async def test_batches_are_bounded() -> None:
    sizes: list[int] = []

    async def write(requests: Sequence[int]) -> list[int | Exception]:
        sizes.append(len(requests))
        await asyncio.sleep(0)
        return list(requests)

    batcher: GroupCommit[int, int] = GroupCommit(write, max_batch=4)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(10))) == list(range(10))
    assert sizes == [4, 4, 2]


async def test_a_sender_that_stops_waiting_does_not_stop_the_writer() -> None:
    recorder = Recorder()
    batcher: GroupCommit[int, int] = GroupCommit(recorder.write)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)
    impatient = asyncio.create_task(batcher.submit(2))
    patient = asyncio.create_task(batcher.submit(4))
    await asyncio.sleep(0)
    impatient.cancel()
    recorder.release.set()
    assert await first == 0
    assert await patient == 40
    assert recorder.batches == [[0], [2, 4]]  # the cancelled one was still written


# --- a real server ------------------------------------------------------------------------


async def post(api: Api, who: Person, ticket_id: str, text: str, **extra: str) -> httpx.Response:
    return await api.post(
        f"/api/chat/{ticket_id}/message", token=who, json={"message": text, **extra}
    )


async def test_a_mixed_burst_is_answered_as_if_each_send_were_alone(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    users = [user_factory() for _ in range(6)]
    chats = [(await start_chat(api, u, "hello"))["ticketId"] for u in users]
    stranger = user_factory()
    closed_owner = user_factory()
    closed = (await start_chat(api, closed_owner, "hello"))["ticketId"]
    ok_data(await api.post(f"/api/chat/admin/close/{closed}", token=agent, json={}))

    good = [(u, t, f"good {i}") for i, (u, t) in enumerate(zip(users, chats, strict=True))]
    replies = [(agent, t, f"reply {i}") for i, t in enumerate(chats[:3])]
    burst = [
        *(post(api, who, t, text) for who, t, text in good),
        *(post(api, who, t, text) for who, t, text in replies),
        # The same clientMessageId three times in one chat: stored once.
        *(post(api, users[0], chats[0], "once", clientMessageId="burst-1") for _ in range(3)),
        post(api, closed_owner, closed, "too late"),
        post(api, stranger, chats[1], "not my chat"),
        post(api, users[2], "not-an-id", "bad id"),
    ]
    answers = await asyncio.gather(*burst)
    n_good, n_replies = len(good), len(replies)
    sent = [ok_data(r) for r in answers[: n_good + n_replies]]
    repeats = [ok_data(r) for r in answers[n_good + n_replies : n_good + n_replies + 3]]
    too_late, foreign, malformed = answers[-3:]

    assert len({r["messageId"] for r in repeats}) == 1, repeats
    assert sorted(r["duplicate"] for r in repeats) == [False, True, True]
    assert too_late.status_code == 409, too_late.text
    assert foreign.status_code == 404, foreign.text
    assert malformed.status_code == 404, malformed.text

    for who, ticket_id, _text in good:
        ticket = await get_ticket(api, who, ticket_id)
        texts = [m["message"] for m in ticket["messages"]]
        assert [m["seq"] for m in ticket["messages"]] == list(range(1, len(texts) + 1))
        expected = {"hello", *(t for _w, c, t in good + replies if c == ticket_id)}
        if ticket_id == chats[0]:
            expected.add("once")
        assert set(texts) == expected and len(texts) == len(expected), texts
        replied = any(c == ticket_id for _w, c, _t in replies)
        assert ticket["status"] == ("in_progress" if replied else "open")
        assert (ticket["assignedTo"] or {}).get("_id") == (agent.id if replied else None)
    for answer in sent:
        assert answer["duplicate"] is False
    closed_ticket = await get_ticket(api, closed_owner, closed)
    assert [m["message"] for m in closed_ticket["messages"]] == ["hello"]
    assert "not my chat" not in [
        m["message"] for m in (await get_ticket(api, users[1], chats[1]))["messages"]
    ]
