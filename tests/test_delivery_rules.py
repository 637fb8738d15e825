"""Who receives what, and who must not: isolation between users, between following and
non-following agents, and agent-only events refused on user sockets.

CONTRACT.md "Real-time delivery rules".
"""

from __future__ import annotations

from typing import Any

import pytest

from support import (
    QUIET,
    Api,
    Person,
    PersonFactory,
    SocketClient,
    SocketFactory,
    assert_failed_ack,
    get_ticket,
    of_ticket,
    ok_call,
    start_chat,
    with_text,
)

# Every event that carries a ticket's conversation or state.
TICKET_EVENTS = (
    "new_message",
    "message_sent",
    "agent_joined",
    "agent_typing",
    "user_typing",
    "chat_closed",
    "chat_assigned",
    "user_message",
    "new_chat_ticket",
    "chat_error",
)


# --- helpers ---------------------------------------------------------------------------


def mentions(client: SocketClient, ticket_id: str) -> list[tuple[str, Any]]:
    """Every event this socket received that names the ticket anywhere in its payload."""
    return [(r.event, r.data) for r in client.received if ticket_id in repr(r.data)]


# --- user isolation -------------------------------------------------------------------------


async def test_other_user_receives_nothing_of_a_conversation(
    api: Api,
    sockets: SocketFactory,
    user_factory: PersonFactory,
    agent: Person,
) -> None:
    alice, bob = user_factory(), user_factory()
    bob_ticket = (await start_chat(api, bob, "bob's own chat"))["ticketId"]
    bob_socket = await sockets(bob)  # connected throughout
    alice_socket = await sockets(alice)
    alice_other = await sockets(alice)
    agent_socket = await sockets(agent)

    ticket_id = (await start_chat(api, alice))["ticketId"]
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    await ok_call(alice_socket, "send_message", {"ticketId": ticket_id, "message": "a1"})
    await ok_call(alice_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True})
    resp = await api.post(f"/api/chat/{ticket_id}/message", token=alice, json={"message": "a2"})
    assert resp.status_code == 200, resp.text
    await ok_call(agent_socket, "admin_typing", {"ticketId": ticket_id, "isTyping": True})
    await ok_call(agent_socket, "admin_send_message", {"ticketId": ticket_id, "message": "r1"})
    resp = await api.post(f"/api/chat/{ticket_id}/message", token=agent, json={"message": "r2"})
    assert resp.status_code == 200, resp.text
    await ok_call(agent_socket, "admin_close_chat", {"ticketId": ticket_id})

    # Barrier: Alice's other socket has heard the whole conversation, up to the close.
    for text in ("a1", "a2", "r1", "r2"):
        await alice_other.wait_for("new_message", with_text(ticket_id, text))
    await alice_other.wait_for("agent_joined", of_ticket(ticket_id))
    await alice_other.wait_for("agent_typing", of_ticket(ticket_id))
    await alice_other.wait_for("chat_closed", of_ticket(ticket_id))

    await bob_socket.assert_no("new_message", within=QUIET)
    for event in TICKET_EVENTS:
        assert bob_socket.events(event) == [], (event, bob_socket.events(event))
    assert mentions(bob_socket, ticket_id) == []
    assert bob_socket.connected
    # Bob's own chat is untouched.
    assert [m["message"] for m in (await get_ticket(api, bob, bob_ticket))["messages"]] == [
        "bob's own chat"
    ]


async def test_user_typing_of_one_user_does_not_reach_another_users_agent(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent_factory: PersonFactory
) -> None:
    """Two chats, each followed by its own agent: typing goes only to the right one."""
    alice, bob = user_factory(), user_factory()
    agent_a, agent_b = agent_factory(), agent_factory()
    ticket_a = (await start_chat(api, alice))["ticketId"]
    ticket_b = (await start_chat(api, bob))["ticketId"]
    sock_agent_a, sock_agent_b = await sockets(agent_a), await sockets(agent_b)
    await ok_call(sock_agent_a, "join_chat", {"ticketId": ticket_a})
    await ok_call(sock_agent_b, "join_chat", {"ticketId": ticket_b})
    alice_socket, bob_socket = await sockets(alice), await sockets(bob)

    await ok_call(alice_socket, "user_typing", {"ticketId": ticket_a, "isTyping": True})
    await ok_call(sock_agent_b, "admin_typing", {"ticketId": ticket_b, "isTyping": True})
    await sock_agent_a.wait_for("user_typing", of_ticket(ticket_a))
    await bob_socket.wait_for("agent_typing", of_ticket(ticket_b))
    await sock_agent_b.assert_no("user_typing", within=QUIET)
    await alice_socket.assert_no("agent_typing", within=0.0)


# --- following vs. not following ------------------------------------------------------------


async def test_agent_not_following_gets_user_message_but_not_the_conversation(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    follower, outsider = agent_factory(), agent_factory()
    ticket_id = (await start_chat(api, user))["ticketId"]
    follower_socket, outsider_socket = await sockets(follower), await sockets(outsider)
    await ok_call(follower_socket, "join_chat", {"ticketId": ticket_id})
    user_socket = await sockets(user)

    await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "u1"})
    await ok_call(user_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True})
    await ok_call(follower_socket, "admin_send_message", {"ticketId": ticket_id, "message": "f1"})

    # Barrier on the follower, then the outsider's view.
    await follower_socket.wait_for("new_message", with_text(ticket_id, "u1"))
    await follower_socket.wait_for("user_typing", of_ticket(ticket_id))
    note = await outsider_socket.wait_for("user_message", of_ticket(ticket_id))
    assert note["message"] == "u1"
    await outsider_socket.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    await outsider_socket.assert_no("user_typing", of_ticket(ticket_id), within=0.0)
    await outsider_socket.assert_no("agent_joined", of_ticket(ticket_id), within=0.0)
    # Queue-wide events do reach the outsider.
    await outsider_socket.wait_for("chat_assigned", of_ticket(ticket_id))


async def test_agent_joined_reaches_followers_not_outsiders(
    api: Api, sockets: SocketFactory, user: Person, agent_factory: PersonFactory
) -> None:
    first, second, outsider = agent_factory(), agent_factory(), agent_factory()
    ticket_id = (await start_chat(api, user))["ticketId"]
    first_socket = await sockets(first)
    second_socket = await sockets(second)
    outsider_socket = await sockets(outsider)
    await ok_call(first_socket, "join_chat", {"ticketId": ticket_id})
    await ok_call(second_socket, "join_chat", {"ticketId": ticket_id})
    got = await first_socket.wait_for(
        "agent_joined", lambda d: of_ticket(ticket_id)(d) and d["agentId"] == second.id
    )
    assert got["agentName"] == second.name
    await outsider_socket.assert_no("agent_joined", of_ticket(ticket_id), within=QUIET)


# --- agent-only events from a user socket ------------------------------------------------------

AGENT_ONLY = {
    "join_chat": lambda t: {"ticketId": t},
    "admin_send_message": lambda t: {"ticketId": t, "message": "I am the admin now"},
    "admin_close_chat": lambda t: {"ticketId": t, "resolutionSummary": "self-closed"},
    "admin_typing": lambda t: {"ticketId": t, "isTyping": True},
    "join_admin_room": lambda t: None,
}


@pytest.mark.parametrize("event", list(AGENT_ONLY))
async def test_agent_only_event_from_a_user_socket_is_forbidden_and_changes_nothing(
    api: Api, sockets: SocketFactory, user: Person, agent: Person, event: str
) -> None:
    chat = await start_chat(api, user)
    ticket_id = chat["ticketId"]
    agent_socket = await sockets(agent)
    user_socket = await sockets(user)
    other_user_socket = await sockets(user)

    assert_failed_ack(await user_socket.call(event, AGENT_ONLY[event](ticket_id)))
    err = await user_socket.wait_for("error")
    assert err["type"] == "forbidden"
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["code"], str) and err["code"]

    # The socket survives and still works as a user socket.
    assert user_socket.connected
    await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "ok?"})
    # Barrier: the valid send's events have arrived, so anything the refused event had
    # caused (its ack came first) would have arrived before them.
    await other_user_socket.wait_for("new_message", with_text(ticket_id, "ok?"))
    await agent_socket.wait_for("user_message", with_text(ticket_id, "ok?"))
    await agent_socket.assert_no("chat_assigned", of_ticket(ticket_id), within=0.1)

    # Nothing happened: no events, no assignment, no extra message, still open.
    for client in (agent_socket, user_socket, other_user_socket):
        for name in ("agent_joined", "chat_assigned", "chat_closed", "agent_typing"):
            assert client.events(name) == [], (client.label, name, client.events(name))
    assert agent_socket.events("new_message") == []
    assert [d["message"] for d in other_user_socket.events("new_message")] == ["ok?"]
    assert user_socket.events("new_message") == []
    assert len(user_socket.events("message_sent")) == 1
    ticket = await get_ticket(api, agent, ticket_id)
    assert ticket["status"] == "open"
    assert ticket["assignedTo"] is None
    assert ticket["resolutionSummary"] is None
    assert [m["message"] for m in ticket["messages"]] == ["Hello, I need help", "ok?"]


async def test_user_cannot_send_into_another_users_chat(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent: Person
) -> None:
    owner, intruder = user_factory(), user_factory()
    ticket_id = (await start_chat(api, owner))["ticketId"]
    agent_socket = await sockets(agent)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    owner_socket = await sockets(owner)
    intruder_socket = await sockets(intruder)

    ack = await intruder_socket.call("send_message", {"ticketId": ticket_id, "message": "boo"})
    assert ack["success"] is False, ack
    err = await intruder_socket.wait_for("chat_error", of_ticket(ticket_id))
    assert err["type"] == "not_found"
    ack = await intruder_socket.call("user_typing", {"ticketId": ticket_id, "isTyping": True})
    assert ack["success"] is False, ack
    await intruder_socket.wait_for("chat_error", of_ticket(ticket_id))

    await owner_socket.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    await agent_socket.assert_no("user_message", of_ticket(ticket_id), within=0.0)
    await agent_socket.assert_no("user_typing", of_ticket(ticket_id), within=0.0)
    await agent_socket.assert_no("new_message", of_ticket(ticket_id), within=0.0)
    messages = (await get_ticket(api, owner, ticket_id))["messages"]
    assert [m["message"] for m in messages] == ["Hello, I need help"]
