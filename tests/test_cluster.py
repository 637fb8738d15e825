"""Three server processes as one service (docs/deployment.md): one PostgreSQL database,
one Redis, clients connected straight to different processes.

What crosses processes: messages and typing both ways, a new chat to agents on every
process, presence; and what a Redis restart must not cost: messages stored while Redis
was down reach the other processes' sockets once it is back, without the clients doing
anything (each process reads back from the database what it may have missed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from support import AGENT_ROLE, Api, Person, ServerInfo, new_person, ok_call, start_chat
from support.clients import SocketClient, SocketFactory
from support.net import is_ci
from support.postgres import PostgresCluster
from support.redis_server import RedisServer, find_redis_server, start_redis
from support.server import ARTIFACTS_DIR, running_server

NODES = 3
# Liveness only: a healthy cluster answers in milliseconds.
DELIVERY_TIMEOUT = 10.0
# After a Redis restart, a process subscribes again within 2 s and reads back at once.
RECOVERY_TIMEOUT = 30.0


@dataclass
class Cluster:
    redis: RedisServer
    nodes: list[ServerInfo]

    @property
    def secret(self) -> str:
        return self.nodes[0].secret


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    binary = find_redis_server()
    if binary is None:
        msg = "redis-server not found: run `make install-test`"
        if is_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    database: PostgresCluster = request.getfixturevalue("postgres_cluster")
    redis = start_redis(binary)
    env = {
        "SUPPORTCHAT_REDIS_URL": redis.url,
        "SUPPORTCHAT_PRESENCE_HEARTBEAT_SECONDS": "1",
        "SUPPORTCHAT_PRESENCE_TTL_SECONDS": "3",
        "SUPPORTCHAT_RATE_LIMIT_MESSAGES": "8/minute",
    }
    try:
        with contextlib.ExitStack() as stack:
            nodes: list[ServerInfo] = []
            for n in range(NODES):
                proc = stack.enter_context(
                    running_server(
                        f"cluster-{n}",
                        tmp_path_factory.mktemp(f"cluster-{n}"),
                        env=env,
                        database_url=database.url,
                        secret=nodes[0].secret if nodes else None,
                    )
                )
                assert proc.info is not None
                nodes.append(proc.info)
            yield Cluster(redis, nodes)
    finally:
        redis.cleanup(keep_log_in=ARTIFACTS_DIR)


@pytest.fixture
async def on() -> AsyncIterator[dict[int, tuple[Api, SocketFactory]]]:
    """Clients per node, opened on first use: ``api, sockets = node(n)``."""
    opened: dict[int, tuple[Api, SocketFactory]] = {}
    yield opened
    for api, sockets in opened.values():
        await sockets.close_all()
        await api.aclose()


def node(
    cluster: Cluster, opened: dict[int, tuple[Api, SocketFactory]], n: int
) -> tuple[Api, SocketFactory]:
    if n not in opened:
        url = cluster.nodes[n].base_url
        opened[n] = (Api(url), SocketFactory(url))
    return opened[n]


def of(ticket_id: str, **fields: object) -> object:
    def match(data: object) -> bool:
        return (
            isinstance(data, dict)
            and data.get("ticketId") == ticket_id
            and all(data.get(k) == v for k, v in fields.items())
        )

    return match


async def chat_across(
    cluster: Cluster, opened: dict[int, tuple[Api, SocketFactory]]
) -> tuple[str, Person, SocketClient, Person, SocketClient]:
    """A chat whose user is on node 0 and whose agent (joined) is on node 1."""
    api0, sockets0 = node(cluster, opened, 0)
    _api1, sockets1 = node(cluster, opened, 1)
    user = new_person(cluster.secret)
    agent = new_person(cluster.secret, role=AGENT_ROLE)
    ticket_id: str = (await start_chat(api0, user))["ticketId"]
    user_socket = await sockets0(user)
    agent_socket = await sockets1(agent)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    return ticket_id, user, user_socket, agent, agent_socket


async def test_messages_and_typing_cross_processes_both_ways(cluster: Cluster, on: dict) -> None:
    ticket_id, _user, user_socket, _agent, agent_socket = await chat_across(cluster, on)
    sent: list[int] = []
    for n in range(3):
        ack = await ok_call(
            user_socket, "send_message", {"ticketId": ticket_id, "message": f"u{n}"}
        )
        sent.append(int(ack["data"]["seq"]))
        ack = await ok_call(
            agent_socket, "admin_send_message", {"ticketId": ticket_id, "message": f"a{n}"}
        )
        sent.append(int(ack["data"]["seq"]))
    for n in range(3):
        got = await agent_socket.wait_for(
            "new_message", of(ticket_id, message=f"u{n}"), DELIVERY_TIMEOUT
        )
        assert got["seq"] == sent[2 * n]
        got = await user_socket.wait_for(
            "new_message", of(ticket_id, message=f"a{n}"), DELIVERY_TIMEOUT
        )
        assert got["seq"] == sent[2 * n + 1]
    await asyncio.sleep(0.3)  # anything delivered twice would arrive by now
    for socket, own in ((agent_socket, "a"), (user_socket, "u")):
        seqs = [m["seq"] for m in socket.events("new_message") if m.get("ticketId") == ticket_id]
        others = [s for s in seqs if s not in sent[(0 if own == "u" else 1) :: 2]]
        assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs), (socket.label, seqs, others)

    await ok_call(user_socket, "user_typing", {"ticketId": ticket_id, "isTyping": True})
    await agent_socket.wait_for("user_typing", of(ticket_id, isTyping=True), DELIVERY_TIMEOUT)
    await ok_call(agent_socket, "admin_typing", {"ticketId": ticket_id, "isTyping": True})
    await user_socket.wait_for("agent_typing", of(ticket_id, isTyping=True), DELIVERY_TIMEOUT)


async def test_a_new_chat_reaches_agents_on_every_process(cluster: Cluster, on: dict) -> None:
    agents = []
    for n in range(NODES):
        _api, sockets = node(cluster, on, n)
        agents.append(await sockets(new_person(cluster.secret, role=AGENT_ROLE)))
    api2, _sockets = node(cluster, on, 2)
    ticket_id = (await start_chat(api2, new_person(cluster.secret)))["ticketId"]
    for agent_socket in agents:
        await agent_socket.wait_for("new_chat_ticket", of(ticket_id), DELIVERY_TIMEOUT)


async def test_presence_is_the_same_on_every_process(cluster: Cluster, on: dict) -> None:
    watchers = []
    for n in (0, 1):
        _api, sockets = node(cluster, on, n)
        watchers.append(await sockets(new_person(cluster.secret, role=AGENT_ROLE)))
    arriving = new_person(cluster.secret, role=AGENT_ROLE)
    _api, sockets2 = node(cluster, on, 2)
    socket = await sockets2(arriving)
    for watcher in watchers:
        await watcher.wait_for(
            "admin_status_update",
            lambda d: d.get("adminId") == arriving.id and d.get("isOnline") is True,
            DELIVERY_TIMEOUT,
        )
    await socket.disconnect()
    for watcher in watchers:
        await watcher.wait_for(
            "admin_status_update",
            lambda d: d.get("adminId") == arriving.id and d.get("isOnline") is False,
            DELIVERY_TIMEOUT,
        )


async def test_the_per_chat_limit_holds_across_processes(cluster: Cluster, on: dict) -> None:
    ticket_id, _user, user_socket, _agent, agent_socket = await chat_across(cluster, on)
    # 8 messages per minute per chat (the chat's opening message is not counted), sent
    # alternately through two processes: the ninth is refused.
    answers = []
    for n in range(9):
        socket, event = (
            (user_socket, "send_message") if n % 2 == 0 else (agent_socket, "admin_send_message")
        )
        answers.append(await socket.call(event, {"ticketId": ticket_id, "message": f"m{n}"}))
    accepted = [a for a in answers if a.get("success") is True]
    refused = [a for a in answers if a.get("success") is False]
    assert len(accepted) == 8, answers
    assert len(refused) == 1 and refused[0].get("code") == "RATE_LIMITED", refused
    assert answers[-1] is refused[0]


async def test_redis_restart_then_what_was_stored_meanwhile_arrives(
    cluster: Cluster, on: dict
) -> None:
    ticket_id, _user, user_socket, _agent, agent_socket = await chat_across(cluster, on)
    cluster.redis.stop()
    try:
        during = []
        for n in range(3):
            ack = await ok_call(
                user_socket, "send_message", {"ticketId": ticket_id, "message": f"outage {n}"}
            )
            during.append(int(ack["data"]["seq"]))
    finally:
        cluster.redis.start(same_port=True)
    for n, seq in enumerate(during):
        got = await agent_socket.wait_for(
            "new_message", of(ticket_id, message=f"outage {n}"), RECOVERY_TIMEOUT
        )
        assert got["seq"] == seq
    # And live delivery goes on.
    ack = await ok_call(user_socket, "send_message", {"ticketId": ticket_id, "message": "after"})
    got = await agent_socket.wait_for(
        "new_message", of(ticket_id, message="after"), RECOVERY_TIMEOUT
    )
    assert got["seq"] == ack["data"]["seq"]
    seqs = [m["seq"] for m in agent_socket.events("new_message") if m.get("ticketId") == ticket_id]
    assert seqs == sorted(set(seqs)), f"repeats or disorder after the outage: {seqs}"
