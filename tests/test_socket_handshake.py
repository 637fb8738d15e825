"""Socket.IO handshake: where the token and the role come from, what a refusal looks like,
expiry of a connected socket's token, and the websocket / polling / upgrade transports.

CONTRACT.md "Identity": token from ``auth.token``, else ``Authorization: Bearer``, else
``?token=``; role from ``auth.userType``, else ``?userType=`` (``admin``, ``user``,
``dtuser``; absent means user). A refusal is ``connect_error`` with a human message and
data ``{type: "authentication_failed", code: "AUTH_ERROR"}``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest

from support import (
    Api,
    Person,
    PersonFactory,
    ServerInfo,
    SocketClient,
    SocketFactory,
    close_fast,
    make_token,
    of_ticket,
    start_chat,
)

AUTH_FAILED = {"type": "authentication_failed", "code": "AUTH_ERROR"}


# --- helpers ---------------------------------------------------------------------------


async def acts_as_owner(client: SocketClient, ticket_id: str) -> bool:
    """True when the socket is authenticated as the ticket's owner (a user socket)."""
    ack = await client.call("join_chat_room", {"ticketId": ticket_id})
    return bool(ack.get("success"))


async def is_agent_socket(client: SocketClient) -> bool:
    """True when the socket acts as an agent: ``join_admin_room`` is agent-only."""
    ack = await client.call("join_admin_room")
    return bool(ack.get("success"))


def assert_refusal(data: Any, message: str | None) -> None:
    """The connect_error payload as a socket.io client sees it: {message, data}."""
    assert isinstance(data, dict), data
    if message is not None:
        assert data.get("message") == message, data
    else:
        assert isinstance(data.get("message"), str) and data["message"], data
    details = data.get("data")
    assert isinstance(details, dict), data
    assert {k: details.get(k) for k in AUTH_FAILED} == AUTH_FAILED, data


async def raw_polling_connect(
    base_url: str, auth: dict[str, Any] | None, query: dict[str, str] | None = None
) -> list[str]:
    """Speak Engine.IO v4 long-polling by hand, as a browser on the polling transport
    would, and return the Socket.IO packets the server answers the CONNECT with.

    (python-socketio's own client takes ~25 s to give up a refused polling connection.)"""
    params = {"EIO": "4", "transport": "polling", **(query or {})}
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:
        resp = await http.get("/socket.io/", params=params)
        assert resp.status_code == 200, resp.text
        assert resp.text.startswith("0"), resp.text  # Engine.IO OPEN
        params["sid"] = json.loads(resp.text[1:])["sid"]
        body = "40" + (json.dumps(auth) if auth is not None else "")
        resp = await http.post("/socket.io/", params=params, content=body)
        assert resp.status_code == 200, resp.text
        resp = await http.get("/socket.io/", params=params)
        assert resp.status_code == 200, resp.text
        packets = resp.text.split("\x1e")  # Engine.IO v4 payload separator
        # Engine.IO MESSAGE ("4") carrying Socket.IO packets; drop pings/noops.
        found = [p[1:] for p in packets if p.startswith("4")]
        await http.post("/socket.io/", params=params, content="1")  # Engine.IO CLOSE
        return found


# --- where the token comes from ---------------------------------------------------------

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"]}


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("where", ["auth", "header", "query"])
async def test_token_accepted_from_each_location_and_transport(
    api: Api,
    sockets: SocketFactory,
    user: Person,
    agent: Person,
    where: str,
    transport: str,
) -> None:
    chat = await start_chat(api, user)
    ticket_id = chat["ticketId"]
    kwargs: dict[str, Any] = {"transports": TRANSPORTS[transport]}
    if where == "auth":
        kwargs["auth"] = {"token": user.token}
    elif where == "header":
        kwargs["auth"] = None
        kwargs["headers"] = user.auth_header
    else:
        kwargs["auth"] = None
        kwargs["query"] = {"token": user.token}
    client = await sockets(None, **kwargs)
    try:
        assert client.connected
        assert client.transport == transport
        # Authenticated as this user: their ticket is theirs, and agent events are not.
        assert await acts_as_owner(client, ticket_id)
        assert not await is_agent_socket(client)
        # Receives pushes on this transport: an agent's REST reply arrives as new_message.
        resp = await api.post(
            f"/api/chat/{ticket_id}/message", token=agent, json={"message": "Agent here"}
        )
        assert resp.status_code == 200, resp.text
        pushed = await client.wait_for("new_message", of_ticket(ticket_id))
        assert pushed["message"] == "Agent here"
        assert pushed["isAdminReply"] is True
        # And sends on it.
        ack = await client.call("send_message", {"ticketId": ticket_id, "message": "thanks"})
        assert ack["success"] is True, ack
    finally:
        await close_fast(client)


async def test_auth_token_takes_precedence_over_header_and_query(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory
) -> None:
    a, b, c = user_factory(), user_factory(), user_factory()
    ticket_a = (await start_chat(api, a))["ticketId"]
    ticket_b = (await start_chat(api, b))["ticketId"]
    ticket_c = (await start_chat(api, c))["ticketId"]

    client = await sockets(
        None, auth={"token": a.token}, headers=b.auth_header, query={"token": c.token}
    )
    assert await acts_as_owner(client, ticket_a)
    assert not await acts_as_owner(client, ticket_b)
    assert not await acts_as_owner(client, ticket_c)

    # Without auth.token the header wins over the query string.
    client2 = await sockets(None, auth=None, headers=b.auth_header, query={"token": c.token})
    assert await acts_as_owner(client2, ticket_b)
    assert not await acts_as_owner(client2, ticket_c)


# --- where the role comes from -------------------------------------------------------------


@pytest.mark.parametrize("where", ["auth", "query"])
async def test_admin_user_type_gives_an_agent_socket(
    sockets: SocketFactory, agent: Person, where: str
) -> None:
    if where == "auth":
        client = await sockets(agent, auth={"token": agent.token, "userType": "admin"})
    else:
        client = await sockets(agent, auth={"token": agent.token}, query={"userType": "admin"})
    assert await is_agent_socket(client)
    assert client.events("error") == []


@pytest.mark.parametrize("user_type", ["user", "dtuser", None])
@pytest.mark.parametrize("where", ["auth", "query"])
async def test_user_and_dtuser_and_absent_user_type_give_a_user_socket(
    api: Api, sockets: SocketFactory, user: Person, user_type: str | None, where: str
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    auth: dict[str, Any] = {"token": user.token}
    query: dict[str, str] = {}
    if user_type is not None:
        if where == "auth":
            auth["userType"] = user_type
        else:
            query["userType"] = user_type
    client = await sockets(user, auth=auth, query=query or None)
    assert await acts_as_owner(client, ticket_id)
    assert not await is_agent_socket(client)


async def test_agent_token_without_user_type_acts_as_a_user(
    api: Api, sockets: SocketFactory, agent: Person, user: Person
) -> None:
    """Absent userType means user, also for a token with an admin role: the agent-only
    events are refused, and the socket is not in the agents' audience."""
    client = await sockets(agent, auth={"token": agent.token})
    assert not await is_agent_socket(client)
    err = await client.wait_for("error")
    assert err["type"] == "forbidden"
    watcher = await sockets(agent)  # a real agent socket of the same person
    ticket_id = (await start_chat(api, user))["ticketId"]
    await watcher.wait_for("new_chat_ticket", of_ticket(ticket_id))
    await client.assert_no("new_chat_ticket", of_ticket(ticket_id), within=0.3)


async def test_auth_user_type_takes_precedence_over_query(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    # An agent token asking to be a user in auth and an admin in the query: a user socket.
    client = await sockets(
        agent, auth={"token": agent.token, "userType": "user"}, query={"userType": "admin"}
    )
    assert not await is_agent_socket(client)
    # A user token asking to be a user in auth and an admin in the query: accepted.
    ticket_id = (await start_chat(api, user))["ticketId"]
    client2 = await sockets(
        user, auth={"token": user.token, "userType": "user"}, query={"userType": "admin"}
    )
    assert await acts_as_owner(client2, ticket_id)


# --- refusals ------------------------------------------------------------------------------


def _refusal_cases(
    server: ServerInfo, user: Person
) -> dict[str, tuple[dict[str, Any], str | None]]:
    """name -> (connect kwargs, expected human message or None for "any message")."""
    now = int(time.time())
    claims = {"userId": user.id, "fullName": user.name, "email": user.email}
    expired = make_token(server.secret, user.id, user.name, user.email, expires_in=-120)
    wrong_key = make_token("not-the-server-secret-" + "x" * 32, user.id, user.name, user.email)
    no_exp = jwt.encode({**claims, "iat": now}, server.secret, algorithm="HS256")
    alg_none = jwt.encode({**claims, "exp": now + 3600}, key=None, algorithm="none")
    no_id = jwt.encode(
        {"fullName": "Nobody", "email": "n@example.com", "exp": now + 3600},
        server.secret,
        algorithm="HS256",
    )
    return {
        "no_auth_at_all": ({"auth": None}, "Authentication token required"),
        "empty_auth": ({"auth": {}}, "Authentication token required"),
        "null_token": (
            {"auth": {"token": None, "userType": "user"}},
            "Authentication token required",
        ),
        "empty_token": ({"auth": {"token": ""}}, "Authentication token required"),
        "garbage_token": ({"auth": {"token": "not-a-jwt"}}, "Invalid token provided"),
        "garbage_header": (
            {"auth": None, "headers": {"Authorization": "Bearer not-a-jwt"}},
            "Invalid token provided",
        ),
        "garbage_query": ({"auth": None, "query": {"token": "a.b.c"}}, "Invalid token provided"),
        "wrong_signature": ({"auth": {"token": wrong_key}}, "Invalid token provided"),
        "alg_none": ({"auth": {"token": alg_none}}, "Invalid token provided"),
        "no_exp": ({"auth": {"token": no_exp}}, None),
        "no_user_id": ({"auth": {"token": no_id}}, None),
        "non_string_token": ({"auth": {"token": 12345}}, None),
        "expired": ({"auth": {"token": expired}}, "Authentication token expired"),
        "admin_with_user_token": (
            {"auth": {"token": user.token, "userType": "admin"}},
            "Admin privileges required",
        ),
        "admin_in_query_with_user_token": (
            {"auth": {"token": user.token}, "query": {"userType": "admin"}},
            "Admin privileges required",
        ),
    }


REFUSAL_CASES = [
    "no_auth_at_all",
    "empty_auth",
    "null_token",
    "empty_token",
    "garbage_token",
    "garbage_header",
    "garbage_query",
    "wrong_signature",
    "alg_none",
    "no_exp",
    "no_user_id",
    "non_string_token",
    "expired",
    "admin_with_user_token",
    "admin_in_query_with_user_token",
]


@pytest.mark.parametrize("case", REFUSAL_CASES)
async def test_refused_handshake_gives_connect_error(
    server: ServerInfo, sockets: SocketFactory, user: Person, case: str
) -> None:
    kwargs, message = _refusal_cases(server, user)[case]
    refused = await sockets.refused(None, **kwargs)
    assert_refusal(refused.data, message)


@pytest.mark.parametrize(
    "case", ["no_auth_at_all", "garbage_token", "expired", "admin_with_user_token"]
)
async def test_refused_handshake_over_polling(server: ServerInfo, user: Person, case: str) -> None:
    kwargs, message = _refusal_cases(server, user)[case]
    packets = await raw_polling_connect(server.base_url, kwargs.get("auth"), kwargs.get("query"))
    # Socket.IO CONNECT_ERROR is packet type 4 on the default namespace: 4{...}
    errors = [p for p in packets if p.startswith("4")]
    assert len(errors) == 1, packets
    assert_refusal(json.loads(errors[0][1:]), message)
    assert not any(p.startswith("0") for p in packets), packets  # no CONNECT


async def test_accepted_handshake_over_raw_polling_sends_connect(
    server: ServerInfo, user: Person
) -> None:
    """Counterpart of the refusal test: the same raw exchange with a good token connects."""
    packets = await raw_polling_connect(server.base_url, {"token": user.token})
    connects = [p for p in packets if p.startswith("0")]
    assert len(connects) == 1, packets
    assert "sid" in json.loads(connects[0][1:])


# --- transports ------------------------------------------------------------------------------


async def test_polling_with_upgrade_ends_on_websocket_and_works(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    ticket_id = (await start_chat(api, user))["ticketId"]
    agent_socket = await sockets(agent)
    client = await sockets(user, transports=["polling", "websocket"])
    try:
        assert client.transport == "websocket"
        ack = await client.call("send_message", {"ticketId": ticket_id, "message": "upgraded"})
        assert ack["success"] is True, ack
        got = await agent_socket.wait_for("user_message", of_ticket(ticket_id))
        assert got["message"] == "upgraded"
        resp = await api.post(f"/api/chat/admin/join/{ticket_id}", token=agent)
        assert resp.status_code == 200, resp.text
        joined = await client.wait_for("agent_joined", of_ticket(ticket_id))
        assert joined["agentId"] == agent.id
    finally:
        await close_fast(client)


async def test_agent_over_polling_receives_broadcasts(
    api: Api, sockets: SocketFactory, user: Person, agent: Person
) -> None:
    client = await sockets(agent, transports=["polling"])
    try:
        assert client.transport == "polling"
        ticket_id = (await start_chat(api, user, "over polling"))["ticketId"]
        got = await client.wait_for("new_chat_ticket", of_ticket(ticket_id))
        assert got["message"] == "over polling"
        ack = await client.call("join_chat", {"ticketId": ticket_id})
        assert ack["success"] is True, ack
        assert ack["data"]["assignedTo"] == agent.id
    finally:
        await close_fast(client)


# --- token expiry while connected -------------------------------------------------------------


async def test_token_expiring_while_connected_gets_error_then_disconnect(
    api: Api, sockets: SocketFactory, user_factory: PersonFactory
) -> None:
    user = user_factory(expires_in=2)
    bystander = user_factory()  # an hour-long token: must stay connected
    ticket_id = (await start_chat(api, user))["ticketId"]
    client = await sockets(user)
    other = await sockets(bystander)
    assert await acts_as_owner(client, ticket_id)  # valid until it expires
    err = await client.wait_for("error", timeout=6.0)
    assert isinstance(err, dict), err
    assert err.get("type") == "token_expired", err
    await client.wait_for("disconnect", timeout=3.0)
    assert not client.connected
    names = client.event_names()
    assert names.index("error") < names.index("disconnect"), names
    await other.assert_no("error", within=0.3)
    assert other.connected
    assert other.events("disconnect") == []
