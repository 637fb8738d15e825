"""Socket.IO events of agents (userType "admin"): join_admin_room, new_chat_ticket,
join_chat, admin_send_message, admin_typing, admin_close_chat, admin_status_update, and
the same events when the action came over REST.

API document "Admin Events"; CONTRACT.md "Real-time delivery rules".
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from support import (
    DEFAULT_SUMMARY,
    OBJECT_ID_RE,
    QUIET,
    Api,
    Person,
    PersonFactory,
    ServerInfo,
    SocketClient,
    SocketFactory,
    assert_failed_ack,
    assert_recent,
    get_ticket,
    of_ticket,
    ok_call,
    start_chat,
    with_text,
)

# --- helpers ---------------------------------------------------------------------------


def of_admin(agent_id: str) -> Any:
    return lambda d: isinstance(d, dict) and d.get("adminId") == agent_id


def statuses(client: SocketClient, agent_id: str) -> list[tuple[bool, int]]:
    return [
        (d["isOnline"], d["activeChats"])
        for d in client.events("admin_status_update")
        if isinstance(d, dict) and d.get("adminId") == agent_id
    ]


# --- join_admin_room and the agents' audience -------------------------------------------------


async def test_join_admin_room_is_accepted(sockets: SocketFactory, agent: Person) -> None:
    client = await sockets(agent)
    await ok_call(client, "join_admin_room")
    await ok_call(client, "join_admin_room", {})
    await client.assert_no("error", within=0.2)
    await client.assert_no("chat_error", within=0.0)
    assert client.connected


async def test_new_chat_ticket_reaches_every_agent_socket_without_join_admin_room(
    api: Api,
    sockets: SocketFactory,
    agent_factory: PersonFactory,
    user_factory: PersonFactory,
) -> None:
    a, b = agent_factory(), agent_factory()
    a1, a2, b1 = await sockets(a), await sockets(a), await sockets(b)
    joined = await sockets(b)
    await ok_call(joined, "join_admin_room")  # harmless, changes nothing
    customer, other_user = user_factory(), user_factory()
    other_user_socket = await sockets(other_user)

    chat = await start_chat(
        api, customer, "I was charged twice", category="payment_inquiry", priority="high"
    )
    ticket_id = chat["ticketId"]
    for client in (a1, a2, b1, joined):
        got = await client.wait_for("new_chat_ticket", of_ticket(ticket_id))
        expected = {
            "ticketId": ticket_id,
            "ticketNumber": chat["ticketNumber"],
            "userName": customer.name,
            "userEmail": customer.email,
            "message": "I was charged twice",
            "priority": "high",
            "category": "payment_inquiry",
        }
        assert {k: got.get(k) for k in expected} == expected, got
        assert_recent(got["createdAt"])
        assert client.events("new_chat_ticket").count(got) == 1  # once per socket
    await other_user_socket.assert_no("new_chat_ticket", within=QUIET)


# --- join_chat --------------------------------------------------------------------------------


async def test_join_chat_assigns_and_notifies(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    chat = await start_chat(api, user)
    ticket_id = chat["ticketId"]
    agent, observer = agent_factory(), agent_factory()
    agent_socket = await sockets(agent)
    observer_socket = await sockets(observer)
    user_socket = await sockets(user)

    ack = await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    data = ack["data"]
    assert data["ticketId"] == ticket_id
    assert data["ticketNumber"] == chat["ticketNumber"]
    assert data["assignedTo"] == agent.id
    assert data["status"] == "in_progress"
    assert data["userName"] == user.name
    assert data["userEmail"] == user.email
    assert [m["message"] for m in data["messages"]] == ["Hello, I need help"]

    joined = await user_socket.wait_for("agent_joined", of_ticket(ticket_id))
    assert joined["agentName"] == agent.name
    assert joined["agentId"] == agent.id
    assert_recent(joined["joinedAt"])

    for client in (observer_socket, agent_socket):
        assigned = await client.wait_for("chat_assigned", of_ticket(ticket_id))
        assert assigned["assignedTo"] == agent.id
        assert_recent(assigned["assignedAt"])

    ticket = await get_ticket(api, user, ticket_id)
    assert ticket["status"] == "in_progress"
    assert ticket["assignedTo"]["fullName"] == agent.name
    assert ticket["assignedTo"]["email"] == agent.email


async def test_second_agent_join_keeps_the_assignment(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    first, second, observer = agent_factory(), agent_factory(), agent_factory()
    first_socket = await sockets(first)
    second_socket = await sockets(second)
    observer_socket = await sockets(observer)
    user_socket = await sockets(user)

    await ok_call(first_socket, "join_chat", {"ticketId": ticket_id})
    await observer_socket.wait_for("chat_assigned", of_ticket(ticket_id))
    ack = await ok_call(second_socket, "join_chat", {"ticketId": ticket_id})
    assert ack["data"]["assignedTo"] == first.id  # the real assignee

    # The user hears of both agents; the first agent (a follower) hears of the second.
    await user_socket.wait_for(
        "agent_joined", lambda d: d.get("ticketId") == ticket_id and d["agentId"] == first.id
    )
    await user_socket.wait_for(
        "agent_joined", lambda d: d.get("ticketId") == ticket_id and d["agentId"] == second.id
    )
    await first_socket.wait_for(
        "agent_joined", lambda d: d.get("ticketId") == ticket_id and d["agentId"] == second.id
    )
    await observer_socket.assert_no("chat_assigned", of_ticket(ticket_id), within=QUIET)
    assert (
        len([d for d in observer_socket.events("chat_assigned") if d["ticketId"] == ticket_id]) == 1
    )
    assert (await get_ticket(api, user, ticket_id))["assignedTo"]["email"] == first.email


async def test_repeated_join_by_the_same_agent_announces_once(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent_socket = await sockets(agent)
    user_socket = await sockets(user)
    # The document's dashboard joins over REST and then again over the socket.
    resp = await api.post(f"/api/chat/admin/join/{ticket_id}", token=agent)
    assert resp.status_code == 200, resp.text
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    await ok_call(agent_socket, "admin_send_message", {"ticketId": ticket_id, "message": "hi"})
    await user_socket.wait_for("new_message", with_text(ticket_id, "hi"))  # barrier
    await user_socket.wait_for("agent_joined", of_ticket(ticket_id))
    await user_socket.assert_no("agent_joined", within=QUIET)  # let stragglers arrive
    joined = [d for d in user_socket.events("agent_joined") if d["ticketId"] == ticket_id]
    assert len(joined) == 1, joined
    assigned = [d for d in agent_socket.events("chat_assigned") if d["ticketId"] == ticket_id]
    assert len(assigned) == 1, assigned


async def test_a_join_that_changes_nothing_needs_no_write(
    server: ServerInfo, api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    """Re-joins (every chat after every reconnect) are answered from a read: with the
    SQLite database's write lock held by someone else, a re-join still gets its chat and
    the messages after lastMessageId, where a writing join would wait for the lock and
    fail after the busy timeout. The first join does write (it takes the chat)."""
    if server.database != "sqlite":
        pytest.skip("holds SQLite's database-wide write lock")
    started = await start_chat(api, user)
    ticket_id = started["ticketId"]
    agent_socket = await sockets(agent)
    first = await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    assert first["data"]["assignedTo"] == agent.id, first
    await ok_call(agent_socket, "admin_send_message", {"ticketId": ticket_id, "message": "one"})
    last_seen = first["data"]["messages"][-1]["_id"]

    locker = sqlite3.connect(server.data_dir / "supportchat.db", isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        again = await ok_call(
            agent_socket, "join_chat", {"ticketId": ticket_id, "lastMessageId": last_seen}
        )
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert again["data"]["ticketId"] == ticket_id
    assert again["data"]["assignedTo"] == agent.id
    replayed = await agent_socket.wait_for("new_message", with_text(ticket_id, "one"))
    assert replayed["ticketId"] == ticket_id


async def test_join_chat_on_a_closed_chat_is_refused(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    closer, late = agent_factory(), agent_factory()
    resp = await api.post(f"/api/chat/admin/close/{ticket_id}", token=closer, json={})
    assert resp.status_code == 200, resp.text
    late_socket = await sockets(late)
    ack = await late_socket.call("join_chat", {"ticketId": ticket_id})
    assert_failed_ack(ack)
    err = await late_socket.wait_for("chat_error", of_ticket(ticket_id))
    assert err["type"] == "chat_closed"
    assert (await get_ticket(api, user, ticket_id))["assignedTo"] is None


async def test_rest_join_makes_every_socket_of_the_agent_a_follower(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    resp = await api.post(f"/api/chat/admin/join/{ticket_id}", token=agent)
    assert resp.status_code == 200, resp.text
    later = await sockets(agent)  # opened after the join
    user_socket = await sockets(user)
    await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "ping"})
    await ok_call(user_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True})
    got = await later.wait_for("new_message", with_text(ticket_id, "ping"))
    assert got["isAdminReply"] is False
    typing = await later.wait_for("user_typing", of_ticket(ticket_id))
    assert typing["userName"] == user.name


# --- admin_send_message / agent send_message --------------------------------------------------


async def test_admin_send_message(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent, bystander = agent_factory(), agent_factory()
    sender = await sockets(agent)
    agent_other = await sockets(agent)
    bystander_socket = await sockets(bystander)
    user_socket = await sockets(user)
    await ok_call(sender, "join_chat", {"ticketId": ticket_id})

    ack = await ok_call(
        sender, "admin_send_message", {"ticketId": ticket_id, "message": "Let me check"}
    )
    sent = await sender.wait_for("message_sent", of_ticket(ticket_id))
    assert sent["status"] == "sent"
    assert sent["seq"] == 2
    assert OBJECT_ID_RE.match(sent["messageId"])
    assert ack["data"]["messageId"] == sent["messageId"]
    assert ack["data"]["timestamp"] == sent["timestamp"]

    expected = {
        "messageId": sent["messageId"],
        "_id": sent["messageId"],
        "ticketId": ticket_id,
        "sender": agent.id,
        "senderName": agent.name,
        "senderModel": "Admin",
        "message": "Let me check",
        "isAdminReply": True,
        "timestamp": sent["timestamp"],
        "attachments": [],
        "seq": 2,
    }
    for client in (user_socket, agent_other):
        got = await client.wait_for("new_message", of_ticket(ticket_id))
        assert {k: got.get(k) for k in expected} == expected, got
    await sender.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    await bystander_socket.assert_no("new_message", of_ticket(ticket_id), within=0.0)
    # An agent's reply is not a user message.
    await bystander_socket.assert_no("user_message", of_ticket(ticket_id), within=0.0)
    assert user_socket.events("message_sent") == []

    stored = (await get_ticket(api, user, ticket_id))["messages"][-1]
    assert stored["_id"] == sent["messageId"]
    assert stored["senderModel"] == "Admin"
    assert stored["isAdminReply"] is True


async def test_first_reply_without_join_assigns_the_chat(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent, observer = agent_factory(), agent_factory()
    agent_socket = await sockets(agent)
    observer_socket = await sockets(observer)
    user_socket = await sockets(user)
    await ok_call(agent_socket, "admin_send_message", {"ticketId": ticket_id, "message": "Hi!"})
    assigned = await observer_socket.wait_for("chat_assigned", of_ticket(ticket_id))
    assert assigned["assignedTo"] == agent.id
    await user_socket.wait_for("new_message", with_text(ticket_id, "Hi!"))
    ticket = await get_ticket(api, user, ticket_id)
    assert ticket["status"] == "in_progress"
    assert ticket["assignedTo"]["email"] == agent.email


async def test_send_message_from_an_agent_socket_is_an_agent_reply(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent, bystander = agent_factory(), agent_factory()
    agent_socket = await sockets(agent)
    bystander_socket = await sockets(bystander)
    user_socket = await sockets(user)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    ack = await ok_call(
        agent_socket, "send_message", {"ticketId": ticket_id, "message": "agent via send"}
    )
    sent = await agent_socket.wait_for("message_sent", of_ticket(ticket_id))
    assert ack["data"]["messageId"] == sent["messageId"]
    got = await user_socket.wait_for("new_message", with_text(ticket_id, "agent via send"))
    assert got["isAdminReply"] is True
    assert got["senderModel"] == "Admin"
    assert got["sender"] == agent.id
    await agent_socket.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    await bystander_socket.assert_no("user_message", of_ticket(ticket_id), within=0.0)
    stored = (await get_ticket(api, user, ticket_id))["messages"][-1]
    assert stored["isAdminReply"] is True


# --- admin_typing -----------------------------------------------------------------------------


async def test_admin_typing_reaches_the_user(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent: Person
) -> None:
    user, other = user_factory(), user_factory()
    ticket_id = (await start_chat(api, user))["ticketId"]
    await start_chat(api, other)
    agent_socket = await sockets(agent)
    user_socket = await sockets(user)
    other_socket = await sockets(other)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    for state in (True, False):
        ack = await ok_call(
            agent_socket, "admin_typing", {"ticketId": ticket_id, "isTyping": state}
        )
        assert ack["data"]["isTyping"] is state
        got = await user_socket.wait_for("agent_typing", of_ticket(ticket_id))
        assert got["agentName"] == agent.name
        assert got["isTyping"] is state
    await other_socket.assert_no("agent_typing", within=QUIET)
    await agent_socket.assert_no("agent_typing", within=0.0)
    assert len((await get_ticket(api, user, ticket_id))["messages"]) == 1  # not stored


# --- admin_close_chat -------------------------------------------------------------------------


async def test_admin_close_chat_notifies_user_and_all_agents_then_refuses_sends(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    chat = await start_chat(api, user)
    ticket_id = chat["ticketId"]
    agent, bystander = agent_factory(), agent_factory()
    agent_socket = await sockets(agent)
    bystander_socket = await sockets(bystander)
    user_socket = await sockets(user)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})

    ack = await ok_call(
        agent_socket,
        "admin_close_chat",
        {"ticketId": ticket_id, "resolutionSummary": "Account issue resolved"},
    )
    assert ack["data"]["ticketId"] == ticket_id
    assert ack["data"]["resolutionSummary"] == "Account issue resolved"
    for client in (user_socket, agent_socket, bystander_socket):
        closed = await client.wait_for("chat_closed", of_ticket(ticket_id))
        assert closed["ticketNumber"] == chat["ticketNumber"]
        assert closed["closedBy"] == agent.name
        assert closed["resolutionSummary"] == "Account issue resolved"
        assert_recent(closed["closedAt"])

    ticket = await get_ticket(api, user, ticket_id)
    assert ticket["status"] == "resolved"
    assert ticket["resolutionSummary"] == "Account issue resolved"

    ack = await user_socket.call("send_message", {"ticketId": ticket_id, "message": "wait!"})
    assert_failed_ack(ack)
    err = await user_socket.wait_for("chat_error", of_ticket(ticket_id))
    assert err["type"] == "chat_closed"
    assert isinstance(err["message"], str) and err["message"]
    ack = await agent_socket.call("admin_send_message", {"ticketId": ticket_id, "message": "x"})
    assert_failed_ack(ack)
    err = await agent_socket.wait_for("chat_error", of_ticket(ticket_id))
    assert err["type"] == "chat_closed"
    await agent_socket.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    assert len((await get_ticket(api, user, ticket_id))["messages"]) == 1


async def test_admin_close_chat_default_summary_and_closing_twice(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent_socket = await sockets(agent)
    user_socket = await sockets(user)
    await ok_call(agent_socket, "admin_close_chat", {"ticketId": ticket_id})
    closed = await user_socket.wait_for("chat_closed", of_ticket(ticket_id))
    assert closed["resolutionSummary"] == DEFAULT_SUMMARY
    first_closed_at = closed["closedAt"]

    ack = await ok_call(
        agent_socket, "admin_close_chat", {"ticketId": ticket_id, "resolutionSummary": "again"}
    )
    assert ack["data"]["resolutionSummary"] == DEFAULT_SUMMARY  # the existing resolution
    await user_socket.assert_no("chat_closed", of_ticket(ticket_id), within=QUIET)
    await agent_socket.wait_for("chat_closed", of_ticket(ticket_id))  # the first one
    await agent_socket.assert_no("chat_closed", of_ticket(ticket_id), within=0.0)
    ticket = await get_ticket(api, user, ticket_id)
    assert ticket["resolutionSummary"] == DEFAULT_SUMMARY
    assert ticket["resolvedAt"] == first_closed_at


# --- admin_status_update ----------------------------------------------------------------------


async def test_admin_status_update_on_presence_and_assignment_changes(
    api: Api,
    sockets: SocketFactory,
    user: Person,
    agent_factory: PersonFactory,
) -> None:
    subject, observer = agent_factory(), agent_factory()
    watch = await sockets(observer)
    ticket_id = (await start_chat(api, user))["ticketId"]

    first = await sockets(subject)
    got = await watch.wait_for("admin_status_update", of_admin(subject.id))
    assert got == {
        "adminId": subject.id,
        "adminName": subject.name,
        "isOnline": True,
        "activeChats": 0,
    }

    second = await sockets(subject)  # not the first socket: no update
    await watch.assert_no("admin_status_update", of_admin(subject.id), within=QUIET)

    await ok_call(second, "join_chat", {"ticketId": ticket_id})
    got = await watch.wait_for("admin_status_update", of_admin(subject.id))
    assert (got["isOnline"], got["activeChats"]) == (True, 1)

    await ok_call(second, "admin_close_chat", {"ticketId": ticket_id})
    got = await watch.wait_for("admin_status_update", of_admin(subject.id))
    assert (got["isOnline"], got["activeChats"]) == (True, 0)

    await second.disconnect()  # one of two: still online, no update
    await watch.assert_no("admin_status_update", of_admin(subject.id), within=QUIET)

    await first.disconnect()  # the last one
    got = await watch.wait_for("admin_status_update", of_admin(subject.id))
    assert (got["isOnline"], got["activeChats"]) == (False, 0)
    assert statuses(watch, subject.id) == [(True, 0), (True, 1), (True, 0), (False, 0)]


async def test_a_connecting_agent_is_told_who_is_online(
    api: Api,
    sockets: SocketFactory,
    user: Person,
    agent_factory: PersonFactory,
) -> None:
    """The updates sent before a socket connected never reached it: it gets one per
    agent online, with their load, and none for agents who have left."""
    busy, idle, gone, newcomer = (agent_factory() for _ in range(4))
    busy_socket = await sockets(busy)
    await sockets(idle)
    ticket_id = (await start_chat(api, user))["ticketId"]
    await ok_call(busy_socket, "join_chat", {"ticketId": ticket_id})
    await (await sockets(gone)).disconnect()
    await busy_socket.wait_for(
        "admin_status_update", lambda d: of_admin(gone.id)(d) and not d["isOnline"]
    )

    late = await sockets(newcomer)
    for agent, load in ((busy, 1), (idle, 0), (newcomer, 0)):
        got = await late.wait_for("admin_status_update", of_admin(agent.id))
        assert got == {
            "adminId": agent.id,
            "adminName": agent.name,
            "isOnline": True,
            "activeChats": load,
        }

    def listed(d: Any) -> bool:
        return bool(of_admin(gone.id)(d) and d["isOnline"])

    await late.assert_no("admin_status_update", listed, within=QUIET)
    # Users are not told about agents.
    user_socket = await sockets(user)
    await user_socket.assert_no("admin_status_update", within=QUIET)


async def test_admin_status_update_when_an_agent_token_expires(
    sockets: SocketFactory, agent_factory: PersonFactory
) -> None:
    subject, observer = agent_factory(expires_in=2), agent_factory()
    watch = await sockets(observer)
    client = await sockets(subject)
    got = await watch.wait_for("admin_status_update", of_admin(subject.id))
    assert got["isOnline"] is True
    await client.wait_for("disconnect", timeout=6.0)
    got = await watch.wait_for("admin_status_update", of_admin(subject.id), timeout=3.0)
    assert got["isOnline"] is False


# --- REST actions emit the same socket events -------------------------------------------------


async def test_rest_join_emits_agent_joined_and_chat_assigned(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent, observer = agent_factory(), agent_factory()
    observer_socket = await sockets(observer)
    user_socket = await sockets(user)
    resp = await api.post(f"/api/chat/admin/join/{ticket_id}", token=agent)
    assert resp.status_code == 200, resp.text
    joined = await user_socket.wait_for("agent_joined", of_ticket(ticket_id))
    assert joined["agentId"] == agent.id
    assert joined["agentName"] == agent.name
    assigned = await observer_socket.wait_for("chat_assigned", of_ticket(ticket_id))
    assert assigned["assignedTo"] == agent.id
    status = await observer_socket.wait_for("admin_status_update", of_admin(agent.id))
    assert status["activeChats"] == 1


async def test_rest_agent_message_emits_new_message(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent_socket = await sockets(agent)
    user_socket = await sockets(user)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    resp = await api.post(
        f"/api/chat/{ticket_id}/message", token=agent, json={"message": "from REST"}
    )
    assert resp.status_code == 200, resp.text
    sent = resp.json()["data"]
    for client in (user_socket, agent_socket):  # a REST send excludes no socket
        got = await client.wait_for("new_message", with_text(ticket_id, "from REST"))
        assert got["messageId"] == sent["messageId"]
        assert got["isAdminReply"] is True
        assert got["senderModel"] == "Admin"
    assert agent_socket.events("message_sent") == []


async def test_rest_close_emits_chat_closed(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    chat = await start_chat(api, user)
    ticket_id = chat["ticketId"]
    agent, bystander = agent_factory(), agent_factory()
    bystander_socket = await sockets(bystander)
    user_socket = await sockets(user)
    resp = await api.post(f"/api/chat/admin/join/{ticket_id}", token=agent)
    assert resp.status_code == 200, resp.text
    resp = await api.post(
        f"/api/chat/admin/close/{ticket_id}", token=agent, json={"resolutionSummary": "Done"}
    )
    assert resp.status_code == 200, resp.text
    for client in (user_socket, bystander_socket):
        closed = await client.wait_for("chat_closed", of_ticket(ticket_id))
        assert closed["ticketNumber"] == chat["ticketNumber"]
        assert closed["closedBy"] == agent.name
        assert closed["resolutionSummary"] == "Done"
        assert closed["closedAt"] == resp.json()["data"]["resolvedAt"]
    status = await bystander_socket.wait_for(
        "admin_status_update", lambda d: of_admin(agent.id)(d) and d["activeChats"] == 0
    )
    assert status["adminId"] == agent.id
