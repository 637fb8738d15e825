"""REST chat endpoints as a user and an agent see them: start, history, active chats, one
ticket, sending messages and the catch-up listing (GET /api/chat/:ticketId/messages).

Every test makes its own people, so it only ever sees its own tickets.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

import support
from support import (
    NOT_FOUND,
    OBJECT_ID_RE,
    TICKET_NUMBER_RE,
    Api,
    Person,
    PersonFactory,
    assert_recent,
    body_of,
    get_ticket,
    parse_ts,
    start_chat,
)

# --- small helpers (the harness gives raw clients; these keep the tests readable) ---------


def ok_data(resp: httpx.Response, status: int = 200) -> Any:
    """support.ok_data; in this file every success must carry a message too."""
    return support.ok_data(resp, status, with_message=True)


def assert_not_found(resp: httpx.Response, message: str = NOT_FOUND) -> None:
    body = body_of(resp, 404)
    assert body["success"] is False, body
    assert body["message"] == message, body


async def send(api: Api, who: Person, ticket_id: str, message: str, **extra: Any) -> Any:
    resp = await api.post(
        f"/api/chat/{ticket_id}/message", token=who, json={"message": message, **extra}
    )
    return ok_data(resp)


async def close(api: Api, agent: Person, ticket_id: str, **body: Any) -> Any:
    return ok_data(await api.post(f"/api/chat/admin/close/{ticket_id}", token=agent, json=body))


async def history(api: Api, who: Person, **params: Any) -> Any:
    return ok_data(await api.get("/api/chat/history", token=who, params=params))


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["message"] for m in messages]


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in messages]


def unknown_id() -> str:
    return uuid.uuid4().hex[:24]


# --- POST /api/chat/start ----------------------------------------------------------------


async def test_start_creates_ticket_with_documented_envelope(api: Api, user: Person) -> None:
    resp = await api.post(
        "/api/chat/start", token=user, json={"message": "Hello, I need help with my account"}
    )
    body = body_of(resp, 201)
    assert body["success"] is True
    assert body["message"] == "Chat session started successfully"
    data = body["data"]
    assert OBJECT_ID_RE.match(data["ticketId"]), data
    number = TICKET_NUMBER_RE.match(data["ticketNumber"])
    assert number, data["ticketNumber"]
    assert data["status"] == "open"
    assert data["isExisting"] is False
    assert len(data["messages"]) == 1
    first = data["messages"][0]
    assert OBJECT_ID_RE.match(first["_id"]) and first["_id"] != data["ticketId"]
    assert first["sender"] == user.id
    assert first["senderModel"] == "DTUser"
    assert first["message"] == "Hello, I need help with my account"
    assert first["isAdminReply"] is False
    assert first["attachments"] == []
    assert first["seq"] == 1
    assert_recent(first["timestamp"], past=120, future=120)
    assert number.group(1) == first["timestamp"][:4]  # TKT-<year of creation>-...


async def test_start_defaults_category_and_priority(api: Api, user: Person) -> None:
    data = await start_chat(api, user)
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["category"] == "general_inquiry"
    assert ticket["priority"] == "medium"


async def test_start_with_explicit_category_and_priority(
    api: Api, user_factory: PersonFactory
) -> None:
    for category, priority in [
        ("account_support", "high"),
        ("technical_support", "low"),
        ("payment_inquiry", "urgent"),
        ("general_inquiry", "medium"),
    ]:
        person = user_factory()
        data = await start_chat(api, person, category=category, priority=priority)
        ticket = await get_ticket(api, person, data["ticketId"])
        assert (ticket["category"], ticket["priority"]) == (category, priority)


async def test_start_subject_is_chat_support_and_date(api: Api, user: Person) -> None:
    data = await start_chat(api, user)
    ticket = await get_ticket(api, user, data["ticketId"])
    created = parse_ts(ticket["createdAt"])
    assert ticket["subject"] == f"Chat Support - {created.month}/{created.day}/{created.year}"
    assert re.fullmatch(r"Chat Support - \d{1,2}/\d{1,2}/\d{4}", ticket["subject"])


async def test_second_start_while_active_appends_to_existing_chat(api: Api, user: Person) -> None:
    first = await start_chat(api, user, "first message")
    resp = await api.post("/api/chat/start", token=user, json={"message": "second message"})
    body = body_of(resp, 200)
    assert body["success"] is True
    assert body["message"] == "Chat session already exists"
    data = body["data"]
    assert data["isExisting"] is True
    assert data["ticketId"] == first["ticketId"]
    assert data["ticketNumber"] == first["ticketNumber"]
    assert data["status"] == "open"
    assert texts(data["messages"]) == ["first message", "second message"]
    assert seqs(data["messages"]) == [1, 2]

    ticket = await get_ticket(api, user, first["ticketId"])
    assert texts(ticket["messages"]) == ["first message", "second message"]
    page = await history(api, user)
    assert page["pagination"]["totalChats"] == 1


async def test_start_after_close_creates_new_ticket(api: Api, user: Person, agent: Person) -> None:
    first = await start_chat(api, user, "first chat")
    await close(api, agent, first["ticketId"])
    second = await start_chat(api, user, "second chat")
    assert second["isExisting"] is False
    assert second["ticketId"] != first["ticketId"]
    assert second["ticketNumber"] != first["ticketNumber"]
    assert second["status"] == "open"
    assert texts(second["messages"]) == ["second chat"]
    assert seqs(second["messages"]) == [1]
    old = await get_ticket(api, user, first["ticketId"])
    assert old["status"] == "resolved"
    assert texts(old["messages"]) == ["first chat"]


async def test_start_with_attachments_round_trips(api: Api, user: Person) -> None:
    files = [{"fileName": "shot.png", "fileUrl": "https://cdn.example.com/shot.png",
              "fileType": "image/png"}]  # fmt: skip
    data = await start_chat(api, user, "see attached", attachments=files)
    assert data["messages"][0]["attachments"] == files
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["messages"][0]["attachments"] == files


# --- GET /api/chat/history ---------------------------------------------------------------

PAGINATION_KEYS = {"currentPage", "totalPages", "totalChats", "hasNextPage", "hasPrevPage", "limit"}


async def make_chats(api: Api, user: Person, agent: Person, count: int) -> list[str]:
    """`count` tickets for `user`, all but the last closed; ids in creation order."""
    ids = []
    for i in range(count):
        data = await start_chat(api, user, f"chat {i}")
        ids.append(data["ticketId"])
        if i < count - 1:
            await close(api, agent, data["ticketId"])
    return ids


async def test_history_defaults_for_new_user(api: Api, user: Person) -> None:
    data = await history(api, user)
    assert data["chats"] == []
    assert set(data["pagination"]) == PAGINATION_KEYS
    pagination = data["pagination"]
    assert pagination["currentPage"] == 1
    assert pagination["limit"] == 10
    assert pagination["totalChats"] == 0
    assert pagination["hasNextPage"] is False
    assert pagination["hasPrevPage"] is False


async def test_history_pages_newest_first(api: Api, user: Person, agent: Person) -> None:
    ids = await make_chats(api, user, agent, 3)
    newest_first = list(reversed(ids))

    resp = await api.get("/api/chat/history?page=1&limit=2", token=user)
    body = body_of(resp, 200)
    assert body["message"] == "Chat history retrieved successfully"
    page1 = body["data"]
    assert [c["_id"] for c in page1["chats"]] == newest_first[:2]
    assert page1["pagination"] == {
        "currentPage": 1,
        "totalPages": 2,
        "totalChats": 3,
        "hasNextPage": True,
        "hasPrevPage": False,
        "limit": 2,
    }

    page2 = await history(api, user, page=2, limit=2)
    assert [c["_id"] for c in page2["chats"]] == newest_first[2:]
    assert page2["pagination"] == {
        "currentPage": 2,
        "totalPages": 2,
        "totalChats": 3,
        "hasNextPage": False,
        "hasPrevPage": True,
        "limit": 2,
    }

    beyond = await history(api, user, page=3, limit=2)
    assert beyond["chats"] == []
    assert beyond["pagination"]["currentPage"] == 3
    assert beyond["pagination"]["hasNextPage"] is False
    assert beyond["pagination"]["hasPrevPage"] is True

    everything = await history(api, user)
    assert [c["_id"] for c in everything["chats"]] == newest_first
    assert everything["pagination"]["totalPages"] == 1


async def test_history_shows_only_own_tickets_with_messages(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    alice, bob = user_factory(), user_factory()
    mine = await start_chat(api, alice, "alice's question")
    await send(api, alice, mine["ticketId"], "more details")
    await start_chat(api, bob, "bob's question")
    await send(api, agent, mine["ticketId"], "agent answer")

    data = await history(api, alice)
    assert [c["_id"] for c in data["chats"]] == [mine["ticketId"]]
    assert data["pagination"]["totalChats"] == 1
    chat = data["chats"][0]
    assert chat["ticketNumber"] == mine["ticketNumber"]
    assert chat["status"] == "in_progress"
    assert chat["category"] == "general_inquiry"
    assert chat["priority"] == "medium"
    assert chat["subject"].startswith("Chat Support - ")
    parse_ts(chat["createdAt"])
    assert parse_ts(chat["lastUpdated"]) >= parse_ts(chat["createdAt"])
    assert texts(chat["messages"]) == ["alice's question", "more details", "agent answer"]
    assert chat["messages"][2]["isAdminReply"] is True


async def test_history_shows_assignee_and_resolution(api: Api, user: Person, agent: Person) -> None:
    data = await start_chat(api, user)
    ok_data(await api.post(f"/api/chat/admin/join/{data['ticketId']}", token=agent))
    await close(api, agent, data["ticketId"], resolutionSummary="done")
    chat = (await history(api, user))["chats"][0]
    assert chat["status"] == "resolved"
    assert chat["assignedTo"]["fullName"] == agent.name
    assert chat["assignedTo"]["email"] == agent.email


async def test_history_limit_is_capped_at_100(api: Api, user: Person) -> None:
    await start_chat(api, user)
    data = await history(api, user, limit=1000)
    assert data["pagination"]["limit"] == 100
    assert data["pagination"]["totalChats"] == 1
    assert len(data["chats"]) == 1
    data = await history(api, user, limit=100)
    assert data["pagination"]["limit"] == 100


async def test_history_rejects_non_integer_page_and_limit(api: Api, user: Person) -> None:
    for query in ["page=abc", "limit=ten", "page=1.5", "page=0", "limit=0",
                  "page=-1", "limit=-5"]:  # fmt: skip
        resp = await api.get(f"/api/chat/history?{query}", token=user)
        body = body_of(resp, 400)
        assert body["success"] is False, (query, body)
        assert isinstance(body["message"], str) and body["message"], (query, body)


# --- GET /api/chat/active ----------------------------------------------------------------


async def test_user_active_chats(api: Api, user: Person, agent: Person) -> None:
    before = ok_data(await api.get("/api/chat/active", token=user))
    assert before == {"activeChats": [], "count": 0}

    data = await start_chat(api, user, "active one")
    during = ok_data(await api.get("/api/chat/active", token=user))
    assert during["count"] == 1
    assert [c["_id"] for c in during["activeChats"]] == [data["ticketId"]]
    chat = during["activeChats"][0]
    assert chat["status"] == "open"
    assert chat["ticketNumber"] == data["ticketNumber"]
    assert texts(chat["messages"]) == ["active one"]

    await close(api, agent, data["ticketId"])
    after = ok_data(await api.get("/api/chat/active", token=user))
    assert after == {"activeChats": [], "count": 0}


async def test_user_active_chats_exclude_other_users(api: Api, user_factory: PersonFactory) -> None:
    alice, bob = user_factory(), user_factory()
    await start_chat(api, bob)
    assert ok_data(await api.get("/api/chat/active", token=alice))["count"] == 0


# --- GET /api/chat/:ticketId -------------------------------------------------------------


async def test_get_ticket_as_owner(api: Api, user: Person) -> None:
    data = await start_chat(api, user, "the question", category="account_support", priority="high")
    resp = await api.get(f"/api/chat/{data['ticketId']}", token=user)
    body = body_of(resp, 200)
    assert body["success"] is True
    assert body["message"] == "Chat ticket retrieved successfully"
    ticket = body["data"]["ticket"]
    assert ticket["_id"] == data["ticketId"]
    assert ticket["ticketNumber"] == data["ticketNumber"]
    assert ticket["status"] == "open"
    assert ticket["category"] == "account_support"
    assert ticket["priority"] == "high"
    assert ticket["isChat"] is True
    assert ticket["assignedTo"] is None
    assert ticket["userId"]["_id"] == user.id
    assert ticket["userId"]["fullName"] == user.name
    assert ticket["userId"]["email"] == user.email
    assert_recent(ticket["createdAt"], past=120, future=120)
    parse_ts(ticket["lastUpdated"])
    assert ticket["messages"] == data["messages"]


async def test_get_ticket_of_another_user_is_not_found(
    api: Api, user_factory: PersonFactory
) -> None:
    owner, other = user_factory(), user_factory()
    data = await start_chat(api, owner)
    assert_not_found(await api.get(f"/api/chat/{data['ticketId']}", token=other))


async def test_get_ticket_as_any_agent(
    api: Api, user: Person, agent_factory: PersonFactory
) -> None:
    data = await start_chat(api, user, "help")
    first, second = agent_factory(), agent_factory()
    for who in (first, second):
        ticket = await get_ticket(api, who, data["ticketId"])
        assert ticket["_id"] == data["ticketId"]
        assert texts(ticket["messages"]) == ["help"]
    ok_data(await api.post(f"/api/chat/admin/join/{data['ticketId']}", token=first))
    ticket = await get_ticket(api, second, data["ticketId"])
    assert ticket["assignedTo"]["_id"] == first.id
    assert ticket["assignedTo"]["fullName"] == first.name
    assert ticket["assignedTo"]["email"] == first.email
    assert ticket["status"] == "in_progress"


async def test_get_ticket_malformed_or_unknown_id_is_not_found(
    api: Api, user: Person, agent: Person
) -> None:
    await start_chat(api, user)
    bad_ids = ["abc", "not-a-ticket-id", "g" * 24, "0" * 23, "0" * 25, "%20", unknown_id()]
    for who in (user, agent):
        for bad in bad_ids:
            assert_not_found(await api.get(f"/api/chat/{bad}", token=who))


# --- POST /api/chat/:ticketId/message ----------------------------------------------------


async def test_send_message_as_user(api: Api, user: Person) -> None:
    data = await start_chat(api, user, "first")
    resp = await api.post(
        f"/api/chat/{data['ticketId']}/message", token=user, json={"message": "Thank you!"}
    )
    body = body_of(resp, 200)
    assert body["success"] is True
    assert body["message"] == "Message sent successfully"
    sent = body["data"]
    assert OBJECT_ID_RE.match(sent["messageId"])
    assert_recent(sent["timestamp"], past=120, future=120)
    assert sent["ticketStatus"] == "open"
    assert sent["seq"] == 2
    again = await send(api, user, data["ticketId"], "and another")
    assert again["seq"] == 3
    assert again["messageId"] != sent["messageId"]

    ticket = await get_ticket(api, user, data["ticketId"])
    assert texts(ticket["messages"]) == ["first", "Thank you!", "and another"]
    assert seqs(ticket["messages"]) == [1, 2, 3]
    stored = ticket["messages"][1]
    assert stored["_id"] == sent["messageId"]
    assert stored["timestamp"] == sent["timestamp"]
    assert stored["sender"] == user.id
    assert stored["senderModel"] == "DTUser"
    assert stored["isAdminReply"] is False
    assert ticket["status"] == "open"


async def test_send_message_attachments_round_trip(api: Api, user: Person) -> None:
    data = await start_chat(api, user)
    files = [
        {"fileName": "invoice.pdf", "fileUrl": "https://files.example.com/invoice.pdf",
         "fileType": "application/pdf"},
        {"fileName": "photo.jpg", "fileUrl": "http://files.example.com/p.jpg",
         "fileType": "image/jpeg"},
    ]  # fmt: skip
    sent = await send(api, user, data["ticketId"], "files attached", attachments=files)
    ticket = await get_ticket(api, user, data["ticketId"])
    stored = ticket["messages"][-1]
    assert stored["_id"] == sent["messageId"]
    assert stored["attachments"] == files
    empty = await send(api, user, data["ticketId"], "no files", attachments=[])
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["messages"][-1]["_id"] == empty["messageId"]
    assert ticket["messages"][-1]["attachments"] == []


async def test_agent_rest_reply_moves_open_chat_to_in_progress(
    api: Api, user: Person, agent: Person
) -> None:
    data = await start_chat(api, user, "hello?")
    sent = await send(api, agent, data["ticketId"], "Hi! How can I help?")
    assert sent["ticketStatus"] == "in_progress"
    assert sent["seq"] == 2
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["status"] == "in_progress"
    reply = ticket["messages"][-1]
    assert reply["_id"] == sent["messageId"]
    assert reply["message"] == "Hi! How can I help?"
    assert reply["sender"] == agent.id
    assert reply["senderModel"] == "Admin"
    assert reply["isAdminReply"] is True

    # The user's answer keeps it in progress, and is the user's again.
    answer = await send(api, user, data["ticketId"], "my password")
    assert answer["ticketStatus"] == "in_progress"
    ticket = await get_ticket(api, agent, data["ticketId"])
    assert ticket["messages"][-1]["senderModel"] == "DTUser"
    assert ticket["messages"][-1]["isAdminReply"] is False


async def test_send_to_another_users_ticket_is_not_found(
    api: Api, user_factory: PersonFactory
) -> None:
    owner, other = user_factory(), user_factory()
    data = await start_chat(api, owner, "private")
    resp = await api.post(
        f"/api/chat/{data['ticketId']}/message", token=other, json={"message": "intrusion"}
    )
    assert_not_found(resp)
    ticket = await get_ticket(api, owner, data["ticketId"])
    assert texts(ticket["messages"]) == ["private"]


async def test_send_to_malformed_or_unknown_ticket_is_not_found(
    api: Api, user: Person, agent: Person
) -> None:
    for who in (user, agent):
        for bad in ["nope", "z" * 24, unknown_id()]:
            resp = await api.post(f"/api/chat/{bad}/message", token=who, json={"message": "x"})
            assert_not_found(resp)


async def test_send_to_closed_chat_is_refused(api: Api, user: Person, agent: Person) -> None:
    data = await start_chat(api, user, "question")
    closed = await close(api, agent, data["ticketId"])
    before = await get_ticket(api, user, data["ticketId"])
    for who in (user, agent):
        resp = await api.post(
            f"/api/chat/{data['ticketId']}/message", token=who, json={"message": "too late"}
        )
        body = body_of(resp, 409)
        assert body["success"] is False
        assert isinstance(body["message"], str) and body["message"]
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket == before
    assert texts(ticket["messages"]) == ["question"]
    assert ticket["status"] == "resolved"
    assert ticket["resolvedAt"] == closed["resolvedAt"]


async def test_client_message_id_repeat_stores_once(api: Api, user: Person) -> None:
    data = await start_chat(api, user)
    first = await send(api, user, data["ticketId"], "once only", clientMessageId="cm-1")
    again = await send(api, user, data["ticketId"], "once only", clientMessageId="cm-1")
    assert again["messageId"] == first["messageId"]
    assert again["seq"] == first["seq"] == 2
    assert again["timestamp"] == first["timestamp"]
    other = await send(api, user, data["ticketId"], "different id", clientMessageId="cm-2")
    assert other["messageId"] != first["messageId"]
    assert other["seq"] == 3
    ticket = await get_ticket(api, user, data["ticketId"])
    assert texts(ticket["messages"]) == ["Hello, I need help", "once only", "different id"]


async def test_repeated_start_returns_the_chat_it_created_even_once_closed(
    api: Api, user: Person, agent: Person
) -> None:
    """A start whose answer was lost is retried with the same clientMessageId; if an
    agent closed the chat meanwhile, the retry must not open a second chat with the
    same message in it."""
    first = await start_chat(api, user, "lost answer", clientMessageId="start-1")
    await close(api, agent, first["ticketId"])
    resp = await api.post(
        "/api/chat/start",
        token=user,
        json={"message": "lost answer", "clientMessageId": "start-1"},
    )
    again = ok_data(resp, 200)
    assert again["isExisting"] is True
    assert again["ticketId"] == first["ticketId"]
    assert again["status"] == "resolved"
    assert texts(again["messages"]) == ["lost answer"]
    listed = await history(api, user)
    assert [c["_id"] for c in listed["chats"]] == [first["ticketId"]]
    fresh = await start_chat(api, user, "a new question", clientMessageId="start-2")
    assert fresh["ticketId"] != first["ticketId"]
    assert texts(fresh["messages"]) == ["a new question"]


async def test_repeated_start_while_active_stores_once(api: Api, user: Person) -> None:
    first = await start_chat(api, user, "hello", clientMessageId="s-1")
    for _ in range(2):
        resp = await api.post(
            "/api/chat/start", token=user, json={"message": "hello", "clientMessageId": "s-1"}
        )
        again = ok_data(resp, 200)
        assert again["ticketId"] == first["ticketId"]
        assert texts(again["messages"]) == ["hello"]


async def test_start_reusing_an_agents_client_message_id_stores_nothing_twice(
    api: Api, user: Person, agent: Person
) -> None:
    """clientMessageIds are unique per ticket whoever sent them: a start whose id an
    agent already used in the user's active chat is that send repeated, not a 500."""
    first = await start_chat(api, user, "hello")
    reply = await send(api, agent, first["ticketId"], "agent here", clientMessageId="shared")
    resp = await api.post(
        "/api/chat/start", token=user, json={"message": "again", "clientMessageId": "shared"}
    )
    again = ok_data(resp, 200)
    assert again["isExisting"] is True
    assert again["ticketId"] == first["ticketId"]
    ticket = await get_ticket(api, user, first["ticketId"])
    assert texts(ticket["messages"]) == ["hello", "agent here"]
    assert [m["_id"] for m in ticket["messages"]][-1] == reply["messageId"]


async def test_client_message_id_is_per_ticket(api: Api, user_factory: PersonFactory) -> None:
    alice, bob = user_factory(), user_factory()
    a = await start_chat(api, alice)
    b = await start_chat(api, bob)
    sent_a = await send(api, alice, a["ticketId"], "from alice", clientMessageId="same")
    sent_b = await send(api, bob, b["ticketId"], "from bob", clientMessageId="same")
    assert sent_a["messageId"] != sent_b["messageId"]
    assert texts((await get_ticket(api, bob, b["ticketId"]))["messages"])[-1] == "from bob"


# --- GET /api/chat/:ticketId/messages ----------------------------------------------------


async def chat_with_messages(api: Api, user: Person, count: int) -> tuple[str, list[str]]:
    """A ticket holding `count` messages ("m1".."m<count>"); returns its id and message ids."""
    data = await start_chat(api, user, "m1")
    ids = [data["messages"][0]["_id"]]
    for i in range(2, count + 1):
        ids.append((await send(api, user, data["ticketId"], f"m{i}"))["messageId"])
    return data["ticketId"], ids


async def test_messages_listing_in_order(api: Api, user: Person) -> None:
    ticket_id, ids = await chat_with_messages(api, user, 5)
    resp = await api.get(f"/api/chat/{ticket_id}/messages", token=user)
    body = body_of(resp, 200)
    assert body["success"] is True
    data = body["data"]
    assert [m["_id"] for m in data["messages"]] == ids
    assert seqs(data["messages"]) == [1, 2, 3, 4, 5]
    assert texts(data["messages"]) == ["m1", "m2", "m3", "m4", "m5"]
    assert data["hasMore"] is False


async def test_messages_after_and_limit(api: Api, user: Person) -> None:
    ticket_id, ids = await chat_with_messages(api, user, 5)
    path = f"/api/chat/{ticket_id}/messages"

    page = ok_data(await api.get(path, token=user, params={"limit": 2}))
    assert [m["_id"] for m in page["messages"]] == ids[:2]
    assert page["hasMore"] is True

    page = ok_data(await api.get(path, token=user, params={"after": ids[1], "limit": 2}))
    assert [m["_id"] for m in page["messages"]] == ids[2:4]
    assert page["hasMore"] is True

    page = ok_data(await api.get(path, token=user, params={"after": ids[3], "limit": 2}))
    assert [m["_id"] for m in page["messages"]] == ids[4:]
    assert page["hasMore"] is False

    page = ok_data(await api.get(path, token=user, params={"after": ids[1]}))
    assert [m["_id"] for m in page["messages"]] == ids[2:]
    assert page["hasMore"] is False

    page = ok_data(await api.get(path, token=user, params={"after": ids[-1]}))
    assert page == {"messages": [], "hasMore": False}


async def test_messages_bad_after_is_not_found(api: Api, user_factory: PersonFactory) -> None:
    alice, bob = user_factory(), user_factory()
    ticket_id, _ = await chat_with_messages(api, alice, 2)
    _, foreign_ids = await chat_with_messages(api, bob, 1)
    for after in ["garbage", "Z" * 24, unknown_id(), foreign_ids[0]]:
        resp = await api.get(
            f"/api/chat/{ticket_id}/messages", token=alice, params={"after": after}
        )
        body = body_of(resp, 404)
        assert body["success"] is False
        # A clear message that is about the message id, not a bare "Not found".
        assert "message" in body["message"].lower(), body
        assert body["message"] != NOT_FOUND, body


async def test_messages_owner_or_any_agent_only(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    owner, other = user_factory(), user_factory()
    ticket_id, ids = await chat_with_messages(api, owner, 2)
    assert_not_found(await api.get(f"/api/chat/{ticket_id}/messages", token=other))
    page = ok_data(await api.get(f"/api/chat/{ticket_id}/messages", token=agent))
    assert [m["_id"] for m in page["messages"]] == ids
    for bad in ["bad", unknown_id()]:
        assert_not_found(await api.get(f"/api/chat/{bad}/messages", token=agent))


async def test_messages_rejects_non_integer_limit(api: Api, user: Person) -> None:
    ticket_id, _ = await chat_with_messages(api, user, 1)
    for limit in ["x", "1.5", "0", "-1"]:
        resp = await api.get(f"/api/chat/{ticket_id}/messages?limit={limit}", token=user)
        assert body_of(resp, 400)["success"] is False
