"""Input limits: request bodies and Engine.IO packets over the configured size, the message
length and attachment caps on both transports, and payload strings of the wrong type or
an absurd length.

Issue 4, item 2: the message-length cap applies identically on REST and Socket.IO;
request bodies and Engine.IO packets over ``max_http_buffer_size`` (default 64 KiB) are
refused without the server's memory growing; at most 10 attachments per message;
strings of the wrong type or absurd length get a clear error (400 / ``chat_error``,
never a 500 or a dropped connection).

The default 64 KiB is checked on the shared ``server``. Memory is measured on a
module-scoped SQLite server of this module's own (its pid is known, so /proc/<pid>/status
gives VmRSS and the peak VmHWM), configured with a 4 KiB limit, which also shows the
setting reaches both REST and Engine.IO.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

from support import (
    OPENING,
    Api,
    Person,
    PersonFactory,
    ServerInfo,
    SocketClient,
    SocketFactory,
    assert_chat_error,
    assert_failed_ack,
    close_fast,
    error_body,
    get_ticket,
    new_person,
    of_ticket,
    ok_call,
    ok_data,
    start_chat,
)
from support.server import running_server

DEFAULT_LIMIT = 64 * 1024  # SUPPORTCHAT_MAX_HTTP_BUFFER_SIZE by default, in bytes
SMALL_LIMIT = 4096  # the module server's
MAX_MESSAGE = 5000
MAX_ATTACHMENTS = 10
MiB = 1024 * 1024
KiB = 1024
GOOD_FILE = {"fileName": "a.png", "fileUrl": "https://files.example.com/a.png"}
JSON = {"Content-Type": "application/json"}
# An oversized long-polling POST: Engine.IO's own 400, or the REST body cap's 413 when
# that cap also stands in front of Engine.IO.
POLLING_REFUSALS = (400, 413)


# --- bodies of an exact size ---------------------------------------------------------------


def padded_body(size: int, message: str = "hi") -> bytes:
    """A JSON object of exactly ``size`` bytes: a valid message plus an ignored field."""
    head = json.dumps({"message": message, "padding": ""})[:-2].encode()  # ..."padding": "
    fill = size - len(head) - 2
    assert fill >= 0, size
    body = head + b"x" * fill + b'"}'
    assert len(body) == size
    return body


def long_message_body(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes whose message is far over 5000 characters."""
    fill = size - len(b'{"message": ""}')
    body = b'{"message": "' + b"m" * fill + b'"}'
    assert len(body) == size
    return body


async def chunks(body: bytes, size: int = 8 * KiB) -> AsyncIterator[bytes]:
    """A generator body: httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def chunked_zeros(total: int, size: int = 64 * KiB) -> AsyncIterator[bytes]:
    block = b"0" * size
    sent = 0
    while sent < total:
        yield block[: min(size, total - sent)]
        sent += size


def assert_too_large(resp: httpx.Response, limit: int = DEFAULT_LIMIT) -> None:
    body = error_body(resp, 413)
    assert body["code"] == "PAYLOAD_TOO_LARGE", body
    assert str(limit) in body["message"], body


async def post_raw(
    base_url: str, path: str, content: Any, token: Person | None = None
) -> httpx.Response:
    headers = {**JSON, **(token.auth_header if token else {})}
    async with httpx.AsyncClient(base_url=base_url, timeout=20.0) as http:
        return await http.post(path, content=content, headers=headers)


async def active_count(api: Api, who: Person) -> int:
    count: int = ok_data(await api.get("/api/chat/active", token=who))["count"]
    return count


# --- REST bodies: the default 64 KiB -------------------------------------------------------


@pytest.mark.parametrize("target", ["start", "send", "close", "unauthenticated"])
async def test_declared_body_over_the_limit_is_413(
    server: ServerInfo, api: Api, user: Person, agent: Person, target: str
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    path, who = {
        "start": ("/api/chat/start", user),
        "send": (f"/api/chat/{ticket_id}/message", user),
        "close": (f"/api/chat/admin/close/{ticket_id}", agent),
        "unauthenticated": ("/api/chat/start", None),
    }[target]
    resp = await post_raw(server.base_url, path, padded_body(DEFAULT_LIMIT + 1), who)
    assert_too_large(resp)
    ticket = await get_ticket(api, user, ticket_id)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]
    assert ticket["status"] == "open"


async def test_body_at_the_limit_is_handled_by_its_content(
    server: ServerInfo, api: Api, user_factory: PersonFactory
) -> None:
    """Exactly 64 KiB is read and judged: a good message starts a chat (201), a message
    of 65,000 characters is the usual 400 about length; one byte more is a 413."""
    ok_user, long_user, over_user = user_factory(), user_factory(), user_factory()
    resp = await post_raw(server.base_url, "/api/chat/start", padded_body(DEFAULT_LIMIT), ok_user)
    assert ok_data(resp, 201)["messages"][0]["message"] == "hi"
    resp = await post_raw(
        server.base_url, "/api/chat/start", long_message_body(DEFAULT_LIMIT), long_user
    )
    assert str(MAX_MESSAGE) in error_body(resp, 400)["message"]
    resp = await post_raw(
        server.base_url, "/api/chat/start", padded_body(DEFAULT_LIMIT + 1), over_user
    )
    assert_too_large(resp)
    assert await active_count(api, long_user) == 0
    assert await active_count(api, over_user) == 0


async def test_chunked_body_over_the_limit_is_413(
    server: ServerInfo, api: Api, user_factory: PersonFactory
) -> None:
    at_limit, over, far_over = user_factory(), user_factory(), user_factory()
    resp = await post_raw(
        server.base_url, "/api/chat/start", chunks(padded_body(DEFAULT_LIMIT)), at_limit
    )
    assert ok_data(resp, 201)["messages"][0]["message"] == "hi"
    resp = await post_raw(
        server.base_url, "/api/chat/start", chunks(padded_body(DEFAULT_LIMIT + 1)), over
    )
    assert_too_large(resp)
    resp = await post_raw(
        server.base_url, "/api/chat/start", chunks(padded_body(DEFAULT_LIMIT + 3000)), far_over
    )
    assert_too_large(resp)
    assert await active_count(api, over) == 0
    assert await active_count(api, far_over) == 0


async def test_small_chunked_body_is_handled_normally(
    server: ServerInfo, api: Api, user: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    body = json.dumps({"message": "sent in pieces"}).encode()
    resp = await post_raw(
        server.base_url, f"/api/chat/{ticket_id}/message", chunks(body, size=3), user
    )
    assert ok_data(resp)["messageId"]
    ticket = await get_ticket(api, user, ticket_id)
    assert [m["message"] for m in ticket["messages"]] == [OPENING, "sent in pieces"]


async def test_nothing_is_stored_or_announced_after_a_413(
    server: ServerInfo, api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    watcher = await sockets(agent)
    resp = await post_raw(
        server.base_url, "/api/chat/start", padded_body(DEFAULT_LIMIT + 1, "too big start"), user
    )
    assert_too_large(resp)
    assert await active_count(api, user) == 0
    history = ok_data(await api.get("/api/chat/history", token=user))
    assert history["pagination"]["totalChats"] == 0

    ticket_id = (await start_chat(api, user))["ticketId"]
    await watcher.wait_for("new_chat_ticket", of_ticket(ticket_id))
    resp = await post_raw(
        server.base_url,
        f"/api/chat/{ticket_id}/message",
        chunks(padded_body(DEFAULT_LIMIT + 1, "too big send")),
        user,
    )
    assert_too_large(resp)
    ticket = await get_ticket(api, user, ticket_id)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]
    await watcher.assert_no("user_message", of_ticket(ticket_id), within=0.5)


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_a_body_of_megabytes_still_gets_the_413_envelope(
    server: ServerInfo, user: Person, how: str
) -> None:
    """A client that sends far more than the limit (a pasted file, a script) should read
    the 413 envelope like one that sends a little more, not a reset connection."""
    size = 4 * MiB
    content: Any = b"0" * size if how == "declared" else chunked_zeros(size)
    try:
        resp = await post_raw(server.base_url, "/api/chat/start", content, user)
    except httpx.TransportError as exc:
        pytest.fail(f"{how} {size}-byte body: connection failed instead of a 413: {exc!r}")
    assert_too_large(resp)


# --- Engine.IO packets: the default 64 KiB -------------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_oversized_socketio_packet_is_refused_and_others_keep_being_served(
    api: Api,
    sockets: SocketFactory,
    user_factory: PersonFactory,
    agent: Person,
    transport: str,
) -> None:
    sender, other = user_factory(), user_factory()
    sender_ticket = (await start_chat(api, sender))["ticketId"]
    other_ticket = (await start_chat(api, other))["ticketId"]
    watcher = await sockets(agent)
    big = await sockets(sender, transports=[transport])
    bystander = await sockets(other, transports=[transport])
    try:
        await big.emit("send_message", {"ticketId": sender_ticket, "message": "b" * 100 * KiB})
        # Refused: over websocket Engine.IO closes the connection; over polling the POST
        # carrying it is answered 400/413 (and the client library gives that session up).
        if transport == "websocket":
            await big.wait_for("disconnect", timeout=10.0)
            assert not big.connected
        await watcher.assert_no("user_message", of_ticket(sender_ticket), within=1.0)
        # The other client, on the same transport, is served as before.
        ack = await ok_call(bystander, "send_message", {"ticketId": other_ticket, "message": "ok"})
        assert ack["data"]["messageId"]
        got = await watcher.wait_for("user_message", of_ticket(other_ticket))
        assert got["message"] == "ok"
        assert bystander.connected
    finally:
        await close_fast(big)
        await close_fast(bystander)
    # Nothing of the refused packet was stored or announced.
    ticket = await get_ticket(api, sender, sender_ticket)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]
    await watcher.assert_no("user_message", of_ticket(sender_ticket), within=0.3)
    # The sender can reconnect and go on.
    again = await sockets(sender, transports=[transport])
    try:
        await ok_call(again, "send_message", {"ticketId": sender_ticket, "message": "smaller"})
    finally:
        await close_fast(again)


async def test_packet_just_under_the_limit_is_handled_normally(
    api: Api, sockets: SocketFactory, user: Person
) -> None:
    """The cut-off is the packet size: 60 KiB of an ignored field is read and judged."""
    ticket_id = (await start_chat(api, user))["ticketId"]
    client = await sockets(user)
    ack = await ok_call(
        client,
        "send_message",
        {"ticketId": ticket_id, "message": "padded", "padding": "p" * 60 * KiB},
    )
    assert ack["data"]["messageId"]
    assert client.connected


# --- message length and attachments: identical on both transports --------------------------


def _text_of_ack_and_error(ack: Any, err: Any) -> str:
    assert_failed_ack(ack)
    assert_chat_error(err)
    assert err["message"] == ack["message"], (ack, err)
    message: str = ack["message"]
    return message


async def test_message_of_max_length_is_accepted_on_both_transports(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory
) -> None:
    text = "L" * MAX_MESSAGE
    rest_user, socket_user = user_factory(), user_factory()
    started = await start_chat(api, rest_user, text)
    assert started["messages"][0]["message"] == text
    resp = await api.post(
        f"/api/chat/{started['ticketId']}/message", token=rest_user, json={"message": text}
    )
    assert ok_data(resp)["messageId"]

    client = await sockets(socket_user)
    await ok_call(client, "start_chat", {"message": text})
    chat = await client.wait_for("chat_started")
    await ok_call(client, "send_message", {"ticketId": chat["ticketId"], "message": text})
    stored = await get_ticket(api, socket_user, chat["ticketId"])
    assert [m["message"] for m in stored["messages"]] == [text, text]


async def test_message_over_max_length_gets_the_same_refusal_on_both_transports(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory
) -> None:
    text = "L" * (MAX_MESSAGE + 1)
    user, newcomer = user_factory(), user_factory()
    ticket_id = (await start_chat(api, user))["ticketId"]

    rest_send = error_body(
        await api.post(f"/api/chat/{ticket_id}/message", token=user, json={"message": text})
    )["message"]
    rest_start = error_body(
        await api.post("/api/chat/start", token=newcomer, json={"message": text})
    )["message"]

    client = await sockets(user)
    ack = await client.call("send_message", {"ticketId": ticket_id, "message": text})
    socket_send = _text_of_ack_and_error(ack, await client.wait_for("chat_error"))
    fresh = await sockets(newcomer)
    ack = await fresh.call("start_chat", {"message": text})
    socket_start = _text_of_ack_and_error(ack, await fresh.wait_for("chat_error"))

    assert rest_send == socket_send == rest_start == socket_start, (
        rest_send,
        socket_send,
        rest_start,
        socket_start,
    )
    assert str(MAX_MESSAGE) in rest_send, rest_send
    ticket = await get_ticket(api, user, ticket_id)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]
    assert await active_count(api, newcomer) == 0
    assert client.connected and fresh.connected


async def test_ten_attachments_accepted_eleven_refused_alike_on_both_transports(
    api: Api, sockets: SocketFactory, user: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    ten = [{**GOOD_FILE, "fileName": f"f{i}.png"} for i in range(MAX_ATTACHMENTS)]
    eleven = [*ten, {**GOOD_FILE, "fileName": "f10.png"}]
    client = await sockets(user)

    resp = await api.post(
        f"/api/chat/{ticket_id}/message", token=user, json={"message": "ten", "attachments": ten}
    )
    assert ok_data(resp)["messageId"]
    await ok_call(
        client, "send_message", {"ticketId": ticket_id, "message": "ten", "attachments": ten}
    )

    rest = error_body(
        await api.post(
            f"/api/chat/{ticket_id}/message",
            token=user,
            json={"message": "eleven", "attachments": eleven},
        )
    )["message"]
    ack = await client.call(
        "send_message", {"ticketId": ticket_id, "message": "eleven", "attachments": eleven}
    )
    socket = _text_of_ack_and_error(ack, await client.wait_for("chat_error"))
    assert rest == socket, (rest, socket)
    assert str(MAX_ATTACHMENTS) in rest, rest

    ticket = await get_ticket(api, user, ticket_id)
    assert [m["message"] for m in ticket["messages"]] == [OPENING, "ten", "ten"]
    assert all(len(m["attachments"]) == MAX_ATTACHMENTS for m in ticket["messages"][1:])


# --- strings of the wrong type -------------------------------------------------------------

WRONG_TYPES: list[Any] = [42, 4.2, True, ["text"], {"text": "x"}]


def assert_rest_refused(resp: httpx.Response, field: str) -> dict[str, Any]:
    body = error_body(resp, 400)
    assert body["code"] == "VALIDATION_ERROR", body
    assert field in body["message"], body
    return body


async def assert_socket_refused(client: SocketClient, event: str, payload: Any, field: str) -> str:
    ack = await client.call(event, payload)
    err = await client.wait_for("chat_error")
    message = _text_of_ack_and_error(ack, err)
    assert err.get("code") == "VALIDATION_ERROR", err
    assert field in message, err
    assert client.connected, "a malformed payload must not drop the connection"
    assert client.events("disconnect") == []
    return message


@pytest.mark.parametrize("field", ["message", "category", "priority", "clientMessageId"])
async def test_rest_start_refuses_wrong_types(api: Api, user: Person, field: str) -> None:
    for value in WRONG_TYPES:
        payload = {"message": "hi", field: value}
        assert_rest_refused(await api.post("/api/chat/start", token=user, json=payload), field)
    assert await active_count(api, user) == 0


@pytest.mark.parametrize("field", ["message", "clientMessageId"])
async def test_rest_send_refuses_wrong_types(api: Api, user: Person, field: str) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    for value in WRONG_TYPES:
        payload = {"message": "hi", field: value}
        resp = await api.post(f"/api/chat/{ticket_id}/message", token=user, json=payload)
        assert_rest_refused(resp, field)
    ticket = await get_ticket(api, user, ticket_id)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]


async def test_rest_close_refuses_wrong_types(api: Api, user: Person, agent: Person) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    for value in WRONG_TYPES:
        resp = await api.post(
            f"/api/chat/admin/close/{ticket_id}", token=agent, json={"resolutionSummary": value}
        )
        assert_rest_refused(resp, "resolutionSummary")
    assert (await get_ticket(api, user, ticket_id))["status"] == "open"


@dataclass
class Scene:
    user: Person
    agent: Person
    ticket_id: str
    user_socket: SocketClient
    agent_socket: SocketClient


@pytest.fixture
async def scene(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory, agent_factory: PersonFactory
) -> Scene:
    user, agent = user_factory(), agent_factory()
    ticket_id = (await start_chat(api, user))["ticketId"]
    return Scene(user, agent, ticket_id, await sockets(user), await sockets(agent))


# event -> (role, the valid payload, fields to spoil one at a time)
SOCKET_FIELDS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "send_message": ("user", {"message": "hi"}, ["ticketId", "message", "clientMessageId"]),
    "admin_send_message": ("agent", {"message": "hi"}, ["ticketId", "message", "clientMessageId"]),
    "start_chat": (
        "user",
        {"message": "hi"},
        ["message", "category", "priority", "clientMessageId"],
    ),
    "admin_close_chat": ("agent", {}, ["ticketId", "resolutionSummary"]),
    "close_chat": ("agent", {}, ["ticketId", "resolutionSummary"]),
    "join_chat_room": ("user", {}, ["ticketId"]),
    "user_typing": ("user", {"isTyping": True}, ["ticketId"]),
    "get_chat_history": ("user", {}, ["ticketId"]),
    "rejoin_ticket": ("user", {}, ["ticketId"]),
    "join_chat": ("agent", {}, ["ticketId"]),
    "join_ticket": ("agent", {}, ["ticketId"]),
}
SOCKET_CASES = [
    (event, field) for event, (_r, _p, fields) in SOCKET_FIELDS.items() for field in fields
]


def _payload(scene: Scene, event: str, **changes: Any) -> dict[str, Any]:
    _role, base, _fields = SOCKET_FIELDS[event]
    payload = dict(base)
    if event != "start_chat":
        payload["ticketId"] = scene.ticket_id
    payload.update(changes)
    return payload


async def assert_ticket_untouched(api: Api, scene: Scene) -> None:
    ticket = await get_ticket(api, scene.user, scene.ticket_id)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]
    assert ticket["status"] == "open"
    assert ticket.get("assignedTo") in (None, {}), ticket


@pytest.mark.parametrize(
    ("event", "field"), SOCKET_CASES, ids=[f"{e}-{f}" for e, f in SOCKET_CASES]
)
async def test_socket_events_refuse_wrong_types(
    api: Api, scene: Scene, event: str, field: str
) -> None:
    role = SOCKET_FIELDS[event][0]
    client = scene.user_socket if role == "user" else scene.agent_socket
    for value in WRONG_TYPES:
        await assert_socket_refused(client, event, _payload(scene, event, **{field: value}), field)
    await assert_ticket_untouched(api, scene)
    # Still a working socket: a valid call on it succeeds.
    await ok_call(client, "get_chat_history", {"ticketId": scene.ticket_id})


# --- strings of an absurd length -----------------------------------------------------------

CLEAR = 1000  # characters: an error message longer than this is not a clear one


async def test_absurdly_long_category_or_priority_is_refused_clearly(
    api: Api, sockets: SocketFactory, user: Person
) -> None:
    """A 10 KB category or priority is refused, with a message that says what is wrong
    without repeating the 10 KB back."""
    client = await sockets(user)
    for field in ("category", "priority"):
        payload = {"message": "hi", field: "c" * 10 * KiB}
        rest = error_body(await api.post("/api/chat/start", token=user, json=payload))
        assert field in rest["message"], rest["message"][:300]
        socket = await assert_socket_refused(client, "start_chat", payload, field)
        for text in (rest["message"], socket):
            assert len(text) < CLEAR, f"{field}: a {len(text)}-character error message"
    assert await active_count(api, user) == 0


@pytest.mark.parametrize(
    ("event", "extra"),
    [
        ("send_message", {"message": "hi"}),
        ("join_chat_room", {}),
        ("user_typing", {"isTyping": True}),
        ("get_chat_history", {}),
        ("rejoin_ticket", {}),
    ],
)
async def test_one_kilobyte_ticket_id_is_refused_on_socketio(
    api: Api, scene: Scene, event: str, extra: dict[str, Any]
) -> None:
    message = await assert_socket_refused(
        scene.user_socket, event, {"ticketId": "f" * KiB, **extra}, "ticketId"
    )
    assert len(message) < CLEAR, message
    await assert_ticket_untouched(api, scene)


@pytest.mark.parametrize("event", ["admin_close_chat", "join_chat", "admin_send_message"])
async def test_one_kilobyte_ticket_id_is_refused_on_agent_events(
    api: Api, scene: Scene, event: str
) -> None:
    await assert_socket_refused(
        scene.agent_socket, event, {"ticketId": "f" * KiB, "message": "hi"}, "ticketId"
    )
    await assert_ticket_untouched(api, scene)


async def test_one_kilobyte_ticket_id_in_a_rest_path_is_not_found(
    api: Api, user: Person, agent: Person
) -> None:
    """On REST the ticket id is part of the path: a malformed one names no ticket (404,
    as CONTRACT.md says), never a 500."""
    long_id = "f" * KiB
    calls = [
        ("GET", f"/api/chat/{long_id}", user, None),
        ("GET", f"/api/chat/{long_id}/messages", user, None),
        ("POST", f"/api/chat/{long_id}/message", user, {"message": "hi"}),
        ("POST", f"/api/chat/admin/join/{long_id}", agent, None),
        ("POST", f"/api/chat/admin/close/{long_id}", agent, None),
    ]
    for method, path, who, body in calls:
        resp = await api.request(method, path, token=who, json=body)
        assert error_body(resp, 404)["code"] == "TICKET_NOT_FOUND", (method, path, resp.text)


async def test_client_message_id_of_65_characters_is_refused_on_both(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory
) -> None:
    user, newcomer = user_factory(), user_factory()
    ticket_id = (await start_chat(api, user))["ticketId"]
    too_long, longest = "k" * 65, "k" * 64
    client = await sockets(user)
    fresh = await sockets(newcomer)

    payload = {"message": "hi", "clientMessageId": too_long}
    assert_rest_refused(
        await api.post(f"/api/chat/{ticket_id}/message", token=user, json=payload),
        "clientMessageId",
    )
    assert_rest_refused(
        await api.post("/api/chat/start", token=newcomer, json=payload), "clientMessageId"
    )
    await assert_socket_refused(
        client, "send_message", {"ticketId": ticket_id, **payload}, "clientMessageId"
    )
    await assert_socket_refused(fresh, "start_chat", payload, "clientMessageId")
    assert await active_count(api, newcomer) == 0
    ticket = await get_ticket(api, user, ticket_id)
    assert [m["message"] for m in ticket["messages"]] == [OPENING]

    # 64 characters is the longest accepted.
    await ok_call(
        client, "send_message", {"ticketId": ticket_id, "message": "hi", "clientMessageId": longest}
    )


async def test_resolution_summary_over_5000_characters_is_refused_on_both(
    api: Api, scene: Scene
) -> None:
    summary = "s" * (MAX_MESSAGE + 1)
    resp = await api.post(
        f"/api/chat/admin/close/{scene.ticket_id}",
        token=scene.agent,
        json={"resolutionSummary": summary},
    )
    assert_rest_refused(resp, "resolutionSummary")
    await assert_socket_refused(
        scene.agent_socket,
        "admin_close_chat",
        {"ticketId": scene.ticket_id, "resolutionSummary": summary},
        "resolutionSummary",
    )
    await assert_ticket_untouched(api, scene)


# --- memory: a server of this module's own, with a 4 KiB limit -----------------------------


@dataclass(frozen=True)
class Limited:
    info: ServerInfo
    pid: int

    def memory_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the server process, in KiB."""
        fields: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]


@contextlib.contextmanager
def _limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    data_dir = tmp_path_factory.mktemp("small-buffer")
    env = {"SUPPORTCHAT_MAX_HTTP_BUFFER_SIZE": str(SMALL_LIMIT)}
    with running_server("sqlite-small-buffer", data_dir, env=env) as proc:
        assert proc.info is not None and proc.proc is not None
        yield Limited(proc.info, proc.proc.pid)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    with _limited_server(tmp_path_factory) as server:
        yield server


def ws_url(info: ServerInfo) -> str:
    return info.base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


async def raw_ws_send(info: ServerInfo, token: str, frame: str, compression: str | None) -> str:
    """Open a Socket.IO connection over a bare WebSocket and send ``frame``: "closed" when
    the server then closes the connection, "still open" when it does not."""
    async with ws_connect(ws_url(info), max_size=None, compression=compression) as ws:
        assert str(await ws.recv()).startswith("0")  # Engine.IO OPEN
        await ws.send("40" + json.dumps({"token": token}))
        assert str(await ws.recv()).startswith("40")  # Socket.IO CONNECT
        try:
            await ws.send(frame)
            async with asyncio.timeout(10.0):
                while True:  # whatever else comes (active_tickets), until the close
                    await ws.recv()
        except websockets.ConnectionClosed:
            return "closed"
        except TimeoutError:
            return "still open"


async def raw_polling_post(info: ServerInfo, token: str, content: Any) -> int | str:
    """Open a polling Socket.IO connection and POST ``content`` as its next payload, with
    a long-poll GET pending as every real client keeps one; the POST's status, or the
    name of the transport error it ended with."""
    params = {"EIO": "4", "transport": "polling"}
    async with httpx.AsyncClient(base_url=info.base_url, timeout=20.0) as http:
        resp = await http.get("/socket.io/", params=params)
        params["sid"] = json.loads(resp.text[1:])["sid"]
        await http.post("/socket.io/", params=params, content="40" + json.dumps({"token": token}))
        assert (await http.get("/socket.io/", params=params)).text.startswith("40")  # CONNECT
        poll = asyncio.ensure_future(http.get("/socket.io/", params=params))
        await asyncio.sleep(0.3)
        while poll.done():  # it brought something (active_tickets): poll again
            poll = asyncio.ensure_future(http.get("/socket.io/", params=params))
            await asyncio.sleep(0.3)
        try:
            resp = await http.post("/socket.io/", params=params, content=content)
            status: int | str = resp.status_code
        except httpx.TransportError as exc:
            status = type(exc).__name__
        finally:
            # Refused: the pending GET ends with the CLOSE packet; else stop it ourselves.
            try:
                await asyncio.wait_for(asyncio.shield(poll), 2.0)
            except (TimeoutError, httpx.TransportError):
                poll.cancel()
                with contextlib.suppress(BaseException):
                    await poll
        return status


async def test_oversized_polling_post_is_answered_promptly(small_server: Limited) -> None:
    """The refusal of an oversized polling POST must not wait for the client to poll:
    a client that POSTs without a GET pending (any client but the official ones) must
    get its 400 at once, not hold a request (and its session) open forever."""
    info = small_server.info
    user = new_person(info.secret)
    params = {"EIO": "4", "transport": "polling"}
    async with httpx.AsyncClient(base_url=info.base_url, timeout=5.0) as http:
        resp = await http.get("/socket.io/", params=params)
        params["sid"] = json.loads(resp.text[1:])["sid"]
        await http.post(
            "/socket.io/", params=params, content="40" + json.dumps({"token": user.token})
        )
        assert (await http.get("/socket.io/", params=params)).text.startswith("40")  # CONNECT
        try:
            resp = await http.post(
                "/socket.io/", params=params, content=send_frame("0" * 24, 2 * SMALL_LIMIT)
            )
        except httpx.ReadTimeout:
            pytest.fail("an oversized polling POST got no answer within 5 s")
    assert resp.status_code in POLLING_REFUSALS, resp.text


def send_frame(ticket_id: str, size: int) -> str:
    return "42" + json.dumps(["send_message", {"ticketId": ticket_id, "message": "w" * size}])


async def test_configured_limit_applies_to_rest_and_engineio(small_server: Limited) -> None:
    info = small_server.info
    user = new_person(info.secret)
    api = Api(info.base_url)
    try:
        resp = await post_raw(info.base_url, "/api/chat/start", padded_body(SMALL_LIMIT + 1), user)
        assert_too_large(resp, SMALL_LIMIT)
        resp = await post_raw(
            info.base_url, "/api/chat/start", chunks(padded_body(SMALL_LIMIT + 1)), user
        )
        assert_too_large(resp, SMALL_LIMIT)
        resp = await post_raw(info.base_url, "/api/chat/start", padded_body(SMALL_LIMIT), user)
        ticket_id = ok_data(resp, 201)["ticketId"]
        # A 4,500-character message is within the message cap but over this packet size.
        assert await raw_ws_send(info, user.token, send_frame(ticket_id, 4500), None) == "closed"
        refused = await raw_polling_post(info, user.token, send_frame(ticket_id, 4500))
        assert refused in POLLING_REFUSALS, refused
        # A 3,000-character one fits.
        client = SocketClient(info.base_url, user.token)
        await client.connect()
        try:
            await ok_call(client, "send_message", {"ticketId": ticket_id, "message": "w" * 3000})
        finally:
            await client.disconnect()
        ticket = await get_ticket(api, user, ticket_id)
        assert [len(m["message"]) for m in ticket["messages"]] == [2, 3000]
    finally:
        await api.aclose()


async def test_oversized_rest_bodies_do_not_grow_server_memory(small_server: Limited) -> None:
    info = small_server.info
    user = new_person(info.secret)
    big = padded_body(64 * KiB)

    async def oversized(i: int) -> httpx.Response:
        content: Any = big if i % 2 else chunks(big)
        return await post_raw(info.base_url, "/api/chat/start", content, user)

    async def refused(i: int) -> None:
        # A 413, or a reset connection: the server answers before the body is sent, and
        # a client still sending may lose the answer (see
        # test_a_body_of_megabytes_still_gets_the_413_envelope). Never anything else.
        try:
            resp = await oversized(i)
        except httpx.TransportError:
            return
        assert_too_large(resp, SMALL_LIMIT)

    for i in range(6):  # warm-up: first-time allocations are not growth
        await refused(i)
    rss_before, peak_before = small_server.memory_kib()
    for i in range(50):
        await refused(i)
    # And a few far larger ones, 16 MiB each: whatever the client makes of the answer,
    # the server must not have read them into memory.
    for i in range(4):
        content: Any = b"0" * 16 * MiB if i % 2 else chunked_zeros(16 * MiB)
        with contextlib.suppress(httpx.TransportError):
            await post_raw(info.base_url, "/api/chat/start", content, user)
    rss_after, peak_after = small_server.memory_kib()
    assert rss_after - rss_before < 20 * KiB, f"RSS grew {rss_after - rss_before} KiB"
    assert peak_after - peak_before < 8 * KiB, f"peak RSS grew {peak_after - peak_before} KiB"
    # Still serving, and nothing was stored.
    async with httpx.AsyncClient(base_url=info.base_url, timeout=5.0) as http:
        resp = await http.get("/api/chat/active", headers=user.auth_header)
    assert ok_data(resp)["count"] == 0


async def test_oversized_engineio_packets_do_not_grow_server_memory(small_server: Limited) -> None:
    info = small_server.info
    user = new_person(info.secret)
    api = Api(info.base_url)
    try:
        ticket_id = (await start_chat(api, user))["ticketId"]
        frame = send_frame(ticket_id, 100 * KiB)
        for _ in range(3):  # warm-up
            assert await raw_ws_send(info, user.token, frame, None) == "closed"
            assert await raw_polling_post(info, user.token, frame) in POLLING_REFUSALS
        rss_before, peak_before = small_server.memory_kib()
        for _ in range(25):
            assert await raw_ws_send(info, user.token, frame, None) == "closed"
            assert await raw_polling_post(info, user.token, frame) in POLLING_REFUSALS
        # Polling POSTs declaring 16 MiB, or sending it chunked, are not read either.
        # (Declared: refused from its Content-Length. Chunked: Engine.IO reads no payload
        # without a Content-Length and drops the rest unread.)
        declared = await raw_polling_post(info, user.token, b"0" * 16 * MiB)
        assert declared in POLLING_REFUSALS or isinstance(declared, str), declared  # or a reset
        await raw_polling_post(info, user.token, chunked_zeros(16 * MiB))
        rss_after, peak_after = small_server.memory_kib()
        assert rss_after - rss_before < 20 * KiB, f"RSS grew {rss_after - rss_before} KiB"
        assert peak_after - peak_before < 8 * KiB, f"peak grew {peak_after - peak_before} KiB"
        ticket = await get_ticket(api, user, ticket_id)
        assert [m["message"] for m in ticket["messages"]] == [OPENING]
        # The server keeps serving Socket.IO.
        client = SocketClient(info.base_url, user.token)
        await client.connect()
        try:
            await ok_call(client, "send_message", {"ticketId": ticket_id, "message": "still here"})
        finally:
            await client.disconnect()
    finally:
        await api.aclose()


@pytest.fixture
def fresh_small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    """A server of this test alone: its peak RSS has not been raised by other tests."""
    with _limited_server(tmp_path_factory) as server:
        yield server


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "permessage-deflate"])
async def test_huge_websocket_frame_is_refused_before_it_is_read(
    fresh_small_server: Limited, compression: str | None
) -> None:
    """A 15 MiB frame (or one that inflates to 15 MiB) far over the 4 KiB limit must be
    refused from its header, not buffered whole and then measured: the server's peak
    memory may not grow by anything like the frame's size."""
    info = fresh_small_server.info
    user = new_person(info.secret)
    frame = send_frame("0" * 24, 15 * MiB)
    # Warm-up on an ordinary oversized frame.
    assert await raw_ws_send(info, user.token, send_frame("0" * 24, 8 * KiB), None) == "closed"
    _rss, peak_before = fresh_small_server.memory_kib()
    assert await raw_ws_send(info, user.token, frame, compression) == "closed"
    _rss, peak_after = fresh_small_server.memory_kib()
    assert peak_after - peak_before < 8 * KiB, (
        f"a {len(frame)}-byte frame raised the server's peak RSS by "
        f"{peak_after - peak_before} KiB: it was read whole before being refused"
    )
