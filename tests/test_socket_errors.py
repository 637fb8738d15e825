"""Malformed and refused Socket.IO payloads: every one gets `chat_error` and a failed ack,
none crashes a handler or drops the connection, none stores anything.

CONTRACT.md "Real-time delivery rules": failures tied to a ticket (not found, not yours,
closed, invalid payload) -> `chat_error {type, message, ticketId}`; the ack callback is
called with `{success: false, message}`; "A malformed payload never crashes a handler or
the connection."
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from support import (
    NOT_FOUND,
    OPENING,
    Api,
    Person,
    PersonFactory,
    ServerInfo,
    SocketClient,
    SocketFactory,
    assert_chat_error,
    assert_failed_ack,
    get_ticket,
    of_ticket,
    start_chat,
)

UNKNOWN_ID = "0123456789abcdef01234567"  # well formed, names no ticket
GOOD_FILE = {"fileName": "a.png", "fileUrl": "https://files.example.com/a.png"}
_MISSING = object()


# --- helpers ---------------------------------------------------------------------------


class ServerLog:
    """What the server logged since this object was made: a handler that crashed on a
    payload logs a traceback even when its exception is caught and answered."""

    def __init__(self, server: ServerInfo) -> None:
        self.path = server.log_path
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def new_text(self) -> str:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            return fh.read().decode(errors="replace")

    def assert_no_traceback(self) -> None:
        text = self.new_text()
        assert "Traceback" not in text, text[-3000:]


async def assert_refused(
    client: SocketClient, event: str, payload: Any, *, expect_ticket: Any = _MISSING
) -> dict[str, Any]:
    """Emit ``payload`` (``_MISSING``: no argument at all); expect a failed ack and one
    ``chat_error`` for it, and the connection still up. Returns the chat_error."""
    before = len(client.events("chat_error"))
    if payload is _MISSING:
        ack = await client.call(event)
    else:
        ack = await client.call(event, payload)
    assert_failed_ack(ack)
    err: dict[str, Any] = await client.wait_for("chat_error")
    assert len(client.events("chat_error")) == before + 1
    assert_chat_error(err)
    if expect_ticket is not _MISSING:
        assert err["ticketId"] == expect_ticket, err
    # A validation failure, not a crash answered generically.
    assert err.get("code") != "INTERNAL_ERROR", err
    assert err["type"] != "message_failed", err
    assert client.connected
    assert client.events("disconnect") == []
    return err


@dataclass
class Scene:
    """A user with an open chat and a socket, and an agent with a socket."""

    user: Person
    agent: Person
    ticket_id: str
    user_socket: SocketClient
    agent_socket: SocketClient
    log: ServerLog


@pytest.fixture
async def scene(
    api: Api,
    sockets: SocketFactory,
    server: ServerInfo,
    user_factory: PersonFactory,
    agent_factory: PersonFactory,
) -> Scene:
    user, agent = user_factory(), agent_factory()
    ticket_id = (await start_chat(api, user))["ticketId"]
    return Scene(
        user=user,
        agent=agent,
        ticket_id=ticket_id,
        user_socket=await sockets(user),
        agent_socket=await sockets(agent),
        log=ServerLog(server),
    )


def for_ticket(client: SocketClient, event: str, ticket_id: str) -> list[Any]:
    return [
        d for d in client.events(event) if isinstance(d, dict) and d.get("ticketId") == ticket_id
    ]


async def assert_untouched_then_usable(api: Api, scene: Scene, client: SocketClient) -> None:
    """Nothing was stored, changed or announced; then a valid send on the same socket
    succeeds. The valid send's events are the barrier: whatever the refused request
    might have emitted (its ack came first) would have arrived before them."""
    t = scene.ticket_id
    ticket = await get_ticket(api, scene.agent, t)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]
    assert ticket["status"] == "open"
    assert ticket["assignedTo"] is None
    assert ticket["resolutionSummary"] is None

    by_agent = client is scene.agent_socket
    event = "admin_send_message" if by_agent else "send_message"
    ack = await client.call(event, {"ticketId": t, "message": "still works"})
    assert ack.get("success") is True, ack
    sent = await client.wait_for("message_sent", of_ticket(t))
    assert ack["data"]["messageId"] == sent["messageId"]
    if by_agent:
        await scene.user_socket.wait_for("new_message", of_ticket(t))
    else:
        await scene.agent_socket.wait_for("user_message", of_ticket(t))

    user_heard = for_ticket(scene.user_socket, "new_message", t)
    assert [d["message"] for d in user_heard] == (["still works"] if by_agent else [])
    agent_heard = for_ticket(scene.agent_socket, "user_message", t)
    assert [d["message"] for d in agent_heard] == ([] if by_agent else ["still works"])
    assert for_ticket(scene.agent_socket, "new_message", t) == []
    assert [d["messageId"] for d in client.events("message_sent")] == [sent["messageId"]]
    for name in ("agent_typing", "chat_closed", "agent_joined"):
        assert for_ticket(scene.user_socket, name, t) == [], name
    for name in ("user_typing", "chat_closed", "agent_joined"):
        assert for_ticket(scene.agent_socket, name, t) == [], name
    if not by_agent:  # an agent's first reply assigns the chat; a refusal must not
        assert for_ticket(scene.agent_socket, "chat_assigned", t) == []

    ticket = await get_ticket(api, scene.agent, t)
    assert [m["message"] for m in ticket["messages"]] == [OPENING, "still works"]
    scene.log.assert_no_traceback()


# --- every event x malformed envelope / ticketId ---------------------------------------------

# (event, socket role, valid payload fields besides ticketId)
TICKET_EVENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "join_chat_room": ("join_chat_room", "user", {}),
    "send_message": ("send_message", "user", {"message": "hi"}),
    "user_typing": ("user_typing", "user", {"isTyping": True}),
    "join_chat": ("join_chat", "agent", {}),
    "admin_send_message": ("admin_send_message", "agent", {"message": "hi"}),
    "admin_typing": ("admin_typing", "agent", {"isTyping": True}),
    "admin_close_chat": ("admin_close_chat", "agent", {"resolutionSummary": "done"}),
    "agent_send_message": ("send_message", "agent", {"message": "hi"}),
}

# name -> (payload builder from (ticket_id, other valid fields), chat_error ticketId expected)
Builder = Callable[[str, dict[str, Any]], Any]
BAD_ENVELOPES: dict[str, tuple[Builder, Callable[[str], Any]]] = {
    "no_payload": (lambda t, f: _MISSING, lambda t: None),
    # (None,): one argument that is JSON null (a bare None would mean no argument).
    "null": (lambda t, f: (None,), lambda t: None),
    "string": (lambda t, f: t, lambda t: None),  # the bare ticketId, not an object
    "json_text": (lambda t, f: f'{{"ticketId": "{t}"}}', lambda t: None),
    "list": (lambda t, f: [{"ticketId": t, **f}], lambda t: None),
    "number": (lambda t, f: 42, lambda t: None),
    "bytes": (lambda t, f: b"\x00\x01binary", lambda t: None),
    "empty_object": (lambda t, f: {}, lambda t: None),
    "missing_ticket_id": (lambda t, f: dict(f), lambda t: None),
    "ticket_id_null": (lambda t, f: {"ticketId": None, **f}, lambda t: None),
    "ticket_id_number": (lambda t, f: {"ticketId": 123, **f}, lambda t: None),
    "ticket_id_list": (lambda t, f: {"ticketId": [t], **f}, lambda t: None),
    "ticket_id_operator": (lambda t, f: {"ticketId": {"$ne": None}, **f}, lambda t: None),
    "ticket_id_malformed": (lambda t, f: {"ticketId": "not-a-ticket", **f}, lambda t: ...),
    "ticket_id_huge": (lambda t, f: {"ticketId": "a" * 20000, **f}, lambda t: ...),
    "ticket_id_unknown": (lambda t, f: {"ticketId": UNKNOWN_ID, **f}, lambda t: UNKNOWN_ID),
}


@pytest.mark.parametrize("case", list(BAD_ENVELOPES))
@pytest.mark.parametrize("name", list(TICKET_EVENTS))
async def test_malformed_payload_is_refused_without_side_effects(
    api: Api, scene: Scene, name: str, case: str
) -> None:
    event, role, fields = TICKET_EVENTS[name]
    build, expected_ticket = BAD_ENVELOPES[case]
    payload = build(scene.ticket_id, fields)
    client = scene.user_socket if role == "user" else scene.agent_socket
    expect = expected_ticket(scene.ticket_id)
    if expect is ...:  # a string ticketId is echoed back as sent
        expect = payload["ticketId"]
    err = await assert_refused(client, event, payload, expect_ticket=expect)
    if case in ("ticket_id_malformed", "ticket_id_unknown"):
        assert err["type"] == "not_found", err
        assert err["message"] == NOT_FOUND, err
    await assert_untouched_then_usable(api, scene, client)


@pytest.mark.parametrize("name", ["join_chat_room", "send_message", "user_typing"])
async def test_someone_elses_ticket_is_refused_like_an_unknown_one(
    api: Api, scene: Scene, user_factory: PersonFactory, name: str
) -> None:
    event, _role, fields = TICKET_EVENTS[name]
    owner = user_factory()
    foreign = (await start_chat(api, owner))["ticketId"]
    err = await assert_refused(
        scene.user_socket, event, {"ticketId": foreign, **fields}, expect_ticket=foreign
    )
    assert err["type"] == "not_found", err
    assert err["message"] == NOT_FOUND, err
    assert [m["message"] for m in (await get_ticket(api, owner, foreign))["messages"]] == [OPENING]
    await assert_untouched_then_usable(api, scene, scene.user_socket)


# --- message and attachments ------------------------------------------------------------------

SEND_EVENTS = ["send_message", "admin_send_message", "agent_send_message"]

# name -> (fields replacing {"message": "hi"}, substring the error message must contain)
BAD_MESSAGES: dict[str, tuple[dict[str, Any], str | None]] = {
    "message_missing": ({}, "Message is required"),
    "message_null": ({"message": None}, "Message is required"),
    "message_empty": ({"message": ""}, "Message is required"),
    "message_whitespace": ({"message": "   \n\t  "}, "Message is required"),
    "message_number": ({"message": 123}, None),
    "message_boolean": ({"message": True}, None),
    "message_list": ({"message": ["hi"]}, None),
    "message_object": ({"message": {"text": "hi"}}, None),
    "message_too_long": ({"message": "x" * 5001}, "5000"),
    "message_too_long_multibyte": ({"message": "é" * 5001}, "5000"),
    "attachments_string": ({"message": "hi", "attachments": "file.png"}, None),
    "attachments_object": ({"message": "hi", "attachments": GOOD_FILE}, None),
    "attachments_number": ({"message": "hi", "attachments": 3}, None),
    "attachments_item_string": ({"message": "hi", "attachments": ["a.png"]}, None),
    "attachments_item_no_url": ({"message": "hi", "attachments": [{"fileName": "a"}]}, None),
    "attachments_item_bad_scheme": (
        {"message": "hi", "attachments": [{"fileName": "a", "fileUrl": "javascript:alert(1)"}]},
        None,
    ),
    "attachments_too_many": ({"message": "hi", "attachments": [GOOD_FILE] * 11}, "10"),
}


@pytest.mark.parametrize("case", list(BAD_MESSAGES))
@pytest.mark.parametrize("name", SEND_EVENTS)
async def test_bad_message_is_refused_and_nothing_is_stored(
    api: Api, scene: Scene, name: str, case: str
) -> None:
    event, role, _fields = TICKET_EVENTS[name]
    fields, must_mention = BAD_MESSAGES[case]
    client = scene.user_socket if role == "user" else scene.agent_socket
    err = await assert_refused(
        client, event, {"ticketId": scene.ticket_id, **fields}, expect_ticket=scene.ticket_id
    )
    if must_mention is not None:
        assert must_mention in err["message"], err
    await assert_untouched_then_usable(api, scene, client)


@pytest.mark.parametrize("name", SEND_EVENTS)
async def test_limits_are_inclusive(api: Api, scene: Scene, name: str) -> None:
    """Counterpart of the refusals: exactly 5000 characters and 10 attachments are fine."""
    event, role, _fields = TICKET_EVENTS[name]
    client = scene.user_socket if role == "user" else scene.agent_socket
    text = "y" * 5000
    ack = await client.call(
        event, {"ticketId": scene.ticket_id, "message": text, "attachments": [GOOD_FILE] * 10}
    )
    assert ack.get("success") is True, ack
    stored = (await get_ticket(api, scene.user, scene.ticket_id))["messages"][-1]
    assert stored["message"] == text
    assert len(stored["attachments"]) == 10


# --- typing / close / join specifics ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        pytest.param("user_typing", {"isTyping": "sometimes"}, id="user_typing-isTyping_text"),
        pytest.param("user_typing", {"isTyping": {"on": True}}, id="user_typing-isTyping_object"),
        pytest.param("admin_typing", {"isTyping": [True]}, id="admin_typing-isTyping_list"),
        pytest.param(
            "admin_close_chat", {"resolutionSummary": 123}, id="admin_close_chat-summary_number"
        ),
        pytest.param(
            "admin_close_chat", {"resolutionSummary": ["done"]}, id="admin_close_chat-summary_list"
        ),
        pytest.param(
            "admin_close_chat",
            {"resolutionSummary": "x" * 5001},
            id="admin_close_chat-summary_too_long",
        ),
        pytest.param(
            "join_chat_room", {"lastMessageId": "not-a-message"}, id="join_chat_room-lastId_bad"
        ),
        pytest.param(
            "join_chat_room", {"lastMessageId": UNKNOWN_ID}, id="join_chat_room-lastId_unknown"
        ),
        pytest.param("join_chat_room", {"lastMessageId": 7}, id="join_chat_room-lastId_number"),
        pytest.param("join_chat", {"lastMessageId": "not-a-message"}, id="join_chat-lastId_bad"),
        pytest.param("join_chat", {"lastMessageId": UNKNOWN_ID}, id="join_chat-lastId_unknown"),
    ],
)
async def test_bad_secondary_field_is_refused_without_side_effects(
    api: Api, scene: Scene, name: str, fields: dict[str, Any]
) -> None:
    event, role, _fields = TICKET_EVENTS[name]
    client = scene.user_socket if role == "user" else scene.agent_socket
    await assert_refused(
        client, event, {"ticketId": scene.ticket_id, **fields}, expect_ticket=scene.ticket_id
    )
    # A refused request changes nothing: no typing relayed, no close, no join/assignment.
    await assert_untouched_then_usable(api, scene, client)


async def test_everything_on_a_closed_chat_is_refused(api: Api, scene: Scene) -> None:
    ack = await scene.agent_socket.call("admin_close_chat", {"ticketId": scene.ticket_id})
    assert ack["success"] is True, ack
    t = scene.ticket_id
    for client, event, payload in [
        (scene.user_socket, "send_message", {"ticketId": t, "message": "late"}),
        (scene.user_socket, "user_typing", {"ticketId": t, "isTyping": True}),
        (scene.agent_socket, "admin_send_message", {"ticketId": t, "message": "late"}),
        (scene.agent_socket, "send_message", {"ticketId": t, "message": "late"}),
        (scene.agent_socket, "admin_typing", {"ticketId": t, "isTyping": True}),
        (scene.agent_socket, "join_chat", {"ticketId": t}),
    ]:
        err = await assert_refused(client, event, payload, expect_ticket=t)
        assert err["type"] == "chat_closed", (event, err)
    ticket = await get_ticket(api, scene.user, t)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]
    assert ticket["assignedTo"] is None
    await scene.user_socket.assert_no("agent_typing", within=0.2)
    await scene.agent_socket.assert_no("user_typing", within=0.0)
    scene.log.assert_no_traceback()


# --- many failures in a row, odd text ------------------------------------------------------


async def test_a_burst_of_garbage_leaves_the_socket_working(api: Api, scene: Scene) -> None:
    client = scene.user_socket
    t = scene.ticket_id
    garbage: list[Any] = [
        _MISSING, None, "x", 0, [], [None], {}, {"ticketId": None}, {"ticketId": 1.5},
        {"ticketId": {"ticketId": t}, "message": "nested"}, {"ticketId": "", "message": "x"},
    ]  # fmt: skip
    bad_sends: list[Any] = [
        {"ticketId": t, "message": {"$gt": ""}},
        {"ticketId": t, "message": "ok", "attachments": [None]},
        {"ticketId": t, "message": "ok", "attachments": [[]]},
        {"ticketId": t, "message": "ok", "attachments": {"length": 1}},
    ]
    for event in ("send_message", "join_chat_room", "user_typing"):
        for payload in garbage:
            await assert_refused(client, event, payload)
    for payload in bad_sends:
        await assert_refused(client, "send_message", payload, expect_ticket=t)
    await assert_untouched_then_usable(api, scene, client)


@pytest.mark.parametrize(
    "text",
    ["nul \u0000 inside", "lone surrogate \ud800 inside"],
    ids=["nul_character", "lone_surrogate"],
)
async def test_odd_characters_are_answered_and_never_a_server_fault(
    api: Api, scene: Scene, text: str
) -> None:
    """Text a browser can send (JSON.stringify escapes a lone surrogate as \\ud800, e.g.
    after slicing an emoji in half; NUL can be pasted). The ack must come, and it is
    either a success whose message reads back over REST, or a validation refusal; never a
    server fault. Either way the socket keeps working."""
    client = scene.user_socket
    ack = await client.call(
        "send_message", {"ticketId": scene.ticket_id, "message": text}, timeout=3.0
    )
    assert isinstance(ack, dict), ack
    if ack.get("success") is True:
        assert len((await get_ticket(api, scene.user, scene.ticket_id))["messages"]) == 2
        await scene.agent_socket.wait_for("user_message", of_ticket(scene.ticket_id))
    else:
        assert ack.get("code") != "INTERNAL_ERROR", ack
        err = await client.wait_for("chat_error")
        assert err["type"] == "validation_error", err
    assert client.connected
    ack = await client.call("send_message", {"ticketId": scene.ticket_id, "message": "after"})
    assert ack.get("success") is True, ack
    scene.log.assert_no_traceback()
