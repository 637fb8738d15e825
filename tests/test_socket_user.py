"""Socket.IO events of a user (customer): join_chat_room, send_message, user_typing, and
what a user's sockets receive about their own tickets.

API document "User Events"; CONTRACT.md "Real-time delivery rules".
"""

from __future__ import annotations

import pytest

from support import (
    OBJECT_ID_RE,
    QUIET,
    Api,
    Person,
    PersonFactory,
    SocketClient,
    SocketFactory,
    assert_chat_error,
    assert_failed_ack,
    assert_recent,
    get_ticket,
    of_ticket,
    ok_call,
    start_chat,
    with_text,
)

# --- helpers ---------------------------------------------------------------------------


async def join_as_agent(client: SocketClient, ticket_id: str) -> None:
    await ok_call(client, "join_chat", {"ticketId": ticket_id})


async def follower_and_bystander(
    sockets: SocketFactory, agent_factory: PersonFactory, ticket_id: str
) -> tuple[SocketClient, SocketClient]:
    """Sockets of two new agents: one that joined the ticket, and one that did not."""
    follower, bystander = agent_factory(), agent_factory()
    follower_socket = await sockets(follower)
    bystander_socket = await sockets(bystander)
    await join_as_agent(follower_socket, ticket_id)
    return follower_socket, bystander_socket


# --- join_chat_room ----------------------------------------------------------------------


async def test_join_chat_room_own_ticket_succeeds(
    api: Api, sockets: SocketFactory, user: Person
) -> None:
    chat = await start_chat(api, user)
    client = await sockets(user)
    ack = await client.call("join_chat_room", {"ticketId": chat["ticketId"]})
    assert ack["success"] is True, ack
    assert ack["data"]["ticketId"] == chat["ticketId"]
    await client.assert_no("chat_error", within=0.2)
    await client.assert_no("error", within=0.0)


async def test_join_chat_room_of_someone_elses_ticket_is_refused_and_subscribes_nothing(
    api: Api,
    sockets: SocketFactory,
    user_factory: PersonFactory,
    agent: Person,
) -> None:
    owner, intruder = user_factory(), user_factory()
    ticket_id = (await start_chat(api, owner))["ticketId"]
    owner_socket = await sockets(owner)
    owner_other = await sockets(owner)
    agent_socket = await sockets(agent)
    spy = await sockets(intruder)

    ack = await spy.call("join_chat_room", {"ticketId": ticket_id})
    assert_failed_ack(ack)
    err = await spy.wait_for("chat_error")
    assert_chat_error(err, ticket_id)

    # The owner and an agent now talk on that ticket; the intruder must hear none of it.
    await join_as_agent(agent_socket, ticket_id)
    ack = await owner_socket.call("send_message", {"ticketId": ticket_id, "message": "secret"})
    assert ack["success"] is True, ack
    await owner_socket.call("user_typing", {"ticketId": ticket_id, "isTyping": True})
    ack = await agent_socket.call(
        "admin_send_message", {"ticketId": ticket_id, "message": "secret reply"}
    )
    assert ack["success"] is True, ack
    await agent_socket.call("admin_typing", {"ticketId": ticket_id, "isTyping": True})
    await owner_other.wait_for("new_message", lambda d: d.get("message") == "secret")
    await owner_other.wait_for("new_message", lambda d: d.get("message") == "secret reply")
    await owner_other.wait_for("agent_typing", of_ticket(ticket_id))
    await spy.assert_no("new_message", within=QUIET)
    leaked = [r for r in spy.received if r.event not in ("connect", "chat_error")]
    assert leaked == [], leaked


async def test_join_chat_room_foreign_and_unknown_ticket_look_the_same(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory
) -> None:
    """A user never learns that another user's ticket exists."""
    owner, other = user_factory(), user_factory()
    foreign = (await start_chat(api, owner))["ticketId"]
    unknown = "0123456789abcdef01234567"
    client = await sockets(other)
    ack_foreign = await client.call("join_chat_room", {"ticketId": foreign})
    err_foreign = await client.wait_for("chat_error", of_ticket(foreign))
    ack_unknown = await client.call("join_chat_room", {"ticketId": unknown})
    err_unknown = await client.wait_for("chat_error", of_ticket(unknown))
    assert_failed_ack(ack_foreign)
    assert_failed_ack(ack_unknown)
    assert ack_foreign["message"] == ack_unknown["message"]
    assert err_foreign["type"] == err_unknown["type"]
    assert err_foreign["message"] == err_unknown["message"]


@pytest.mark.parametrize("bad_id", ["not-an-id", "674d8f9e1234567890abcdeZ", "1234", "x" * 300])
async def test_join_chat_room_malformed_id_is_refused(
    sockets: SocketFactory, user: Person, bad_id: str
) -> None:
    client = await sockets(user)
    ack = await client.call("join_chat_room", {"ticketId": bad_id})
    assert_failed_ack(ack)
    err = await client.wait_for("chat_error")
    assert_chat_error(err, None)
    assert client.connected


# --- send_message -------------------------------------------------------------------------


async def test_send_message_full_fan_out(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    """Sender: message_sent + ack, no new_message. The user's other socket: new_message.
    Every agent: user_message. An agent who joined: new_message with every field."""
    chat = await start_chat(api, user)
    ticket_id = chat["ticketId"]
    follower_socket, bystander_socket = await follower_and_bystander(
        sockets, agent_factory, ticket_id
    )
    sender = await sockets(user)
    other = await sockets(user)

    ack = await sender.call("send_message", {"ticketId": ticket_id, "message": "Need a refund"})
    assert ack["success"] is True, ack
    sent = await sender.wait_for("message_sent", of_ticket(ticket_id))
    assert sent["status"] == "sent"
    assert OBJECT_ID_RE.match(sent["messageId"]), sent
    assert sent["ticketId"] == ticket_id
    assert sent["seq"] == 2  # the opening message is 1
    assert_recent(sent["timestamp"])
    assert ack["data"]["messageId"] == sent["messageId"]
    assert ack["data"]["timestamp"] == sent["timestamp"]

    on_other = await other.wait_for("new_message", of_ticket(ticket_id))
    expected = {
        "messageId": sent["messageId"],
        "_id": sent["messageId"],
        "ticketId": ticket_id,
        "sender": user.id,
        "senderName": user.name,
        "senderModel": "DTUser",
        "message": "Need a refund",
        "isAdminReply": False,
        "timestamp": sent["timestamp"],
        "attachments": [],
        "seq": 2,
    }
    assert {k: on_other.get(k) for k in expected} == expected, on_other

    on_follower = await follower_socket.wait_for("new_message", of_ticket(ticket_id))
    assert {k: on_follower.get(k) for k in expected} == expected, on_follower

    for agent_socket in (follower_socket, bystander_socket):
        note = await agent_socket.wait_for("user_message", lambda d: d.get("ticketId") == ticket_id)
        assert note["ticketNumber"] == chat["ticketNumber"]
        assert note["userName"] == user.name
        assert note["userEmail"] == user.email
        assert note["message"] == "Need a refund"
        assert note["timestamp"] == sent["timestamp"]

    await sender.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    await bystander_socket.assert_no("new_message", of_ticket(ticket_id), within=0.0)
    assert len(other.events("message_sent")) == 0

    stored = (await get_ticket(api, user, ticket_id))["messages"]
    assert [m["message"] for m in stored] == ["Hello, I need help", "Need a refund"]
    assert stored[1]["_id"] == sent["messageId"]
    assert stored[1]["timestamp"] == sent["timestamp"]
    assert stored[1]["seq"] == 2


async def test_send_message_with_attachments_delivers_them(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent_socket = await sockets(agent)
    await join_as_agent(agent_socket, ticket_id)
    client = await sockets(user)
    files = [
        {"fileName": "a.png", "fileUrl": "https://files.example.com/a.png", "fileType": "image/png"}
    ]
    ack = await client.call(
        "send_message", {"ticketId": ticket_id, "message": "see file", "attachments": files}
    )
    assert ack["success"] is True, ack
    got = await agent_socket.wait_for("new_message", of_ticket(ticket_id))
    assert got["attachments"] == files
    stored = (await get_ticket(api, user, ticket_id))["messages"][-1]
    assert stored["attachments"] == files


async def test_sequence_numbers_follow_the_conversation(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    client = await sockets(user)
    agent_socket = await sockets(agent)
    seqs = []
    for i in range(3):
        ack = await client.call("send_message", {"ticketId": ticket_id, "message": f"m{i}"})
        assert ack["success"] is True, ack
        seqs.append((await client.wait_for("message_sent", of_ticket(ticket_id)))["seq"])
    ack = await agent_socket.call("admin_send_message", {"ticketId": ticket_id, "message": "a"})
    assert ack["success"] is True, ack
    reply = await client.wait_for("new_message", of_ticket(ticket_id))
    assert seqs == [2, 3, 4]
    assert reply["seq"] == 5


async def test_spoofed_fields_of_the_shipped_client_are_ignored(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    """The shipped web client sends senderModel "Admin", isAdminReply true, its own
    timestamp and sender: the server decides who sent what, and when."""
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent_socket = await sockets(agent)
    await join_as_agent(agent_socket, ticket_id)
    client = await sockets(user)
    ack = await client.call(
        "send_message",
        {
            "ticketId": ticket_id,
            "message": "spoof attempt",
            "senderModel": "Admin",
            "isAdminReply": True,
            "timestamp": "2020-01-01T00:00:00.000Z",
            "sender": agent.id,
            "senderName": "Support Team",
            "status": "resolved",
        },
    )
    assert ack["success"] is True, ack
    assert_recent(ack["data"]["timestamp"])
    got = await agent_socket.wait_for("new_message", of_ticket(ticket_id))
    assert got["senderModel"] == "DTUser"
    assert got["isAdminReply"] is False
    assert got["sender"] == user.id
    assert got["senderName"] == user.name
    assert_recent(got["timestamp"])
    # Treated as the user's message: agents are told with user_message.
    await agent_socket.wait_for("user_message", of_ticket(ticket_id))

    ticket = await get_ticket(api, user, ticket_id)
    stored = ticket["messages"][-1]
    assert stored["message"] == "spoof attempt"
    assert stored["senderModel"] == "DTUser"
    assert stored["isAdminReply"] is False
    assert stored["sender"] == user.id
    assert stored["timestamp"] == got["timestamp"]
    assert ticket["status"] == "in_progress"  # not "resolved": status is not the client's


# --- a user's sockets hear about their tickets without joining ---------------------------------


async def test_every_user_socket_receives_events_without_join_chat_room(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    before = await sockets(user)  # connected before the ticket exists
    ticket_id = (await start_chat(api, user))["ticketId"]
    after = await sockets(user)  # connected after; neither emits join_chat_room
    agent_socket = await sockets(agent)

    ack = await agent_socket.call("join_chat", {"ticketId": ticket_id})
    assert ack["success"] is True, ack
    ack = await agent_socket.call("admin_typing", {"ticketId": ticket_id, "isTyping": True})
    assert ack["success"] is True, ack
    ack = await agent_socket.call(
        "admin_send_message", {"ticketId": ticket_id, "message": "How can I help?"}
    )
    assert ack["success"] is True, ack
    resp = await api.post(f"/api/chat/{ticket_id}/message", token=user, json={"message": "rest"})
    assert resp.status_code == 200, resp.text
    resp = await api.post(f"/api/chat/admin/close/{ticket_id}", token=agent, json={})
    assert resp.status_code == 200, resp.text

    for client in (before, after):
        joined = await client.wait_for("agent_joined", of_ticket(ticket_id))
        assert joined["agentId"] == agent.id
        typing = await client.wait_for("agent_typing", of_ticket(ticket_id))
        assert typing["isTyping"] is True
        reply = await client.wait_for("new_message", with_text(ticket_id, "How can I help?"))
        assert reply["isAdminReply"] is True
        # A REST send excludes no socket.
        await client.wait_for("new_message", with_text(ticket_id, "rest"))
        await client.wait_for("chat_closed", of_ticket(ticket_id))
    assert not any(r.event == "join_chat_room" for r in before.received)


async def test_reconnected_socket_receives_events_without_join_chat_room(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    first = await sockets(user)
    ack = await first.call("join_chat_room", {"ticketId": ticket_id})
    assert ack["success"] is True, ack
    await first.disconnect()
    again = await sockets(user)
    resp = await api.post(
        f"/api/chat/{ticket_id}/message", token=agent, json={"message": "still there?"}
    )
    assert resp.status_code == 200, resp.text
    got = await again.wait_for("new_message", of_ticket(ticket_id))
    assert got["message"] == "still there?"


async def test_rest_message_by_user_emits_socket_events(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    chat = await start_chat(api, user)
    ticket_id = chat["ticketId"]
    follower_socket, bystander_socket = await follower_and_bystander(
        sockets, agent_factory, ticket_id
    )
    user_socket = await sockets(user)

    resp = await api.post(
        f"/api/chat/{ticket_id}/message", token=user, json={"message": "via REST"}
    )
    assert resp.status_code == 200, resp.text
    sent = resp.json()["data"]
    for client in (user_socket, follower_socket):
        got = await client.wait_for("new_message", of_ticket(ticket_id))
        assert got["messageId"] == sent["messageId"]
        assert got["message"] == "via REST"
        assert got["senderModel"] == "DTUser"
        assert got["seq"] == 2
    note = await bystander_socket.wait_for("user_message", of_ticket(ticket_id))
    assert note["message"] == "via REST"
    assert note["ticketNumber"] == chat["ticketNumber"]
    await bystander_socket.assert_no("new_message", of_ticket(ticket_id), within=QUIET)


async def test_second_start_while_active_appends_and_notifies(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent_socket = await sockets(agent)
    user_socket = await sockets(user)
    resp = await api.post("/api/chat/start", token=user, json={"message": "me again"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["isExisting"] is True
    assert resp.json()["data"]["ticketId"] == ticket_id
    note = await agent_socket.wait_for("user_message", of_ticket(ticket_id))
    assert note["message"] == "me again"
    got = await user_socket.wait_for("new_message", of_ticket(ticket_id))
    assert got["message"] == "me again"
    await agent_socket.assert_no("new_chat_ticket", of_ticket(ticket_id), within=QUIET)


# --- user_typing -------------------------------------------------------------------------------


async def test_user_typing_reaches_only_agents_who_joined(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    follower_socket, bystander_socket = await follower_and_bystander(
        sockets, agent_factory, ticket_id
    )
    typist = await sockets(user)
    other = await sockets(user)

    for state in (True, False):
        ack = await typist.call("user_typing", {"ticketId": ticket_id, "isTyping": state})
        assert ack["success"] is True, ack
        got = await follower_socket.wait_for("user_typing", of_ticket(ticket_id))
        assert got["userName"] == user.name
        assert got["isTyping"] is state

    await bystander_socket.assert_no("user_typing", of_ticket(ticket_id), within=QUIET)
    await other.assert_no("user_typing", within=0.0)
    await typist.assert_no("user_typing", within=0.0)
    # Typing is relayed, never stored.
    assert len((await get_ticket(api, user, ticket_id))["messages"]) == 1


async def test_opening_message_reaches_the_users_other_sockets(
    api: Api, sockets: SocketFactory, user: Person
) -> None:
    """POST /api/chat/start stores a message like any other send: a socket the user already
    has open hears of it (a REST send excludes no socket)."""
    already_open = await sockets(user)
    chat = await start_chat(api, user, "first words")
    got = await already_open.wait_for("new_message", of_ticket(chat["ticketId"]))
    assert got["message"] == "first words"
    assert got["messageId"] == chat["messages"][0]["_id"]
    assert got["seq"] == 1
    assert got["isAdminReply"] is False


async def test_ack_means_the_message_is_stored(
    api: Api, sockets: SocketFactory, user: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    client = await sockets(user)
    for i in range(3):
        ack = await client.call("send_message", {"ticketId": ticket_id, "message": f"n{i}"})
        assert ack["success"] is True, ack
        # Read back at once, no waiting: the ack is only sent after the commit.
        stored = (await get_ticket(api, user, ticket_id))["messages"]
        assert stored[-1]["_id"] == ack["data"]["messageId"]
        assert stored[-1]["message"] == f"n{i}"
