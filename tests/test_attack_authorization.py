"""The adversarial authorization suite: what a user may NOT do, attacked systematically.

Issue 4, items 5 and 6 (last sentence); CONTRACT.md "Identity", "REST conventions" and
"Real-time delivery rules". Each test sets up one scenario (``attack``): user A has an
active chat that an agent joined, with messages both ways; user B, another user, has
their own chat and stays connected with two sockets (one WebSocket, one long-polling)
from before A's chat starts until the test ends, so everything B's sockets ever
received can be searched for A's secrets at the end.

1. Ticket isolation: with B's token, every REST read/send/start and every Socket.IO
   event taking a ticketId (documented and compatibility events) on A's ticket is
   answered exactly like an unknown ticket; B hears nothing of A's chat afterwards.
2. Agent-only surface: every agent endpoint and agent-only event with a user token
   (B's, and A's on A's own ticket) is refused (403 / ``error {type: forbidden}``) and
   changes nothing; a user token cannot open an agent socket.
3. Spoofing: no field of a send or start sets status, assignee, sender, time, seq or id.
4. Markup and SQL in messages come back as the exact text sent, as JSON, never rendered,
   and the database keeps working.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from support import (
    NOT_FOUND,
    OBJECT_ID_RE,
    TICKET_NUMBER_RE,
    Api,
    Person,
    PersonFactory,
    ServerInfo,
    SocketClient,
    SocketFactory,
    assert_failed_ack,
    assert_recent,
    close_fast,
    error_body,
    get_ticket,
    of_ticket,
    ok_call,
    ok_data,
    start_chat,
    with_text,
)

QUIET = 0.2  # "this never arrives" window, always taken after a barrier event

# Everything the server says about a ticket that is not there, or not the caller's.
NOT_FOUND_ACK = {"success": False, "message": NOT_FOUND, "code": "TICKET_NOT_FOUND"}
FORBIDDEN_ACK = {"success": False, "message": "Admin privileges required", "code": "FORBIDDEN"}

# Events that carry a ticket's conversation or state: none may reach B about A's ticket.
A_EVENTS = (
    "new_message",
    "message_sent",
    "agent_joined",
    "agent_typing",
    "user_typing",
    "chat_closed",
    "chat_assigned",
    "user_message",
    "new_chat_ticket",
    "chat_history",
    "ticket_rejoined",
    "chat_room_joined",
    "ticket_joined",
    "chat_started",
)
# Events only agents may ever receive.
AGENT_AUDIENCE_EVENTS = (
    "new_chat_ticket",
    "user_message",
    "chat_assigned",
    "admin_status_update",
    "active_chats",
    "ticket_joined",
)


def unknown_id() -> str:
    """A well-formed ticket/message id that names nothing."""
    return secrets.token_hex(12)


def message_not_found(message_id: str) -> str:
    return f"Message '{message_id}' is not a message of this chat"


def not_found_error(ticket_id: Any) -> dict[str, Any]:
    """The exact ``chat_error`` for a ticket that is unknown or not the caller's."""
    return {
        "type": "not_found",
        "message": NOT_FOUND,
        "code": "TICKET_NOT_FOUND",
        "ticketId": ticket_id,
    }


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["message"] for m in messages]


def assert_json(resp: httpx.Response) -> None:
    """REST answers are JSON, never something a browser would render."""
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "application/json", (resp.status_code, ctype)


def blob(data: Any) -> str:
    return json.dumps(data, default=str, ensure_ascii=False)


# --- the scenario ----------------------------------------------------------------------------


@dataclass
class Attack:
    """User A's chat (joined by an agent) and user B (the attacker) watching with two
    sockets, connected before A's chat existed."""

    tag: str  # in every text and in A's name: finding it in B's data is a leak
    a: Person
    b: Person
    agent: Person
    a_ticket: str
    a_number: str
    a_client_id: str  # a clientMessageId A used
    a_messages: list[dict[str, Any]]  # A's chat as stored after the setup
    b_ticket: str
    b_number: str
    a_socket: SocketClient
    agent_socket: SocketClient
    b_ws: SocketClient
    b_poll: SocketClient
    a_texts: list[str] = field(default_factory=list)
    # Refusals that echo back what B sent (an id of A's that B already knew): allowed.
    echoes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def b_sockets(self) -> tuple[SocketClient, SocketClient]:
        return (self.b_ws, self.b_poll)

    def text(self, n: int) -> str:
        """The n-th of A's private texts."""
        value = f"A-private-{self.tag} #{n}: my account number is 4711"
        self.a_texts.append(value)
        return value

    def hidden(self) -> set[str]:
        """Strings that identify A's chat: none may appear in anything B receives."""
        return {
            self.tag,
            self.a_ticket,
            self.a_number,
            self.a.id,
            self.a.email,
            *(m["_id"] for m in self.a_messages),
        }


@pytest.fixture
async def attack(
    api: Api,
    sockets: SocketFactory,
    user_factory: PersonFactory,
    agent_factory: PersonFactory,
) -> AsyncIterator[Attack]:
    tag = secrets.token_hex(6)
    a = user_factory(name=f"Alice {tag}")
    b = user_factory(name="Mallory")
    agent = agent_factory(name="Agent Smith")

    # B has their own chat, then connects both sockets before A's chat exists.
    b_chat = await start_chat(api, b, "B: my own question")
    b_ws = await sockets(b)
    b_poll = await sockets(b, transports=["polling"])
    try:
        assert b_ws.transport == "websocket"
        assert b_poll.transport == "polling"
        for client in (b_ws, b_poll):  # positive control: both sockets record events
            sent = await client.wait_for("active_tickets")
            assert [t["_id"] for t in sent["tickets"]] == [b_chat["ticketId"]]

        agent_socket = await sockets(agent)
        a_socket = await sockets(a)
        scene = Attack(
            tag=tag,
            a=a,
            b=b,
            agent=agent,
            a_ticket="",
            a_number="",
            a_client_id=f"a-cmid-{secrets.token_hex(4)}",
            a_messages=[],
            b_ticket=b_chat["ticketId"],
            b_number=b_chat["ticketNumber"],
            a_socket=a_socket,
            agent_socket=agent_socket,
            b_ws=b_ws,
            b_poll=b_poll,
        )
        a_chat = await start_chat(api, a, scene.text(1))
        t = scene.a_ticket = a_chat["ticketId"]
        scene.a_number = a_chat["ticketNumber"]
        await ok_call(agent_socket, "join_chat", {"ticketId": t})
        await ok_call(
            a_socket,
            "send_message",
            {"ticketId": t, "message": scene.text(2), "clientMessageId": scene.a_client_id},
        )
        await ok_call(agent_socket, "admin_send_message", {"ticketId": t, "message": scene.text(3)})
        resp = await api.post(f"/api/chat/{t}/message", token=a, json={"message": scene.text(4)})
        ok_data(resp)
        await a_socket.wait_for("new_message", with_text(t, scene.a_texts[2]))
        await agent_socket.wait_for("new_message", with_text(t, scene.a_texts[3]))
        ticket = await get_ticket(api, a, t)
        assert texts(ticket["messages"]) == scene.a_texts
        assert ticket["status"] == "in_progress"
        assert ticket["assignedTo"]["_id"] == agent.id
        scene.a_messages = ticket["messages"]
        yield scene
    finally:
        await close_fast(b_poll)  # a polling client's normal disconnect waits for a ping


async def a_ticket_unchanged(api: Api, scene: Attack) -> dict[str, Any]:
    """A's chat as A reads it: the setup's messages, still in progress with the agent."""
    ticket = await get_ticket(api, scene.a, scene.a_ticket)
    assert ticket["messages"] == scene.a_messages
    assert ticket["status"] == "in_progress"
    assert ticket["assignedTo"]["_id"] == scene.agent.id
    assert ticket["resolvedAt"] is None and ticket["resolutionSummary"] is None
    return ticket


async def continue_a_chat(api: Api, scene: Attack, second_agent: Person) -> None:
    """A and the agent keep chatting and typing, a second agent joins, the agent closes
    the chat; A's socket hears all of it. Then the agent writes into B's chat, which
    both of B's sockets must hear: the barrier after which B's recordings are complete."""
    t, a_socket, agent_socket = scene.a_ticket, scene.a_socket, scene.agent_socket
    await ok_call(a_socket, "user_typing", {"ticketId": t, "isTyping": True})
    await agent_socket.wait_for("user_typing", of_ticket(t))
    await ok_call(agent_socket, "admin_typing", {"ticketId": t, "isTyping": True})
    await ok_call(a_socket, "send_message", {"ticketId": t, "message": scene.text(5)})
    resp = await api.post(f"/api/chat/{t}/message", token=scene.a, json={"message": scene.text(6)})
    ok_data(resp)
    await ok_call(agent_socket, "admin_send_message", {"ticketId": t, "message": scene.text(7)})
    ok_data(await api.post(f"/api/chat/admin/join/{t}", token=second_agent))
    await ok_call(agent_socket, "admin_typing", {"ticketId": t, "isTyping": False})
    await ok_call(
        agent_socket,
        "admin_close_chat",
        {"ticketId": t, "resolutionSummary": f"Solved for Alice {scene.tag}"},
    )
    await a_socket.wait_for("agent_typing", of_ticket(t))
    await a_socket.wait_for("new_message", with_text(t, scene.a_texts[-1]))
    await a_socket.wait_for(
        "agent_joined", lambda d: of_ticket(t)(d) and d["agentId"] == second_agent.id
    )
    await a_socket.wait_for("chat_closed", of_ticket(t))
    stored = await get_ticket(api, scene.a, t)
    assert texts(stored["messages"]) == scene.a_texts
    assert stored["status"] == "resolved"

    barrier = f"for B only {secrets.token_hex(3)}"
    await ok_call(
        agent_socket, "admin_send_message", {"ticketId": scene.b_ticket, "message": barrier}
    )
    for client in scene.b_sockets:
        await client.wait_for("new_message", with_text(scene.b_ticket, barrier))


def assert_heard_nothing_of_a(scene: Attack, *clients: SocketClient) -> None:
    """Over everything each of B's sockets ever received: no event about A's ticket, and
    no trace of A's ticket id, number, message ids, texts, id, name or email anywhere,
    except the exact not-found refusals of B's own attempts (which echo the id B sent)."""
    refusals = [not_found_error(scene.a_ticket), *scene.echoes]
    hidden = scene.hidden() | set(scene.a_texts)
    for client in clients:
        assert client.connected, client.label
        assert client.events("disconnect") == [], client.label
        for event in A_EVENTS:
            about_a = [d for d in client.events(event) if of_ticket(scene.a_ticket)(d)]
            assert about_a == [], (client.label, event, about_a)
        for rec in client.received:
            if rec.event == "chat_error" and rec.data in refusals:
                continue
            text = blob(rec.data)
            found = sorted(s for s in hidden if s in text)
            assert not found, (client.label, rec.event, rec.data, found)
        for sent in client.events("active_tickets"):
            assert {t["_id"] for t in sent["tickets"]} == {scene.b_ticket}, sent
        for event in AGENT_AUDIENCE_EVENTS:
            assert client.events(event) == [], (client.label, event, client.events(event))


# --- 1. B on A's ticket: REST -------------------------------------------------------------------


def foreign_rest_calls(
    scene: Attack,
) -> list[tuple[int, str, str, dict[str, Any] | None, Any]]:
    """(expected status, method, path template, params, json) of every REST call that
    names a ticket."""
    a_message = scene.a_messages[0]["_id"]
    return [
        (404, "GET", "/api/chat/{t}", None, None),
        (404, "GET", "/api/chat/{t}/messages", None, None),
        (404, "GET", "/api/chat/{t}/messages", {"after": a_message}, None),
        (404, "GET", "/api/chat/{t}/messages", {"after": a_message, "limit": 200}, None),
        (404, "POST", "/api/chat/{t}/message", None, {"message": "B was here"}),
        (
            404,
            "POST",
            "/api/chat/{t}/message",
            None,
            {"message": "B replays A's clientMessageId", "clientMessageId": scene.a_client_id},
        ),
        # Invalid bodies are no oracle either: refused before the ticket is looked up.
        (400, "POST", "/api/chat/{t}/message", None, {"message": "   "}),
        (400, "POST", "/api/chat/{t}/message", None, None),
    ]


async def test_rest_on_a_foreign_ticket_is_answered_like_an_unknown_ticket(
    api: Api, attack: Attack, user_factory: PersonFactory, agent_factory: PersonFactory
) -> None:
    scene = attack
    hidden = scene.hidden()
    for status, method, template, params, body in foreign_rest_calls(scene):
        answers = {}
        for name, ticket_id in (
            ("foreign", scene.a_ticket),
            ("unknown", unknown_id()),
            ("malformed", "not-a-ticket"),
        ):
            path = template.format(t=ticket_id)
            resp = await api.request(method, path, token=scene.b, params=params, json=body)
            assert_json(resp)
            answers[name] = resp
        foreign = answers["foreign"]
        where = (method, template, params, body)
        for other in ("unknown", "malformed"):
            assert foreign.status_code == answers[other].status_code, (where, other)
            assert foreign.json() == answers[other].json(), (where, other, foreign.text)
            assert set(foreign.headers) == set(answers[other].headers), (where, other)
        error_body(foreign, status)
        if status == 404:
            assert foreign.json() == NOT_FOUND_ACK, where
        assert not [s for s in hidden if s in foreign.text], (where, foreign.text)

    # POST /api/chat/start naming A's chat in every way: B's own chat continues.
    pointing_at_a = {
        "ticketId": scene.a_ticket,
        "ticket": scene.a_ticket,
        "ticket_id": scene.a_ticket,
        "_id": scene.a_ticket,
        "ticketNumber": scene.a_number,
        "clientMessageId": scene.a_client_id,
    }
    resp = await api.post(
        "/api/chat/start", token=scene.b, json={"message": "B: start, into A?", **pointing_at_a}
    )
    started = ok_data(resp, 200)
    assert started["isExisting"] is True
    assert started["ticketId"] == scene.b_ticket
    assert started["ticketNumber"] == scene.b_number
    assert texts(started["messages"]) == ["B: my own question", "B: start, into A?"]
    assert not [s for s in hidden if s in resp.text], resp.text
    # A user without an active chat gets a brand-new one of their own.
    carol = user_factory()
    resp = await api.post(
        "/api/chat/start", token=carol, json={"message": "Carol: start, into A?", **pointing_at_a}
    )
    fresh = ok_data(resp, 201)
    assert fresh["ticketId"] != scene.a_ticket
    assert fresh["ticketNumber"] != scene.a_number
    assert texts(fresh["messages"]) == ["Carol: start, into A?"]
    assert fresh["messages"][0]["sender"] == carol.id
    assert not [s for s in hidden if s in resp.text], resp.text

    # On B's own chat, A's clientMessageId and A's message ids mean nothing.
    a_ids = {m["_id"] for m in scene.a_messages}
    resp = await api.post(
        f"/api/chat/{scene.b_ticket}/message",
        token=scene.b,
        json={"message": "B reuses A's clientMessageId", "clientMessageId": scene.a_client_id},
    )
    reused = ok_data(resp)
    # A repeat of B's own start above (which carried that id too), never A's message.
    assert reused["duplicate"] is True, reused
    assert reused["messageId"] == started["messages"][-1]["_id"] not in a_ids, reused
    assert reused["seq"] == 2, reused
    a_message, unknown = scene.a_messages[0]["_id"], unknown_id()
    answers = []
    for after in (a_message, unknown):
        resp = await api.get(
            f"/api/chat/{scene.b_ticket}/messages", token=scene.b, params={"after": after}
        )
        body = error_body(resp, 404)
        assert body == {
            "success": False,
            "message": message_not_found(after),
            "code": "MESSAGE_NOT_FOUND",
        }, body
        answers.append(resp.text.replace(after, "<id>"))
    assert answers[0] == answers[1]

    # A's chat is untouched, and nothing of B's attempts reached A or the agent.
    await a_ticket_unchanged(api, scene)
    for who in (scene.b, carol):
        chats = ok_data(await api.get("/api/chat/history", token=who))["chats"]
        assert scene.a_ticket not in {c["_id"] for c in chats}
        active = ok_data(await api.get("/api/chat/active", token=who))["activeChats"]
        assert scene.a_ticket not in {c["_id"] for c in active}
    await scene.agent_socket.wait_for(
        "user_message", with_text(scene.b_ticket, "B: start, into A?")
    )
    for client in (scene.a_socket, scene.agent_socket):
        for event in ("new_message", "user_message", "user_typing"):
            about_a = [d for d in client.events(event) if of_ticket(scene.a_ticket)(d)]
            said = {d.get("message") for d in about_a} - {None}
            assert said <= set(scene.a_texts), (client.label, event, about_a)

    await continue_a_chat(api, scene, agent_factory())
    assert_heard_nothing_of_a(scene, *scene.b_sockets)


# --- 1. B on A's ticket: Socket.IO -----------------------------------------------------------


def foreign_socket_calls(scene: Attack) -> dict[str, tuple[str, Callable[[str], Any]]]:
    """label -> (event, payload for a ticket id): every event that takes a ticketId."""
    a_message = scene.a_messages[1]["_id"]
    return {
        "join_chat_room": ("join_chat_room", lambda t: {"ticketId": t}),
        "join_chat_room+lastMessageId": (
            "join_chat_room",
            lambda t: {"ticketId": t, "lastMessageId": a_message},
        ),
        "send_message": ("send_message", lambda t: {"ticketId": t, "message": "B was here"}),
        "send_message+clientMessageId": (
            "send_message",
            lambda t: {"ticketId": t, "message": "B replays", "clientMessageId": scene.a_client_id},
        ),
        "user_typing": ("user_typing", lambda t: {"ticketId": t, "isTyping": True}),
        "user_typing-stop": ("user_typing", lambda t: {"ticketId": t, "isTyping": False}),
        "get_chat_history": ("get_chat_history", lambda t: {"ticketId": t}),
        "rejoin_ticket": ("rejoin_ticket", lambda t: {"ticketId": t}),
        "rejoin_ticket+lastMessageId": (
            "rejoin_ticket",
            lambda t: {"ticketId": t, "lastMessageId": a_message},
        ),
        "leave_chat_room": ("leave_chat_room", lambda t: {"ticketId": t}),
    }


async def test_socket_events_on_a_foreign_ticket_are_answered_like_an_unknown_ticket(
    api: Api, sockets: SocketFactory, attack: Attack, agent_factory: PersonFactory
) -> None:
    scene = attack
    calls = foreign_socket_calls(scene)
    for client in scene.b_sockets:
        for label, (event, payload) in calls.items():
            unknown = unknown_id()
            ack_foreign = await client.call(event, payload(scene.a_ticket))
            err_foreign = await client.wait_for("chat_error", of_ticket(scene.a_ticket))
            ack_unknown = await client.call(event, payload(unknown))
            err_unknown = await client.wait_for("chat_error", of_ticket(unknown))
            where = (client.label, client.transport, label)
            assert_failed_ack(ack_foreign)
            assert ack_foreign == NOT_FOUND_ACK, (where, ack_foreign)
            assert ack_unknown == ack_foreign, (where, ack_unknown)
            assert err_foreign == not_found_error(scene.a_ticket), (where, err_foreign)
            assert err_unknown == not_found_error(unknown), (where, err_unknown)
        # Exactly one refusal per attempt, and no success answer of any kind.
        assert len(client.events("chat_error")) == 2 * len(calls), client.label
        for answer in ("chat_history", "ticket_rejoined", "chat_room_joined", "message_sent"):
            assert client.events(answer) == [], (client.label, answer)

    # start_chat takes no ticket: naming A's (or any) ticket continues B's own chat.
    for client in scene.b_sockets:
        for ticket_id in (scene.a_ticket, unknown_id()):
            text = f"B start via {client.transport} naming {ticket_id[-4:]}"
            ack = await ok_call(
                client,
                "start_chat",
                {"ticketId": ticket_id, "ticketNumber": scene.a_number, "message": text},
            )
            started = await client.wait_for("chat_started")
            assert started == ack["data"]
            assert started["ticketId"] == scene.b_ticket
            assert started["ticketNumber"] == scene.b_number
            assert started["isExisting"] is True
            assert texts(started["messages"])[-1] == text
            assert {m["sender"] for m in started["messages"]} == {scene.b.id}

    # On B's own chat, A's message ids and clientMessageId mean nothing: A's message id
    # as lastMessageId is refused exactly like an unknown one, and replays nothing.
    a_ids = {m["_id"] for m in scene.a_messages}
    for client in scene.b_sockets:
        for event in ("join_chat_room", "rejoin_ticket"):
            refusals = []
            for last in (scene.a_messages[0]["_id"], unknown_id()):
                ack = await client.call(event, {"ticketId": scene.b_ticket, "lastMessageId": last})
                err = await client.wait_for(
                    "chat_error", lambda d, m=last: m in str(d.get("message"))
                )
                expected = {
                    "type": "not_found",
                    "message": message_not_found(last),
                    "code": "MESSAGE_NOT_FOUND",
                    "ticketId": scene.b_ticket,
                }
                assert err == expected, (client.label, event, err)
                assert ack == {
                    "success": False,
                    "message": expected["message"],
                    "code": "MESSAGE_NOT_FOUND",
                }, ack
                scene.echoes.append(expected)
                refusals.append(blob([ack, err]).replace(last, "<id>"))
            assert refusals[0] == refusals[1], (client.label, event)
    for answer in ("ticket_rejoined", "chat_room_joined"):
        assert [c.events(answer) for c in scene.b_sockets] == [[], []], answer
    # A's clientMessageId on B's chat: a new message of B's; the repeat is B's again.
    reuse = {
        "ticketId": scene.b_ticket,
        "message": "B reuses",
        "clientMessageId": scene.a_client_id,
    }
    first = (await ok_call(scene.b_ws, "send_message", reuse))["data"]
    again = (await ok_call(scene.b_poll, "send_message", reuse))["data"]
    assert first["duplicate"] is False and first["messageId"] not in a_ids, first
    assert again["duplicate"] is True and again["messageId"] == first["messageId"], again

    # Nothing of it reached A or the agent; A's chat is as it was.
    await a_ticket_unchanged(api, scene)
    for client in (scene.a_socket, scene.agent_socket):
        for event in ("new_message", "user_message", "user_typing"):
            about_a = [d for d in client.events(event) if of_ticket(scene.a_ticket)(d)]
            said = {d.get("message") for d in about_a} - {None}
            assert said <= set(scene.a_texts), (client.label, event, about_a)
    await scene.agent_socket.assert_no("user_typing", of_ticket(scene.a_ticket), within=QUIET)

    # A's chat goes on to its close; B (and a socket B opens now) hear none of it.
    late = await sockets(scene.b)
    sent = await late.wait_for("active_tickets")
    assert [t["_id"] for t in sent["tickets"]] == [scene.b_ticket]
    await continue_a_chat(api, scene, agent_factory())
    await late.wait_for(
        "new_message", lambda d: of_ticket(scene.b_ticket)(d) and "for B" in d["message"]
    )
    assert_heard_nothing_of_a(scene, *scene.b_sockets, late)
    # The detector is not blind: A's own socket is full of what B must never see.
    heard_by_a = " ".join(blob(rec.data) for rec in scene.a_socket.received)
    assert scene.tag in heard_by_a and scene.a_messages[0]["_id"] in heard_by_a


# --- 2. the agent surface with a user token ------------------------------------------------------


def agent_rest_calls(ticket_id: str) -> list[tuple[str, str, dict[str, Any] | None, Any]]:
    return [
        ("GET", "/api/chat/admin/active", None, None),
        ("GET", "/api/chat/admin/active", {"status": "resolved"}, None),
        ("POST", f"/api/chat/admin/join/{ticket_id}", None, None),
        ("POST", f"/api/chat/admin/close/{ticket_id}", None, {"resolutionSummary": "by a user"}),
        ("POST", f"/api/chat/admin/close/{ticket_id}", None, None),
    ]


async def test_agent_endpoints_refuse_user_tokens_and_change_nothing(
    api: Api, sockets: SocketFactory, attack: Attack, agent_factory: PersonFactory
) -> None:
    scene = attack
    watcher = await sockets(agent_factory())  # hears every all-agents event from now on
    before_a = await get_ticket(api, scene.agent, scene.a_ticket)
    before_b = await get_ticket(api, scene.agent, scene.b_ticket)
    assert before_b["status"] == "open" and before_b["assignedTo"] is None
    agent_seen = len(scene.agent_socket.received)

    attempts = [
        (scene.b, scene.a_ticket),  # B on A's chat
        (scene.a, scene.a_ticket),  # A on A's own chat
        (scene.b, scene.b_ticket),  # B on B's own (open, unassigned) chat
        (scene.b, unknown_id()),  # refused before any lookup: no existence oracle
    ]
    answers: dict[tuple[str, str], dict[str, Any]] = {}
    for who, ticket_id in attempts:
        for method, path, params, body in agent_rest_calls(ticket_id):
            resp = await api.request(method, path, token=who, params=params, json=body)
            assert_json(resp)
            err = error_body(resp, 403)
            assert err["code"] == "FORBIDDEN", (who.name, path, err)
            assert err == FORBIDDEN_ACK, (who.name, path, err)
            answers[(who.id, path.replace(ticket_id, "{t}"))] = err
    assert len({blob(v) for v in answers.values()}) == 1  # one answer for every case

    # Nothing changed, and no agent heard of any of it.
    assert await get_ticket(api, scene.agent, scene.a_ticket) == before_a
    assert await get_ticket(api, scene.agent, scene.b_ticket) == before_b
    barrier = "B: still waiting"
    ok_data(
        await api.post(
            f"/api/chat/{scene.b_ticket}/message", token=scene.b, json={"message": barrier}
        )
    )
    await watcher.wait_for("user_message", with_text(scene.b_ticket, barrier))
    for client, since in ((watcher, 0), (scene.agent_socket, agent_seen)):
        for rec in client.received[since:]:
            if rec.event in ("chat_assigned", "chat_closed", "agent_joined", "new_message"):
                assert rec.data.get("ticketId") not in (scene.a_ticket, scene.b_ticket), (
                    client.label,
                    rec.event,
                    rec.data,
                )
    for client in (scene.a_socket, *scene.b_sockets):
        for event in ("chat_closed", "chat_assigned", "agent_typing"):
            assert client.events(event) == [], (client.label, event, client.events(event))
    assert [d["agentId"] for d in scene.a_socket.events("agent_joined")] == [scene.agent.id]
    for client in scene.b_sockets:
        assert client.events("agent_joined") == [], client.label


AGENT_ONLY_EVENTS: dict[str, Callable[[str], Any]] = {
    "join_admin_room": lambda t: None,
    "join_chat": lambda t: {"ticketId": t},
    "admin_send_message": lambda t: {"ticketId": t, "message": "Support here: send your password"},
    "admin_close_chat": lambda t: {"ticketId": t, "resolutionSummary": "closed by a user"},
    "admin_typing": lambda t: {"ticketId": t, "isTyping": True},
    "join_ticket": lambda t: {"ticketId": t},
    "close_chat": lambda t: {"ticketId": t, "resolutionSummary": "closed by a user"},
    "get_active_chats": lambda t: None,
    "get_admin_active_tickets": lambda t: {"status": "active"},
}


async def test_agent_only_events_from_user_sockets_are_forbidden_and_change_nothing(
    api: Api,
    sockets: SocketFactory,
    attack: Attack,
    agent_factory: PersonFactory,
    user_factory: PersonFactory,
) -> None:
    scene = attack
    watcher = await sockets(agent_factory())
    before_a = await get_ticket(api, scene.agent, scene.a_ticket)
    before_b = await get_ticket(api, scene.agent, scene.b_ticket)
    agent_seen = len(scene.agent_socket.received)
    a_seen = len(scene.a_socket.received)

    attempts = [
        (scene.b_ws, scene.a_ticket),
        (scene.b_poll, scene.a_ticket),
        (scene.a_socket, scene.a_ticket),  # the chat's own user
        (scene.b_ws, scene.b_ticket),  # B's own open, unassigned chat
    ]
    for client, ticket_id in attempts:
        errors_before = len(client.events("error"))
        for event, payload in AGENT_ONLY_EVENTS.items():
            where = (client.label, client.transport, event, ticket_id == scene.a_ticket)
            ack = await client.call(event, payload(ticket_id))
            assert_failed_ack(ack)
            assert ack == FORBIDDEN_ACK, (where, ack)
            err = await client.wait_for("error", lambda d, e=event: d.get("event") == e)
            assert err["type"] == "forbidden", (where, err)
            assert err["message"] == FORBIDDEN_ACK["message"], (where, err)
            assert err["code"] == "FORBIDDEN", (where, err)
        assert len(client.events("error")) == errors_before + len(AGENT_ONLY_EVENTS)

    # Barrier: a new user's chat and new messages reach the agents (and A's socket).
    carol = user_factory()
    carol_ticket = (await start_chat(api, carol, "Carol: hello"))["ticketId"]
    await watcher.wait_for("new_chat_ticket", of_ticket(carol_ticket))
    ok_data(
        await api.post(
            f"/api/chat/{scene.a_ticket}/message", token=scene.a, json={"message": scene.text(5)}
        )
    )
    await scene.agent_socket.wait_for("new_message", with_text(scene.a_ticket, scene.a_texts[-1]))
    await watcher.wait_for("user_message", with_text(scene.a_ticket, scene.a_texts[-1]))
    await scene.b_poll.assert_no("new_chat_ticket", within=QUIET)

    # Nothing changed: no join, reply, close, typing or queue reached anyone.
    after_a = await get_ticket(api, scene.agent, scene.a_ticket)
    assert after_a["messages"][:-1] == before_a["messages"]
    assert texts(after_a["messages"]) == scene.a_texts
    for key in (
        "status",
        "assignedTo",
        "assignedAt",
        "resolvedAt",
        "resolvedBy",
        "resolutionSummary",
    ):
        assert after_a[key] == before_a[key], key
    assert await get_ticket(api, scene.agent, scene.b_ticket) == before_b
    for client, since in ((watcher, 0), (scene.agent_socket, agent_seen), (scene.a_socket, a_seen)):
        for rec in client.received[since:]:
            if rec.event in ("chat_assigned", "chat_closed", "agent_joined", "agent_typing"):
                assert rec.data.get("ticketId") not in (scene.a_ticket, scene.b_ticket), (
                    client.label,
                    rec.event,
                    rec.data,
                )
            if rec.event in ("new_message", "user_message"):
                assert "send your password" not in rec.data["message"], rec.data
    for client in (scene.a_socket, *scene.b_sockets):
        for event in (*AGENT_AUDIENCE_EVENTS, "chat_closed", "chat_error"):
            assert client.events(event) == [], (client.label, event, client.events(event))
        assert client.connected


async def polling_connect_packets(
    base_url: str,
    auth: dict[str, Any] | None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """Engine.IO v4 long-polling spoken by hand (python-socketio's client takes ~25 s to
    give up a refused polling connection): the Socket.IO packets answering the CONNECT."""
    params = {"EIO": "4", "transport": "polling", **(query or {})}
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0, headers=headers) as http:
        resp = await http.get("/socket.io/", params=params)
        assert resp.status_code == 200 and resp.text.startswith("0"), resp.text  # OPEN
        params["sid"] = json.loads(resp.text[1:])["sid"]
        body = "40" + (json.dumps(auth) if auth is not None else "")
        assert (await http.post("/socket.io/", params=params, content=body)).status_code == 200
        resp = await http.get("/socket.io/", params=params)
        assert resp.status_code == 200, resp.text
        packets = [p[1:] for p in resp.text.split("\x1e") if p.startswith("4")]
        await http.post("/socket.io/", params=params, content="1")  # Engine.IO CLOSE
        return packets


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_user_token_cannot_open_an_agent_socket(
    server: ServerInfo, sockets: SocketFactory, user_factory: PersonFactory, transport: str
) -> None:
    user = user_factory()
    asks: list[dict[str, Any]] = [
        {"auth": {"token": user.token, "userType": "admin"}},
        {"auth": {"token": user.token, "userType": "ADMIN"}},
        {"auth": {"token": user.token}, "query": {"userType": "admin"}},
        {"auth": None, "headers": user.auth_header, "query": {"userType": "admin"}},
        {"auth": None, "query": {"token": user.token, "userType": "admin"}},
    ]
    for kwargs in asks:
        if transport == "websocket":
            # connect_error as the client hands it over: {message, data: {type, code}}.
            refused = await sockets.refused(user, transports=["websocket"], **kwargs)
            message, details = refused.data["message"], refused.data["data"]
        else:
            packets = await polling_connect_packets(
                server.base_url, kwargs["auth"], kwargs.get("query"), kwargs.get("headers")
            )
            assert not [p for p in packets if p.startswith("0")], packets  # no CONNECT
            errors = [json.loads(p[1:]) for p in packets if p.startswith("4")]
            assert len(errors) == 1, packets  # one CONNECT_ERROR
            message, details = errors[0]["message"], errors[0]["data"]
        assert message == "Admin privileges required", (kwargs, message)
        assert details["type"] == "authentication_failed", (kwargs, details)
        assert details["code"] == "AUTH_ERROR", (kwargs, details)


# --- 3. no field sets status, assignee, sender, time, seq or id -------------------------------


def spoofed_fields(scene: Attack, claimed_user: str) -> dict[str, Any]:
    agent_id = scene.agent.id
    stolen_id = scene.a_messages[0]["_id"]  # an existing message of another chat
    return {
        "status": "resolved",
        "assignedTo": agent_id,
        "assigned_to": agent_id,
        "assignedAgent": {"_id": agent_id, "fullName": "Agent Smith"},
        "resolvedBy": agent_id,
        "resolutionSummary": "resolved by the user",
        "sender": agent_id,
        "sender_id": agent_id,
        "senderModel": "Admin",
        "sender_model": "Admin",
        "isAdminReply": True,
        "is_admin_reply": True,
        "senderName": "Support",
        "timestamp": "2000-01-01T00:00:00.000Z",
        "createdAt": "2000-01-01T00:00:00.000Z",
        "seq": 999,
        "_id": stolen_id,
        "id": stolen_id,
        "messageId": stolen_id,
        "ticketNumber": scene.a_number,
        "userId": claimed_user,
        "role": "admin",
        "userType": "admin",
    }


def assert_own_message(
    message: dict[str, Any], who: Person, seq: int, spoof: dict[str, Any]
) -> None:
    """A message (REST view or new_message payload) that is entirely the server's word."""
    assert message["sender"] == who.id, message
    assert message["senderName"] == who.name, message
    assert message["senderModel"] == "DTUser", message
    assert message["isAdminReply"] is False, message
    assert message["seq"] == seq, message
    assert OBJECT_ID_RE.match(message["_id"]) and message["_id"] != spoof["_id"], message
    assert message.get("messageId", message["_id"]) == message["_id"], message
    assert_recent(message["timestamp"])


async def test_a_user_cannot_set_status_assignee_or_sender_through_any_field(
    api: Api, sockets: SocketFactory, attack: Attack, user_factory: PersonFactory
) -> None:
    scene = attack
    b, t = scene.b, scene.b_ticket  # B's own chat: open, nobody assigned
    spoof = spoofed_fields(scene, claimed_user=scene.a.id)
    sent: list[tuple[str, str]] = []  # (messageId, text), in seq order from 2

    # REST send (with a ticketId in the body pointing at A's chat, too).
    resp = await api.post(
        f"/api/chat/{t}/message",
        token=b,
        json={**spoof, "ticketId": scene.a_ticket, "message": "spoof via REST"},
    )
    data = ok_data(resp)
    assert data["seq"] == 2 and data["ticketStatus"] == "open", data
    assert data["messageId"] != spoof["_id"] and OBJECT_ID_RE.match(data["messageId"])
    assert_recent(data["timestamp"])
    sent.append((data["messageId"], "spoof via REST"))

    # Socket send.
    ack = await ok_call(
        scene.b_ws, "send_message", {**spoof, "ticketId": t, "message": "spoof via socket"}
    )
    assert ack["data"]["seq"] == 3 and ack["data"]["messageId"] != spoof["_id"], ack
    assert_recent(ack["data"]["timestamp"])
    sent.append((ack["data"]["messageId"], "spoof via socket"))

    # Start, over REST and over the socket (B's chat is active: both append to it).
    resp = await api.post("/api/chat/start", token=b, json={**spoof, "message": "spoof via start"})
    started = ok_data(resp, 200)
    assert started["ticketId"] == t and started["ticketNumber"] == scene.b_number
    assert started["status"] == "open"
    sent.append((started["messages"][-1]["_id"], "spoof via start"))
    ack = await ok_call(scene.b_poll, "start_chat", {**spoof, "message": "spoof via start_chat"})
    assert ack["data"]["ticketId"] == t and ack["data"]["status"] == "open", ack
    sent.append((ack["data"]["messages"][-1]["_id"], "spoof via start_chat"))

    # As stored.
    ticket = await get_ticket(api, scene.agent, t)
    assert ticket["status"] == "open"
    assert ticket["assignedTo"] is None and ticket["assignedAt"] is None
    assert ticket["resolvedAt"] is None and ticket["resolvedBy"] is None
    assert ticket["resolutionSummary"] is None
    assert ticket["userId"]["_id"] == b.id
    assert ticket["ticketNumber"] == scene.b_number
    stored = ticket["messages"][1:]
    assert [(m["_id"], m["message"]) for m in stored] == sent
    for seq, message in enumerate(stored, start=2):
        assert_own_message(message, b, seq, spoof)
    assert len({m["_id"] for m in ticket["messages"]}) == len(ticket["messages"])

    # As delivered: to B's other socket, and to the agents' queue.
    for client, text in (
        (scene.b_poll, "spoof via REST"),
        (scene.b_ws, "spoof via REST"),
        (scene.b_poll, "spoof via socket"),
        (scene.b_ws, "spoof via start"),
        (scene.b_ws, "spoof via start_chat"),
    ):
        got = await client.wait_for("new_message", with_text(t, text))
        seq = 2 + [s[1] for s in sent].index(text)
        assert_own_message(got, b, seq, spoof)
        assert got["ticketNumber"] == scene.b_number
    for _, text in sent:
        note = await scene.agent_socket.wait_for("user_message", with_text(t, text))
        assert note["userId"] == b.id and note["userName"] == b.name, note
        assert note["status"] == "open" and note["ticketNumber"] == scene.b_number, note
    for client in (scene.agent_socket, *scene.b_sockets):
        await client.assert_no("chat_assigned", of_ticket(t), within=0.0)
        await client.assert_no("chat_closed", of_ticket(t), within=0.0)

    # The stolen id still names A's message, in A's chat, unchanged.
    await a_ticket_unchanged(api, scene)

    # A brand-new chat started with every spoofed field, claiming to be B's.
    carol = user_factory()
    carol_spoof = spoofed_fields(scene, claimed_user=b.id)
    resp = await api.post(
        "/api/chat/start", token=carol, json={**carol_spoof, "message": "Carol here"}
    )
    fresh = ok_data(resp, 201)
    assert fresh["status"] == "open"
    assert fresh["ticketNumber"] not in (scene.a_number, scene.b_number)
    assert TICKET_NUMBER_RE.match(fresh["ticketNumber"])
    assert_own_message(fresh["messages"][0], carol, 1, carol_spoof)
    carol_ticket = await get_ticket(api, carol, fresh["ticketId"])
    assert carol_ticket["userId"]["_id"] == carol.id
    assert carol_ticket["assignedTo"] is None and carol_ticket["resolvedAt"] is None
    resp = await api.get(f"/api/chat/{fresh['ticketId']}", token=b)
    assert error_body(resp, 404)["message"] == NOT_FOUND
    b_history = ok_data(await api.get("/api/chat/history", token=b))["chats"]
    assert [c["_id"] for c in b_history] == [t]


# --- 4. markup, script and SQL come back as sent ---------------------------------------------

MARKUP = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg/onload=alert(1)>',
    "javascript:alert(1)",
    "{{7*7}}",
    "${7*7}",
    "'; DROP TABLE messages; --",
]
SQL = [
    "'; DROP TABLE messages; --",
    "Robert'); DROP TABLE tickets;--",
    "' OR '1'='1",
    "1; DELETE FROM messages WHERE 1=1; --",
    "\\'; SELECT pg_sleep(5); --",
]


def assert_raw(resp: httpx.Response, text: str) -> None:
    """The JSON body holds the text as a plain JSON string: not HTML-escaped, not altered."""
    assert_json(resp)
    assert json.dumps(text, ensure_ascii=False)[1:-1] in resp.text, (text, resp.text[:300])


def by_seq(payloads: list[dict[str, Any]]) -> list[str]:
    return texts(sorted(payloads, key=lambda d: d["seq"]))


async def test_markup_and_script_come_back_exactly_as_sent(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent_factory: PersonFactory
) -> None:
    user = user_factory(name='<img src=x onerror=alert("name")>')
    agent, watcher_agent = agent_factory(), agent_factory()
    watcher = await sockets(watcher_agent)  # not following: the queue's view
    agent_socket = await sockets(agent)
    user_socket, user_other = await sockets(user), await sockets(user)

    resp = await api.post("/api/chat/start", token=user, json={"message": MARKUP[0]})
    ticket_id = ok_data(resp, 201)["ticketId"]
    assert_raw(resp, MARKUP[0])
    queued = await watcher.wait_for("new_chat_ticket", of_ticket(ticket_id))
    assert queued["message"] == MARKUP[0] and queued["userName"] == user.name
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})

    expected, from_user = [MARKUP[0]], []
    for text in MARKUP:
        resp = await api.post(f"/api/chat/{ticket_id}/message", token=user, json={"message": text})
        ok_data(resp)
        assert_json(resp)
        await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": text})
        await ok_call(agent_socket, "admin_send_message", {"ticketId": ticket_id, "message": text})
        expected += [text, text, text]
        from_user += [text, text]

    # Socket payloads: every copy is the exact text.
    # (The opening message, started over REST, reached both of the user's sockets.)
    got = [await user_other.wait_for("new_message", of_ticket(ticket_id)) for _ in expected]
    assert by_seq(got) == expected
    got = [await agent_socket.wait_for("new_message", of_ticket(ticket_id)) for _ in from_user]
    assert by_seq(got) == from_user
    got = [await watcher.wait_for("user_message", of_ticket(ticket_id)) for _ in from_user]
    assert by_seq(got) == from_user
    assert {d["userName"] for d in got} == {user.name}
    # The sender's own socket hears the REST sends and the agent's replies, not its own.
    own = [await user_socket.wait_for("new_message", of_ticket(ticket_id)) for _ in range(15)]
    assert by_seq(own) == [MARKUP[0], *(text for text in MARKUP for _ in range(2))]
    await user_socket.assert_no("new_message", of_ticket(ticket_id), within=QUIET)

    # REST reads, as the user and as the agent: JSON holding the exact text.
    for who in (user, agent):
        resp = await api.get(f"/api/chat/{ticket_id}", token=who)
        ticket = ok_data(resp)["ticket"]
        assert texts(ticket["messages"]) == expected
        assert ticket["userId"]["fullName"] == user.name
        for text in MARKUP:
            assert_raw(resp, text)
        resp = await api.get(f"/api/chat/{ticket_id}/messages", token=who, params={"limit": 200})
        assert texts(ok_data(resp)["messages"]) == expected
        assert_raw(resp, MARKUP[1])
    resp = await api.get("/api/chat/history", token=user)
    assert texts(ok_data(resp)["chats"][0]["messages"]) == expected
    assert_raw(resp, MARKUP[2])
    resp = await api.get("/api/chat/active", token=user)
    assert texts(ok_data(resp)["activeChats"][0]["messages"]) == expected
    assert_json(resp)
    resp = await api.get("/api/chat/admin/active", token=watcher_agent)
    queue = {c["_id"]: c for c in ok_data(resp)["chats"]}
    assert texts(queue[ticket_id]["messages"]) == expected
    assert queue[ticket_id]["userId"]["fullName"] == user.name
    assert_raw(resp, MARKUP[3])

    # Compatibility reads over the socket.
    history = (await ok_call(user_socket, "get_chat_history", {"ticketId": ticket_id}))["data"]
    assert texts(history["messages"]) == expected
    chats = (await ok_call(watcher, "get_active_chats"))["data"]
    assert texts(next(c for c in chats if c["_id"] == ticket_id)["messages"]) == expected

    # A markup resolution summary and a markup path come back as text / JSON too.
    summary = MARKUP[2]
    closed = await ok_call(
        agent_socket, "admin_close_chat", {"ticketId": ticket_id, "resolutionSummary": summary}
    )
    assert closed["data"]["resolutionSummary"] == summary
    assert (await user_other.wait_for("chat_closed", of_ticket(ticket_id)))[
        "resolutionSummary"
    ] == summary
    assert (await get_ticket(api, user, ticket_id))["resolutionSummary"] == summary
    for text in MARKUP:
        resp = await api.get(f"/api/chat/{quote(text, safe='')}", token=user)
        assert_json(resp)
        error_body(resp, 404)  # "Chat ticket not found", or "Not found" when it has a "/"
        assert text not in resp.text, resp.text


async def test_sql_text_is_stored_as_text_and_the_database_keeps_working(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent_factory: PersonFactory
) -> None:
    user = user_factory(name="Robert'); DROP TABLE tickets;--")
    agent = agent_factory()
    agent_socket = await sockets(agent)
    user_socket = await sockets(user)
    ticket_id = (await start_chat(api, user, SQL[0]))["ticketId"]

    expected = [SQL[0]]
    for text in SQL:
        ok_data(
            await api.post(f"/api/chat/{ticket_id}/message", token=user, json={"message": text})
        )
        await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": text})
        expected += [text, text]
    # As a clientMessageId (the repeat is looked up by it): stored once, found again.
    first = ok_data(
        await api.post(
            f"/api/chat/{ticket_id}/message",
            token=user,
            json={"message": "with an SQL clientMessageId", "clientMessageId": SQL[1]},
        )
    )
    repeat = ok_data(
        await api.post(
            f"/api/chat/{ticket_id}/message",
            token=user,
            json={"message": "with an SQL clientMessageId", "clientMessageId": SQL[1]},
        )
    )
    assert repeat["duplicate"] is True and repeat["messageId"] == first["messageId"]
    expected.append("with an SQL clientMessageId")

    # Where SQL stands in for ids and filters: ordinary refusals, never a 500.
    for text in SQL:
        resp = await api.get(f"/api/chat/{quote(text, safe='')}/messages", token=user)
        assert error_body(resp, 404)["message"] == NOT_FOUND
        resp = await api.get(f"/api/chat/{ticket_id}/messages", token=user, params={"after": text})
        assert error_body(resp, 404)["code"] == "MESSAGE_NOT_FOUND"
        resp = await api.get("/api/chat/admin/active", token=agent, params={"status": text})
        error_body(resp, 400)
        ack = await user_socket.call("send_message", {"ticketId": text, "message": "x"})
        assert ack == NOT_FOUND_ACK, ack
        assert (await user_socket.wait_for("chat_error", of_ticket(text))) == not_found_error(text)

    # Stored as text, tables intact: reads, a new chat, the queue and history all work.
    ticket = await get_ticket(api, agent, ticket_id)
    assert texts(ticket["messages"]) == expected
    assert [m["seq"] for m in ticket["messages"]] == list(range(1, len(expected) + 1))
    assert ticket["userId"]["fullName"] == user.name
    resp = await api.get(f"/api/chat/{ticket_id}/messages", token=user, params={"limit": 200})
    assert texts(ok_data(resp)["messages"]) == expected
    other = user_factory()
    other_chat = await start_chat(api, other, "after the injection attempts")
    await agent_socket.wait_for("new_chat_ticket", of_ticket(other_chat["ticketId"]))
    queue = ok_data(await api.get("/api/chat/admin/active", token=agent))["chats"]
    assert {ticket_id, other_chat["ticketId"]} <= {c["_id"] for c in queue}
    history = ok_data(await api.get("/api/chat/history", token=user))
    assert history["pagination"]["totalChats"] == 1
    assert texts(history["chats"][0]["messages"]) == expected
    await ok_call(agent_socket, "admin_send_message", {"ticketId": ticket_id, "message": SQL[2]})
    assert texts((await get_ticket(api, user, ticket_id))["messages"])[-1] == SQL[2]
