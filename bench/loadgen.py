"""One load-generator process of the support-floor benchmark.

It drives its share of the chats (both ends, see plan.py): starts the chats, connects
the users and agents with the lean client (wire.py), joins each agent to its chats, and
then, from the orchestrator's common start time, sends every chat's messages on a fixed
schedule (open loop: a slow server does not slow the senders down). Every message
carries its id and send time (``time.monotonic_ns()``, one clock for every process on
the machine) in its ``clientMessageId`` and at the start of its text, so the receiving
side measures the end-to-end latency and checks that each acknowledged message reached
its recipient exactly once.

Phases over the pipe (workers.py): the worker sets up and sends ``ready``; the
orchestrator sends ``go`` (the start time); the worker sends ``sent`` (its acknowledged
user messages) once its own sends are answered and delivered; the orchestrator sends
``expect`` (all workers' user messages: what each agent must have heard); the worker
sends ``result``; the orchestrator sends ``close``.
"""

from __future__ import annotations

import array
import asyncio
import heapq
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection as Pipe
from typing import Any

import aiohttp

from . import wire
from .plan import SetupInfo, WorkerPlan, WorkerResult
from .servers import REAL
from .tokens import make_token
from .workers import inbox, run_worker

USER, AGENT = "u", "a"
STORM_RETRIES = 5


@dataclass(slots=True)
class Msg:
    chat: int
    side: str
    t_ns: int
    payload: dict[str, Any]
    ack_ns: int = 0
    failed: str | None = None
    delivered: int = 0


@dataclass(slots=True, eq=False)
class Peer:
    """One socket's owner: a user (index = chat) or an agent (index = agent)."""

    role: str
    index: int
    token: str
    conn: wire.Connection | None = None
    ready: bool = False
    deferred: list[int] = field(default_factory=list)  # chats whose send waits for us
    inflight: dict[str, Msg] = field(default_factory=dict)  # sent, not yet answered
    fanout_seen: set[str] = field(default_factory=set)
    connected_ns: int = 0
    caught_up_ns: int = 0


@dataclass(slots=True)
class Chat:
    index: int
    user: Peer
    agent: int
    ticket_id: str = ""
    sent: dict[str, int] = field(default_factory=lambda: {USER: 0, AGENT: 0})
    # The newest message each end knows of (seq, id): where its catch-up starts.
    user_last: tuple[int, str] = (0, "")
    agent_last: tuple[int, str] = (0, "")


class Floor:
    def __init__(self, plan: WorkerPlan, pipe: Pipe) -> None:
        self.plan = plan
        self.pipe = pipe
        self.rng = random.Random(plan.seed)
        self.inbox: asyncio.Queue[tuple[str, Any]] | None = None
        self.agents: dict[int, Peer] = {}
        self.chats: dict[int, Chat] = {}
        self.by_ticket: dict[str, Chat] = {}
        self.msgs: dict[str, Msg] = {}
        self.result = WorkerResult(plan.index, os.getpid())
        self.e2e = array.array("q")
        self.ack = array.array("q")
        self.fanout = array.array("q")
        self.lag = array.array("q")
        self.other: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.storm_errors: Counter[str] = Counter()  # refusals seen while catching up
        self.t0_ns = 0
        self.measuring = False
        self.closing = False
        self.answered = 0  # sends acknowledged or refused

    # -- the pipe --------------------------------------------------------------------------

    async def expect(self, phase: str) -> Any:
        assert self.inbox is not None
        got, payload = await self.inbox.get()
        if got != phase:
            raise RuntimeError(f"expected {phase!r} from the orchestrator, got {got!r}")
        return payload

    # -- setup -----------------------------------------------------------------------------

    async def setup(self) -> SetupInfo:
        plan = self.plan
        info = SetupInfo()
        real = plan.kind == REAL
        for a in plan.agents:
            agent_id = f"agent-{plan.run_id}-{a}"
            self.agents[a] = Peer(AGENT, a, make_token(plan.secret, agent_id, agent=True))
        for i in plan.chats:
            user = Peer(USER, i, make_token(plan.secret, f"user-{plan.run_id}-{i}"))
            chat = Chat(i, user, i % plan.total_agents)
            self.chats[i] = chat
        t = time.monotonic()
        if real:
            await self.start_chats()
            info.chats_started = len(self.chats)
        else:
            for chat in self.chats.values():
                chat.ticket_id = f"{plan.run_id}{chat.index:012x}"[-24:]
        for chat in self.chats.values():
            self.by_ticket[chat.ticket_id] = chat
        info.start_seconds = time.monotonic() - t
        t = time.monotonic()
        await self.bounded(self.connect(p) for p in self.agents.values())
        await self.bounded(self.connect(c.user) for c in self.chats.values())
        info.connect_seconds = time.monotonic() - t
        info.connections = len(self.agents) + len(self.chats)
        t = time.monotonic()
        await self.bounded(self.join(chat) for chat in self.chats.values())
        info.join_seconds = time.monotonic() - t
        for peer in self.peers():
            peer.ready = True
        return info

    async def bounded(self, jobs: Iterable[Awaitable[None]]) -> None:
        gate = asyncio.Semaphore(self.plan.connect_concurrency)

        async def run(job: Awaitable[None]) -> None:
            async with gate:
                await job

        await asyncio.gather(*(run(job) for job in jobs))

    async def start_chats(self) -> None:
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def start(chat: Chat) -> None:
                url = f"http://{self.plan.host}:{self.plan.port_for(chat.index)}/api/chat/start"
                headers = {"Authorization": f"Bearer {chat.user.token}"}
                body = {"message": f"Hello, this is chat {chat.index}"}
                for attempt in range(5):
                    async with http.post(url, json=body, headers=headers) as r:
                        if r.status in (200, 201):
                            data = (await r.json())["data"]
                            chat.ticket_id = data["ticketId"]
                            first = data["messages"][-1]
                            chat.user_last = (int(first["seq"]), str(first["_id"]))
                            return
                        if r.status != 503 or attempt == 4:
                            raise RuntimeError(f"POST /api/chat/start: {r.status} {await r.text()}")
                    await asyncio.sleep(0.5)

            await self.bounded(start(c) for c in self.chats.values())

    async def connect(self, peer: Peer) -> None:
        auth: dict[str, Any] = {"token": peer.token}
        auth["userType"] = "admin" if peer.role == AGENT else "user"
        for attempt in range(5):
            try:
                port = self.plan.port_for(peer.index)
                peer.conn = await wire.connect(self.plan.host, port, auth, self, tag=peer)
                peer.connected_ns = time.monotonic_ns()
                return
            except (OSError, TimeoutError, wire.ConnectionLost, wire.ConnectRefused):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))

    async def join(self, chat: Chat) -> None:
        agent = self.agents[chat.agent]
        assert agent.conn is not None and chat.user.conn is not None
        answer = await agent.conn.call("join_chat", {"ticketId": chat.ticket_id}, within=60)
        check(answer, "join_chat")
        data = answer.get("data") or {}
        if data.get("messages"):
            last = data["messages"][-1]
            chat.agent_last = (int(last["seq"]), str(last["_id"]))
        if self.plan.kind != REAL:  # the relay knows no owners: the user joins the room
            check(
                await chat.user.conn.call("join_chat_room", {"ticketId": chat.ticket_id}),
                "join_chat_room",
            )

    def peers(self) -> list[Peer]:
        return [*self.agents.values(), *(c.user for c in self.chats.values())]

    # -- sending ---------------------------------------------------------------------------

    def send(self, chat: Chat, side: str) -> None:
        peer = chat.user if side == USER else self.agents[chat.agent]
        if not peer.ready or peer.conn is None:
            peer.deferred.append(chat.index)  # its socket is reconnecting
            return
        k = chat.sent[side]
        chat.sent[side] = k + 1
        t_ns = time.monotonic_ns()
        key = f"{chat.index}.{side}{k}.{t_ns}"
        body = key + " " + "x" * max(0, self.plan.message_size - len(key) - 1)
        payload = {"ticketId": chat.ticket_id, "message": body, "clientMessageId": key}
        msg = Msg(chat.index, side, t_ns, payload)
        self.msgs[key] = msg
        self.result.sent += 1
        self.emit(peer, key, msg)

    def emit(self, peer: Peer, key: str, msg: Msg) -> None:
        assert peer.conn is not None
        peer.inflight[key] = msg
        event = "send_message" if msg.side == USER else "admin_send_message"
        peer.conn.emit(event, msg.payload, partial(self.on_ack, peer, key, msg))

    def on_ack(self, peer: Peer, key: str, msg: Msg, args: list[Any], now_ns: int) -> None:
        peer.inflight.pop(key, None)
        answer = args[0] if args else None
        if not isinstance(answer, dict) or not answer.get("success"):
            code = str(answer.get("code")) if isinstance(answer, dict) else "NO_ANSWER"
            if msg.failed is None and not msg.ack_ns:
                msg.failed = code
                self.failed[code] += 1
                self.answered += 1
            return
        if msg.ack_ns:
            return
        msg.ack_ns = now_ns
        self.answered += 1
        self.result.acked += 1
        if msg.side == USER:
            self.result.user_acked += 1
        self.ack.append((now_ns - msg.t_ns) // 1000)
        data = answer.get("data")
        if isinstance(data, dict):
            if data.get("duplicate"):
                self.result.duplicate_acks += 1
            if "seq" in data:
                chat = self.chats[msg.chat]
                self.remember(chat, msg.side, int(data["seq"]), str(data["messageId"]))

    @staticmethod
    def remember(chat: Chat, side: str, seq: int, message_id: str) -> None:
        if side == USER:
            if seq > chat.user_last[0]:
                chat.user_last = (seq, message_id)
        elif seq > chat.agent_last[0]:
            chat.agent_last = (seq, message_id)

    async def schedule(self, t0_ns: int) -> None:
        period = int(self.plan.period_s * 1e9)
        end = t0_ns + int(self.plan.duration_s * 1e9)
        heap: list[tuple[int, int, str]] = []
        for chat in self.chats.values():
            for side in (USER, AGENT):
                first = t0_ns + self.rng.randrange(period)  # a random phase
                if first < end:
                    heap.append((first, chat.index, side))
        heapq.heapify(heap)
        lag = self.lag
        while heap:
            due, index, side = heap[0]
            now = time.monotonic_ns()
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
                continue
            lag.append((now - due) // 1000)
            self.send(self.chats[index], side)
            if due + period < end:
                heapq.heapreplace(heap, (due + period, index, side))
            else:
                heapq.heappop(heap)

    # -- receiving (wire.Listener) ---------------------------------------------------------

    def on_event(self, conn: wire.Connection, name: str, data: Any, now_ns: int) -> None:
        peer: Peer = conn.tag
        if name == "new_message":
            self.on_new_message(peer, data, now_ns)
        elif name == "user_message":
            self.on_user_message(peer, data, now_ns)
        elif self.measuring:
            self.other[name] += 1

    def on_new_message(self, peer: Peer, data: dict[str, Any], now_ns: int) -> None:
        chat = self.by_ticket.get(data.get("ticketId", ""))
        if chat is not None and "seq" in data:
            self.remember(chat, peer.role, int(data["seq"]), str(data["_id"]))
        msg = self.msgs.get(data.get("clientMessageId") or "")
        if msg is None:
            if self.measuring:
                self.result.foreign += 1
            return
        if msg.side == peer.role:
            self.result.echoed += 1  # a replay of the peer's own message
            return
        if peer.role == USER:
            mine = peer.index == msg.chat
        else:
            mine = peer.index == self.chats[msg.chat].agent
        if not mine:
            self.result.misrouted += 1
            return
        msg.delivered += 1
        if msg.delivered == 1:
            self.result.delivered += 1
            self.e2e.append((now_ns - msg.t_ns) // 1000)
        else:
            self.result.duplicated += 1

    def on_user_message(self, peer: Peer, data: dict[str, Any], now_ns: int) -> None:
        if peer.role != AGENT:
            self.other["user_message to a user"] += 1
            return
        key = str(data.get("message", "")).split(" ", 1)[0]
        try:
            t_ns = int(key.rsplit(".", 1)[1])
        except (IndexError, ValueError):
            return  # not one of ours (an opening message, say)
        if t_ns < self.t0_ns:
            return
        if key in peer.fanout_seen:
            self.result.fanout_duplicated += 1
            return
        peer.fanout_seen.add(key)
        self.fanout.append((now_ns - t_ns) // 1000)

    def on_close(self, conn: wire.Connection) -> None:
        peer: Peer = conn.tag
        if peer.conn is conn:
            peer.ready = False
            peer.conn = None
            if self.measuring and not self.closing:
                self.result.unexpected_disconnects += 1

    # -- the reconnect storm ---------------------------------------------------------------

    async def storm(self, at_ns: int) -> None:
        await asyncio.sleep(max(0.0, (at_ns - time.monotonic_ns()) / 1e9))
        peers = self.peers()
        dropped = [p.conn for p in peers if p.conn is not None]
        self.closing = True  # these disconnects are ours
        for conn in dropped:
            conn.abort()
        self.closing = False
        t_drop = time.monotonic_ns()
        # Every socket at once: the storm is the point.
        outcomes = await asyncio.gather(*(self.rejoin(p) for p in peers), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for failure in failures:
            self.storm_errors[f"gave up: {failure!r}"[:200]] += 1
        self.result.storm_sockets = len(peers)
        self.result.storm_reconnect_failures = len(failures)
        back = [p.connected_ns for p in peers if p.connected_ns]
        caught = [p.caught_up_ns for p in peers if p.caught_up_ns]
        self.result.storm_reconnected_s = (max(back) - t_drop) / 1e9 if back else None
        self.result.storm_caught_up_s = (max(caught) - t_drop) / 1e9 if caught else None

    async def rejoin(self, peer: Peer) -> None:
        """Reconnect, catch up (the server replays what came after the newest message this
        end knows of), resend what was never answered (same clientMessageId: the server
        stores nothing twice), then send what the schedule wanted meanwhile."""
        peer.connected_ns = peer.caught_up_ns = 0
        await self.connect(peer)
        assert peer.conn is not None
        conn = peer.conn
        if peer.role == USER:
            chat = self.chats[peer.index]
            ref = {"ticketId": chat.ticket_id, "lastMessageId": chat.user_last[1]}
            await self.catch_up(conn, "join_chat_room", ref)
        else:
            mine = [c for c in self.chats.values() if c.agent == peer.index]
            await asyncio.gather(
                *(
                    self.catch_up(
                        conn,
                        "join_chat",
                        {"ticketId": c.ticket_id, "lastMessageId": c.agent_last[1]},
                    )
                    for c in mine
                )
            )
        peer.caught_up_ns = time.monotonic_ns()
        peer.ready = True
        for key, msg in list(peer.inflight.items()):
            self.emit(peer, key, msg)
        deferred, peer.deferred = peer.deferred, []
        for index in deferred:
            self.send(self.chats[index], peer.role)

    async def catch_up(self, conn: wire.Connection, event: str, ref: dict[str, Any]) -> None:
        """One catch-up call, retried as a client would when the server refuses it (an
        overloaded server answers INTERNAL_ERROR or SERVICE_UNAVAILABLE)."""
        for attempt in range(STORM_RETRIES):
            answer = await conn.call(event, ref, within=120)
            if isinstance(answer, dict) and answer.get("success"):
                return
            self.storm_errors[
                f"{event}: {answer.get('code') if isinstance(answer, dict) else answer}"
            ] += 1
            if attempt < STORM_RETRIES - 1:
                await asyncio.sleep(1.0)
        raise RuntimeError(f"{event} refused {STORM_RETRIES} times")

    # -- the end ---------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every send is answered and every acknowledged message delivered."""
        deadline = time.monotonic() + self.plan.drain_timeout_s
        while time.monotonic() < deadline:
            pending = any(p.deferred or not p.ready for p in self.peers())
            if (
                not pending
                and self.answered >= self.result.sent
                and self.result.delivered >= self.result.acked
            ):
                return
            await asyncio.sleep(0.05)

    async def drain_fanout(self, expected_per_agent: int) -> None:
        deadline = time.monotonic() + self.plan.drain_timeout_s
        while time.monotonic() < deadline:
            if all(len(p.fanout_seen) >= expected_per_agent for p in self.agents.values()):
                return
            await asyncio.sleep(0.05)

    def finish(self) -> WorkerResult:
        r = self.result
        for key, msg in self.msgs.items():
            if msg.ack_ns and not msg.delivered:
                r.lost += 1
                if len(r.lost_examples) < 10:
                    r.lost_examples.append(key)
            if not msg.ack_ns and msg.failed is None:
                r.unacked += 1
            if msg.delivered and not msg.ack_ns:
                r.delivered_unacked += 1
        r.failed = dict(self.failed)
        r.storm_errors = dict(self.storm_errors)
        r.other_events = dict(self.other)
        r.fanout_unique = {a: len(p.fanout_seen) for a, p in self.agents.items()}
        r.e2e_us = self.e2e.tobytes()
        r.ack_us = self.ack.tobytes()
        r.fanout_us = self.fanout.tobytes()
        r.lag_us = self.lag.tobytes()
        return r

    def close_all(self) -> None:
        self.closing = True
        for peer in self.peers():
            if peer.conn is not None:
                peer.conn.close()

    async def run(self) -> None:
        self.inbox = inbox(self.pipe)
        info = await self.setup()
        await asyncio.sleep(0.5)  # let the setup's notifications (joins, assignments) pass
        self.pipe.send(("ready", info))
        self.t0_ns = await self.expect("go")
        self.measuring = True
        jobs: list[Awaitable[None]] = [self.schedule(self.t0_ns)]
        if self.plan.storm_at_s is not None:
            jobs.append(self.storm(self.t0_ns + int(self.plan.storm_at_s * 1e9)))
        await asyncio.gather(*jobs)
        await self.drain()
        self.pipe.send(("sent", self.result.user_acked))
        await self.drain_fanout(await self.expect("expect"))
        self.measuring = False
        self.pipe.send(("result", self.finish()))
        await self.expect("close")
        self.close_all()
        await asyncio.sleep(0.2)


def check(answer: Any, what: str) -> None:
    if not isinstance(answer, dict) or not answer.get("success"):
        raise RuntimeError(f"{what} refused: {answer!r}")


def worker_main(plan: WorkerPlan, pipe: Pipe) -> None:
    """Process entry point (see workers.Pool)."""

    async def main() -> None:
        await Floor(plan, pipe).run()

    run_worker(main, pipe)
