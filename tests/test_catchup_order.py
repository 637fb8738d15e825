"""Replay on join, in order and without repeats, while the chat keeps moving (issue 5,
point 3; docs/protocol.md §6 "No overtaking during a replay").

``join_chat_room``, ``join_chat`` and the compatibility ``rejoin_ticket`` and
``join_ticket`` take a ``lastMessageId`` (X) and send the socket what came after it. Here
three senders (the user and two agents) flood one chat as fast as their acks come back,
and fresh sockets join it in the middle of the flood, round after round. Whatever
reaches the joining socket from the moment the server handles the join must be that
chat's messages X+1, X+2, ..., N in order: no gap, no repeat, no live message
overtaking the replay, and N the chat's last message.

What is allowed before that: a live ``new_message`` sent to the new socket between its
connection and the server handling the join can come again in the replay (the protocol
says so). X is always a message that was stored before the joining socket connected, so
X+1 cannot reach it live, and its first X+1 marks where the replay started.

The events that also carry the whole transcript (``ticket_rejoined``, the ack of
``join_chat``, ``ticket_joined``) are checked against it: nothing up to the transcript's
last seq T comes as ``new_message`` after the transcript (except, for ``rejoin_ticket``
with a ``lastMessageId``, the replay X+1..T itself, which the protocol sends right after
``ticket_rejoined``), and without a ``lastMessageId`` the socket continues at T+1.

The server of this module runs without rate limits (the default 30 messages per minute
and chat would stop the flood at once); both databases.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio

from support import AGENT_ROLE, Api, Person, ServerInfo, new_person, ok_data, start_chat
from support.clients import SocketClient
from support.postgres import database_url_for
from support.server import running_server

ROUNDS = 16  # joins per test, each in the middle of the flood
# The flood moves on by at least this many messages between two joins, and after the
# last one, so that every join has live traffic around it and after it.
MESSAGES_BETWEEN_JOINS = 15
MESSAGES_AFTER_LAST_JOIN = 40
REPLAY_SPAN = 300  # X is at most this many messages behind the newest stored one
# Liveness only: a healthy server answers in milliseconds.
ACK_TIMEOUT = 20.0
DELIVERY_TIMEOUT = 30.0
QUIET = 0.3  # after the last message arrived: nothing more may follow

JOIN_EVENTS = ("join_chat_room", "rejoin_ticket", "join_chat", "join_ticket")


# --- server --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerInfo]:
    """This module's server (in place of conftest's, so its `api` fixture uses this one):
    one per database, without rate limits, and with room for long replays in a socket's
    outgoing queue (the stalled-client guard disconnects at 1000 by default)."""
    database: str = request.param
    database_url = database_url_for(request, database)
    env = {
        "SUPPORTCHAT_RATE_LIMITS_ENABLED": "false",
        "SUPPORTCHAT_MAX_QUEUED_PACKETS": "100000",
    }
    data_dir = tmp_path_factory.mktemp(f"catchup-{database}")
    with running_server(
        f"catchup-{database}", data_dir, env=env, database_url=database_url
    ) as proc:
        assert proc.info is not None
        yield proc.info


# --- a socket that records everything, acks included, in arrival order --------------------


@dataclass
class Record:
    event: str  # an event name, or "ack:<event>" for the acknowledgement of a call
    data: Any


class Recorder(SocketClient):
    """One Socket.IO connection (the harness's client) recording every event it
    receives, in order, in ``records``.

    The handler is a plain function: python-engineio runs each received message in a
    task of its own, in arrival order, and a handler that never awaits appends in that
    task's first step, so the list keeps the order of the wire. Acknowledgements of
    ``call`` are recorded in the same list, so a test can tell what came after an ack."""

    def __init__(self, base_url: str, person: Person, user_type: str) -> None:
        super().__init__(base_url, person.token, user_type, label=f"{user_type}:{person.id}")
        self.person = person
        self.records: list[Record] = []
        self._changed = asyncio.Event()

    def _register(self, sio: socketio.AsyncClient) -> None:
        sio.on("*", self._on_any)

    def _on_any(self, event: str, *args: Any) -> None:
        self._append(event, args)

    def _append(self, event: str, args: tuple[Any, ...]) -> None:
        self.records.append(Record(event, args[0] if len(args) == 1 else args))
        self._changed.set()

    async def call(
        self,
        event: str,
        data: Any = None,
        timeout: float = ACK_TIMEOUT,  # noqa: ASYNC109 - the harness client's signature
    ) -> Any:
        """Emit with an acknowledgement; returns it (and records it as ``ack:<event>``)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_ack(*args: Any) -> None:
            self._append(f"ack:{event}", args)
            if not done.done():
                done.set_result(args[0] if len(args) == 1 else args)

        await self._sio().emit(event, data, callback=on_ack)
        try:
            return await asyncio.wait_for(done, timeout)
        except TimeoutError:
            raise AssertionError(f"{self.label}: no ack for {event} in {timeout} s") from None

    async def ok(self, event: str, data: Any) -> dict[str, Any]:
        ack = await self.call(event, data)
        assert isinstance(ack, dict) and ack.get("success") is True, (self.label, event, ack)
        return ack

    def seqs(self, ticket_id: str) -> list[int]:
        return [seq for _pos, seq in self.new_messages(ticket_id)]

    def new_messages(self, ticket_id: str) -> list[tuple[int, int]]:
        """(position in the record, seq) of every new_message of the ticket."""
        return [
            (pos, int(r.data["seq"]))
            for pos, r in enumerate(self.records)
            if r.event == "new_message"
            and isinstance(r.data, dict)
            and r.data.get("ticketId") == ticket_id
        ]

    async def wait_for_seq(self, ticket_id: str, seq: int) -> None:
        async def arrived() -> None:
            while seq not in self.seqs(ticket_id):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(arrived(), DELIVERY_TIMEOUT)
        except TimeoutError:
            got = self.seqs(ticket_id)
            raise AssertionError(
                f"{self.label}: seq {seq} never arrived in {DELIVERY_TIMEOUT} s; "
                f"received {len(got)} new_message, last ones {got[-10:]}"
            ) from None


# --- the flood ------------------------------------------------------------------------------


@dataclass
class Flood:
    """Senders streaming into one ticket; ``stored`` maps each acked seq to its message id."""

    ticket_id: str
    senders: list[tuple[Recorder, str]]  # (socket, send event)
    stored: dict[int, str] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    grew: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def newest(self) -> int:
        return max(self.stored)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._send_loop(*s)) for s in self.senders]

    async def _send_loop(self, sender: Recorder, event: str) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            ack = await sender.ok(
                event,
                {
                    "ticketId": self.ticket_id,
                    "message": f"{sender.label} #{n}",
                    "clientMessageId": uuid.uuid4().hex,
                },
            )
            self.stored[int(ack["data"]["seq"])] = ack["data"]["messageId"]
            self.grew.set()

    async def advance(self, count: int) -> None:
        """Wait until the flood has stored ``count`` more messages."""
        target = self.newest + count

        async def reached() -> None:
            while self.newest < target:
                self._check_senders()
                self.grew.clear()
                await self.grew.wait()

        try:
            await asyncio.wait_for(reached(), DELIVERY_TIMEOUT)
        except TimeoutError:
            self._check_senders()
            raise AssertionError(f"the flood stalled at seq {self.newest}") from None

    def _check_senders(self) -> None:
        for task in self.tasks:
            error = task.exception() if task.done() else None
            if error is not None:
                raise error

    async def finish(self) -> int:
        """Stop the senders after their current send; the last stored seq."""
        self.stop.set()
        self.grew.set()
        await asyncio.gather(*self.tasks)
        return self.newest


@dataclass
class Scene:
    server: ServerInfo
    api: Api
    user: Person
    agents: list[Person]
    ticket_id: str
    flood: Flood
    sockets: list[Recorder]

    async def socket(self, person: Person, user_type: str | None = None) -> Recorder:
        recorder = Recorder(
            self.server.base_url, person, user_type or ("admin" if person.role else "user")
        )
        self.sockets.append(recorder)
        await recorder.connect(wait_timeout=10)
        return recorder

    def pick_last_seen(self) -> tuple[int, str]:
        """A stored message the joining socket is said to hold last: one stored before it
        connects (so that the one after it was stored before too, and can only reach it
        through the replay), at most REPLAY_SPAN behind the newest.

        Only acknowledged seqs are candidates: three senders' acks come back in any order,
        so a seq below the newest acknowledged one may still be waiting for its ack."""
        newest = self.flood.newest
        acked = [s for s in self.flood.stored if max(2, newest - REPLAY_SPAN) <= s < newest]
        seq = random.choice(acked)
        return seq, self.flood.stored[seq]


@pytest.fixture
async def scene(server: ServerInfo, api: Api) -> AsyncIterator[Scene]:
    """A chat with its user and two agents (both following it) flooding it."""
    user = new_person(server.secret)
    agents = [new_person(server.secret, role=AGENT_ROLE) for _ in range(2)]
    started = await start_chat(api, user, "the flood starts here")
    ticket_id: str = started["ticketId"]
    scene = Scene(server, api, user, agents, ticket_id, Flood(ticket_id, []), [])
    try:
        user_socket = await scene.socket(user)
        agent_sockets = [await scene.socket(agent) for agent in agents]
        for agent_socket in agent_sockets:
            await agent_socket.ok("join_chat", {"ticketId": ticket_id})
        scene.flood.senders = [
            (user_socket, "send_message"),
            *((s, "admin_send_message") for s in agent_sockets),
        ]
        scene.flood.stored[1] = started["messages"][0]["_id"]
        scene.flood.start()
        await scene.flood.advance(MESSAGES_BETWEEN_JOINS)
        yield scene
    finally:
        scene.flood.stop.set()
        await asyncio.gather(*scene.flood.tasks, return_exceptions=True)
        await asyncio.gather(*(s.disconnect() for s in scene.sockets), return_exceptions=True)


# --- the joins ------------------------------------------------------------------------------


@dataclass
class Join:
    """One joining socket and what the check needs to know about its join."""

    socket: Recorder
    event: str
    last_seen: int | None  # X, the seq of lastMessageId; None: joined without one
    marker: str | None = None  # the record carrying the whole transcript
    follower: bool = False  # its agent followed the ticket before the join


async def join_round(scene: Scene, event: str, round_no: int) -> Join:
    """Connect a new socket and join the ticket with ``event``, during the flood.

    With a transcript (every event but join_chat_room) every other round joins without
    a lastMessageId. Agents alternate between a new agent and a second socket of one of
    the flooding agents (following the ticket already, so it hears live messages from
    its connection on)."""
    with_last = event == "join_chat_room" or round_no % 2 == 0
    last_seen, last_id = scene.pick_last_seen() if with_last else (None, None)
    payload: dict[str, Any] = {"ticketId": scene.ticket_id}
    if last_id is not None:
        payload["lastMessageId"] = last_id
    if event in ("join_chat", "join_ticket"):
        follower = round_no % 4 in (0, 3)
        agent = (
            scene.agents[round_no % 2]
            if follower
            else new_person(scene.server.secret, role=AGENT_ROLE)
        )
        socket = await scene.socket(agent)
    else:
        follower = False
        socket = await scene.socket(scene.user)
    await socket.ok(event, payload)
    marker = {
        "join_chat_room": None,
        "rejoin_ticket": "ticket_rejoined",
        "join_chat": "ack:join_chat",
        "join_ticket": "ticket_joined",
    }[event]
    return Join(socket, event, last_seen, marker, follower)


def transcript_of(join: Join) -> tuple[int, int]:
    """(position, last seq) of the transcript the join answered with."""
    assert join.marker is not None
    found = [(p, r) for p, r in enumerate(join.socket.records) if r.event == join.marker]
    assert len(found) == 1, f"{join.socket.label}: {len(found)} {join.marker} records"
    pos, record = found[0]
    data = record.data
    if join.marker.startswith("ack:"):
        data = data["data"]
    seqs = [int(m["seq"]) for m in data["messages"]]
    assert seqs == list(range(1, len(seqs) + 1)), f"transcript is not 1..T: {seqs[-5:]}"
    return pos, len(seqs)


def check_join(join: Join, ticket_id: str, last: int) -> str:
    """The ordering guarantees for one joined socket; a one-line summary of what it got."""
    label = f"{join.socket.label} {join.event} X={join.last_seen}"
    arrivals = join.socket.new_messages(ticket_id)
    seqs = [seq for _pos, seq in arrivals]
    transcript_pos, transcript_last = None, None
    if join.marker is not None:
        transcript_pos, transcript_last = transcript_of(join)
        if join.last_seen is not None:
            assert transcript_last > join.last_seen, (label, transcript_last)

    # Where the socket's catch-up starts: after X, or after the transcript.
    start = join.last_seen if join.last_seen is not None else transcript_last
    assert start is not None
    assert start + 1 in seqs, f"{label}: seq {start + 1} never arrived; got {seqs[:20]}..."
    first = seqs.index(start + 1)
    tail = seqs[first:]
    expected = list(range(start + 1, last + 1))
    if tail != expected:
        overtook = sorted(set(seqs[:first]) - set(tail))
        note = f"; overtook the catch-up (came before {start + 1}): {overtook[:10]}"
        raise AssertionError(
            f"{label}: from seq {start + 1} on, {describe(tail, expected)}"
            f"{note if overtook else ''}"
        )

    if transcript_pos is not None and transcript_last is not None:
        after = [seq for pos, seq in arrivals if pos > transcript_pos]
        if join.event == "rejoin_ticket":
            # ticket_rejoined goes out inside the gate, before the replay: after it comes
            # exactly the replay (X+1..T) and then the live messages.
            assert after == expected, f"{label}: after ticket_rejoined, {describe(after, expected)}"
        else:
            repeated = [seq for seq in after if seq <= transcript_last]
            assert not repeated, (
                f"{label}: {len(repeated)} message(s) of the transcript (1..{transcript_last}) "
                f"came again after it: {repeated[:10]}"
            )
    if join.event in ("join_chat", "join_ticket") and not join.follower:
        # A new agent hears nothing of the ticket before its join makes it follow it.
        assert seqs == expected, f"{label}: a new agent got {describe(seqs, expected)}"
    return f"{label}: {first} live before the catch-up, then {start + 1}..{last}" + (
        f" (transcript 1..{transcript_last})" if transcript_last is not None else ""
    )


def describe(got: list[int], expected: list[int]) -> str:
    """What is wrong with a received seq list: first divergence, repeats, gaps, order."""
    repeats = sorted({s for s in got if got.count(s) > 1})
    missing = sorted(set(expected) - set(got))
    out_of_order = sum(1 for a, b in itertools.pairwise(got) if b < a)
    index = next(
        (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
        min(len(got), len(expected)),
    )
    return (
        f"expected {len(expected)} consecutive seqs, got {len(got)}; first divergence at "
        f"index {index}: got {got[max(0, index - 3) : index + 5]}, expected "
        f"{expected[max(0, index - 3) : index + 5]}; repeated: {repeats[:10]}, "
        f"missing: {missing[:10]}, {out_of_order} step(s) backwards"
    )


# --- the test -------------------------------------------------------------------------------


@pytest.mark.parametrize("event", JOIN_EVENTS)
async def test_replay_during_a_flood_is_in_order_without_repeats(scene: Scene, event: str) -> None:
    joins: list[Join] = []
    for round_no in range(ROUNDS):
        joins.append(await join_round(scene, event, round_no))
        await scene.flood.advance(MESSAGES_BETWEEN_JOINS)
    await scene.flood.advance(MESSAGES_AFTER_LAST_JOIN)
    last = await scene.flood.finish()

    # The flood's acks name every message of the ticket: nothing else was stored.
    ticket = ok_data(await scene.api.get(f"/api/chat/{scene.ticket_id}", token=scene.user))
    stored = [int(m["seq"]) for m in ticket["ticket"]["messages"]]
    assert stored == list(range(1, last + 1)), f"ticket holds {len(stored)} messages, last {last}"
    assert sorted(scene.flood.stored) == stored

    await asyncio.gather(*(j.socket.wait_for_seq(scene.ticket_id, last) for j in joins))
    await asyncio.sleep(QUIET)  # anything sent twice would arrive after the last one
    summaries = [check_join(join, scene.ticket_id, last) for join in joins]
    print(f"\n{event}: {last} messages in the chat")
    print("\n".join(summaries))
