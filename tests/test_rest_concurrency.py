"""Concurrent REST requests: ticket numbers, one active chat per user, message order and
idempotent sends must hold when requests race (asyncio.gather over real connections).
"""

from __future__ import annotations

import asyncio

import httpx

from support import TICKET_NUMBER_RE, Api, Person, PersonFactory, ServerInfo, get_ticket, ok_data


def sequence(ticket_number: str) -> tuple[int, int]:
    match = TICKET_NUMBER_RE.match(ticket_number)
    assert match, ticket_number
    return int(match.group(1)), int(match.group(2))


async def start(api: Api, who: Person, message: str) -> httpx.Response:
    """POST /api/chat/start; the raw response (201 new chat, 200 existing one)."""
    return await api.post("/api/chat/start", token=who, json={"message": message})


async def test_concurrent_starts_by_different_users_get_unique_numbers(
    server: ServerInfo, user_factory: PersonFactory
) -> None:
    # Several clients, so that the requests really travel on parallel connections.
    clients = [Api(server.base_url) for _ in range(4)]
    try:
        before = ok_data(await start(clients[0], user_factory(), "before"), 201)
        people = [user_factory() for _ in range(20)]
        responses = await asyncio.gather(
            *(start(clients[i % 4], p, f"hello from {p.id}") for i, p in enumerate(people))
        )
        after = ok_data(await start(clients[0], user_factory(), "after"), 201)
    finally:
        for client in clients:
            await client.aclose()

    started = [ok_data(r, 201) for r in responses]
    assert all(d["isExisting"] is False for d in started)
    numbers = [d["ticketNumber"] for d in started]
    assert len(set(numbers)) == 20, numbers
    assert len({d["ticketId"] for d in started}) == 20
    for person, data in zip(people, started, strict=True):
        assert data["messages"][0]["message"] == f"hello from {person.id}"
        assert data["messages"][0]["sender"] == person.id

    lower, upper = sequence(before["ticketNumber"]), sequence(after["ticketNumber"])
    keys = sorted(sequence(n) for n in numbers)
    assert len(set(keys)) == 20
    assert lower < keys[0] and keys[-1] < upper, (lower, keys, upper)


async def test_concurrent_starts_by_one_user_make_one_ticket(api: Api, user: Person) -> None:
    texts = [f"attempt {i}" for i in range(10)]
    responses = await asyncio.gather(*(start(api, user, t) for t in texts))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], [r.text for r in responses]
    started = [ok_data(r, 200, 201) for r in responses]
    assert len({d["ticketId"] for d in started}) == 1
    assert len({d["ticketNumber"] for d in started}) == 1
    assert sorted(d["isExisting"] for d in started) == [False] + [True] * 9

    ticket_id = started[0]["ticketId"]
    ticket = await get_ticket(api, user, ticket_id)
    assert sorted(m["message"] for m in ticket["messages"]) == sorted(texts)
    assert [m["seq"] for m in ticket["messages"]] == list(range(1, 11))
    assert len({m["_id"] for m in ticket["messages"]}) == 10

    history = ok_data(await api.get("/api/chat/history", token=user))
    assert history["pagination"]["totalChats"] == 1
    active = ok_data(await api.get("/api/chat/active", token=user))
    assert active["count"] == 1
    assert active["activeChats"][0]["_id"] == ticket_id


async def test_concurrent_sends_get_consecutive_seq(api: Api, user: Person, agent: Person) -> None:
    ticket_id = ok_data(await start(api, user, "first"), 201)["ticketId"]
    path = f"/api/chat/{ticket_id}/message"
    senders = [user if i % 2 else agent for i in range(12)]
    responses = await asyncio.gather(
        *(api.post(path, token=who, json={"message": f"msg {i}"}) for i, who in enumerate(senders))
    )
    sent = [ok_data(r) for r in responses]
    assert sorted(d["seq"] for d in sent) == list(range(2, 14))
    assert len({d["messageId"] for d in sent}) == 12

    ticket = await get_ticket(api, user, ticket_id)
    messages = ticket["messages"]
    assert [m["seq"] for m in messages] == list(range(1, 14))
    by_id = {m["_id"]: m for m in messages}
    for i, (who, data) in enumerate(zip(senders, sent, strict=True)):
        stored = by_id[data["messageId"]]
        assert stored["seq"] == data["seq"]
        assert stored["message"] == f"msg {i}"
        assert stored["sender"] == who.id
        assert stored["isAdminReply"] is who.is_agent
    # Ids are time-ordered; seq order and storage order agree.
    assert [m["_id"] for m in messages] == [
        m["_id"] for m in sorted(messages, key=lambda m: m["seq"])
    ]
    assert ticket["status"] == "in_progress"


async def test_concurrent_repeats_of_one_client_message_id_store_once(
    api: Api, user: Person
) -> None:
    ticket_id = ok_data(await start(api, user, "first"), 201)["ticketId"]
    path = f"/api/chat/{ticket_id}/message"
    body = {"message": "exactly once", "clientMessageId": "retry-123"}
    responses = await asyncio.gather(*(api.post(path, token=user, json=body) for _ in range(5)))
    sent = [ok_data(r) for r in responses]
    assert len({d["messageId"] for d in sent}) == 1, sent
    assert {d["seq"] for d in sent} == {2}
    assert len({d["timestamp"] for d in sent}) == 1

    ticket = await get_ticket(api, user, ticket_id)
    assert [m["message"] for m in ticket["messages"]] == ["first", "exactly once"]
    assert ticket["messages"][1]["_id"] == sent[0]["messageId"]


async def test_concurrent_joins_agree_on_one_assignee(
    api: Api, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = ok_data(await start(api, user, "who takes me?"), 201)["ticketId"]
    agents = [agent_factory() for _ in range(5)]
    responses = await asyncio.gather(
        *(api.post(f"/api/chat/admin/join/{ticket_id}", token=a) for a in agents)
    )
    joined = [ok_data(r) for r in responses]
    assignees = {d["assignedTo"] for d in joined}
    assert len(assignees) == 1, joined
    (assignee,) = assignees
    assert assignee in {a.id for a in agents}
    ticket = await get_ticket(api, user, ticket_id)
    assert ticket["assignedTo"]["_id"] == assignee
    assert ticket["status"] == "in_progress"


async def test_concurrent_closes_resolve_once(
    api: Api, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = ok_data(await start(api, user, "bye"), 201)["ticketId"]
    agents = [agent_factory() for _ in range(5)]
    responses = await asyncio.gather(
        *(
            api.post(
                f"/api/chat/admin/close/{ticket_id}",
                token=a,
                json={"resolutionSummary": f"closed by {a.id}"},
            )
            for a in agents
        )
    )
    closed = [ok_data(r) for r in responses]
    assert len({d["resolvedAt"] for d in closed}) == 1, closed
    assert len({d["resolutionSummary"] for d in closed}) == 1, closed
    ticket = await get_ticket(api, user, ticket_id)
    assert ticket["status"] == "resolved"
    assert ticket["resolutionSummary"] == closed[0]["resolutionSummary"]
    assert ticket["resolutionSummary"] == f"closed by {ticket['resolvedBy']['_id']}"


async def test_concurrent_start_and_close_never_lose_a_message(
    api: Api, user: Person, agent: Person
) -> None:
    """A start racing the close of the user's chat lands either in the old chat (before the
    close) or in a new one; it is never acknowledged and then lost."""
    first = ok_data(await start(api, user, "old chat"), 201)
    close_resp, start_resp = await asyncio.gather(
        api.post(f"/api/chat/admin/close/{first['ticketId']}", token=agent),
        start(api, user, "racing message"),
    )
    ok_data(close_resp)
    data = ok_data(start_resp, 200, 201)
    ticket = await get_ticket(api, user, data["ticketId"])
    assert "racing message" in [m["message"] for m in ticket["messages"]]
    if data["ticketId"] == first["ticketId"]:
        assert data["isExisting"] is True
    else:
        assert data["isExisting"] is False
        assert ticket["status"] == "open"
