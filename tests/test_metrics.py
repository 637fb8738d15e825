"""`/metrics` (metrics.py): Prometheus text from a real server process, on the service's
port behind a bearer token and on an internal port of its own; counts that follow what
the server did."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import AGENT_ROLE, Api, ServerInfo, new_person, start_chat
from support.clients import SocketClient
from support.net import free_port
from support.server import running_server

TOKEN = "metrics-reader-token"


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerInfo, int]]:
    """A SQLite server with both ways to reach /metrics; (server, metrics port)."""
    port = free_port()
    env = {"SUPPORTCHAT_METRICS_TOKEN": TOKEN, "SUPPORTCHAT_METRICS_PORT": str(port)}
    data_dir: Path = tmp_path_factory.mktemp("metrics")
    with running_server("metrics", data_dir, env=env) as proc:
        assert proc.info is not None
        yield proc.info, port


def sample(text: str, name: str, labels: str = "") -> float:
    """One sample's value in Prometheus text; fails the test when it is not there."""
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name}{labels} not in /metrics:\n{text[:2000]}"
    return float(found.group(1))


async def scrape(http: httpx.AsyncClient, port: int) -> str:
    resp = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text


async def test_service_port_needs_the_token(
    metered: tuple[ServerInfo, int], http: httpx.AsyncClient
) -> None:
    server, _port = metered
    url = f"{server.base_url}/metrics"
    assert (await http.get(url)).status_code == 401
    assert (await http.get(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
    resp = await http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200
    for family in ("messages_stored", "messages_read_back", "messages_repeated"):
        assert re.search(rf"^supportchat_{family}_total \d+\.0$", resp.text, re.M), family


async def test_metrics_port_serves_only_metrics(
    metered: tuple[ServerInfo, int], http: httpx.AsyncClient
) -> None:
    _server, port = metered
    assert (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 404
    assert (await http.get(f"http://127.0.0.1:{port}/api/chat/active")).status_code == 404
    assert "supportchat_sockets" in await scrape(http, port)


async def test_counts_follow_sockets_and_messages(
    metered: tuple[ServerInfo, int], http: httpx.AsyncClient
) -> None:
    server, port = metered
    before = await scrape(http, port)
    user = new_person(server.secret)
    agent = new_person(server.secret, role=AGENT_ROLE)
    api = Api(server.base_url)
    try:
        ticket_id = (await start_chat(api, user))["ticketId"]
    finally:
        await api.aclose()
    user_socket = SocketClient(server.base_url, user.token, "user")
    agent_socket = SocketClient(server.base_url, agent.token, "admin")
    try:
        await user_socket.connect()
        await agent_socket.connect()
        await agent_socket.call("join_chat", {"ticketId": ticket_id})
        during = await scrape(http, port)
        assert (
            sample(during, "supportchat_sockets", '{role="agent"}')
            == sample(before, "supportchat_sockets", '{role="agent"}') + 1
        )
        assert (
            sample(during, "supportchat_sockets", '{role="user"}')
            == sample(before, "supportchat_sockets", '{role="user"}') + 1
        )
        ack = await agent_socket.call(
            "admin_send_message", {"ticketId": ticket_id, "message": "counted"}
        )
        assert ack["success"] is True, ack
        await user_socket.wait_for("new_message")
    finally:
        await user_socket.disconnect()
        await agent_socket.disconnect()
    after = await scrape(http, port)
    stored = "supportchat_messages_stored_total"
    # The chat's first message and the agent's reply.
    assert sample(after, stored) == sample(before, stored) + 2
    delivered = "supportchat_messages_delivered_total"
    assert sample(after, delivered) >= sample(before, delivered) + 1
    count = "supportchat_delivery_latency_seconds_count"
    assert sample(after, count) == sample(before, count) + 2


async def test_refusals_are_counted_by_quota(
    metered: tuple[ServerInfo, int], http: httpx.AsyncClient
) -> None:
    server, port = metered
    user = new_person(server.secret)
    before = sample(await scrape(http, port), "supportchat_rate_limited_total", '{quota="rest"}')
    api = Api(server.base_url)
    try:
        statuses = [(await api.get("/api/chat/active", token=user)).status_code for _ in range(101)]
    finally:
        await api.aclose()
    assert statuses.count(429) == 1, statuses[-3:]
    after = sample(await scrape(http, port), "supportchat_rate_limited_total", '{quota="rest"}')
    assert after == before + 1
