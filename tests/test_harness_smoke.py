"""Smoke tests of the harness itself: the server starts per backend, answers /health,
and accepts tokens minted by its own CLI and by the harness."""

from __future__ import annotations

import asyncio

from support import Api, Cli, Person, ServerInfo, SocketFactory


async def test_health(api: Api, server: ServerInfo) -> None:
    resp = await api.get("/health")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True


async def test_cli_token_is_accepted(api: Api, cli: Cli) -> None:
    proc = await asyncio.to_thread(
        cli, "token", "--user-id", "u1", "--name", "U One", "--email", "u1@example.com"
    )
    token = proc.stdout.strip().splitlines()[-1].strip()
    resp = await api.get("/api/chat/history", token=token)
    assert resp.status_code == 200, resp.text


async def test_harness_token_is_accepted(api: Api, user: Person) -> None:
    resp = await api.get("/api/chat/history", token=user)
    assert resp.status_code == 200, resp.text


async def test_socket_connects_with_token(sockets: SocketFactory, user: Person) -> None:
    client = await sockets(user)
    assert client.connected
    assert client.events("connect") == [None]


async def test_agent_socket_connects_as_admin(sockets: SocketFactory, agent: Person) -> None:
    client = await sockets(agent)  # user_type defaults to "admin" for agents
    assert client.user_type == "admin"
    assert client.connected


async def test_socket_with_bad_token_is_refused(sockets: SocketFactory) -> None:
    refused = await sockets.refused("not-a-jwt")
    assert refused.data is not None  # the connect_error payload reached the client
