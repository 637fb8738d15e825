"""The compatibility Socket.IO events of the earlier server and its shipped web client
(CONTRACT.md "Compatibility"), exercised by clients that connect the way that web client
does: polling first and then the upgrade to WebSocket, the role in the query string
(`userType=dtuser` / `userType=admin`), and the token in auth.token, the Authorization
header or the query string.

Events: start_chat, get_chat_history, rejoin_ticket, join_ticket, send_message (agent
reply; the user client's extra fields), close_chat, get_active_chats,
get_admin_active_tickets, join_chat_room / leave_chat_room (agents), active_tickets on
connect; and who may not use them.

Agents receive the events of every ticket, so every wait filters by the test's ticketId.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support import Api, Person, PersonFactory, SocketClient, SocketFactory

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
TICKET_NUMBER = re.compile(r"^TKT-\d{4}-\d{6}$")
QUIET = 0.3  # window for "this never arrives" checks, taken after a barrier event
UNKNOWN_ID = "0123456789abcdef01234567"
TOKEN_PLACES = ("auth", "header", "query")
DEFAULT_RESOLUTION = "Chat session completed successfully"


# --- helpers ---------------------------------------------------------------------------


async def shipped(
    sockets: SocketFactory,
    person: Person,
    token_in: str = "auth",
    user_type: str | None = None,
) -> SocketClient:
    """Connect as the shipped web client does: polling, then the upgrade; userType in the
    query string (dtuser for customers, admin for agents), never in auth."""
    user_type = user_type or ("admin" if person.is_agent else "dtuser")
    query = {"userType": user_type}
    auth: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    if token_in == "auth":
        auth = {"token": person.token}
    elif token_in == "header":
        headers = person.auth_header
    elif token_in == "query":
        query["token"] = person.token
    else:
        raise ValueError(token_in)
    client = await sockets(
        person,
        user_type=user_type,
        auth=auth,
        headers=headers,
        query=query,
        transports=("polling", "websocket"),
    )
    assert client.connected
    assert client.transport == "websocket", f"{client.label}: no upgrade ({client.transport})"
    return client


def of_ticket(ticket_id: str) -> Any:
    return lambda d: isinstance(d, dict) and d.get("ticketId") == ticket_id


def with_text(ticket_id: str, text: str) -> Any:
    return lambda d: (
        isinstance(d, dict) and d.get("ticketId") == ticket_id and d.get("message") == text
    )


def joined_by(ticket_id: str, agent_id: str) -> Any:
    return lambda d: (
        isinstance(d, dict) and d.get("ticketId") == ticket_id and d.get("agentId") == agent_id
    )


def listing(ticket_id: str) -> Any:
    """An `active_chats` / `active_tickets` list that names this ticket."""
    return lambda d: isinstance(d, list) and any(t.get("_id") == ticket_id for t in d)


async def ok_call(client: SocketClient, event: str, data: Any = None) -> Any:
    ack = await client.call(event, data)
    assert isinstance(ack, dict) and ack.get("success") is True, (event, ack)
    return ack["data"]


async def failed_call(client: SocketClient, event: str, data: Any = None) -> dict[str, Any]:
    ack = await client.call(event, data)
    assert isinstance(ack, dict), ack
    assert ack.get("success") is False, (event, ack)
    assert isinstance(ack.get("message"), str) and ack["message"], ack
    assert "data" not in ack, ack
    return ack


async def rest_start(api: Api, user: Person, message: str = "Hello, I need help") -> dict[str, Any]:
    resp = await api.post("/api/chat/start", token=user, json={"message": message})
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


async def rest_ticket(api: Api, who: Person, ticket_id: str) -> dict[str, Any]:
    resp = await api.get(f"/api/chat/{ticket_id}", token=who)
    assert resp.status_code == 200, resp.text
    ticket: dict[str, Any] = resp.json()["data"]["ticket"]
    return ticket


async def rest_send(api: Api, who: Person, ticket_id: str, message: str) -> dict[str, Any]:
    resp = await api.post(f"/api/chat/{ticket_id}/message", token=who, json={"message": message})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


async def rest_close(api: Api, agent: Person, ticket_id: str) -> None:
    resp = await api.post(f"/api/chat/admin/close/{ticket_id}", token=agent, json={})
    assert resp.status_code == 200, resp.text


async def rest_queue(api: Api, agent: Person, status: str | None = None) -> list[str]:
    params = {"status": status} if status is not None else None
    resp = await api.get("/api/chat/admin/active", token=agent, params=params)
    assert resp.status_code == 200, resp.text
    return [t["_id"] for t in resp.json()["data"]["chats"]]


async def rest_active_of(api: Api, user: Person) -> list[dict[str, Any]]:
    resp = await api.get("/api/chat/active", token=user)
    assert resp.status_code == 200, resp.text
    chats: list[dict[str, Any]] = resp.json()["data"]["activeChats"]
    return chats


def assert_recent(value: str) -> None:
    assert ISO_MS.match(value), value
    moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    now = datetime.now(UTC)
    assert now - timedelta(seconds=60) <= moment <= now + timedelta(seconds=5), value


def assert_chat_error(err: Any, kind: str, ticket_id: str | None, code: str | None = None) -> None:
    assert isinstance(err, dict), err
    assert err.get("type") == kind, err
    assert isinstance(err.get("message"), str) and err["message"], err
    assert err.get("ticketId") == ticket_id, err
    if code is not None:
        assert err.get("code") == code, err


def leaked(client: SocketClient, ticket_id: str, allowed: tuple[str, ...] = ()) -> list[Any]:
    """Everything this socket received about the ticket, other than `allowed` events."""
    return [
        (r.event, r.data)
        for r in client.received
        if r.event not in allowed
        and (
            (isinstance(r.data, dict) and r.data.get("ticketId") == ticket_id)
            or (isinstance(r.data, dict) and r.data.get("_id") == ticket_id)
            or (isinstance(r.data, list) and any(t.get("_id") == ticket_id for t in r.data))
            or (
                isinstance(r.data, dict)
                and any(t.get("_id") == ticket_id for t in r.data.get("tickets", []))
            )
        )
    ]


# --- connecting like the shipped client ----------------------------------------------------


@pytest.mark.parametrize("token_in", TOKEN_PLACES)
@pytest.mark.parametrize("role", ["dtuser", "admin"])
async def test_shipped_client_handshake_polling_then_upgrade(
    sockets: SocketFactory,
    user: Person,
    agent: Person,
    role: str,
    token_in: str,
) -> None:
    """The token wherever the client puts it, the role from ?userType=; the connection
    starts on polling and ends on WebSocket, and the socket has the role it asked for."""
    person = agent if role == "admin" else user
    client = await shipped(sockets, person, token_in)
    assert client.events("connect") == [None]
    if role == "admin":
        assert isinstance(await ok_call(client, "get_active_chats"), list)
        await client.wait_for("active_chats")
    else:
        await failed_call(client, "get_active_chats")
        err = await client.wait_for("error")
        assert err["type"] == "forbidden", err
    assert client.transport == "websocket"
    assert client.connected


# --- start_chat ----------------------------------------------------------------------------


async def test_start_chat_opens_a_chat_and_tells_the_agents(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    watcher, other_agent = agent_factory(), agent_factory()
    watcher_socket = await shipped(sockets, watcher, "header")
    other_agent_socket = await shipped(sockets, other_agent, "query")
    client = await shipped(sockets, user, "auth")
    second_tab = await shipped(sockets, user, "query")

    payload = {"message": "My payout is late", "category": "payment_inquiry", "priority": "high"}
    ack = await ok_call(client, "start_chat", payload)
    started = await client.wait_for("chat_started")

    ticket_id = started["ticketId"]
    assert OBJECT_ID.match(ticket_id), started
    assert TICKET_NUMBER.match(started["ticketNumber"]), started
    assert started["status"] == "open"
    assert started["isExisting"] is False
    assert len(started["messages"]) == 1
    first = started["messages"][0]
    assert OBJECT_ID.match(first["_id"]), first
    assert first["message"] == "My payout is late"
    assert first["sender"] == user.id
    assert first["senderModel"] == "DTUser"
    assert first["isAdminReply"] is False
    assert first["seq"] == 1
    assert_recent(first["timestamp"])
    assert ack == started

    for agent_socket in (watcher_socket, other_agent_socket):
        announced = await agent_socket.wait_for("new_chat_ticket", of_ticket(ticket_id))
        assert announced["ticketNumber"] == started["ticketNumber"]
        assert announced["message"] == "My payout is late"
        assert announced["category"] == "payment_inquiry"
        assert announced["priority"] == "high"
        assert announced["userName"] == user.name
        assert announced["userEmail"] == user.email
        assert announced["status"] == "open"
    # The user's other tab learns of the chat; the starting socket got chat_started.
    on_tab = await second_tab.wait_for("new_message", of_ticket(ticket_id))
    assert on_tab["messageId"] == first["_id"]
    await client.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    # A new chat is announced once, as new_chat_ticket, not also as user_message.
    await watcher_socket.assert_no("user_message", of_ticket(ticket_id), within=0.0)

    stored = await rest_ticket(api, user, ticket_id)
    assert stored["ticketNumber"] == started["ticketNumber"]
    assert stored["category"] == "payment_inquiry"
    assert stored["priority"] == "high"
    assert stored["messages"] == started["messages"]
    assert [t["_id"] for t in await rest_active_of(api, user)] == [ticket_id]


async def test_start_chat_while_active_appends_to_that_chat(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    agent_socket = await shipped(sockets, agent, "auth")
    client = await shipped(sockets, user, "header")
    first = await ok_call(client, "start_chat", {"message": "first", "priority": "low"})
    ticket_id = first["ticketId"]
    await client.wait_for("chat_started", of_ticket(ticket_id))
    await agent_socket.wait_for("new_chat_ticket", of_ticket(ticket_id))

    await ok_call(
        client, "start_chat", {"message": "second", "category": "bug_report", "priority": "urgent"}
    )
    again = await client.wait_for("chat_started")

    assert again["ticketId"] == ticket_id
    assert again["ticketNumber"] == first["ticketNumber"]
    assert again["isExisting"] is True
    assert again["status"] == "open"
    assert [(m["message"], m["seq"]) for m in again["messages"]] == [("first", 1), ("second", 2)]
    # Appended like any user message: agents get user_message, not a second new chat.
    queued = await agent_socket.wait_for("user_message", with_text(ticket_id, "second"))
    assert queued["seq"] == 2
    await agent_socket.assert_no("new_chat_ticket", of_ticket(ticket_id), within=QUIET)

    stored = await rest_ticket(api, user, ticket_id)
    assert [m["message"] for m in stored["messages"]] == ["first", "second"]
    assert (stored["priority"], stored["category"]) == ("low", "general_inquiry")
    assert len(await rest_active_of(api, user)) == 1


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"message": ""}, {"message": "   \n\t"}, {"category": "bug_report"}],
    ids=["no-payload", "empty", "empty-message", "blank-message", "no-message"],
)
async def test_start_chat_without_a_message_stores_nothing(
    api: Api, sockets: SocketFactory, user: Person, agent: Person, payload: Any
) -> None:
    agent_socket = await shipped(sockets, agent)
    client = await shipped(sockets, user, "query")

    await failed_call(client, "start_chat", payload)
    err = await client.wait_for("chat_error")
    assert_chat_error(err, "validation_error", None, "VALIDATION_ERROR")
    assert err["message"] == "Initial message is required to start chat"
    await client.assert_no("chat_started", within=QUIET)
    await agent_socket.assert_no(
        "new_chat_ticket", lambda d: isinstance(d, dict) and d.get("userId") == user.id, within=0.0
    )

    assert await rest_active_of(api, user) == []
    resp = await api.get("/api/chat/history", token=user)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["pagination"]["totalChats"] == 0
    assert client.connected


async def test_start_chat_with_a_bad_priority_lists_the_valid_ones(
    api: Api, sockets: SocketFactory, user: Person
) -> None:
    client = await shipped(sockets, user)
    await failed_call(client, "start_chat", {"message": "hi", "priority": "critical"})
    err = await client.wait_for("chat_error")
    assert_chat_error(err, "validation_error", None, "VALIDATION_ERROR")
    assert "low, medium, high, urgent" in err["message"], err
    await client.assert_no("chat_started", within=QUIET)
    assert await rest_active_of(api, user) == []


async def test_start_chat_from_an_agent_socket_opens_the_agents_own_chat(
    api: Api, sockets: SocketFactory, agent_factory: PersonFactory
) -> None:
    """As over REST, an agent who starts a chat is its customer (senderModel DTUser)."""
    agent, colleague = agent_factory(), agent_factory()
    colleague_socket = await shipped(sockets, colleague)
    client = await shipped(sockets, agent, "header")

    await ok_call(client, "start_chat", {"message": "My own laptop is broken"})
    started = await client.wait_for("chat_started")
    ticket_id = started["ticketId"]
    assert started["isExisting"] is False
    [first] = started["messages"]
    assert (first["sender"], first["senderModel"], first["isAdminReply"]) == (
        agent.id,
        "DTUser",
        False,
    )
    announced = await colleague_socket.wait_for("new_chat_ticket", of_ticket(ticket_id))
    assert announced["userName"] == agent.name
    stored = await rest_ticket(api, agent, ticket_id)
    assert stored["userId"]["_id"] == agent.id
    assert stored["assignedTo"] is None


# --- get_chat_history ------------------------------------------------------------------------


async def test_get_chat_history_returns_the_users_own_chat(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    chat = await rest_start(api, user, "Where is my certificate?")
    ticket_id = chat["ticketId"]
    await rest_send(api, agent, ticket_id, "Let me check")
    client = await shipped(sockets, user, "header")

    ack = await ok_call(client, "get_chat_history", {"ticketId": ticket_id})
    history = await client.wait_for("chat_history", of_ticket(ticket_id))

    stored = await rest_ticket(api, user, ticket_id)
    assert history == ack
    assert history["ticketNumber"] == stored["ticketNumber"]
    assert history["status"] == "in_progress"
    assert history["subject"] == stored["subject"]
    assert history["subject"].startswith("Chat Support - ")
    assert history["createdAt"] == stored["createdAt"]
    assert history["lastUpdated"] == stored["lastUpdated"]
    assert history["messages"] == stored["messages"]
    assert [(m["senderModel"], m["seq"]) for m in history["messages"]] == [
        ("DTUser", 1),
        ("Admin", 2),
    ]

    # A closed chat's history can still be read.
    await rest_close(api, agent, ticket_id)
    await ok_call(client, "get_chat_history", {"ticketId": ticket_id})
    closed = await client.wait_for("chat_history", of_ticket(ticket_id))
    assert closed["status"] == "resolved"


async def test_get_chat_history_from_an_agent_socket_reads_any_chat(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await rest_start(api, user))["ticketId"]
    client = await shipped(sockets, agent, "query")
    await ok_call(client, "get_chat_history", {"ticketId": ticket_id})
    history = await client.wait_for("chat_history", of_ticket(ticket_id))
    assert history["status"] == "open"
    assert [m["message"] for m in history["messages"]] == ["Hello, I need help"]
    # Reading is not joining: nothing changed.
    stored = await rest_ticket(api, user, ticket_id)
    assert stored["status"] == "open"
    assert stored["assignedTo"] is None


@pytest.mark.parametrize("role", ["dtuser", "admin"])
async def test_get_chat_history_of_an_unknown_or_malformed_ticket_is_not_found(
    sockets: SocketFactory, user: Person, agent: Person, role: str
) -> None:
    client = await shipped(sockets, agent if role == "admin" else user)
    for ticket_id in (UNKNOWN_ID, "not-an-id"):
        await failed_call(client, "get_chat_history", {"ticketId": ticket_id})
        err = await client.wait_for("chat_error")
        assert_chat_error(err, "not_found", ticket_id, "TICKET_NOT_FOUND")
    await failed_call(client, "get_chat_history", {})
    err = await client.wait_for("chat_error")
    assert_chat_error(err, "validation_error", None, "VALIDATION_ERROR")
    await client.assert_no("chat_history", within=QUIET)


# --- rejoin_ticket ---------------------------------------------------------------------------


async def test_rejoin_ticket_returns_the_chat_and_replays_nothing_by_default(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await rest_start(api, user, "one"))["ticketId"]
    await rest_send(api, agent, ticket_id, "two")
    client = await shipped(sockets, user, "query")

    ack = await ok_call(client, "rejoin_ticket", {"ticketId": ticket_id})
    rejoined = await client.wait_for("ticket_rejoined", of_ticket(ticket_id))

    stored = await rest_ticket(api, user, ticket_id)
    assert rejoined == ack
    assert rejoined["ticketNumber"] == stored["ticketNumber"]
    assert rejoined["status"] == "in_progress"
    assert rejoined["lastUpdated"] == stored["lastUpdated"]
    assert rejoined["messages"] == stored["messages"]
    await client.assert_no("new_message", of_ticket(ticket_id), within=QUIET)

    # The rejoined socket hears the chat live (as every user socket does).
    await rest_send(api, agent, ticket_id, "three")
    live = await client.wait_for("new_message", of_ticket(ticket_id))
    assert (live["message"], live["seq"]) == ("three", 3)


async def test_rejoin_ticket_with_last_message_id_replays_the_missed_in_seq_order(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    chat = await rest_start(api, user, "m1")
    ticket_id = chat["ticketId"]
    seen_last = chat["messages"][0]["_id"]
    await rest_send(api, agent, ticket_id, "m2")
    await rest_send(api, user, ticket_id, "m3")
    await rest_send(api, agent, ticket_id, "m4")
    client = await shipped(sockets, user, "header")

    await ok_call(client, "rejoin_ticket", {"ticketId": ticket_id, "lastMessageId": seen_last})
    rejoined = await client.wait_for("ticket_rejoined", of_ticket(ticket_id))
    assert [m["message"] for m in rejoined["messages"]] == ["m1", "m2", "m3", "m4"]
    replayed = [await client.wait_for("new_message", of_ticket(ticket_id)) for _ in range(3)]
    assert [(m["message"], m["seq"]) for m in replayed] == [("m2", 2), ("m3", 3), ("m4", 4)]
    assert [m["isAdminReply"] for m in replayed] == [True, False, True]

    # Newer messages come after the replay, and nothing is replayed twice.
    await rest_send(api, agent, ticket_id, "m5")
    newer = await client.wait_for("new_message", of_ticket(ticket_id))
    assert (newer["message"], newer["seq"]) == ("m5", 5)
    assert [d["seq"] for d in client.events("new_message")] == [2, 3, 4, 5]


async def test_rejoin_ticket_from_an_agent_socket(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    chat = await rest_start(api, user, "first")
    ticket_id = chat["ticketId"]
    await rest_send(api, user, ticket_id, "second")
    client = await shipped(sockets, agent, "auth")
    await ok_call(
        client,
        "rejoin_ticket",
        {"ticketId": ticket_id, "lastMessageId": chat["messages"][0]["_id"]},
    )
    rejoined = await client.wait_for("ticket_rejoined", of_ticket(ticket_id))
    assert rejoined["ticketNumber"] == chat["ticketNumber"]
    assert len(rejoined["messages"]) == 2
    replayed = await client.wait_for("new_message", of_ticket(ticket_id))
    assert (replayed["message"], replayed["seq"]) == ("second", 2)


@pytest.mark.parametrize("which", ["other-ticket", "malformed", "unknown"])
async def test_rejoin_ticket_with_a_bad_last_message_id_replays_nothing(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, which: str
) -> None:
    user, other = user_factory(), user_factory()
    ticket_id = (await rest_start(api, user, "a1"))["ticketId"]
    await rest_send(api, user, ticket_id, "a2")
    if which == "other-ticket":  # a real message id, but of another user's chat
        last = (await rest_start(api, other, "x"))["messages"][0]["_id"]
    else:
        last = {"malformed": "not-a-message-id", "unknown": UNKNOWN_ID}[which]
    client = await shipped(sockets, user)

    await failed_call(client, "rejoin_ticket", {"ticketId": ticket_id, "lastMessageId": last})
    err = await client.wait_for("chat_error")
    assert_chat_error(err, "not_found", ticket_id, "MESSAGE_NOT_FOUND")
    await client.assert_no("ticket_rejoined", within=QUIET)
    await client.assert_no("new_message", within=0.0)


# --- join_ticket (agents) ------------------------------------------------------------------


async def test_join_ticket_takes_the_chat_and_tells_the_user(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    agent, colleague = agent_factory(), agent_factory()
    user_socket = await shipped(sockets, user, "auth")
    colleague_socket = await shipped(sockets, colleague, "auth")
    ticket_id = (await rest_start(api, user, "Please call me"))["ticketId"]
    client = await shipped(sockets, agent, "header")

    ack = await ok_call(client, "join_ticket", {"ticketId": ticket_id})
    joined = await client.wait_for("ticket_joined", of_ticket(ticket_id))

    stored = await rest_ticket(api, agent, ticket_id)
    assert joined == ack
    assert joined["ticketNumber"] == stored["ticketNumber"]
    assert joined["userName"] == user.name
    assert joined["userEmail"] == user.email
    assert joined["status"] == "in_progress"
    assert joined["assignedTo"] == agent.id
    assert joined["messages"] == stored["messages"]
    assert stored["status"] == "in_progress"
    assert stored["assignedTo"]["_id"] == agent.id

    told = await user_socket.wait_for("agent_joined", of_ticket(ticket_id))
    assert told["agentId"] == agent.id
    assert told["agentName"] == agent.name
    assert_recent(told["joinedAt"])
    assigned = await colleague_socket.wait_for("chat_assigned", of_ticket(ticket_id))
    assert assigned["assignedTo"] == agent.id

    # The joiner now follows the conversation.
    await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "Thanks"})
    heard = await client.wait_for("new_message", with_text(ticket_id, "Thanks"))
    assert heard["senderModel"] == "DTUser"


async def test_join_ticket_of_a_chat_someone_else_has_keeps_the_assignee(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    first, second = agent_factory(), agent_factory()
    ticket_id = (await rest_start(api, user))["ticketId"]
    first_socket = await shipped(sockets, first, "query")
    await ok_call(first_socket, "join_ticket", {"ticketId": ticket_id})
    second_socket = await shipped(sockets, second, "auth")

    await ok_call(second_socket, "join_ticket", {"ticketId": ticket_id})
    joined = await second_socket.wait_for("ticket_joined", of_ticket(ticket_id))
    assert joined["assignedTo"] == first.id
    assert joined["status"] == "in_progress"
    assert (await rest_ticket(api, user, ticket_id))["assignedTo"]["_id"] == first.id


async def test_join_ticket_with_last_message_id_replays_the_missed(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    chat = await rest_start(api, user, "j1")
    ticket_id = chat["ticketId"]
    await rest_send(api, user, ticket_id, "j2")
    await rest_send(api, user, ticket_id, "j3")
    client = await shipped(sockets, agent)
    await ok_call(
        client, "join_ticket", {"ticketId": ticket_id, "lastMessageId": chat["messages"][0]["_id"]}
    )
    await client.wait_for("ticket_joined", of_ticket(ticket_id))
    replayed = [await client.wait_for("new_message", of_ticket(ticket_id)) for _ in range(2)]
    assert [(m["message"], m["seq"]) for m in replayed] == [("j2", 2), ("j3", 3)]


async def test_join_ticket_of_a_closed_or_unknown_chat_is_refused(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await rest_start(api, user))["ticketId"]
    await rest_close(api, agent, ticket_id)
    client = await shipped(sockets, agent)

    await failed_call(client, "join_ticket", {"ticketId": ticket_id})
    err = await client.wait_for("chat_error")
    assert_chat_error(err, "chat_closed", ticket_id, "CHAT_CLOSED")
    await failed_call(client, "join_ticket", {"ticketId": UNKNOWN_ID})
    err = await client.wait_for("chat_error")
    assert_chat_error(err, "not_found", UNKNOWN_ID, "TICKET_NOT_FOUND")
    await client.assert_no("ticket_joined", within=QUIET)
    assert (await rest_ticket(api, agent, ticket_id))["status"] == "resolved"


# --- send_message ----------------------------------------------------------------------------


async def test_send_message_from_an_agent_socket_is_an_agent_reply(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await rest_start(api, user))["ticketId"]
    user_socket = await shipped(sockets, user, "header")
    client = await shipped(sockets, agent, "query")
    await ok_call(client, "join_ticket", {"ticketId": ticket_id})

    ack = await ok_call(client, "send_message", {"ticketId": ticket_id, "message": "On it"})
    sent = await client.wait_for("message_sent", of_ticket(ticket_id))
    assert ack["messageId"] == sent["messageId"]
    reply = await user_socket.wait_for("new_message", with_text(ticket_id, "On it"))
    assert reply["messageId"] == sent["messageId"]
    assert reply["isAdminReply"] is True
    assert reply["senderModel"] == "Admin"
    assert reply["sender"] == agent.id
    assert reply["senderName"] == agent.name
    assert reply["seq"] == 2
    assert_recent(reply["timestamp"])
    await client.assert_no("new_message", with_text(ticket_id, "On it"), within=QUIET)
    await client.assert_no("user_message", of_ticket(ticket_id), within=0.0)

    stored = (await rest_ticket(api, user, ticket_id))["messages"][-1]
    assert (stored["_id"], stored["senderModel"], stored["isAdminReply"]) == (
        sent["messageId"],
        "Admin",
        True,
    )


async def test_send_message_from_an_agent_socket_takes_an_unassigned_chat(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await rest_start(api, user))["ticketId"]
    client = await shipped(sockets, agent, "auth")
    await ok_call(client, "send_message", {"ticketId": ticket_id, "message": "Hi there"})
    stored = await rest_ticket(api, user, ticket_id)
    assert stored["status"] == "in_progress"
    assert stored["assignedTo"]["_id"] == agent.id


async def test_the_shipped_user_clients_extra_send_message_fields_are_ignored(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent: Person
) -> None:
    """The shipped client sends senderModel/timestamp/isAdminReply/sender along; the server
    stores and delivers the user's message with its own time, whatever they say."""
    user, someone_else = user_factory(), user_factory()
    ticket_id = (await rest_start(api, user))["ticketId"]
    agent_socket = await shipped(sockets, agent, "header")
    await ok_call(agent_socket, "join_ticket", {"ticketId": ticket_id})
    client = await shipped(sockets, user, "query")

    ack = await ok_call(
        client,
        "send_message",
        {
            "ticketId": ticket_id,
            "message": "Is anyone there?",
            "senderModel": "Admin",
            "timestamp": "2000-01-01T00:00:00.000Z",
            "isAdminReply": True,
            "sender": someone_else.id,
        },
    )
    assert_recent(ack["timestamp"])
    for data in (
        await agent_socket.wait_for("new_message", with_text(ticket_id, "Is anyone there?")),
        (await rest_ticket(api, user, ticket_id))["messages"][-1],
    ):
        assert data["sender"] == user.id, data
        assert data["senderName"] == user.name, data
        assert data["senderModel"] == "DTUser", data
        assert data["isAdminReply"] is False, data
        assert data["timestamp"] == ack["timestamp"], data
        assert_recent(data["timestamp"])
    queued = await agent_socket.wait_for("user_message", with_text(ticket_id, "Is anyone there?"))
    assert queued["userName"] == user.name


# --- close_chat ------------------------------------------------------------------------------


async def test_close_chat_resolves_and_tells_the_user_and_every_agent(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    agent, bystander = agent_factory(), agent_factory()
    ticket_id = (await rest_start(api, user))["ticketId"]
    user_socket = await shipped(sockets, user, "query")
    bystander_socket = await shipped(sockets, bystander, "header")
    client = await shipped(sockets, agent, "auth")
    await ok_call(client, "join_ticket", {"ticketId": ticket_id})

    summary = "Refund issued"
    ack = await ok_call(client, "close_chat", {"ticketId": ticket_id, "resolutionSummary": summary})
    assert ack["status"] == "resolved"
    assert ack["resolutionSummary"] == summary
    assert ack["alreadyClosed"] is False

    for socket in (user_socket, bystander_socket, client):
        closed = await socket.wait_for("chat_closed", of_ticket(ticket_id))
        assert closed["closedBy"] == agent.name
        assert closed["resolutionSummary"] == summary
        assert closed["ticketNumber"] == ack["ticketNumber"]
        assert_recent(closed["closedAt"])
    stored = await rest_ticket(api, user, ticket_id)
    assert stored["status"] == "resolved"
    assert stored["resolutionSummary"] == summary
    assert stored["resolvedBy"]["_id"] == agent.id

    # Closing again answers with the existing resolution and tells nobody anything.
    again = await ok_call(client, "close_chat", {"ticketId": ticket_id, "resolutionSummary": "x"})
    assert again["alreadyClosed"] is True
    assert again["resolutionSummary"] == summary
    await user_socket.assert_no("chat_closed", of_ticket(ticket_id), within=QUIET)


async def test_close_chat_without_a_summary_uses_the_default(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await rest_start(api, user))["ticketId"]
    user_socket = await shipped(sockets, user)
    client = await shipped(sockets, agent, "query")
    await ok_call(client, "close_chat", {"ticketId": ticket_id})
    closed = await user_socket.wait_for("chat_closed", of_ticket(ticket_id))
    assert closed["resolutionSummary"] == DEFAULT_RESOLUTION
    await failed_call(client, "close_chat", {"ticketId": UNKNOWN_ID})
    err = await client.wait_for("chat_error")
    assert_chat_error(err, "not_found", UNKNOWN_ID, "TICKET_NOT_FOUND")


# --- get_active_chats / get_admin_active_tickets -------------------------------------------


async def test_get_active_chats_lists_the_active_tickets(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent: Person
) -> None:
    active_user, closed_user = user_factory(), user_factory()
    active_id = (await rest_start(api, active_user))["ticketId"]
    closed_id = (await rest_start(api, closed_user))["ticketId"]
    await rest_close(api, agent, closed_id)
    client = await shipped(sockets, agent, "header")

    ack = await ok_call(client, "get_active_chats")
    answer = await client.wait_for("active_chats", listing(active_id))

    assert answer == ack
    ids = [t["_id"] for t in answer]
    assert active_id in ids
    assert closed_id not in ids
    assert ids == await rest_queue(api, agent)
    assert all(t["status"] in ("open", "in_progress", "waiting_for_user") for t in answer)
    mine = next(t for t in answer if t["_id"] == active_id)
    assert mine["userId"] == {
        "_id": active_user.id,
        "fullName": active_user.name,
        "email": active_user.email,
    }
    assert mine["assignedTo"] is None
    assert [m["message"] for m in mine["messages"]] == ["Hello, I need help"]
    assert TICKET_NUMBER.match(mine["ticketNumber"])


async def test_get_admin_active_tickets_filters_by_status(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent: Person
) -> None:
    waiting, helped, done = user_factory(), user_factory(), user_factory()
    open_id = (await rest_start(api, waiting))["ticketId"]
    progress_id = (await rest_start(api, helped))["ticketId"]
    resolved_id = (await rest_start(api, done))["ticketId"]
    client = await shipped(sockets, agent, "query")
    await ok_call(client, "join_ticket", {"ticketId": progress_id})
    await rest_close(api, agent, resolved_id)

    expectations = {
        "open": ({open_id}, {progress_id, resolved_id}),
        "in_progress": ({progress_id}, {open_id, resolved_id}),
        "resolved": ({resolved_id}, {open_id, progress_id}),
        "active": ({open_id, progress_id}, {resolved_id}),
    }
    for status, (present, absent) in expectations.items():
        ack = await ok_call(client, "get_admin_active_tickets", {"status": status})
        answer = await client.wait_for("active_chats")
        assert answer == ack
        ids = {t["_id"] for t in answer}
        assert present <= ids, (status, ids)
        assert not absent & ids, (status, ids)
        if status != "active":
            assert {t["status"] for t in answer} == {status}
        assert [t["_id"] for t in answer] == await rest_queue(api, agent, status)
    # No status, or an empty payload: the active ones, as get_active_chats.
    for payload in (None, {}):
        answer = await ok_call(client, "get_admin_active_tickets", payload)
        await client.wait_for("active_chats")
        assert {open_id, progress_id} <= {t["_id"] for t in answer}
        assert resolved_id not in {t["_id"] for t in answer}


async def test_get_admin_active_tickets_with_a_bogus_status_is_refused(
    sockets: SocketFactory, agent: Person
) -> None:
    client = await shipped(sockets, agent)
    await failed_call(client, "get_admin_active_tickets", {"status": "bogus"})
    err = await client.wait_for("chat_error")
    assert_chat_error(err, "validation_error", None, "VALIDATION_ERROR")
    assert "bogus" in err["message"] and "in_progress" in err["message"], err
    await client.assert_no("active_chats", within=QUIET)
    assert client.connected


async def test_get_admin_active_tickets_pages_like_the_rest_queue(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent: Person
) -> None:
    older = (await rest_start(api, user_factory()))["ticketId"]
    newer = (await rest_start(api, user_factory()))["ticketId"]
    client = await shipped(sockets, agent)

    first = await ok_call(client, "get_admin_active_tickets", {"limit": 1, "messages": 0})
    await client.wait_for("active_chats")
    assert [t["_id"] for t in first] == [newer]
    assert first[0]["messages"] == []
    second = await ok_call(client, "get_admin_active_tickets", {"limit": 1, "page": 2})
    await client.wait_for("active_chats")
    assert [t["_id"] for t in second] == [older]
    assert [m["message"] for m in second[0]["messages"]] == ["Hello, I need help"]

    for bad in ({"limit": 0}, {"limit": 501}, {"page": 0}, {"messages": -1}):
        await failed_call(client, "get_admin_active_tickets", bad)
        err = await client.wait_for("chat_error")
        assert_chat_error(err, "validation_error", None, "VALIDATION_ERROR")
        assert next(iter(bad)) in err["message"], err
    await client.assert_no("active_chats", within=QUIET)


# --- join_chat_room / leave_chat_room ---------------------------------------------------------


async def test_agent_join_chat_room_answers_chat_room_joined_and_follows(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await rest_start(api, user))["ticketId"]
    user_socket = await shipped(sockets, user, "header")
    client = await shipped(sockets, agent, "query")

    await ok_call(client, "join_chat_room", {"ticketId": ticket_id})
    room = await client.wait_for("chat_room_joined", of_ticket(ticket_id))
    assert TICKET_NUMBER.match(room["ticketNumber"]), room
    await user_socket.wait_for("agent_joined", of_ticket(ticket_id))

    await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "ping"})
    heard = await client.wait_for("new_message", with_text(ticket_id, "ping"))
    assert heard["isAdminReply"] is False
    await ok_call(user_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True})
    typing = await client.wait_for("user_typing", of_ticket(ticket_id))
    assert typing["userName"] == user.name
    assert typing["isTyping"] is True


async def test_agent_leave_chat_room_stops_the_tickets_conversation_events(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    leaver, stayer = agent_factory(), agent_factory()
    ticket_id = (await rest_start(api, user))["ticketId"]
    user_socket = await shipped(sockets, user, "auth")
    leaver_socket = await shipped(sockets, leaver, "header")
    stayer_socket = await shipped(sockets, stayer, "query")
    await ok_call(leaver_socket, "join_chat_room", {"ticketId": ticket_id})
    await ok_call(stayer_socket, "join_chat_room", {"ticketId": ticket_id})

    ack = await ok_call(leaver_socket, "leave_chat_room", {"ticketId": ticket_id})
    assert ack["ticketId"] == ticket_id

    await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "still here?"})
    await ok_call(user_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True})
    # The agent who stayed is the barrier: the events have gone out.
    await stayer_socket.wait_for("new_message", with_text(ticket_id, "still here?"))
    await stayer_socket.wait_for("user_typing", of_ticket(ticket_id))
    # The queue-wide view still reaches every agent, the one who left included.
    await leaver_socket.wait_for("user_message", with_text(ticket_id, "still here?"))
    await leaver_socket.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    await leaver_socket.assert_no("user_typing", of_ticket(ticket_id), within=0.0)
    # A socket the agent opens later does not follow the chat either.
    later = await shipped(sockets, leaver, "auth")
    await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "hello?"})
    await stayer_socket.wait_for("new_message", with_text(ticket_id, "hello?"))
    await later.wait_for("user_message", with_text(ticket_id, "hello?"))
    await later.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    # Nor does it hear of other agents joining it.
    newcomer = agent_factory()
    await ok_call(await shipped(sockets, newcomer, "auth"), "join_ticket", {"ticketId": ticket_id})
    by_newcomer = joined_by(ticket_id, newcomer.id)
    await stayer_socket.wait_for("agent_joined", by_newcomer)
    await leaver_socket.assert_no("agent_joined", by_newcomer, within=QUIET)
    # Leaving is not handing over: the assignment stays.
    assert (await rest_ticket(api, user, ticket_id))["assignedTo"]["_id"] == leaver.id

    # Joining again follows the chat again.
    leaver_socket.consume_all("chat_room_joined")
    await ok_call(leaver_socket, "join_chat_room", {"ticketId": ticket_id})
    await leaver_socket.wait_for("chat_room_joined", of_ticket(ticket_id))
    await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "back?"})
    await leaver_socket.wait_for("new_message", with_text(ticket_id, "back?"))


async def test_user_leave_chat_room_of_own_chat_keeps_the_events_coming(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    """A user's sockets always hear their own chats; leave_chat_room only checks the
    ticket is theirs."""
    ticket_id = (await rest_start(api, user))["ticketId"]
    client = await shipped(sockets, user, "query")
    ack = await ok_call(client, "leave_chat_room", {"ticketId": ticket_id})
    assert ack["ticketId"] == ticket_id
    await rest_send(api, agent, ticket_id, "still with you")
    reply = await client.wait_for("new_message", with_text(ticket_id, "still with you"))
    assert reply["senderModel"] == "Admin"


async def test_leave_chat_room_of_an_unknown_ticket_is_not_found(
    sockets: SocketFactory, user: Person, agent: Person
) -> None:
    for person in (user, agent):
        client = await shipped(sockets, person)
        await failed_call(client, "leave_chat_room", {"ticketId": UNKNOWN_ID})
        err = await client.wait_for("chat_error")
        assert_chat_error(err, "not_found", UNKNOWN_ID, "TICKET_NOT_FOUND")


# --- active_tickets on connect ----------------------------------------------------------------


@pytest.mark.parametrize("token_in", TOKEN_PLACES)
async def test_active_tickets_is_sent_on_connect_to_a_user_with_an_active_chat(
    api: Api, sockets: SocketFactory, user: Person, token_in: str
) -> None:
    ticket_id = (await rest_start(api, user, "Anyone?"))["ticketId"]
    client = await shipped(sockets, user, token_in)
    sent = await client.wait_for("active_tickets")
    assert isinstance(sent, dict) and isinstance(sent.get("tickets"), list), sent
    assert [t["_id"] for t in sent["tickets"]] == [ticket_id]
    [ticket] = sent["tickets"]
    assert ticket["status"] == "open"
    assert ticket["userId"]["_id"] == user.id
    assert [m["message"] for m in ticket["messages"]] == ["Anyone?"]
    assert sent["tickets"] == await rest_active_of(api, user)
    await client.assert_no("active_tickets", within=QUIET)  # once per connection


async def test_active_tickets_is_not_sent_without_an_active_chat(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent: Person
) -> None:
    newcomer, former = user_factory(), user_factory()
    closed_id = (await rest_start(api, former))["ticketId"]
    await rest_close(api, agent, closed_id)
    newcomer_socket = await shipped(sockets, newcomer, "auth")
    former_socket = await shipped(sockets, former, "header")
    await newcomer_socket.assert_no("active_tickets", within=0.5)
    await former_socket.assert_no("active_tickets", within=0.0)


async def test_active_tickets_is_not_sent_to_an_agent_socket(
    api: Api, sockets: SocketFactory, agent: Person
) -> None:
    """Not even to an agent with a chat of their own: agent sockets get the queue."""
    await rest_start(api, agent, "My own chat")
    client = await shipped(sockets, agent)
    await client.assert_no("active_tickets", within=0.5)
    as_user = await shipped(sockets, agent, "auth", user_type="dtuser")
    sent = await as_user.wait_for("active_tickets")
    assert len(sent["tickets"]) == 1


# --- who may not: agent-only events from user sockets ----------------------------------------

AGENT_ONLY = ["join_ticket", "close_chat", "get_active_chats", "get_admin_active_tickets"]


@pytest.mark.parametrize("event", AGENT_ONLY)
@pytest.mark.parametrize("who", ["user", "agent-on-a-user-socket"])
async def test_agent_only_compat_events_from_a_user_socket_are_forbidden(
    api: Api,
    sockets: SocketFactory,
    user: Person,
    agent_factory: PersonFactory,
    event: str,
    who: str,
) -> None:
    """Refused with `error` {type: forbidden} and a failed ack, even for the chat's own
    user, and even for an agent whose socket is a user socket (userType=dtuser)."""
    agent = agent_factory()
    chat = await rest_start(api, user)
    ticket_id = chat["ticketId"]
    owner_socket = await shipped(sockets, user, "header")
    client = owner_socket if who == "user" else await shipped(sockets, agent, "query", "dtuser")
    payloads = {
        "join_ticket": {"ticketId": ticket_id},
        "close_chat": {"ticketId": ticket_id, "resolutionSummary": "closed by a user"},
        "get_active_chats": None,
        "get_admin_active_tickets": {"status": "open"},
    }

    ack = await failed_call(client, event, payloads[event])
    assert ack["code"] == "FORBIDDEN", ack
    err = await client.wait_for("error")
    assert err["type"] == "forbidden", err
    assert err["code"] == "FORBIDDEN", err
    assert err["event"] == event, err
    assert isinstance(err["message"], str) and err["message"], err

    for answer in ("ticket_joined", "active_chats", "chat_closed", "agent_joined"):
        await client.assert_no(answer, within=QUIET if answer == "ticket_joined" else 0.0)
        await owner_socket.assert_no(answer, of_ticket(ticket_id), within=0.0)
    await client.assert_no("chat_error", within=0.0)
    stored = await rest_ticket(api, user, ticket_id)
    assert stored["status"] == "open"
    assert stored["assignedTo"] is None
    assert stored["resolvedAt"] is None
    assert stored["resolutionSummary"] is None
    assert stored["messages"] == chat["messages"]
    assert client.connected


# --- who may not: another user's ticket --------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "with_last"),
    [
        ("get_chat_history", False),
        ("rejoin_ticket", False),
        ("rejoin_ticket", True),
        ("join_chat_room", False),
        ("join_chat_room", True),
        ("leave_chat_room", False),
    ],
    ids=[
        "get_chat_history",
        "rejoin_ticket",
        "rejoin_ticket-lastMessageId",
        "join_chat_room",
        "join_chat_room-lastMessageId",
        "leave_chat_room",
    ],
)
async def test_another_users_ticket_is_not_found_and_stays_silent(
    api: Api,
    sockets: SocketFactory,
    user_factory: PersonFactory,
    agent: Person,
    event: str,
    with_last: bool,
) -> None:
    owner, intruder = user_factory(), user_factory()
    chat = await rest_start(api, owner, "private matter")
    ticket_id = chat["ticketId"]
    await rest_send(api, owner, ticket_id, "more private detail")
    owner_socket = await shipped(sockets, owner, "auth")
    spy = await shipped(sockets, intruder, "query")

    payload = {"ticketId": ticket_id}
    if with_last:
        payload["lastMessageId"] = chat["messages"][0]["_id"]
    ack = await failed_call(spy, event, payload)
    assert ack["code"] == "TICKET_NOT_FOUND", ack
    err = await spy.wait_for("chat_error")
    assert_chat_error(err, "not_found", ticket_id, "TICKET_NOT_FOUND")
    assert err["message"] == "Chat ticket not found"
    for answer in ("chat_history", "ticket_rejoined", "chat_room_joined", "new_message"):
        await spy.assert_no(answer, within=QUIET if answer == "chat_history" else 0.0)

    # The chat goes on; the intruder hears none of it.
    agent_socket = await shipped(sockets, agent, "header")
    await ok_call(agent_socket, "join_ticket", {"ticketId": ticket_id})
    await ok_call(owner_socket, "send_message", {"ticketId": ticket_id, "message": "secret"})
    await ok_call(owner_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True})
    await ok_call(agent_socket, "send_message", {"ticketId": ticket_id, "message": "reply"})
    await ok_call(agent_socket, "admin_typing", {"ticketId": ticket_id, "isTyping": True})
    await ok_call(agent_socket, "close_chat", {"ticketId": ticket_id})
    await owner_socket.wait_for("agent_joined", of_ticket(ticket_id))
    await owner_socket.wait_for("new_message", with_text(ticket_id, "reply"))
    await owner_socket.wait_for("agent_typing", of_ticket(ticket_id))
    await owner_socket.wait_for("chat_closed", of_ticket(ticket_id))
    await spy.assert_no("chat_closed", within=QUIET)
    assert leaked(spy, ticket_id, allowed=("chat_error",)) == []
    assert not spy.events("active_tickets")
    # And the owner's chat is untouched by the attempt.
    stored = await rest_ticket(api, owner, ticket_id)
    assert [m["message"] for m in stored["messages"]] == [
        "private matter",
        "more private detail",
        "secret",
        "reply",
    ]


async def test_start_chat_naming_another_users_ticket_opens_the_senders_own_chat(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory
) -> None:
    """start_chat takes no ticket: a ticketId in its payload is ignored, and B's message
    never lands in A's chat."""
    owner, intruder = user_factory(), user_factory()
    chat = await rest_start(api, owner, "mine")
    ticket_id = chat["ticketId"]
    owner_socket = await shipped(sockets, owner, "header")
    spy = await shipped(sockets, intruder, "auth")

    await ok_call(spy, "start_chat", {"ticketId": ticket_id, "message": "let me in"})
    started = await spy.wait_for("chat_started")
    assert started["ticketId"] != ticket_id
    assert started["isExisting"] is False
    assert [m["message"] for m in started["messages"]] == ["let me in"]
    assert [m["message"] for m in (await rest_ticket(api, owner, ticket_id))["messages"]] == [
        "mine"
    ]
    resp = await api.get(f"/api/chat/{ticket_id}", token=intruder)
    assert resp.status_code == 404, resp.text
    await owner_socket.assert_no("new_message", within=QUIET)
    assert leaked(spy, ticket_id) == []
