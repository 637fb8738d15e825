"""Graceful shutdown (issue 5, point 6): on SIGTERM the server stops accepting work,
finishes the writes in flight, acknowledges them, and closes connections so that clients
reconnect elsewhere; no acknowledged message is lost across a rolling restart.

What the server does (shutdown.py, realtime/drain.py): it stops listening; a Socket.IO
event arriving after that gets a failed ack ``{success: false, code: "SHUTTING_DOWN"}``
and a ``chat_error`` (nothing done); events already being handled commit and are
acknowledged; then every connection is closed at the transport level once what was
queued for it is written (a WebSocket without an Engine.IO CLOSE packet, so that every
client reconnects; long-polling with one); the process exits with the SIGTERM status
(-15), or 0.

The tests restart their own server on the same port and data dir (or database), as a
rolling restart behind a load balancer would bring clients back:

* clients streaming messages through several SIGTERM restarts lose nothing that was
  acknowledged, store nothing twice, and each side ends up with the whole chat;
* a burst of sends in flight at the SIGTERM: each ends acknowledged (stored once),
  refused with SHUTTING_DOWN (not stored) or unanswered (resent after the restart,
  stored once);
* with the database held up, the running sends are acknowledged after the SIGTERM while
  a new event is refused with SHUTTING_DOWN, deterministically;
* a send stuck longer than SUPPORTCHAT_SHUTDOWN_GRACE_SECONDS does not hold the
  connections open past the grace; sent again after the restart, it is stored once;
* clients are told to go elsewhere: their connections close promptly (long-polling
  too), and the official JavaScript client reconnects by itself.

Most Python clients here reconnect by hand (a fresh python-socketio client each time,
so that each test controls when); ``test_python_socketio_client_reconnects_by_itself``
shows python-socketio's automatic reconnection working too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import shutil
import signal
import sqlite3
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest
import socketio

from support import AGENT_ROLE, Api, Person, new_person, ok_data, start_chat
from support.clients import answer_or_loss
from support.net import is_ci
from support.postgres import database_url_for
from support.server import ServerProcess, running_server

CLEAN_EXIT = (-signal.SIGTERM, 0)  # uvicorn re-raises SIGTERM: systemd's clean stop
TERM_BOUND = 15.0  # SIGTERM to exit, with the default 10 s grace; a hang fails the test
RESTARTS = 3
PROGRESS = 15  # acknowledged sends per client before each SIGTERM, and after the last
BURST = 20  # sends fired at once per client in the burst test
# Liveness only: a healthy server answers in milliseconds.
ACK_TIMEOUT = 15.0
RECONNECT_DEADLINE = 45.0
DELIVERY_TIMEOUT = 20.0
# python-engineio hands each received message to a task of its own but runs the
# disconnect handler at once; the handler yields this long first, so that an ack that
# arrived just before the server closed the connection still reaches its callback.
ACK_SETTLE = 0.05
DRAIN_STARTED = "shutdown: finishing Socket.IO events in flight"
SHUTTING_DOWN = "SHUTTING_DOWN"
JS_DIR = Path(__file__).resolve().parent / "js"


# --- the server under restart -----------------------------------------------------------------


@dataclass
class Node:
    """A server process that the test stops with SIGTERM and starts again on the same
    port and data (SQLite file or PostgreSQL database)."""

    proc: ServerProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def secret(self) -> str:
        return self.proc.secret

    @property
    def database(self) -> str:
        return self.proc.database

    def person(self, *, agent: bool = False) -> Person:
        return new_person(self.secret, role=AGENT_ROLE if agent else None)

    def sigterm_nowait(self) -> asyncio.Task[int]:
        """SIGTERM (once: a second one makes uvicorn quit at once) from a thread that then
        waits for the exit; the task ends with the exit status (fails if it hangs)."""
        return asyncio.create_task(asyncio.to_thread(self.proc.terminate, TERM_BOUND))

    async def sigterm(self) -> int:
        status = await self.sigterm_nowait()
        assert status in CLEAN_EXIT, f"exit status {status} after SIGTERM"
        return status

    async def restart(self) -> None:
        await asyncio.to_thread(self.proc.start, self.port)

    def log_size(self) -> int:
        try:
            return self.proc.log_path.stat().st_size
        except OSError:
            return 0

    async def wait_for_log(self, text: str, since: int) -> None:
        """Wait until the server log shows ``text`` after byte ``since``."""
        deadline = time.monotonic() + TERM_BOUND
        while time.monotonic() < deadline:
            with self.proc.log_path.open("rb") as log:
                log.seek(since)
                if text.encode() in log.read():
                    return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the server never logged {text!r}")


@contextlib.contextmanager
def node_for(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database: str,
    **env: str,
) -> Iterator[Node]:
    settings = {"SUPPORTCHAT_RATE_LIMITS_ENABLED": "false", **env}
    with running_server(
        f"shutdown-{database}",
        tmp_path / "server",
        env=settings,
        database_url=database_url_for(request, database),
    ) as proc:
        assert proc.info is not None
        yield Node(proc, proc.info.port)


@pytest.fixture(params=["sqlite", "postgres"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    """A server per test and database, rate limits off (the clients stream)."""
    with node_for(request, tmp_path, request.param) as started:
        yield started


@pytest.fixture
def sqlite_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    with node_for(request, tmp_path, "sqlite") as started:
        yield started


async def rest(node: Node, call: Callable[[Api], Awaitable[Any]]) -> Any:
    """One REST exchange on a fresh client (a pooled connection dies with its server)."""
    api = Api(node.url)
    try:
        return await call(api)
    finally:
        await api.aclose()


async def stored_messages(node: Node, who: Person, ticket_id: str) -> list[dict[str, Any]]:
    """Every message of the ticket, read back over REST, in seq order."""

    async def read(api: Api) -> list[dict[str, Any]]:
        data = ok_data(await api.get(f"/api/chat/{ticket_id}", token=who))
        messages: list[dict[str, Any]] = data["ticket"]["messages"]
        return messages

    messages: list[dict[str, Any]] = await rest(node, read)
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(1, len(seqs) + 1)), f"seqs are not 1..N: {seqs}"
    return messages


def by_client_id(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Stored messages by clientMessageId; fails if one is stored twice."""
    counts = Counter(m["clientMessageId"] for m in messages if m.get("clientMessageId"))
    twice = {cmid: n for cmid, n in counts.items() if n > 1}
    assert not twice, f"clientMessageIds stored more than once: {twice}"
    return {m["clientMessageId"]: m for m in messages if m.get("clientMessageId")}


# --- one Socket.IO connection -------------------------------------------------------------------


class Link:
    """One python-socketio connection, without automatic reconnection: ``lost`` is set when
    the server closes it, and ``call`` then answers None instead of waiting for an ack
    that cannot come."""

    def __init__(self, on_new_message: Callable[[Any], None] | None = None) -> None:
        self.lost = asyncio.Event()
        self.reasons: list[Any] = []
        self.events: list[tuple[str, Any]] = []
        self._on_new_message = on_new_message
        self._http: aiohttp.ClientSession | None = None
        self.sio: Any = None

    async def open(
        self,
        url: str,
        person: Person,
        *,
        transports: tuple[str, ...] = ("websocket",),
    ) -> None:
        self._http = aiohttp.ClientSession()
        self.sio = socketio.AsyncClient(
            reconnection=False, handle_sigint=False, http_session=self._http
        )
        self.sio.on("*", self._on_any)
        self.sio.on("disconnect", self._on_disconnect)
        try:
            await self.sio.connect(
                url,
                auth={"token": person.token, "userType": "admin" if person.role else "user"},
                transports=list(transports),
                wait_timeout=10,
            )
        except BaseException:
            await self.close()
            raise

    def _on_any(self, event: str, *args: Any) -> None:
        data = args[0] if len(args) == 1 else args
        self.events.append((event, data))
        if event == "new_message" and self._on_new_message is not None:
            self._on_new_message(data)

    async def _on_disconnect(self, reason: Any = None) -> None:
        await asyncio.sleep(ACK_SETTLE)
        self.reasons.append(reason)
        self.lost.set()

    async def emit(self, event: str, data: Any) -> asyncio.Future[Any]:
        """Emit with an ack callback, without waiting: the future gets the ack."""
        answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_ack(*args: Any) -> None:
            if not answered.done():
                answered.set_result(args[0] if len(args) == 1 else args)

        # Not connected any more: never sent, never answered.
        with contextlib.suppress(socketio.exceptions.SocketIOError):
            await self.sio.emit(event, data, callback=on_ack)
        return answered

    async def outcome(self, answered: asyncio.Future[Any]) -> Any:
        """The ack, or None when the connection was lost first."""
        await answer_or_loss(answered, self.lost, ACK_TIMEOUT)
        if answered.done():
            return answered.result()
        if self.lost.is_set():
            return None
        raise AssertionError(f"no ack within {ACK_TIMEOUT} s on a live connection")

    async def call(self, event: str, data: Any) -> Any:
        if self.lost.is_set():
            return None
        return await self.outcome(await self.emit(event, data))

    async def close(self) -> None:
        sio, self.sio = self.sio, None
        http, self._http = self._http, None
        try:
            if sio is not None and sio.connected:
                await sio.eio.disconnect(abort=True)
                await sio.disconnect()
        finally:
            if http is not None and not http.closed:
                await http.close()


# --- a client streaming into its chat ----------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    message_id: str
    seq: int
    duplicate: bool


@dataclass
class Stats:
    acked: int = 0
    duplicates: int = 0  # success acks with duplicate: true: stored before, ack lost
    refused: int = 0  # failed acks with SHUTTING_DOWN
    interrupted: int = 0  # no ack: the connection closed first
    connections: int = 0
    lost: int = 0  # connections the server closed
    reasons: Counter[str] = field(default_factory=Counter)


class Streamer:
    """A user (send_message, join_chat_room) or agent (admin_send_message, join_chat)
    that sends one message after the other, each with its own clientMessageId, and
    follows docs/protocol.md §6 after a lost connection: connect again, join with the
    newest message it holds, send again what was not acknowledged, same clientMessageId."""

    def __init__(self, node: Node, person: Person, ticket_id: str) -> None:
        self.node = node
        self.person = person
        self.ticket_id = ticket_id
        self.agent = person.role is not None
        self.label = f"{'agent' if self.agent else 'user'} {person.id}"
        self.send_event = "admin_send_message" if self.agent else "send_message"
        self.join_event = "join_chat" if self.agent else "join_chat_room"
        self.seen: dict[int, str] = {}  # seq -> message id, from any source
        self.conflicts: list[tuple[int, str, str]] = []
        self.acked: dict[str, Sent] = {}  # clientMessageId -> what its success ack said
        self.created: list[str] = []  # every clientMessageId, in order
        self.outbox: deque[str] = deque()
        self.stats = Stats()
        self.link: Link | None = None
        self.progress = 0  # success acks since the test last reset it
        self.changed = asyncio.Event()
        self._counter = itertools.count()

    def learn(self, seq: int, message_id: str) -> None:
        known = self.seen.setdefault(seq, message_id)
        if known != message_id:
            self.conflicts.append((seq, known, message_id))
        self.changed.set()

    def _on_new_message(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("ticketId") == self.ticket_id:
            self.learn(int(data["seq"]), str(data["_id"]))

    def newest_contiguous(self) -> int:
        seq = 0
        while seq + 1 in self.seen:
            seq += 1
        return seq

    async def connect(self) -> None:
        """Connect (retrying while the server is down) and join the chat with the newest
        message held without a gap before it."""
        deadline = time.monotonic() + RECONNECT_DEADLINE
        while True:
            if self.link is not None:
                await self.link.close()
                self.link = None
            link = Link(self._on_new_message)
            try:
                await link.open(self.node.url, self.person)
            except socketio.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.label}: could not connect for {RECONNECT_DEADLINE} s"
                    ) from None
                await asyncio.sleep(0.1)
                continue
            self.link = link
            self.stats.connections += 1
            payload: dict[str, Any] = {"ticketId": self.ticket_id}
            if newest := self.newest_contiguous():
                payload["lastMessageId"] = self.seen[newest]
            ack = await link.call(self.join_event, payload)
            if isinstance(ack, dict) and ack.get("success") is True:
                if self.agent:  # the join's ack carries the whole chat
                    for message in ack["data"]["messages"]:
                        self.learn(int(message["seq"]), message["_id"])
                return
            # Lost again at once, or refused by a server that is going down: retry.
            assert ack is None or ack.get("code") == SHUTTING_DOWN, (self.label, ack)
            await link.lost.wait()

    async def send_next(self) -> None:
        if not self.outbox:
            cmid = f"{'a' if self.agent else 'u'}-{next(self._counter)}-{uuid.uuid4().hex[:12]}"
            self.created.append(cmid)
            self.outbox.append(cmid)
        cmid = self.outbox[0]
        assert self.link is not None
        ack = await self.link.call(
            self.send_event,
            {
                "ticketId": self.ticket_id,
                "message": f"{self.label}: {cmid}",
                "clientMessageId": cmid,
            },
        )
        if ack is None:
            self.stats.interrupted += 1
        elif ack.get("success") is True:
            data = ack["data"]
            assert data["clientMessageId"] == cmid, ack
            assert cmid not in self.acked, f"{cmid} acknowledged twice"
            sent = Sent(data["messageId"], int(data["seq"]), bool(data["duplicate"]))
            self.acked[cmid] = sent
            self.learn(sent.seq, sent.message_id)
            self.outbox.popleft()
            self.stats.acked += 1
            self.stats.duplicates += sent.duplicate
            self.progress += 1
        elif ack.get("code") == SHUTTING_DOWN:
            self.stats.refused += 1
            # The server closes the connection once its running events are done.
            await asyncio.wait_for(self.link.lost.wait(), TERM_BOUND)
        else:
            raise AssertionError(f"{self.label}: unexpected refusal {ack}")

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until ``stop``, then until every message was acknowledged."""
        while not (stop.is_set() and not self.outbox):
            if self.link is None or self.link.lost.is_set():
                if self.link is not None:
                    self.stats.lost += 1
                    self.stats.reasons.update(str(r) for r in self.link.reasons)
                await self.connect()
            await self.send_next()

    async def wait_until_seen(self, last: int) -> None:
        async def covered() -> None:
            while self.newest_contiguous() < last:
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(covered(), DELIVERY_TIMEOUT)
        except TimeoutError:
            missing = sorted(set(range(1, last + 1)) - set(self.seen))
            raise AssertionError(f"{self.label} never learnt of seqs {missing[:20]}") from None

    async def close(self) -> None:
        if self.link is not None:
            await self.link.close()


async def wait_for_progress(streamers: list[Streamer], tasks: list[asyncio.Task[None]]) -> None:
    """Until every streamer has PROGRESS more success acks (tasks that failed re-raise)."""

    async def progressed() -> None:
        while any(s.progress < PROGRESS for s in streamers):
            for task in tasks:
                if task.done():
                    task.result()
                    raise AssertionError("a streamer stopped")
            await asyncio.sleep(0.02)

    await asyncio.wait_for(progressed(), RECONNECT_DEADLINE + DELIVERY_TIMEOUT)
    for streamer in streamers:
        streamer.progress = 0


# --- a. rolling restarts --------------------------------------------------------------------------


async def test_rolling_restart_loses_no_acknowledged_message(node: Node) -> None:
    user, agent = node.person(), node.person(agent=True)
    started = await rest(node, lambda api: start_chat(api, user, "before the restarts"))
    ticket_id: str = started["ticketId"]
    streamers = [Streamer(node, user, ticket_id), Streamer(node, agent, ticket_id)]
    streamers[0].learn(1, started["messages"][0]["_id"])  # the user knows its first message
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    statuses: list[int] = []
    try:
        for streamer in streamers:  # the agent joins first: the chat is theirs to answer
            await streamer.connect()
        tasks = [asyncio.create_task(s.run(stop)) for s in streamers]
        for _ in range(RESTARTS):
            await wait_for_progress(streamers, tasks)
            statuses.append(await node.sigterm())
            await node.restart()
        await wait_for_progress(streamers, tasks)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), RECONNECT_DEADLINE)

        messages = await stored_messages(node, user, ticket_id)
        last = len(messages)
        stored = by_client_id(messages)
        for streamer in streamers:
            assert not streamer.outbox
            assert set(streamer.acked) == set(streamer.created)  # everything acknowledged once
            for cmid, sent in streamer.acked.items():
                assert cmid in stored, f"acknowledged {cmid} (seq {sent.seq}) is not stored"
                assert (stored[cmid]["_id"], stored[cmid]["seq"]) == (sent.message_id, sent.seq)
        assert last == 1 + sum(len(s.created) for s in streamers), "something else was stored"
        for streamer in streamers:
            await streamer.wait_until_seen(last)
            assert not streamer.conflicts, streamer.conflicts
            assert streamer.seen == {m["seq"]: m["_id"] for m in messages}

        print(f"\n{node.database}: exit statuses {statuses}, {last} messages stored")
        for s in streamers:
            print(f"  {s.label}: {s.stats}")
        for streamer in streamers:
            assert streamer.stats.lost >= RESTARTS, streamer.stats
        # Each restart caught sends on their way: refused, or cut off by the close.
        assert sum(s.stats.refused + s.stats.interrupted for s in streamers) > 0
        # What was committed was acknowledged: no resend found its message stored already.
        assert sum(s.stats.duplicates for s in streamers) == 0, [s.stats for s in streamers]
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in streamers), return_exceptions=True)


# --- b. a burst in flight at the SIGTERM ---------------------------------------------------------


@dataclass
class Send:
    who: Person
    link: Link
    event: str
    ticket_id: str
    cmid: str
    answered: asyncio.Future[Any]

    @property
    def payload(self) -> dict[str, Any]:
        return {"ticketId": self.ticket_id, "message": self.cmid, "clientMessageId": self.cmid}


async def fire(link: Link, who: Person, ticket_id: str, tag: str) -> Send:
    event = "admin_send_message" if who.role else "send_message"
    cmid = f"{tag}-{uuid.uuid4().hex[:12]}"
    payload = {"ticketId": ticket_id, "message": cmid, "clientMessageId": cmid}
    return Send(who, link, event, ticket_id, cmid, await link.emit(event, payload))


def explain_unanswered(send: Send) -> str:
    """What the client saw of an unanswered send (for a failure message)."""
    confirmed = any(
        e == "message_sent" and isinstance(d, dict) and d.get("clientMessageId") == send.cmid
        for e, d in send.link.events
    )
    return (
        f"{send.cmid} ({'message_sent came' if confirmed else 'no message_sent'}, "
        f"{len(send.link.events)} events on the link, disconnect {send.link.reasons})"
    )


async def test_burst_in_flight_at_sigterm_is_acknowledged_or_refused(node: Node) -> None:
    """Each client fires BURST sends without waiting, the server gets SIGTERM right after,
    and each client goes on sending every few milliseconds until its connection closes.
    Every send ends acknowledged (stored once), refused with SHUTTING_DOWN (not stored)
    or unanswered (the connection closed first: sent again after the restart, it ends
    up stored once). Nothing is stored without its acknowledgement having come."""
    users = [node.person(), node.person()]
    agent = node.person(agent=True)
    tickets: dict[str, Person] = {}  # ticket id -> its user
    for user in users:
        started = await rest(node, functools.partial(start_chat, who=user, message="burst"))
        tickets[started["ticketId"]] = user

    async def join(api: Api) -> None:
        for ticket_id in tickets:
            ok_data(await api.post(f"/api/chat/admin/join/{ticket_id}", token=agent))

    await rest(node, join)
    targets: list[tuple[Person, list[str]]] = [
        *((user, [tid]) for tid, user in tickets.items()),
        (agent, list(tickets)),
    ]
    links: list[Link] = []
    sends: list[Send] = []
    try:
        for who, _ in targets:
            links.append(link := Link())
            await link.open(node.url, who)
        for (who, ticket_ids), link in zip(targets, links, strict=True):
            for n in range(BURST):
                sends.append(await fire(link, who, ticket_ids[n % len(ticket_ids)], f"burst{n}"))
        term = node.sigterm_nowait()

        async def trickle(who: Person, ticket_ids: list[str], link: Link) -> None:
            for n in itertools.count():
                if link.lost.is_set() or term.done():
                    return
                sends.append(await fire(link, who, ticket_ids[n % len(ticket_ids)], f"late{n}"))
                await asyncio.sleep(0.005)

        await asyncio.gather(
            *(trickle(who, tids, link) for (who, tids), link in zip(targets, links, strict=True))
        )
        outcomes = [await send.link.outcome(send.answered) for send in sends]
        status = await term
        assert status in CLEAN_EXIT, f"exit status {status} after SIGTERM"
    finally:
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)

    acked: dict[str, dict[str, Any]] = {}
    refused: set[str] = set()
    unanswered: set[str] = set()
    for send, ack in zip(sends, outcomes, strict=True):
        if ack is None:
            unanswered.add(send.cmid)
        elif ack.get("success") is True:
            acked[send.cmid] = ack["data"]
        else:
            assert ack.get("code") == SHUTTING_DOWN, ack
            refused.add(send.cmid)

    await node.restart()
    before: dict[str, dict[str, Any]] = {}
    for ticket_id, user in tickets.items():
        before.update(by_client_id(await stored_messages(node, user, ticket_id)))
    for cmid, data in acked.items():
        assert cmid in before, f"acknowledged {cmid} is not stored"
        assert (before[cmid]["_id"], before[cmid]["seq"]) == (data["messageId"], data["seq"])
    assert not refused & set(before), "a send refused with SHUTTING_DOWN was stored"
    stored_unanswered = unanswered & set(before)
    burst = sum(1 for s in sends if s.cmid.startswith("burst"))
    print(
        f"\n{node.database}: {len(sends)} sends ({burst} in the bursts): "
        f"{len(acked)} acknowledged, {len(refused)} refused with SHUTTING_DOWN, "
        f"{len(unanswered)} unanswered "
        f"({len(stored_unanswered)} of them stored); exit status {status}"
    )
    assert not stored_unanswered, "stored but never acknowledged: " + "; ".join(
        explain_unanswered(send) for send in sends if send.cmid in stored_unanswered
    )

    # The clients come back and send again, with the same ids, what was not acknowledged.
    retry_links: dict[str, Link] = {}
    try:
        for send in sends:
            if send.cmid in acked:
                continue
            if send.who.id not in retry_links:
                retry_links[send.who.id] = Link()
                await retry_links[send.who.id].open(node.url, send.who)
            link = retry_links[send.who.id]
            ack = await link.call(send.event, send.payload)
            assert isinstance(ack, dict) and ack.get("success") is True, ack
            assert ack["data"]["duplicate"] is (send.cmid in before), ack
    finally:
        await asyncio.gather(*(link.close() for link in retry_links.values()))
    after: dict[str, dict[str, Any]] = {}
    total = 0
    for ticket_id, user in tickets.items():
        messages = await stored_messages(node, user, ticket_id)
        total += len(messages)
        after.update(by_client_id(messages))
    assert set(after) == {send.cmid for send in sends}
    assert total == len(tickets) + len(sends)  # the opening messages, and each send once


# --- c. clients are sent elsewhere ----------------------------------------------------------------


@pytest.fixture
def patient_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    """A 20 s grace: uvicorn alone would then wait 21 s for open long-polls, and
    Engine.IO would answer a pending long-poll only at its next ping (25 s)."""
    with node_for(request, tmp_path, "sqlite", SUPPORTCHAT_SHUTDOWN_GRACE_SECONDS="20") as node:
        yield node


async def test_connections_are_closed_promptly_long_polling_too(patient_node: Node) -> None:
    node = patient_node
    user, agent = node.person(), node.person(agent=True)
    started = await rest(node, lambda api: start_chat(api, user))
    links = [Link(), Link(), Link()]
    try:
        await links[0].open(node.url, user)
        await links[1].open(node.url, user, transports=("polling",))
        await links[2].open(node.url, agent, transports=("polling",))
        join = {"ticketId": started["ticketId"]}
        for link, event in zip(
            links, ("join_chat_room", "join_chat_room", "join_chat"), strict=True
        ):
            ack = await link.call(event, join)
            assert ack["success"] is True, ack
        began = time.monotonic()
        await node.sigterm()  # within TERM_BOUND (15 s), well under those 21 and 25 s
        took = time.monotonic() - began
        for link in links:
            await asyncio.wait_for(link.lost.wait(), DELIVERY_TIMEOUT)
        print(
            f"\nexited {took:.2f} s after SIGTERM; disconnect reasons "
            f"{[link.reasons for link in links]}"
        )
    finally:
        await asyncio.gather(*(link.close() for link in links))


async def test_python_socketio_client_reconnects_by_itself(sqlite_node: Node) -> None:
    node = sqlite_node
    user = node.person()
    http = aiohttp.ClientSession()
    sio: Any = socketio.AsyncClient(
        reconnection=True,
        reconnection_delay=0.1,
        reconnection_delay_max=0.5,
        handle_sigint=False,
        http_session=http,
    )
    connects: list[float] = []
    reconnected = asyncio.Event()
    reasons: list[Any] = []

    def on_connect() -> None:
        connects.append(time.monotonic())
        if len(connects) > 1:
            reconnected.set()

    sio.on("connect", on_connect)
    sio.on("disconnect", lambda reason=None: reasons.append(reason))
    try:
        await sio.connect(node.url, auth={"token": user.token}, transports=["websocket"])
        await node.sigterm()
        await node.restart()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reconnected.wait(), 6)
        assert len(connects) == 2, f"did not reconnect; disconnect reasons {reasons}"
    finally:
        await sio.disconnect()
        await http.close()


# The official client (socket.io-client 4, tests/js/node_modules): connect, and after the
# restart's reconnection send one message; one JSON line per step on stdout.
JS_RECONNECT = """
import { io } from "socket.io-client";
const env = process.env;
const say = (line) => console.log(JSON.stringify(line));
const socket = io(env.CHAT_URL, {
  auth: { token: env.CHAT_TOKEN },
  transports: env.CHAT_TRANSPORTS.split(","),
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
});
let connects = 0;
setTimeout(() => { say({ step: "timeout" }); process.exit(2); }, 40000);
socket.on("connect", () => {
  connects += 1;
  say({ step: "connect", n: connects, transport: socket.io.engine.transport.name });
  if (connects === 2) {
    const send = {
      ticketId: env.CHAT_TICKET, message: "after the restart", clientMessageId: env.CHAT_CMID,
    };
    socket.timeout(10000).emit("send_message", send, (err, ack) => {
      say({ step: "ack", err: err ? String(err) : null, ack });
      socket.close();
      process.exit(0);
    });
  }
});
socket.on("disconnect", (reason) => say({ step: "disconnect", reason, active: socket.active }));
"""


LOST_TRANSPORT = ("transport close", "transport error")


def node_or_skip() -> str:
    problem = None
    node = shutil.which("node")
    if node is None:
        problem = "node is not installed"
    elif not (JS_DIR / "node_modules" / "socket.io-client" / "package.json").is_file():
        problem = f"{JS_DIR / 'node_modules'} is missing: run `make install-test`"
    if problem is not None:
        if is_ci():
            pytest.fail(f"{problem} (CI must run the JS client tests)", pytrace=False)
        pytest.skip(problem)
    assert node is not None
    return node


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
async def test_official_client_reconnects_after_sigterm(sqlite_node: Node, transports: str) -> None:
    node_bin = node_or_skip()
    node = sqlite_node
    user = node.person()
    started = await rest(node, lambda api: start_chat(api, user))
    cmid = uuid.uuid4().hex
    env = {
        **os.environ,
        "CHAT_URL": node.url,
        "CHAT_TOKEN": user.token,
        "CHAT_TRANSPORTS": transports,
        "CHAT_TICKET": started["ticketId"],
        "CHAT_CMID": cmid,
    }
    js = await asyncio.create_subprocess_exec(
        node_bin, "--input-type=module", "-e", JS_RECONNECT,
        cwd=JS_DIR, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert js.stdout is not None
    lines: list[dict[str, Any]] = []

    async def next_line() -> dict[str, Any]:
        assert js.stdout is not None
        raw = await asyncio.wait_for(js.stdout.readline(), 45)
        assert raw, f"node ended early: {lines}"
        lines.append(json.loads(raw))
        return lines[-1]

    try:
        assert (await next_line())["step"] == "connect"
        if transports == "polling,websocket":
            await asyncio.sleep(0.5)  # let it upgrade, as the shipped client does
        await node.sigterm()
        await node.restart()
        while lines[-1]["step"] != "ack":
            await next_line()
        assert await asyncio.wait_for(js.wait(), 10) == 0
    finally:
        if js.returncode is None:
            js.kill()
            await js.wait()
    steps = [line["step"] for line in lines]
    assert steps == ["connect", "disconnect", "connect", "ack"], lines
    disconnect = lines[1]
    # A lost transport, which the client answers by reconnecting by itself ("io server
    # disconnect" would keep it away). "transport close" when the CLOSE packet reached it;
    # "transport error" when its next long-poll found the port already closed: the drain
    # stops listening first (so that a load balancer sends new clients elsewhere), and a
    # client slow to poll again comes back only after that.
    assert disconnect["reason"] in LOST_TRANSPORT, disconnect
    assert disconnect["active"] is True, disconnect
    ack = lines[3]
    assert ack["err"] is None and ack["ack"]["success"] is True, ack
    stored = by_client_id(await stored_messages(node, user, started["ticketId"]))
    assert stored[cmid]["_id"] == ack["ack"]["data"]["messageId"]


# --- d. sends held up by the database: acknowledged; a new event: refused -------------------------


class Hold:
    """Keeps the server's next write to one ticket waiting: SQLite's write lock taken
    by another connection (BEGIN IMMEDIATE), or, in PostgreSQL, the ticket's row lock
    (send_message takes it with SELECT ... FOR UPDATE)."""

    def __init__(self, node: Node, ticket_id: str) -> None:
        self.node = node
        self.ticket_id = ticket_id
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def take(self) -> None:
        url = self.node.proc.env.get("SUPPORTCHAT_DATABASE_URL")
        if url is None:
            path = self.node.proc.data_dir / "supportchat.db"
            self._sqlite = sqlite3.connect(path, isolation_level=None, timeout=10)
            self._sqlite.execute("BEGIN IMMEDIATE")
        else:
            self._pg = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            await self._pg.execute("BEGIN")
            rows = await self._pg.fetch(
                "SELECT id FROM tickets WHERE id = $1 FOR UPDATE", self.ticket_id
            )
            assert len(rows) == 1

    async def release(self) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            await self._pg.execute("ROLLBACK")
            await self._pg.close()
            self._pg = None


@contextlib.asynccontextmanager
async def held(node: Node, ticket_id: str) -> AsyncIterator[Hold]:
    hold = Hold(node, ticket_id)
    await hold.take()
    try:
        yield hold
    finally:
        await hold.release()


async def start_held_sends(link: Link, user: Person, ticket_id: str, count: int) -> list[Send]:
    """``count`` sends that are being handled, and waiting for the database, when this
    returns. The barrier is an event that needs no write (typing), emitted after them
    on the same connection: the server starts handling a connection's events in order,
    so once the barrier's ack is back, the sends are running."""
    sends = [await fire(link, user, ticket_id, f"held{n}") for n in range(count)]
    barrier = await link.call("user_typing", {"ticketId": ticket_id, "isTyping": True})
    assert barrier["success"] is True, barrier
    assert not any(s.answered.done() for s in sends), "the hold did not hold the sends"
    return sends


async def test_running_sends_are_acknowledged_and_new_events_refused(node: Node) -> None:
    user = node.person()
    started = await rest(node, lambda api: start_chat(api, user))
    ticket_id: str = started["ticketId"]
    link = Link()
    late_cmid = f"late-{uuid.uuid4().hex[:12]}"
    try:
        await link.open(node.url, user)
        async with held(node, ticket_id):
            sends = await start_held_sends(link, user, ticket_id, 5)
            since = node.log_size()
            term = node.sigterm_nowait()
            await node.wait_for_log(DRAIN_STARTED, since)
            # No new connections any more...
            with pytest.raises(OSError):
                _reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
                writer.close()
            # ... and a new event on an open one is refused, with nothing done.
            late = await link.call(
                "send_message",
                {"ticketId": ticket_id, "message": "too late", "clientMessageId": late_cmid},
            )
            assert late == {
                "success": False,
                "code": SHUTTING_DOWN,
                "message": late.get("message"),
            }, late
            assert isinstance(late["message"], str) and late["message"], late
            errors = [d for e, d in link.events if e == "chat_error"]
            assert errors == [
                {
                    "type": "service_unavailable",
                    "code": SHUTTING_DOWN,
                    "message": late["message"],
                    "ticketId": ticket_id,
                }
            ], errors
            assert not term.done(), "the server exited with sends running"
            assert not any(s.answered.done() for s in sends)
        # The database lets go: the running sends commit, and are acknowledged before
        # the connection closes.
        acks = [await link.outcome(s.answered) for s in sends]
        for send, ack in zip(sends, acks, strict=True):
            assert isinstance(ack, dict) and ack["success"] is True, ack
            assert ack["data"]["clientMessageId"] == send.cmid and not ack["data"]["duplicate"]
        sent = [d["clientMessageId"] for e, d in link.events if e == "message_sent"]
        assert sorted(sent) == sorted(s.cmid for s in sends)
        await asyncio.wait_for(link.lost.wait(), TERM_BOUND)
        status = await term
        assert status in CLEAN_EXIT, f"exit status {status} after SIGTERM"
    finally:
        await link.close()

    await node.restart()
    stored = by_client_id(await stored_messages(node, user, ticket_id))
    for send, ack in zip(sends, acks, strict=True):
        assert stored[send.cmid]["_id"] == ack["data"]["messageId"]
    assert late_cmid not in stored
    assert len(stored) == len(sends)


# --- e. the grace bounds the wait ----------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_grace_bounds_the_wait_for_a_stuck_send(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    """A send stuck on the database longer than SUPPORTCHAT_SHUTDOWN_GRACE_SECONDS does not
    keep the connections open: they close after the grace, unanswered, and the process
    exits. Sent again after the restart, the message is stored once (the stuck send may
    have committed once the database let go, after its connection was gone: then the
    resend is answered duplicate: true)."""
    with node_for(request, tmp_path, database, SUPPORTCHAT_SHUTDOWN_GRACE_SECONDS="2") as node:
        user = node.person()
        started = await rest(node, lambda api: start_chat(api, user))
        ticket_id: str = started["ticketId"]
        link = Link()
        try:
            await link.open(node.url, user)
            async with held(node, ticket_id):
                (send,) = await start_held_sends(link, user, ticket_id, 1)
                began = time.monotonic()
                term = node.sigterm_nowait()
                await asyncio.wait_for(link.lost.wait(), TERM_BOUND)
                closed_after = time.monotonic() - began
                assert not send.answered.done()
            status = await term
            assert status in CLEAN_EXIT, f"exit status {status} after SIGTERM"
            exited_after = time.monotonic() - began
        finally:
            await link.close()

        await node.restart()
        link = Link()
        try:
            await link.open(node.url, user)
            ack = await link.call(send.event, send.payload)
            assert ack["success"] is True, ack
        finally:
            await link.close()
        print(
            f"\n{database}: connections closed {closed_after:.1f} s after SIGTERM, exit after "
            f"{exited_after:.1f} s; the resend was a duplicate: {ack['data']['duplicate']}"
        )
        stored = by_client_id(await stored_messages(node, user, ticket_id))
        assert stored[send.cmid]["_id"] == ack["data"]["messageId"]
