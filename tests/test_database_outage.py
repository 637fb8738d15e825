"""Database outages: PostgreSQL stops while the server keeps running, then comes back.

The module starts its own throwaway PostgreSQL cluster and its own ``supportchat serve``
on it (never the session's shared ones: stopping the database would break every other
test), then stops the cluster with pg_ctl's fast shutdown, which rolls back every open
transaction and closes every connection, as a crash, a failover or an operator's restart
of the database would. What must hold:

* during the outage, REST answers 503 with the error envelope (``SERVICE_UNAVAILABLE``, a
  message that names the database, ``Retry-After``), for writes and reads alike, and
  ``GET /health`` answers 503 with ``data.database == "unavailable"``;
* a Socket.IO send gets a failed acknowledgement (``SERVICE_UNAVAILABLE``) and a
  ``chat_error`` of type ``service_unavailable``, and the socket stays connected;
* nothing is half written and nobody hears of a message that was not stored;
* once the database is back on the same address the server serves again by itself (no
  restart of the server, the same sockets): the clients' retries with the same
  ``clientMessageId`` store each message exactly once, and live events flow again;
* the server logs no 500 and no traceback other than its "database unavailable" warnings.

``test_transaction_caught_mid_flight`` makes the outage hit transactions that have already
written: a test connection locks the ``messages`` table so that a REST send and a
Socket.IO send stop inside their transactions (one after updating the ticket, before
inserting its message; the other waiting for the ticket's row lock), and the database goes
down while ``pg_stat_activity`` shows both waiting. Both must be rolled back entirely: no
message, no used-up ``seq``.

Also covered: a connection that PostgreSQL refuses while it shuts down or starts up
(SQLSTATE 57P03) is an outage too (503, not 500); an agent socket that connects during an
outage counts as online once the database is back, and one that disconnects during it
stops counting as online (the presence heartbeat makes the database agree with the
process's sockets).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from support.chat import (
    QUIET,
    assert_failed_ack,
    body_of,
    error_body,
    get_ticket,
    of_ticket,
    ok_call,
    ok_data,
    start_chat,
    with_text,
)
from support.clients import Api, SocketClient, SocketFactory
from support.postgres import PostgresCluster, cluster_for_tests
from support.server import ServerInfo, running_server
from support.tokens import AGENT_ROLE, Person, new_person

RECOVERY_DEADLINE = 30.0  # seconds for /health to answer 200 once PostgreSQL is back
LOCK_WAIT_DEADLINE = 10.0  # seconds for the mid-flight sends to reach the test's lock
SOCKET_ACK_TIMEOUT = 20.0  # a send held by the lock is answered only after the outage
UNAVAILABLE = "SERVICE_UNAVAILABLE"
PRESENCE_HEARTBEAT = 0.5  # seconds (SUPPORTCHAT_PRESENCE_HEARTBEAT_SECONDS)
PRESENCE_TTL = 2.0  # seconds (SUPPORTCHAT_PRESENCE_TTL_SECONDS)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outage_cluster() -> Iterator[PostgresCluster]:
    """This module's own PostgreSQL cluster: its tests stop and restart it."""
    yield from cluster_for_tests("postgres-outage.log")


def _server(
    label: str,
    cluster: PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
    heartbeat: float,
    ttl: float,
) -> Iterator[ServerInfo]:
    data_dir = tmp_path_factory.mktemp(f"server-{label}")
    env = {
        # Recovery polls and retries are not what this module tests.
        "SUPPORTCHAT_RATE_LIMITS_ENABLED": "false",
        "SUPPORTCHAT_PRESENCE_HEARTBEAT_SECONDS": str(heartbeat),
        "SUPPORTCHAT_PRESENCE_TTL_SECONDS": str(ttl),
    }
    with running_server(label, data_dir, env=env, database_url=cluster.url) as proc:
        assert proc.info is not None
        yield proc.info


@pytest.fixture(scope="module")
def outage_server(
    outage_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerInfo]:
    """The server the outage tests talk to, with a one-second presence heartbeat (the one
    database access the server makes by itself), so that it too meets the database going
    down and coming back."""
    yield from _server("outage-postgres", outage_cluster, tmp_path_factory, 1.0, 30.0)


@pytest.fixture(scope="module")
def presence_server(
    outage_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerInfo]:
    """A second server on the same cluster for the presence tests: a short heartbeat and
    TTL, so that a presence row that nothing refreshes stops counting within seconds."""
    yield from _server(
        "outage-presence", outage_cluster, tmp_path_factory, PRESENCE_HEARTBEAT, PRESENCE_TTL
    )


class LogWatch:
    """What the server logged since this watch was made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def read(self) -> str:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            return fh.read().decode(errors="replace")


@dataclass
class Outage:
    """What a test needs: the cluster to stop and restart, the server, clients."""

    cluster: PostgresCluster
    server: ServerInfo
    api: Api
    sockets: SocketFactory
    log: LogWatch
    shutdown_pending: bool = False  # a shutdown was started without waiting for its end

    def user(self) -> Person:
        return new_person(self.server.secret)

    def agent(self) -> Person:
        return new_person(self.server.secret, role=AGENT_ROLE)

    async def stop_database(self) -> None:
        """Fast shutdown, in a thread so that the clients keep receiving meanwhile."""
        await asyncio.to_thread(self.cluster.stop, "fast")

    async def restart_database(self) -> None:
        """Same port, same data dir; the server is not touched."""
        await asyncio.to_thread(self.cluster.restart)

    async def wait_healthy(self, deadline: float = RECOVERY_DEADLINE) -> float:
        """Poll /health until 200; the seconds it took."""
        started = time.monotonic()
        last: httpx.Response | None = None
        while time.monotonic() - started < deadline:
            last = await self.api.get("/health")
            if last.status_code == 200:
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"/health not 200 within {deadline} s of PostgreSQL's restart "
            f"(last: {last.status_code if last else None} {last.text if last else ''}); "
            f"server log tail:\n{self.server.log_tail()}"
        )


@asynccontextmanager
async def _outage(cluster: PostgresCluster, server: ServerInfo) -> AsyncIterator[Outage]:
    """Each test starts with the database up and the server healthy, and leaves them so
    even when it fails half-way through an outage."""
    api = Api(server.base_url)
    sockets = SocketFactory(server.base_url)
    env = Outage(cluster, server, api, sockets, LogWatch(server.log_path))
    try:
        if not cluster.running:
            await asyncio.to_thread(cluster.restart)
        await env.wait_healthy()
        env.log = LogWatch(server.log_path)  # this test's part of the log only
        yield env
    finally:
        await sockets.close_all()
        await api.aclose()
        if env.shutdown_pending:  # a "smart" shutdown waits for the server's connections
            await asyncio.to_thread(cluster.stop, "fast")
        if not cluster.running:
            await asyncio.to_thread(cluster.restart)


@pytest.fixture
async def outage(
    outage_cluster: PostgresCluster, outage_server: ServerInfo
) -> AsyncIterator[Outage]:
    async with _outage(outage_cluster, outage_server) as env:
        yield env


@pytest.fixture
async def presence_outage(
    outage_cluster: PostgresCluster, presence_server: ServerInfo
) -> AsyncIterator[Outage]:
    async with _outage(outage_cluster, presence_server) as env:
        yield env


# --- the server log ----------------------------------------------------------------------

# A log record's first line: the server's own format, or uvicorn's ("INFO:     ...").
RECORD_RE = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+) |(?P<uvlevel>[A-Z]+):\s)"
)
ACCESS_RE = re.compile(r'"(?P<request>[A-Z]+ \S+) HTTP/[\d.]+" (?P<status>\d{3})')
EXPECTED_WARNING = "database unavailable"  # storage/database.py's outage record


def log_problems(log: str) -> list[str]:
    """What an outage must not leave in the server log: an ERROR or CRITICAL record (the
    transports' "unexpected failure" paths log there), a 5xx other than 503, and a
    traceback under any record but the storage layer's "database unavailable" warning
    (which logs the driver's exception that it turned into a 503)."""
    problems: list[str] = []
    record = ""
    for line in log.splitlines():
        if match := RECORD_RE.match(line):
            record = line
            level = match.group("level") or match.group("uvlevel")
            if level in ("ERROR", "CRITICAL"):
                problems.append(line)
            access = ACCESS_RE.search(line)
            if access and access["status"].startswith("5") and access["status"] != "503":
                problems.append(line)
        elif line.startswith("Traceback (most recent call last)"):
            if EXPECTED_WARNING not in record:
                problems.append(f"traceback under: {record or '(no record)'}")
        elif "Task exception was never retrieved" in line:
            problems.append(line)
    return list(dict.fromkeys(problems))


def assert_clean_log(outage: Outage) -> None:
    log = outage.log.read()
    problems = log_problems(log)
    assert not problems, "server log:\n" + "\n".join(problems)
    # The outage did reach the server (else this test proved nothing about it).
    assert EXPECTED_WARNING in log, log[-3000:]


# --- assertions --------------------------------------------------------------------------


def assert_names_the_database(message: str) -> None:
    """The outage's message says what is wrong: the database is unavailable."""
    assert re.search(r"\bdatabase\b", message, re.I), message
    assert re.search(r"\bunavailable\b", message, re.I), message


def assert_unavailable(resp: httpx.Response) -> dict[str, Any]:
    """The REST outage answer: 503, the error envelope, a clear message, Retry-After."""
    body = error_body(resp, 503)
    assert body["code"] == UNAVAILABLE, body
    assert_names_the_database(body["message"])
    retry_after = resp.headers.get("Retry-After", "")
    assert retry_after.isdigit() and int(retry_after) > 0, dict(resp.headers)
    return body


def assert_unavailable_ack(ack: Any) -> None:
    assert_failed_ack(ack)
    assert ack["code"] == UNAVAILABLE, ack
    assert_names_the_database(ack["message"])


async def assert_unavailable_chat_error(client: SocketClient, ticket_id: str) -> None:
    err = await client.wait_for("chat_error", of_ticket(ticket_id))
    assert err["type"] == "service_unavailable", err
    assert err["code"] == UNAVAILABLE, err
    assert_names_the_database(err["message"])


def assert_still_connected(*clients: SocketClient) -> None:
    for client in clients:
        assert client.connected, f"{client.label} was disconnected: {client.event_names()}"
        assert not client.events("disconnect"), f"{client.label}: {client.event_names()}"


def texts_of(ticket: dict[str, Any]) -> list[str]:
    return [m["message"] for m in ticket["messages"]]


def assert_gapless(ticket: dict[str, Any]) -> None:
    seqs = [m["seq"] for m in ticket["messages"]]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def cid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


# --- the tests ---------------------------------------------------------------------------


async def rest_send(
    api: Api, who: Person, ticket_id: str, text: str, client_message_id: str
) -> httpx.Response:
    """POST /api/chat/:ticketId/message with a clientMessageId; the raw response."""
    return await api.post(
        f"/api/chat/{ticket_id}/message",
        token=who,
        json={"message": text, "clientMessageId": client_message_id},
    )


async def rest_start(api: Api, who: Person, text: str, client_message_id: str) -> httpx.Response:
    """POST /api/chat/start with a clientMessageId; the raw response."""
    return await api.post(
        "/api/chat/start", token=who, json={"message": text, "clientMessageId": client_message_id}
    )


async def test_outage_answers_503_and_the_server_recovers_by_itself(outage: Outage) -> None:
    api = outage.api
    user, agent, newcomer = outage.user(), outage.agent(), outage.user()

    # 1. Before the outage: a chat, an agent following it, a user socket; all working.
    started = await start_chat(api, user, "Before the outage")
    ticket_id = started["ticketId"]
    user_socket = await outage.sockets(user)
    agent_socket = await outage.sockets(agent)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    await user_socket.wait_for("agent_joined", of_ticket(ticket_id))
    sids = (user_socket.sid, agent_socket.sid)
    before = texts_of(await get_ticket(api, user, ticket_id))
    assert before == ["Before the outage"], before

    rest_text, rest_cid = "Sent over REST during the outage", cid("rest")
    user_text, user_cid = "Sent by the user's socket during the outage", cid("user")
    agent_text, agent_cid = "Sent by the agent's socket during the outage", cid("agent")
    start_text, start_cid = "A new chat started during the outage", cid("start")

    # 2. PostgreSQL goes down; the server keeps running.
    await outage.stop_database()

    # 3. During the outage. Health first: it says what is wrong.
    health = body_of(await api.get("/health"), 503)
    assert health["success"] is False, health
    assert health["data"]["database"] == "unavailable", health
    assert_names_the_database(health["message"])

    # REST writes: a message, a new chat.
    assert_unavailable(await rest_send(api, user, ticket_id, rest_text, rest_cid))
    assert_unavailable(await rest_start(api, newcomer, start_text, start_cid))
    # REST reads, as the user and as the agent.
    for path, who in (
        ("/api/chat/history", user),
        (f"/api/chat/{ticket_id}", user),
        (f"/api/chat/{ticket_id}", agent),
        (f"/api/chat/{ticket_id}/messages", user),
        ("/api/chat/admin/active", agent),
    ):
        resp = await api.get(path, token=who)
        assert resp.status_code == 503, f"GET {path}: {resp.status_code} {resp.text}"
        assert_unavailable(resp)

    # Socket.IO sends: a failed ack and a chat_error to the sender, nothing to anyone else.
    ack = await user_socket.call(
        "send_message",
        {"ticketId": ticket_id, "message": user_text, "clientMessageId": user_cid},
    )
    assert_unavailable_ack(ack)
    await assert_unavailable_chat_error(user_socket, ticket_id)
    ack = await agent_socket.call(
        "admin_send_message",
        {"ticketId": ticket_id, "message": agent_text, "clientMessageId": agent_cid},
    )
    assert_unavailable_ack(ack)
    await assert_unavailable_chat_error(agent_socket, ticket_id)

    # A socket opened during the outage is accepted (the handshake needs no database).
    late_agent = outage.agent()
    late_socket = await outage.sockets(late_agent)

    for event in ("new_message", "user_message", "message_sent"):
        await agent_socket.assert_no(event, of_ticket(ticket_id), within=QUIET)
        await user_socket.assert_no(event, of_ticket(ticket_id), within=0)
    await user_socket.assert_no("chat_error", within=0)  # one chat_error per failed send
    await agent_socket.assert_no("chat_error", within=0)
    assert_still_connected(user_socket, agent_socket, late_socket)

    # 4. PostgreSQL is back on the same address; the server is left alone.
    await outage.restart_database()
    await outage.wait_healthy()

    # Nothing of the outage was written: the chat is as it was, the newcomer has none.
    ticket = await get_ticket(api, user, ticket_id)
    assert texts_of(ticket) == before, texts_of(ticket)
    history = ok_data(await api.get("/api/chat/history", token=newcomer))
    assert history["chats"] == [], history
    assert_still_connected(user_socket, agent_socket, late_socket)
    assert (user_socket.sid, agent_socket.sid) == sids

    # The clients retry with the same clientMessageIds: each is stored now, once.
    sent = ok_data(await rest_send(api, user, ticket_id, rest_text, rest_cid))
    assert sent["duplicate"] is False and sent["seq"] == 2, sent
    live = await agent_socket.wait_for("new_message", with_text(ticket_id, rest_text))
    assert live["seq"] == 2, live

    ack = await ok_call(
        user_socket,
        "send_message",
        {"ticketId": ticket_id, "message": user_text, "clientMessageId": user_cid},
    )
    assert ack["data"]["duplicate"] is False and ack["data"]["seq"] == 3, ack
    live = await agent_socket.wait_for("new_message", with_text(ticket_id, user_text))
    assert live["messageId"] == ack["data"]["messageId"], live
    # The agent whose socket connected during the outage is in the agents' room.
    await late_socket.wait_for("user_message", with_text(ticket_id, user_text))

    ack = await ok_call(
        agent_socket,
        "admin_send_message",
        {"ticketId": ticket_id, "message": agent_text, "clientMessageId": agent_cid},
    )
    assert ack["data"]["duplicate"] is False and ack["data"]["seq"] == 4, ack
    live = await user_socket.wait_for("new_message", with_text(ticket_id, agent_text))
    assert live["messageId"] == ack["data"]["messageId"], live

    new_chat = ok_data(
        await rest_start(api, newcomer, start_text, start_cid),
        201,
    )
    assert new_chat["isExisting"] is False, new_chat

    # A second retry of each is recognised as a repeat: exactly one message per id.
    again = ok_data(await rest_send(api, user, ticket_id, rest_text, rest_cid))
    assert again["duplicate"] is True and again["messageId"] == sent["messageId"], again
    ack = await ok_call(
        user_socket,
        "send_message",
        {"ticketId": ticket_id, "message": user_text, "clientMessageId": user_cid},
    )
    assert ack["data"]["duplicate"] is True, ack

    ticket = await get_ticket(api, user, ticket_id)
    assert texts_of(ticket) == [*before, rest_text, user_text, agent_text], texts_of(ticket)
    assert_gapless(ticket)
    cids = [m.get("clientMessageId") for m in ticket["messages"][1:]]
    assert cids == [rest_cid, user_cid, agent_cid], cids
    newcomer_chat = await get_ticket(api, newcomer, new_chat["ticketId"])
    assert texts_of(newcomer_chat) == [start_text], newcomer_chat

    assert_still_connected(user_socket, agent_socket, late_socket)
    assert (user_socket.sid, agent_socket.sid) == sids
    assert_clean_log(outage)


@asynccontextmanager
async def _probe_sessions(
    cluster: PostgresCluster, lock: str
) -> AsyncIterator[tuple[AsyncConnection, AsyncConnection]]:
    """The test's own two sessions: a `locker` that has run `lock` in an open
    transaction, and a `watcher` in autocommit (each query sees the current state) for
    `_server_backends_waiting`. Dropped, not rolled back, at the end: the database may
    be gone by then."""
    engine = create_async_engine(
        cluster.url,
        poolclass=NullPool,
        connect_args={"server_settings": {"application_name": "outage-probe"}},
    )
    locker = await engine.connect()
    watcher = await engine.connect()
    try:
        await watcher.execution_options(isolation_level="AUTOCOMMIT")
        await locker.begin()
        await locker.execute(text(lock))
        yield locker, watcher
    finally:
        for conn in (locker, watcher):
            await conn.invalidate()
        await engine.dispose()


async def _server_backends_waiting(probe: AsyncConnection) -> list[dict[str, Any]]:
    """The server's sessions that wait for a lock (the probe's own sessions excluded),
    with whether each has written yet (a transaction id is assigned at the first write)."""
    rows = await probe.execute(
        text(
            "SELECT pid, wait_event, backend_xid IS NOT NULL AS has_written, "
            "left(query, 40) AS query FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND application_name <> 'outage-probe'"
        )
    )
    return [dict(row) for row in rows.mappings()]


async def test_transaction_caught_mid_flight(outage: Outage) -> None:
    api = outage.api
    user, agent = outage.user(), outage.agent()
    started = await start_chat(api, user, "Before the outage")
    ticket_id = started["ticketId"]
    user_socket = await outage.sockets(user)
    agent_socket = await outage.sockets(agent)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    before = await get_ticket(api, user, ticket_id)

    rest_text, rest_cid = "REST send caught by the outage", cid("rest")
    agent_text, agent_cid = "Socket.IO reply caught by the outage", cid("agent")

    # A lock that lets the server read the messages table but not insert into it.
    async with _probe_sessions(outage.cluster, "LOCK TABLE messages IN SHARE MODE") as (
        _locker,
        watcher,
    ):
        rest = asyncio.create_task(rest_send(api, user, ticket_id, rest_text, rest_cid))
        reply = asyncio.create_task(
            agent_socket.call(
                "admin_send_message",
                {"ticketId": ticket_id, "message": agent_text, "clientMessageId": agent_cid},
                timeout=SOCKET_ACK_TIMEOUT,
            )
        )
        # A transaction of the server has already written (the ticket's new state) and
        # waits to insert the messages. Sends are group-committed: the other send is in
        # the same transaction, or queued behind it in the server.
        deadline = time.monotonic() + LOCK_WAIT_DEADLINE
        waiting = await _server_backends_waiting(watcher)
        while not any(w["has_written"] for w in waiting):
            assert time.monotonic() < deadline, f"sends not held by the lock: {waiting}"
            assert not rest.done() and not reply.done(), "a send finished despite the lock"
            await asyncio.sleep(0.02)
            waiting = await _server_backends_waiting(watcher)

        await outage.stop_database()  # also ends the test's own sessions

        assert_unavailable(await rest)
        assert_unavailable_ack(await reply)
        await assert_unavailable_chat_error(agent_socket, ticket_id)

    # Nobody heard of either message.
    await agent_socket.assert_no("new_message", of_ticket(ticket_id), within=QUIET)
    await agent_socket.assert_no("user_message", of_ticket(ticket_id), within=0)
    await user_socket.assert_no("new_message", of_ticket(ticket_id), within=0)
    assert_still_connected(user_socket, agent_socket)

    await outage.restart_database()
    await outage.wait_healthy()

    # Rolled back entirely: no message, and the seq the first send had taken is free.
    after = await get_ticket(api, user, ticket_id)
    assert texts_of(after) == texts_of(before), texts_of(after)
    assert after["lastUpdated"] == before["lastUpdated"], (before, after)

    sent = ok_data(await rest_send(api, user, ticket_id, rest_text, rest_cid))
    assert sent["duplicate"] is False and sent["seq"] == 2, sent
    await agent_socket.wait_for("new_message", with_text(ticket_id, rest_text))
    ack = await ok_call(
        agent_socket,
        "admin_send_message",
        {"ticketId": ticket_id, "message": agent_text, "clientMessageId": agent_cid},
    )
    assert ack["data"]["duplicate"] is False and ack["data"]["seq"] == 3, ack
    await user_socket.wait_for("new_message", with_text(ticket_id, agent_text))

    final = await get_ticket(api, user, ticket_id)
    assert texts_of(final) == [*texts_of(before), rest_text, agent_text], texts_of(final)
    assert_gapless(final)
    assert_still_connected(user_socket, agent_socket)
    assert_clean_log(outage)


# --- while PostgreSQL refuses new connections -------------------------------------------
#
# Between "stop" and "down", and between "start" and "ready", PostgreSQL accepts TCP
# connections and refuses each with SQLSTATE 57P03 ("the database system is shutting
# down" / "... is starting up"); failovers and crash recovery make these windows long.
# A "smart" shutdown holds the first one open for as long as a session stays: the test's
# own session, which also holds a lock on the tickets table so that the requests that get
# a pooled connection keep it, and the rest must open new ones.


async def _refused_by_postgres(url: str) -> bool:
    """True once PostgreSQL refuses new connections."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect():
            return False
    except DBAPIError:
        return True
    finally:
        await engine.dispose()


async def test_connection_refused_while_the_database_shuts_down(outage: Outage) -> None:
    api = outage.api
    user, agent = outage.user(), outage.agent()
    started = await start_chat(api, user, "Before the outage")
    ticket_id = started["ticketId"]
    agent_socket = await outage.sockets(agent)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})

    async with _probe_sessions(outage.cluster, "LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE") as (
        locker,
        watcher,
    ):
        outage.shutdown_pending = True
        await asyncio.to_thread(outage.cluster.stop, "smart", wait=False)
        deadline = time.monotonic() + LOCK_WAIT_DEADLINE
        while not await _refused_by_postgres(outage.cluster.url):
            assert time.monotonic() < deadline, "PostgreSQL still accepts new connections"
            await asyncio.sleep(0.05)

        # More concurrent reads than the server's pool keeps idle connections (at most
        # its pool_size, 10): some wait on the lock with a pooled connection, the others
        # need a new one, which PostgreSQL refuses.
        reads = [
            asyncio.create_task(api.get(f"/api/chat/{ticket_id}", token=user)) for _ in range(12)
        ]
        deadline = time.monotonic() + LOCK_WAIT_DEADLINE
        while sum(r.done() for r in reads) + len(await _server_backends_waiting(watcher)) < 12:
            assert time.monotonic() < deadline, "reads neither answered nor held by the lock"
            await asyncio.sleep(0.02)
        # Every pooled connection is now taken: a send needs a new one as well.
        ack = await agent_socket.call(
            "admin_send_message",
            {"ticketId": ticket_id, "message": "Refused", "clientMessageId": cid("agent")},
        )
        sent = await rest_send(api, user, ticket_id, "Refused too", cid("rest"))
        await locker.rollback()  # the held reads go on
        answers = await asyncio.gather(*reads)

    refused = [r for r in answers if r.status_code != 200]
    assert refused, "no read needed a new connection: the test proved nothing"
    for resp in refused:
        assert_unavailable(resp)
    assert_unavailable(sent)
    assert_unavailable_ack(ack)
    await assert_unavailable_chat_error(agent_socket, ticket_id)
    assert_still_connected(agent_socket)
    assert_clean_log(outage)


# --- presence after an outage --------------------------------------------------------------
#
# Presence is one database row per connected agent socket: written when the socket
# connects, deleted when it disconnects, refreshed by each process's heartbeat. When the
# database is down at that moment, the server logs "presence not recorded / not cleared"
# and goes on, and nothing repairs the row once the database is back.


def status_of(agent: Person, active_chats: int) -> Any:
    """``wait_for`` predicate: an ``admin_status_update`` about ``agent`` with that many
    active chats (which tells the update of an assignment or a close from others)."""
    return lambda d: (
        isinstance(d, dict)
        and d.get("adminId") == agent.id
        and d.get("activeChats") == active_chats
    )


async def test_agent_who_connects_during_the_outage_counts_as_online(
    presence_outage: Outage,
) -> None:
    outage = presence_outage
    observer = await outage.sockets(outage.agent())
    await outage.stop_database()
    late = outage.agent()
    late_socket = await outage.sockets(late)  # accepted; its presence row is not written
    await outage.restart_database()
    await outage.wait_healthy()
    await asyncio.sleep(PRESENCE_TTL + 1)

    # Joining an open chat assigns it, which tells all agents the joiner's status.
    started = await start_chat(outage.api, outage.user())
    await ok_call(late_socket, "join_chat", {"ticketId": started["ticketId"]})
    status = await observer.wait_for("admin_status_update", status_of(late, 1))
    assert_still_connected(late_socket)
    assert status["isOnline"] is True, f"connected agent reported offline: {status}"


async def test_agent_who_leaves_during_the_outage_counts_as_offline(
    presence_outage: Outage,
) -> None:
    outage = presence_outage
    observer = await outage.sockets(outage.agent())
    leaver = outage.agent()
    leaver_socket = await outage.sockets(leaver)
    started = await start_chat(outage.api, outage.user())
    ticket_id = started["ticketId"]
    await ok_call(leaver_socket, "join_chat", {"ticketId": ticket_id})  # the assignee
    await outage.stop_database()
    await leaver_socket.disconnect()  # the server cannot delete its presence row now
    await outage.restart_database()
    await outage.wait_healthy()
    await asyncio.sleep(PRESENCE_TTL + 1)  # longer than a row of a gone socket may count

    # Closing the leaver's chat tells all agents the leaver's status.
    observer.consume_all("admin_status_update")
    await ok_call(observer, "admin_close_chat", {"ticketId": ticket_id})
    status = await observer.wait_for("admin_status_update", status_of(leaver, 0))
    assert status["isOnline"] is False, f"disconnected agent reported online: {status}"
