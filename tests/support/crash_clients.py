"""Clients for the crash test (tests/test_crash_recovery.py): a user or agent that sends a
stream of messages with clientMessageIds over Socket.IO while the server is SIGKILLed
under it, and recovers the way docs/protocol.md §6 tells a client to.

A ``CrashClient`` keeps a record of every message of its tickets it learnt of: from its
own acknowledgements, from ``new_message`` (live or replayed) and from the transcript in
an agent's ``join_chat`` acknowledgement. Its connection is lost when the server dies;
it then connects again (a fresh python-socketio client each time, so no state of the
dead connection survives), re-joins each ticket with ``lastMessageId`` = the newest
message up to which its record has no gap, and sends again, with the same
clientMessageId, the message whose acknowledgement it was waiting for.

Every wait has a deadline, but only for liveness: a healthy server answers in
milliseconds, and a lost connection is noticed as soon as the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from .clients import answer_or_loss
from .tokens import Person

ACK_TIMEOUT = 10.0  # no acknowledgement within this: the connection is given up
CONNECT_TIMEOUT = 10.0  # one connection attempt
RECONNECT_DEADLINE = 45.0  # the killer restarts the server within seconds
MAX_ATTEMPTS = 60  # sends of one clientMessageId before the test gives up
# Refusals a send may get while the server is going down or coming up; any other failed
# acknowledgement is a bug and fails the test.
RETRYABLE_CODES = {"SERVICE_UNAVAILABLE", "INTERNAL_ERROR"}


class Interrupted(Exception):
    """No success acknowledgement: the connection was lost or the ack never came."""


@dataclass(frozen=True)
class Ack:
    """A successful acknowledgement of one of this client's sends."""

    client_message_id: str
    ticket_id: str
    message_id: str
    seq: int
    duplicate: bool
    attempts: int


@dataclass
class Stats:
    connects: int = 0
    connect_failures: int = 0  # attempts refused while the server was down
    lost_connections: int = 0  # the server went away under an open connection
    interrupted_sends: int = 0  # a send that got no success ack and was sent again
    interrupted_joins: int = 0
    timeouts: int = 0  # acks not received within ACK_TIMEOUT (liveness; expected 0)
    failed_acks: int = 0  # success: false with a retryable code
    duplicate_acks: int = 0  # a resend answered duplicate=true: stored, but the ack was lost
    replayed: int = 0  # new_message events received while a join was replaying
    replay_overlap: int = 0  # ... of which this connection had received already (allowed)
    # After a join's ack, on the same connection: the same message again, or a message
    # older than one received before it. Reported, not asserted (see the test).
    client_duplicates: int = 0
    client_reordered: int = 0
    gaps_after_join: int = 0  # seqs missing from the record when a join's ack arrived
    conflicts: int = 0  # one seq with two messageIds or one messageId with two seqs


class Progress:
    """Acknowledged sends of all clients, and whether one is in flight: the killer waits
    on these."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.acked = 0
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    def __repr__(self) -> str:
        return f"Progress(acked={self.acked} of {self.total})"


@dataclass
class _Connection:
    """What is known about one connection (epoch); replaced on every connect."""

    epoch: int
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    # ticket -> "pre" (no join yet), "replay" (join emitted, no ack yet), "live" (acked)
    phase: dict[str, str] = field(default_factory=dict)
    ids: dict[str, set[str]] = field(default_factory=dict)  # new_message ids per ticket
    newest: dict[str, int] = field(default_factory=dict)  # newest new_message seq


class CrashClient:
    def __init__(
        self,
        label: str,
        person: Person,
        base_url: str,
        rng: random.Random,
        tickets: list[str] | None = None,
    ) -> None:
        self.label = label
        self.person = person
        self.base_url = base_url
        self.rng = rng
        self.tickets: list[str] = list(tickets or [])
        self.stats = Stats()
        self.acks: dict[str, Ack] = {}  # by clientMessageId
        self.sent_order: list[str] = []  # clientMessageIds in the order they were acked
        self.seen: dict[str, dict[str, int]] = {}  # ticket -> messageId -> seq
        self.by_seq: dict[str, dict[int, str]] = {}  # ticket -> seq -> messageId
        self.in_flight = False  # a send is waiting for its ack (the killer looks)
        self.in_flight_since = 0.0  # time.monotonic() of that send's emit
        self.latencies: list[float] = []  # seconds from emit to success ack
        self.progress: Progress | None = None
        self._sio: Any = None
        self._http: aiohttp.ClientSession | None = None
        self._conn = _Connection(epoch=0)
        self._conn.lost.set()  # not connected yet

    @property
    def is_agent(self) -> bool:
        return self.person.is_agent

    # -- the record ---------------------------------------------------------------------

    def add_ticket(self, ticket_id: str) -> None:
        if ticket_id not in self.tickets:
            self.tickets.append(ticket_id)
        self.seen.setdefault(ticket_id, {})
        self.by_seq.setdefault(ticket_id, {})

    def learn(self, ticket_id: str, message_id: Any, seq: Any) -> None:
        if ticket_id not in self.seen or not isinstance(message_id, str):
            return
        if not isinstance(seq, int):
            self.stats.conflicts += 1
            return
        known = self.seen[ticket_id].get(message_id)
        holder = self.by_seq[ticket_id].get(seq)
        if (known is not None and known != seq) or (holder is not None and holder != message_id):
            self.stats.conflicts += 1
            return
        self.seen[ticket_id][message_id] = seq
        self.by_seq[ticket_id][seq] = message_id

    def contiguous(self, ticket_id: str) -> int:
        """The highest k such that seqs 1..k are all in the record."""
        have = self.by_seq.get(ticket_id, {})
        k = 0
        while k + 1 in have:
            k += 1
        return k

    def resume_point(self, ticket_id: str) -> str | None:
        """``lastMessageId`` for a join: the newest message before the first gap, so that
        a message lost in flight (say, before one of our own acks) is replayed too."""
        k = self.contiguous(ticket_id)
        return self.by_seq[ticket_id][k] if k else None

    def _gaps(self, ticket_id: str) -> int:
        have = self.by_seq.get(ticket_id, {})
        return (max(have) - len(have)) if have else 0

    # -- connection ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sio is not None and not self._conn.lost.is_set()

    async def connect(self) -> None:
        """(Re)connect and re-join every ticket, until it works or the deadline passes."""
        deadline = time.monotonic() + RECONNECT_DEADLINE
        while True:
            await self.drop()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.label}: could not reconnect within {RECONNECT_DEADLINE} s "
                    f"({self.stats})"
                )
            conn = _Connection(epoch=self._conn.epoch + 1)
            self._conn = conn
            self._http = aiohttp.ClientSession()
            sio = socketio.AsyncClient(
                reconnection=False, handle_sigint=False, http_session=self._http
            )
            self._sio = sio
            self._register(sio, conn)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await sio.connect(
                        self.base_url,
                        auth={"token": self.person.token, "userType": self.person.user_type},
                        transports=["websocket"],
                        wait_timeout=CONNECT_TIMEOUT,
                    )
            except (
                socketio.exceptions.ConnectionError,
                aiohttp.ClientError,
                OSError,
                TimeoutError,
            ):
                self.stats.connect_failures += 1
                await asyncio.sleep(self.rng.uniform(0.05, 0.2))
                continue
            self.stats.connects += 1
            try:
                for ticket_id in self.tickets:
                    await self._join(ticket_id)
            except Interrupted:
                self.stats.interrupted_joins += 1
                continue
            return

    async def drop(self) -> None:
        """Close the current connection, if any (idempotent)."""
        sio, self._sio = self._sio, None
        http, self._http = self._http, None
        self._conn.lost.set()  # before disconnecting: this is no lost connection
        try:
            if sio is not None:
                with contextlib.suppress(TimeoutError, socketio.exceptions.SocketIOError):
                    async with asyncio.timeout(5):
                        if sio.connected:
                            # Do not wait for the server's answer to the close packet.
                            await sio.eio.disconnect(abort=True)
                        await sio.disconnect()
        finally:
            if http is not None and not http.closed:
                await http.close()

    def _register(self, sio: Any, conn: _Connection) -> None:
        # Plain functions, not coroutines: python-socketio runs each incoming packet in a
        # task of its own, and a synchronous handler records it before the next one runs,
        # so the record keeps the order in which the packets arrived.
        def on_disconnect(*_args: Any) -> None:
            if not conn.lost.is_set():
                self.stats.lost_connections += 1
                conn.lost.set()

        def on_new_message(data: Any) -> None:
            if isinstance(data, dict):
                self._on_new_message(conn, data)

        sio.on("disconnect", on_disconnect)
        sio.on("new_message", on_new_message)

    def _on_new_message(self, conn: _Connection, data: dict[str, Any]) -> None:
        ticket_id, message_id, seq = data.get("ticketId"), data.get("messageId"), data.get("seq")
        if not isinstance(ticket_id, str) or ticket_id not in self.seen:
            return
        if conn is self._conn and isinstance(message_id, str) and isinstance(seq, int):
            ids = conn.ids.setdefault(ticket_id, set())
            phase = conn.phase.get(ticket_id, "pre")
            if phase == "replay":
                self.stats.replayed += 1
                if message_id in ids:
                    # e.g. sent live before the server saw the join, then replayed
                    self.stats.replay_overlap += 1
            elif phase == "live":
                if message_id in ids:
                    self.stats.client_duplicates += 1
                elif seq < conn.newest.get(ticket_id, 0):
                    self.stats.client_reordered += 1
            ids.add(message_id)
            conn.newest[ticket_id] = max(seq, conn.newest.get(ticket_id, 0))
        self.learn(ticket_id, message_id, seq)

    # -- calls --------------------------------------------------------------------------

    async def _call(
        self, event: str, payload: dict[str, Any], on_ack: Callable[[Any], None] | None = None
    ) -> Any:
        """Emit with an acknowledgement; return it, or raise Interrupted if the connection
        is lost first (or the ack does not come within ACK_TIMEOUT). ``on_ack`` runs in
        the ack callback itself, i.e. exactly between the packets received before the
        ack and those received after it."""
        sio, conn = self._sio, self._conn
        if sio is None or conn.lost.is_set():
            raise Interrupted("not connected")
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def callback(*args: Any) -> None:
            data = args[0] if args else None
            if conn is self._conn and not answer.done():
                if on_ack is not None:
                    on_ack(data)
                answer.set_result(data)

        try:
            await sio.emit(event, payload, callback=callback)
        except socketio.exceptions.SocketIOError as exc:
            raise Interrupted(f"emit failed: {exc!r}") from None
        await answer_or_loss(answer, conn.lost, ACK_TIMEOUT)
        if answer.done():
            return answer.result()
        answer.cancel()
        if not conn.lost.is_set():
            self.stats.timeouts += 1
            conn.lost.set()  # give this connection up; the caller reconnects
            raise Interrupted(f"no ack for {event} within {ACK_TIMEOUT} s")
        raise Interrupted("connection lost")

    async def _join(self, ticket_id: str) -> None:
        """join_chat (agent) / join_chat_room (user) with lastMessageId: the server
        replays what came after it as new_message events, then acknowledges."""
        conn = self._conn
        payload: dict[str, Any] = {"ticketId": ticket_id}
        if (last := self.resume_point(ticket_id)) is not None:
            payload["lastMessageId"] = last
        conn.phase[ticket_id] = "replay"

        def on_ack(ack: Any) -> None:
            if not (isinstance(ack, dict) and ack.get("success") is True):
                return
            data = ack.get("data")
            transcript = data.get("messages") if isinstance(data, dict) else None
            ids = conn.ids.setdefault(ticket_id, set())
            for message in transcript if isinstance(transcript, list) else []:
                if isinstance(message, dict):
                    self.learn(ticket_id, message.get("_id"), message.get("seq"))
                    if isinstance(message.get("_id"), str) and isinstance(message.get("seq"), int):
                        ids.add(message["_id"])
                        conn.newest[ticket_id] = max(message["seq"], conn.newest.get(ticket_id, 0))
            self.stats.gaps_after_join += self._gaps(ticket_id)
            conn.phase[ticket_id] = "live"

        event = "join_chat" if self.is_agent else "join_chat_room"
        ack = await self._call(event, payload, on_ack)
        if not (isinstance(ack, dict) and ack.get("success") is True):
            if isinstance(ack, dict) and ack.get("code") in RETRYABLE_CODES:
                self.stats.failed_acks += 1
                await asyncio.sleep(0.1)
                raise Interrupted(f"{event} refused: {ack}")
            raise AssertionError(f"{self.label}: {event} {payload} refused: {ack}")

    async def send(self, ticket_id: str, client_message_id: str) -> Ack:
        """Send until a success ack arrives, always with the same clientMessageId."""
        event = "admin_send_message" if self.is_agent else "send_message"
        payload = {"ticketId": ticket_id, "message": client_message_id}
        payload["clientMessageId"] = client_message_id
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if not self.connected:
                await self.connect()
            self.in_flight = True
            self.in_flight_since = emitted = time.monotonic()
            if self.progress is not None:
                self.progress.changed()
            try:
                answer = await self._call(event, payload)
            except Interrupted:
                self.stats.interrupted_sends += 1
                continue
            finally:
                self.in_flight = False
            if not (isinstance(answer, dict) and answer.get("success") is True):
                code = answer.get("code") if isinstance(answer, dict) else None
                if code not in RETRYABLE_CODES:
                    raise AssertionError(f"{self.label}: {event} {payload} refused: {answer}")
                self.stats.failed_acks += 1
                self.stats.interrupted_sends += 1
                await asyncio.sleep(0.1)
                continue
            self.latencies.append(time.monotonic() - emitted)
            data = answer["data"]
            ack = Ack(
                client_message_id=client_message_id,
                ticket_id=ticket_id,
                message_id=str(data.get("messageId")),
                seq=int(data.get("seq", -1)),
                duplicate=bool(data.get("duplicate")),
                attempts=attempt,
            )
            if ack.duplicate:
                self.stats.duplicate_acks += 1
            self.record_ack(ack)
            return ack
        raise AssertionError(f"{self.label}: {client_message_id} not acknowledged after retries")

    def record_ack(self, ack: Ack) -> None:
        self.acks[ack.client_message_id] = ack
        self.sent_order.append(ack.client_message_id)
        self.learn(ack.ticket_id, ack.message_id, ack.seq)

    async def run(
        self,
        plan: list[tuple[str, str]],
        progress: Progress,
        pause: tuple[float, float] = (0.005, 0.04),
    ) -> None:
        """Send each (ticketId, clientMessageId) of ``plan`` in order, body = the id."""
        self.progress = progress
        for ticket_id, client_message_id in plan:
            await self.send(ticket_id, client_message_id)
            progress.acked += 1
            progress.changed()
            await asyncio.sleep(self.rng.uniform(*pause))

    async def catch_up(self) -> None:
        """A last reconnect: re-join every ticket with lastMessageId, replaying the rest."""
        await self.connect()
