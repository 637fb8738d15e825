"""Rate limits of the API document (issue 4, item 1; CONTRACT.md "Limits").

REST requests per user, admin actions per agent, messages per chat (REST and Socket.IO
sends together), typing updates per person and chat (dropped, never refused), counted
in a moving window; shared between server processes through Redis when one is set.

These tests start their own server processes with small limits from the environment,
so a quota is spent in a handful of requests. Every test uses new people and new chats,
so no test spends another's quota, and nothing waits for a window to pass except the
one test that checks Retry-After is honest (on a server with a 2-second window).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from support.clients import Api, SocketClient, SocketFactory
from support.net import is_ci
from support.postgres import PostgresCluster, database_url_for
from support.redis_server import RedisServer, find_redis_server, start_redis
from support.server import ARTIFACTS_DIR, ServerInfo, ServerProcess, running_server
from support.tokens import AGENT_ROLE, Person, new_person

REST_LIMIT = 15  # per user per minute
ADMIN_LIMIT = 6  # per agent per minute
MESSAGE_LIMIT = 5  # per chat per minute
TYPING_LIMIT = 3  # per person and chat per 10 seconds
SMALL_LIMITS = {
    "SUPPORTCHAT_RATE_LIMIT_REST": f"{REST_LIMIT}/minute",
    "SUPPORTCHAT_RATE_LIMIT_ADMIN": f"{ADMIN_LIMIT}/minute",
    "SUPPORTCHAT_RATE_LIMIT_MESSAGES": f"{MESSAGE_LIMIT}/minute",
    "SUPPORTCHAT_RATE_LIMIT_TYPING": f"{TYPING_LIMIT}/10 seconds",
}
MINUTE = 60
QUIET = 0.3  # window for "this never arrives" checks, taken after a barrier event


# --- servers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Limited:
    """A running server (or one of a pair) and the secret its tokens are signed with."""

    info: ServerInfo

    @property
    def url(self) -> str:
        return self.info.base_url

    def user(self) -> Person:
        return new_person(self.info.secret)

    def agent(self) -> Person:
        return new_person(self.info.secret, role=AGENT_ROLE)


def _server(
    tmp_path_factory: pytest.TempPathFactory,
    label: str,
    env: dict[str, str],
    database_url: str | None = None,
    secret: str | None = None,
) -> contextlib.AbstractContextManager[ServerProcess]:
    data_dir = tmp_path_factory.mktemp(f"server-{label}")
    return running_server(label, data_dir, env=dict(env), database_url=database_url, secret=secret)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Limited]:
    """One server process with SMALL_LIMITS (counts in memory), per database."""
    database: str = request.param
    url = database_url_for(request, database)
    with _server(tmp_path_factory, f"ratelimits-{database}", SMALL_LIMITS, url) as proc:
        assert proc.info is not None
        yield Limited(proc.info)


@pytest.fixture
async def api(limited: Limited) -> AsyncIterator[Api]:
    client = Api(limited.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def sockets(limited: Limited) -> AsyncIterator[SocketFactory]:
    factory = SocketFactory(limited.url)
    try:
        yield factory
    finally:
        await factory.close_all()


# --- helpers -----------------------------------------------------------------------------


def data_of(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    body = resp.json()
    assert body["success"] is True, body
    return body["data"]


async def open_chat(api: Api, user: Person, text: str = "Hello, I need help") -> str:
    """A new chat (its opening message is part of creating it); its ticket id."""
    resp = await api.post("/api/chat/start", token=user, json={"message": text})
    ticket_id: str = data_of(resp, 201)["ticketId"]
    return ticket_id


async def rest_send(
    api: Api, who: Person, ticket_id: str, text: str, **extra: Any
) -> httpx.Response:
    return await api.post(
        f"/api/chat/{ticket_id}/message", token=who, json={"message": text, **extra}
    )


async def texts_of(api: Api, who: Person, ticket_id: str) -> list[str]:
    """The texts of a chat's stored messages, in order (GET /api/chat/:ticketId)."""
    ticket = data_of(await api.get(f"/api/chat/{ticket_id}", token=who))["ticket"]
    return [m["message"] for m in ticket["messages"]]


async def ticket_of(api: Api, who: Person, ticket_id: str) -> dict[str, Any]:
    ticket: dict[str, Any] = data_of(await api.get(f"/api/chat/{ticket_id}", token=who))["ticket"]
    return ticket


async def ok_call(client: SocketClient, event: str, data: Any = None) -> dict[str, Any]:
    ack = await client.call(event, data)
    assert isinstance(ack, dict) and ack.get("success") is True, f"{event}: {ack}"
    return ack


async def socket_send(client: SocketClient, event: str, ticket_id: str, text: str) -> str:
    """A send over Socket.IO that must succeed: ack and message_sent; the message id."""
    ack = await ok_call(client, event, {"ticketId": ticket_id, "message": text})
    message_id: str = ack["data"]["messageId"]
    await client.wait_for("message_sent", lambda d: d.get("messageId") == message_id)
    return message_id


def with_text(ticket_id: str, text: str) -> Any:
    return lambda d: (
        isinstance(d, dict) and d.get("ticketId") == ticket_id and d.get("message") == text
    )


def assert_rate_limited(resp: httpx.Response, limit: int, window: int = MINUTE) -> int:
    """A 429 refusal: the envelope says when to retry, Retry-After is whole seconds within
    the window, and X-RateLimit-* describe the quota that refused (whether they also carry
    other values is checked by test_refusal_carries_one_set_of_limit_headers). Returns
    Retry-After."""
    assert resp.status_code == 429, f"expected 429, got {resp.status_code}: {resp.text}"
    body = resp.json()
    assert body["success"] is False, body
    assert set(body) <= {"success", "message", "code", "errors"}, body
    assert body.get("code") == "RATE_LIMITED", body
    retry_after_values = resp.headers.get_list("Retry-After")
    assert len(retry_after_values) == 1, resp.headers
    assert retry_after_values[0].isdigit(), resp.headers
    retry_after = int(retry_after_values[0])
    assert 0 < retry_after <= window, retry_after
    message = body["message"]
    assert isinstance(message, str), body
    assert "retry" in message.lower() and f"{retry_after} second" in message, message
    assert str(limit) in resp.headers.get_list("X-RateLimit-Limit"), resp.headers
    assert "0" in resp.headers.get_list("X-RateLimit-Remaining"), resp.headers
    now = time.time()
    resets = [int(v) for v in resp.headers.get_list("X-RateLimit-Reset")]
    assert resets and any(now - 1 <= r <= now + window + 1 for r in resets), (resets, now)
    return retry_after


def assert_one_window(resp: httpx.Response, limit: int) -> None:
    """Each X-RateLimit-* header of a refusal once, for the quota that refused."""
    assert resp.headers.get_list("X-RateLimit-Limit") == [str(limit)], resp.headers
    assert resp.headers.get_list("X-RateLimit-Remaining") == ["0"], resp.headers
    assert len(resp.headers.get_list("X-RateLimit-Reset")) == 1, resp.headers


def assert_window(resp: httpx.Response, limit: int, remaining: int) -> int:
    """X-RateLimit-* of a successful response (once each); returns the reset time."""
    assert resp.headers.get_list("X-RateLimit-Limit") == [str(limit)], resp.headers
    assert resp.headers.get_list("X-RateLimit-Remaining") == [str(remaining)], resp.headers
    reset_values = resp.headers.get_list("X-RateLimit-Reset")
    assert len(reset_values) == 1 and reset_values[0].isdigit(), resp.headers
    reset = int(reset_values[0])
    now = time.time()
    assert now <= reset <= now + MINUTE + 1, (reset, now)
    return reset


def assert_socket_refusal(ack: Any, error: Any, ticket_id: str, window: int = MINUTE) -> None:
    """A failed ack and a chat_error, both rate_limited with the same retryAfter."""
    assert isinstance(ack, dict) and ack.get("success") is False, ack
    assert isinstance(ack.get("message"), str) and ack["message"], ack
    assert ack.get("code") == "RATE_LIMITED", ack
    retry_after = ack.get("retryAfter")
    assert isinstance(retry_after, int) and 0 < retry_after <= window, ack
    assert isinstance(error, dict), error
    assert error.get("type") == "rate_limited", error
    assert error.get("ticketId") == ticket_id, error
    assert isinstance(error.get("message"), str) and error["message"], error
    assert error.get("retryAfter") == retry_after, (error, ack)


async def refused_over_socket(
    client: SocketClient, event: str, data: dict[str, Any], ticket_id: str
) -> None:
    ack = await client.call(event, data)
    error = await client.wait_for("chat_error", lambda d: d.get("type") == "rate_limited")
    assert_socket_refusal(ack, error, ticket_id)


async def user_barrier(
    user_socket: SocketClient, agent_socket: SocketClient, ticket_id: str
) -> None:
    """Whatever the server queued for the agent's socket before now has arrived: the user
    types, and the agent sees it (costs the user one typing update)."""
    ack = await ok_call(user_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True})
    assert ack["data"]["delivered"] is True, ack
    await agent_socket.wait_for("user_typing", lambda d: d.get("ticketId") == ticket_id)


# --- REST requests per user --------------------------------------------------------------


async def test_rest_window_headers_count_down_then_429(api: Api, limited: Limited) -> None:
    user = limited.user()
    resets = []
    for used in range(1, REST_LIMIT + 1):
        resp = await api.get("/api/chat/active", token=user)
        data_of(resp)
        resets.append(assert_window(resp, REST_LIMIT, REST_LIMIT - used))
    # Moving window: the quota frees up a minute after the first request, not later.
    assert max(resets) - min(resets) <= 1, resets

    refused = await api.get("/api/chat/active", token=user)
    retry_after = assert_rate_limited(refused, REST_LIMIT)
    assert retry_after > MINUTE - 15, retry_after  # the first request was seconds ago
    assert int(refused.headers["X-RateLimit-Reset"]) <= max(resets) + 1

    # Every endpoint counts against the same quota, and a refused request does nothing.
    refused_start = await api.post("/api/chat/start", token=user, json={"message": "hi"})
    assert_rate_limited(refused_start, REST_LIMIT)
    agent = limited.agent()
    queue = data_of(await api.get("/api/chat/admin/active", token=agent))["chats"]
    assert all(chat["userId"]["_id"] != user.id for chat in queue), queue


async def test_rest_limit_is_per_user(api: Api, limited: Limited) -> None:
    spent, other = limited.user(), limited.user()
    for _ in range(REST_LIMIT):
        data_of(await api.get("/api/chat/active", token=spent))
    assert_rate_limited(await api.get("/api/chat/history", token=spent), REST_LIMIT)

    resp = await api.get("/api/chat/history", token=other)
    data_of(resp)
    assert_window(resp, REST_LIMIT, REST_LIMIT - 1)
    # An agent's REST quota is their own too.
    agent = limited.agent()
    resp = await api.get("/api/chat/active", token=agent)
    data_of(resp)
    assert_window(resp, REST_LIMIT, REST_LIMIT - 1)


async def test_refused_tokens_are_not_charged_to_the_user(api: Api, limited: Limited) -> None:
    """Only authenticated requests count: requests with the user's expired token (401)
    leave the user's quota whole."""
    user = limited.user()
    expired = new_person(limited.info.secret, user_id=user.id, expires_in=-60)
    for _ in range(REST_LIMIT + 2):
        resp = await api.get("/api/chat/active", token=expired)
        assert resp.status_code == 401, resp.text
        assert "X-RateLimit-Limit" not in resp.headers, resp.headers
    resp = await api.get("/api/chat/active", token=user)
    data_of(resp)
    assert_window(resp, REST_LIMIT, REST_LIMIT - 1)


# --- messages per chat -------------------------------------------------------------------


async def test_sixth_message_is_refused_across_rest_and_socket_sends(
    api: Api, sockets: SocketFactory, limited: Limited
) -> None:
    user, agent = limited.user(), limited.agent()
    ticket_id = await open_chat(api, user)
    user_socket = await sockets(user)
    agent_socket = await sockets(agent)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})  # agent admin action 1

    # Five messages, by both sides over both transports, all count against the chat.
    data_of(await rest_send(api, user, ticket_id, "m1 user rest"))
    await socket_send(user_socket, "send_message", ticket_id, "m2 user socket")
    await socket_send(agent_socket, "admin_send_message", ticket_id, "m3 agent socket")
    data_of(await rest_send(api, agent, ticket_id, "m4 agent rest"))
    await socket_send(agent_socket, "send_message", ticket_id, "m5 agent compat send")
    await agent_socket.wait_for("new_message", with_text(ticket_id, "m2 user socket"))
    await user_socket.wait_for("new_message", with_text(ticket_id, "m5 agent compat send"))

    # The sixth, over Socket.IO: chat_error and a failed ack, no message_sent.
    await refused_over_socket(
        user_socket, "send_message", {"ticketId": ticket_id, "message": "six"}, ticket_id
    )
    # Over REST: 429 that describes the chat's quota.
    assert_rate_limited(await rest_send(api, user, ticket_id, "seven"), MESSAGE_LIMIT)
    # The agent's replies count against the chat as well.
    await refused_over_socket(
        agent_socket,
        "admin_send_message",
        {"ticketId": ticket_id, "message": "eight"},
        ticket_id,
    )
    assert_rate_limited(await rest_send(api, agent, ticket_id, "nine"), MESSAGE_LIMIT)

    # Nothing refused was stored...
    assert await texts_of(api, user, ticket_id) == [
        "Hello, I need help",
        "m1 user rest",
        "m2 user socket",
        "m3 agent socket",
        "m4 agent rest",
        "m5 agent compat send",
    ]
    # ...or delivered: the agent's socket sees the user type after the refusals, and
    # none of the refused messages before that.
    await user_barrier(user_socket, agent_socket, ticket_id)
    for text in ("six", "seven"):
        await agent_socket.assert_no("new_message", with_text(ticket_id, text), within=QUIET)
    for text in ("eight", "nine"):
        await user_socket.assert_no("new_message", with_text(ticket_id, text), within=0)
    await user_socket.assert_no("message_sent", within=0)
    await agent_socket.assert_no("message_sent", within=0)
    await user_socket.assert_no("error", within=0)


async def test_refusal_carries_one_set_of_limit_headers(api: Api, limited: Limited) -> None:
    """A 429 of the chat's message quota, or of the agent's admin quota, describes that
    quota once: not that limit and the sender's REST window side by side (two values of
    X-RateLimit-Limit that clients cannot tell apart). The REST quota's own 429 does."""
    user, agent = limited.user(), limited.agent()
    ticket_id = await open_chat(api, user)
    for n in range(MESSAGE_LIMIT):
        data_of(await rest_send(api, user, ticket_id, f"m{n}"))
    over_messages = await rest_send(api, user, ticket_id, "over")
    assert_rate_limited(over_messages, MESSAGE_LIMIT)

    for _ in range(ADMIN_LIMIT):
        data_of(await api.get("/api/chat/admin/active", token=agent))
    over_admin = await api.get("/api/chat/admin/active", token=agent)
    assert_rate_limited(over_admin, ADMIN_LIMIT)

    for _ in range(REST_LIMIT - MESSAGE_LIMIT - 2):
        data_of(await api.get("/api/chat/active", token=user))
    over_rest = await api.get("/api/chat/active", token=user)
    assert_rate_limited(over_rest, REST_LIMIT)

    assert_one_window(over_rest, REST_LIMIT)
    assert_one_window(over_messages, MESSAGE_LIMIT)
    assert_one_window(over_admin, ADMIN_LIMIT)


async def test_message_limit_is_per_chat(api: Api, limited: Limited) -> None:
    spender, other = limited.user(), limited.user()
    spent_ticket = await open_chat(api, spender)
    other_ticket = await open_chat(api, other)
    for n in range(MESSAGE_LIMIT):
        data_of(await rest_send(api, spender, spent_ticket, f"m{n}"))
    assert_rate_limited(await rest_send(api, spender, spent_ticket, "over"), MESSAGE_LIMIT)

    for n in range(MESSAGE_LIMIT - 1):
        data_of(await rest_send(api, other, other_ticket, f"other {n}"))
    # An agent refused in the spent chat can still reply in another one.
    agent = limited.agent()
    assert_rate_limited(await rest_send(api, agent, spent_ticket, "reply"), MESSAGE_LIMIT)
    data_of(await rest_send(api, agent, other_ticket, "reply elsewhere"))
    assert_rate_limited(await rest_send(api, other, other_ticket, "over"), MESSAGE_LIMIT)


async def test_message_to_existing_chat_through_start_counts(api: Api, limited: Limited) -> None:
    """POST /api/chat/start with an active chat appends to it: that is a message too."""
    user = limited.user()
    ticket_id = await open_chat(api, user)
    for n in range(MESSAGE_LIMIT):
        resp = await api.post("/api/chat/start", token=user, json={"message": f"again {n}"})
        assert data_of(resp)["isExisting"] is True
    assert_rate_limited(
        await api.post("/api/chat/start", token=user, json={"message": "over"}), MESSAGE_LIMIT
    )
    texts = await texts_of(api, user, ticket_id)
    assert texts == ["Hello, I need help"] + [f"again {n}" for n in range(MESSAGE_LIMIT)]


async def test_repeated_client_message_id_is_not_charged(
    api: Api, sockets: SocketFactory, limited: Limited
) -> None:
    user = limited.user()
    ticket_id = await open_chat(api, user)
    user_socket = await sockets(user)
    first = data_of(await rest_send(api, user, ticket_id, "once", clientMessageId="c-1"))
    assert first["duplicate"] is False
    for _ in range(3):  # a client resending after a timeout, over REST...
        again = data_of(await rest_send(api, user, ticket_id, "once", clientMessageId="c-1"))
        assert (again["messageId"], again["duplicate"]) == (first["messageId"], True)
    for _ in range(3):  # ...and over Socket.IO
        ack = await ok_call(
            user_socket,
            "send_message",
            {"ticketId": ticket_id, "message": "once", "clientMessageId": "c-1"},
        )
        assert (ack["data"]["messageId"], ack["data"]["duplicate"]) == (first["messageId"], True)

    for n in range(2, MESSAGE_LIMIT + 1):  # the repeats left the chat its whole quota
        data_of(await rest_send(api, user, ticket_id, f"m{n}", clientMessageId=f"c-{n}"))
    assert_rate_limited(
        await rest_send(api, user, ticket_id, "over", clientMessageId="c-over"), MESSAGE_LIMIT
    )
    # A resend of a stored message still gets its answer when the chat's quota is spent.
    again = data_of(await rest_send(api, user, ticket_id, "once", clientMessageId="c-1"))
    assert (again["messageId"], again["duplicate"]) == (first["messageId"], True)
    texts = await texts_of(api, user, ticket_id)
    assert texts == ["Hello, I need help", "once", "m2", "m3", "m4", "m5"]


async def test_concurrent_sends_store_exactly_the_quota(api: Api, limited: Limited) -> None:
    user = limited.user()
    ticket_id = await open_chat(api, user)
    attempts = 2 * MESSAGE_LIMIT
    responses = await asyncio.gather(
        *(rest_send(api, user, ticket_id, f"burst {n}") for n in range(attempts))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * MESSAGE_LIMIT + [429] * (attempts - MESSAGE_LIMIT), statuses
    stored = await texts_of(api, user, ticket_id)
    accepted = {f"burst {n}" for n, r in enumerate(responses) if r.status_code == 200}
    assert len(stored) == 1 + MESSAGE_LIMIT and set(stored[1:]) == accepted, stored


# --- admin actions per agent -------------------------------------------------------------


async def test_seventh_admin_action_is_refused_and_changes_nothing(
    api: Api, sockets: SocketFactory, limited: Limited
) -> None:
    agent, other_agent = limited.agent(), limited.agent()
    users = [limited.user() for _ in range(3)]
    t1, t2, t3 = [await open_chat(api, u) for u in users]
    agent_socket = await sockets(agent)
    watcher_socket = await sockets(other_agent)  # all agents hear of assignments
    owner3_socket = await sockets(users[2])

    # Six admin actions of every kind, over REST and Socket.IO.
    data_of(await api.post(f"/api/chat/admin/join/{t1}", token=agent))  # 1
    await ok_call(agent_socket, "join_chat", {"ticketId": t2})  # 2
    data_of(await api.get("/api/chat/admin/active", token=agent))  # 3
    await ok_call(agent_socket, "get_active_chats")  # 4 (compatibility event)
    await socket_send(agent_socket, "admin_send_message", t1, "agent reply")  # 5
    data_of(await api.post(f"/api/chat/admin/close/{t2}", token=agent))  # 6

    # The seventh of any kind is refused.
    assert_rate_limited(await api.post(f"/api/chat/admin/join/{t3}", token=agent), ADMIN_LIMIT)
    await refused_over_socket(agent_socket, "join_chat", {"ticketId": t3}, t3)
    await refused_over_socket(agent_socket, "admin_close_chat", {"ticketId": t1}, t1)
    await refused_over_socket(
        agent_socket, "admin_send_message", {"ticketId": t1, "message": "refused reply"}, t1
    )
    assert_rate_limited(await api.post(f"/api/chat/admin/close/{t1}", token=agent), ADMIN_LIMIT)
    assert_rate_limited(await api.get("/api/chat/admin/active", token=agent), ADMIN_LIMIT)
    ack = await agent_socket.call("get_active_chats")
    assert ack.get("success") is False and ack.get("retryAfter"), ack

    # ...and changed nothing: t3 is still open and nobody's, t1 still in progress with
    # only the reply that was accepted. (Reading a ticket is not an admin action.)
    reader = limited.agent()
    ticket3 = await ticket_of(api, reader, t3)
    assert ticket3["status"] == "open" and ticket3["assignedTo"] is None, ticket3
    ticket1 = await ticket_of(api, reader, t1)
    assert ticket1["status"] == "in_progress", ticket1
    assert [m["message"] for m in ticket1["messages"]] == ["Hello, I need help", "agent reply"]

    # Another agent is unaffected; their join is the barrier after which nothing of the
    # refused join can still be on its way.
    joined = data_of(await api.post(f"/api/chat/admin/join/{t3}", token=other_agent))
    assert joined["ticketId"] == t3
    await owner3_socket.wait_for("agent_joined", lambda d: d.get("agentId") == other_agent.id)
    await owner3_socket.assert_no(
        "agent_joined", lambda d: d.get("agentId") == agent.id, within=QUIET
    )
    await watcher_socket.wait_for("chat_assigned", lambda d: d.get("ticketId") == t3)
    await watcher_socket.assert_no("chat_assigned", lambda d: d.get("ticketId") == t3, within=0)
    await watcher_socket.assert_no("chat_closed", lambda d: d.get("ticketId") == t1, within=0)
    assert (await ticket_of(api, reader, t3))["assignedTo"]["_id"] == other_agent.id


async def test_refused_agent_reply_is_not_charged_to_the_chat(
    api: Api, sockets: SocketFactory, limited: Limited
) -> None:
    """A reply refused because the agent is over their admin quota is not a message of
    the chat: the chat keeps its whole message quota."""
    agent, user = limited.agent(), limited.user()
    ticket_id = await open_chat(api, user)
    for _ in range(ADMIN_LIMIT):
        data_of(await api.get("/api/chat/admin/active", token=agent))
    agent_socket = await sockets(agent)
    for n in range(3):
        await refused_over_socket(
            agent_socket,
            "admin_send_message",
            {"ticketId": ticket_id, "message": f"refused {n}"},
            ticket_id,
        )
    for n in range(MESSAGE_LIMIT):
        data_of(await rest_send(api, user, ticket_id, f"user {n}"))


async def test_refused_message_is_not_charged_to_the_agent(api: Api, limited: Limited) -> None:
    """An agent reply refused because the chat is over its message quota leaves the
    agent's admin quota as it was."""
    agent, user = limited.agent(), limited.user()
    ticket_id = await open_chat(api, user)
    for n in range(MESSAGE_LIMIT):
        data_of(await rest_send(api, user, ticket_id, f"user {n}"))
    for _ in range(3):
        assert_rate_limited(await rest_send(api, agent, ticket_id, "reply"), MESSAGE_LIMIT)
    for _ in range(ADMIN_LIMIT):
        data_of(await api.get("/api/chat/admin/active", token=agent))
    assert_rate_limited(await api.get("/api/chat/admin/active", token=agent), ADMIN_LIMIT)


# --- typing ------------------------------------------------------------------------------


async def test_typing_over_quota_is_dropped_silently(
    api: Api, sockets: SocketFactory, limited: Limited
) -> None:
    user, agent = limited.user(), limited.agent()
    ticket_id = await open_chat(api, user)
    user_socket = await sockets(user)
    agent_socket = await sockets(agent)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    typing = {"ticketId": ticket_id, "isTyping": True}

    for _ in range(TYPING_LIMIT):
        ack = await ok_call(user_socket, "user_typing", typing)
        assert ack["data"]["delivered"] is True, ack
        await agent_socket.wait_for("user_typing", lambda d: d.get("ticketId") == ticket_id)
    for _ in range(3):
        ack = await ok_call(user_socket, "user_typing", typing)
        assert ack["data"]["delivered"] is False, ack

    # Barrier: a message sent after the dropped updates reaches the agent; none of
    # them arrived before it.
    data_of(await rest_send(api, user, ticket_id, "after typing"))
    await agent_socket.wait_for("new_message", with_text(ticket_id, "after typing"))
    await agent_socket.assert_no("user_typing", within=QUIET)
    assert len(agent_socket.events("user_typing")) == TYPING_LIMIT
    # Dropping is silent: no error of any kind to the typist.
    await user_socket.assert_no("chat_error", within=0)
    await user_socket.assert_no("error", within=0)

    # The quota is per person: the agent's typing still reaches the user.
    ack = await ok_call(agent_socket, "admin_typing", typing)
    assert ack["data"]["delivered"] is True, ack
    await user_socket.wait_for("agent_typing", lambda d: d.get("ticketId") == ticket_id)
    for _ in range(TYPING_LIMIT):
        await ok_call(agent_socket, "admin_typing", {**typing, "isTyping": False})
    ack = await ok_call(agent_socket, "admin_typing", typing)
    assert ack["data"]["delivered"] is False, ack


# --- settings: disabled, and a short window --------------------------------------------


@pytest.fixture(scope="module")
def unlimited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    """Tiny limits, but SUPPORTCHAT_RATE_LIMITS_ENABLED=false."""
    env = {
        "SUPPORTCHAT_RATE_LIMITS_ENABLED": "false",
        "SUPPORTCHAT_RATE_LIMIT_REST": "2/minute",
        "SUPPORTCHAT_RATE_LIMIT_ADMIN": "1/minute",
        "SUPPORTCHAT_RATE_LIMIT_MESSAGES": "1/minute",
        "SUPPORTCHAT_RATE_LIMIT_TYPING": "1/minute",
    }
    with _server(tmp_path_factory, "ratelimits-disabled", env) as proc:
        assert proc.info is not None
        yield Limited(proc.info)


async def test_disabled_limits_refuse_nothing(unlimited: Limited) -> None:
    user, agent = unlimited.user(), unlimited.agent()
    api = Api(unlimited.url)
    sockets = SocketFactory(unlimited.url)
    try:
        ticket_id = await open_chat(api, user)
        for n in range(5):
            data_of(await rest_send(api, user, ticket_id, f"m{n}"))
            data_of(await rest_send(api, agent, ticket_id, f"reply {n}"))
        for _ in range(3):
            data_of(await api.get("/api/chat/admin/active", token=agent))
        user_socket = await sockets(user)
        agent_socket = await sockets(agent)
        await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
        for _ in range(3):
            ack = await ok_call(
                user_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True}
            )
            assert ack["data"]["delivered"] is True, ack
        assert len(await texts_of(api, user, ticket_id)) == 11
    finally:
        await sockets.close_all()
        await api.aclose()


@pytest.fixture(scope="module")
def short_window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    """REST 3 per 2 seconds, so a test can wait out the window."""
    env = {**SMALL_LIMITS, "SUPPORTCHAT_RATE_LIMIT_REST": "3/2 seconds"}
    with _server(tmp_path_factory, "ratelimits-short", env) as proc:
        assert proc.info is not None
        yield Limited(proc.info)


async def test_retry_after_is_honest(short_window: Limited) -> None:
    user = short_window.user()
    api = Api(short_window.url)
    try:
        for _ in range(3):
            data_of(await api.get("/api/chat/active", token=user))
        retry_after = assert_rate_limited(await api.get("/api/chat/active", token=user), 3, 2)
        await asyncio.sleep(retry_after)  # at most the 2-second window
        data_of(await api.get("/api/chat/active", token=user))
    finally:
        await api.aclose()


# --- shared counts through Redis ---------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server (no persistence) for the whole session."""
    binary = find_redis_server()
    if binary is None:
        msg = "redis-server not found: run `make install-test`"
        if is_ci():
            pytest.fail(msg, pytrace=False)  # CI must exercise shared limits, never skip
        pytest.skip(msg)
    server = start_redis(binary)
    try:
        yield server
    finally:
        server.cleanup(keep_log_in=ARTIFACTS_DIR)


@pytest.fixture(scope="module")
def shared_pair(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
) -> Iterator[tuple[Limited, Limited]]:
    """Two server processes on one PostgreSQL database, counting in one Redis."""
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    env = {**SMALL_LIMITS, "SUPPORTCHAT_REDIS_URL": redis_server.url}
    with (
        _server(tmp_path_factory, "ratelimits-redis-a", env, cluster.url) as first,
        _server(tmp_path_factory, "ratelimits-redis-b", env, cluster.url, first.secret) as second,
    ):
        assert first.info is not None and second.info is not None
        yield Limited(first.info), Limited(second.info)


@pytest.fixture
async def pair_clients(
    shared_pair: tuple[Limited, Limited],
) -> AsyncIterator[tuple[Api, Api, SocketFactory, SocketFactory]]:
    a, b = shared_pair
    api_a, api_b = Api(a.url), Api(b.url)
    sockets_a, sockets_b = SocketFactory(a.url), SocketFactory(b.url)
    try:
        yield api_a, api_b, sockets_a, sockets_b
    finally:
        await asyncio.gather(sockets_a.close_all(), sockets_b.close_all())
        await asyncio.gather(api_a.aclose(), api_b.aclose())


async def test_message_count_is_shared_between_processes(
    shared_pair: tuple[Limited, Limited],
    pair_clients: tuple[Api, Api, SocketFactory, SocketFactory],
) -> None:
    a, _b = shared_pair
    api_a, api_b, sockets_a, sockets_b = pair_clients
    user = a.user()
    ticket_id = await open_chat(api_a, user)
    socket_a = await sockets_a(user)
    socket_b = await sockets_b(user)

    data_of(await rest_send(api_a, user, ticket_id, "m1 on a"))
    await socket_send(socket_b, "send_message", ticket_id, "m2 on b")
    data_of(await rest_send(api_b, user, ticket_id, "m3 on b"))
    await socket_send(socket_a, "send_message", ticket_id, "m4 on a")
    data_of(await rest_send(api_a, user, ticket_id, "m5 on a"))

    assert_rate_limited(await rest_send(api_b, user, ticket_id, "six on b"), MESSAGE_LIMIT)
    await refused_over_socket(
        socket_a, "send_message", {"ticketId": ticket_id, "message": "seven on a"}, ticket_id
    )
    assert_rate_limited(await rest_send(api_a, user, ticket_id, "eight on a"), MESSAGE_LIMIT)
    texts = await texts_of(api_b, user, ticket_id)
    assert texts == ["Hello, I need help", "m1 on a", "m2 on b", "m3 on b", "m4 on a", "m5 on a"]


async def test_concurrent_sends_through_both_processes_store_exactly_the_quota(
    shared_pair: tuple[Limited, Limited],
    pair_clients: tuple[Api, Api, SocketFactory, SocketFactory],
) -> None:
    a, _b = shared_pair
    api_a, api_b, _, _ = pair_clients
    user = a.user()
    ticket_id = await open_chat(api_a, user)
    attempts = 2 * MESSAGE_LIMIT
    responses = await asyncio.gather(
        *(
            rest_send(api_a if n % 2 else api_b, user, ticket_id, f"burst {n}")
            for n in range(attempts)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * MESSAGE_LIMIT + [429] * (attempts - MESSAGE_LIMIT), statuses
    assert len(await texts_of(api_b, user, ticket_id)) == 1 + MESSAGE_LIMIT


async def test_rest_count_is_shared_between_processes(
    shared_pair: tuple[Limited, Limited],
    pair_clients: tuple[Api, Api, SocketFactory, SocketFactory],
) -> None:
    a, _b = shared_pair
    api_a, api_b, _, _ = pair_clients
    user = a.user()
    for used in range(1, REST_LIMIT + 1):
        api = api_a if used % 2 else api_b
        resp = await api.get("/api/chat/active", token=user)
        data_of(resp)
        assert_window(resp, REST_LIMIT, REST_LIMIT - used)
    assert_rate_limited(await api_a.get("/api/chat/active", token=user), REST_LIMIT)
    assert_rate_limited(await api_b.get("/api/chat/active", token=user), REST_LIMIT)
    # Still per user across processes.
    data_of(await api_b.get("/api/chat/active", token=a.user()))


async def test_admin_count_is_shared_between_processes(
    shared_pair: tuple[Limited, Limited],
    pair_clients: tuple[Api, Api, SocketFactory, SocketFactory],
) -> None:
    a, _b = shared_pair
    api_a, api_b, _, _ = pair_clients
    agent = a.agent()
    for n in range(ADMIN_LIMIT):
        data_of(await (api_a if n % 2 else api_b).get("/api/chat/admin/active", token=agent))
    assert_rate_limited(await api_a.get("/api/chat/admin/active", token=agent), ADMIN_LIMIT)
    assert_rate_limited(await api_b.get("/api/chat/admin/active", token=agent), ADMIN_LIMIT)
