"""A slow or stalled client cannot make the server's memory grow without bound
(realtime/backpressure.py).

The stalled client is an agent socket (agents receive every ``user_message``) on a raw
WebSocket (``websockets``, Engine.IO v4 by hand) whose TCP receive buffer is small and
which never reads after its namespace connect: once the kernel buffers are full, uvicorn's
``send`` waits, and without the guard every event for that socket piles up in its
engine.io queue. This module's server disconnects a socket at MAX_QUEUED packets.

What must hold while users flood messages:

* the stalled socket is disconnected for real: its TCP connection is reset by the server,
  its engine.io session is gone, the log says why, and python-socketio's disconnect
  handler ran (the other agents get ``admin_status_update`` isOnline false);
* the server's RSS stays under RSS_BOUND above its level before the stalled client came;
* a healthy agent and the users receive everything, during the flood and after it;
* a normal client that reads, with bursts under the limit, is never disconnected;
* a long-polling socket that stops polling is held to the same limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from support import (
    AGENT_ROLE,
    Api,
    Person,
    ServerInfo,
    SocketClient,
    new_person,
    ok_call,
    start_chat,
    with_text,
)
from support.server import ServerProcess, running_server

MAX_QUEUED = 50  # SUPPORTCHAT_MAX_QUEUED_PACKETS of this module's server
CHECK_SECONDS = 0.2  # SUPPORTCHAT_SLOW_CLIENT_CHECK_SECONDS
# Big messages make every packet a stalled queue holds expensive, so that holding them
# shows within seconds: the server accepts messages up to 50,000 characters here.
MESSAGE_CHARS = 40_000
USERS = 4
# RSS above the level before the stalled client connected, at any moment of the flood.
# What the guard lets a stalled socket pin: its queue up to MAX_QUEUED packets plus one
# check interval of traffic, and as much again in the batch its writer took before it
# blocked: ~2 x (50 + 0.2 s x ~80 msg/s) x 40 KB = ~5 MiB, plus what the healthy clients'
# traffic costs (measured: +3 MiB for a 6,000-message flood without a stalled client).
# Measured with the guard: peak +6 MiB. Without it (the same test, limit 10**9) every
# message after the kernel buffers filled stays queued: +9 MiB per second of flood, +56 MiB
# after 8 s (~2 MiB of RSS per MiB of messages).
RSS_BOUND_MIB = 20
# The flood carries 1.5 times the bound in messages: held, they would break it twice over.
FLOOD_MIB = 30
FLOOD_TIMEOUT = 40.0

TCP_ESTABLISHED = 1  # linux/include/net/tcp_states.h

pytestmark = pytest.mark.timeout(90)


# --- the server --------------------------------------------------------------------------


@dataclass(frozen=True)
class SlowServer:
    info: ServerInfo
    process: ServerProcess

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def log(self) -> str:
        return self.info.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlowServer]:
    """A SQLite server of this module's own: small queue limit, frequent checks, rate
    limits off (the flood comes from a few users), long messages allowed."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's RSS")
    env: dict[str, str | None] = {
        "SUPPORTCHAT_MAX_QUEUED_PACKETS": str(MAX_QUEUED),
        "SUPPORTCHAT_SLOW_CLIENT_CHECK_SECONDS": str(CHECK_SECONDS),
        "SUPPORTCHAT_RATE_LIMITS_ENABLED": "false",
        "SUPPORTCHAT_MAX_MESSAGE_LENGTH": "50000",
    }
    data_dir = tmp_path_factory.mktemp("server-slow-client")
    with running_server("slow-client", data_dir, env=env) as proc:
        assert proc.info is not None
        yield SlowServer(proc.info, proc)


# --- clients -----------------------------------------------------------------------------


@dataclass
class RawAgent:
    """An agent socket over a raw WebSocket with a small TCP receive buffer."""

    ws: ClientConnection
    sock: socket.socket
    sid: str  # engine.io sid, from the open packet

    def tcp_state(self) -> int | None:
        if not hasattr(socket, "TCP_INFO"):
            return None
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return info[0]

    async def read_until_closed(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Read everything that is left; True if the connection then ended."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.ws.transport.abort()


async def raw_agent(server: ServerInfo, agent: Person, rcvbuf: int = 4096) -> RawAgent:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Before connect(), so that the window the client advertises stays small.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    # max_queue=1: the library stops reading the socket as soon as one frame waits for
    # recv(), so not calling recv() means not reading. No compression: the bytes queued
    # on the server are the bytes that would cross the wire.
    ws = await connect(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
        sock=sock,
        max_queue=1,
        compression=None,
        ping_interval=None,
        open_timeout=5,
    )
    opened = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(opened, str) and opened.startswith("0{"), opened
    await ws.send("40" + json.dumps({"token": agent.token, "userType": "admin"}))
    async with asyncio.timeout(5):
        while True:  # its own admin_status_update may come before the CONNECT answer
            frame = await ws.recv()
            if isinstance(frame, str) and frame.startswith("40"):
                break
    return RawAgent(ws, sock, json.loads(opened[1:])["sid"])


@dataclass
class Flood:
    """Users sending big messages over Socket.IO as fast as the server acknowledges."""

    users: list[tuple[SocketClient, str]]  # (client, ticket id)
    target_bytes: int | None = None  # stops by itself once it sent this much
    sent: list[tuple[str, str]] = field(default_factory=list)  # (ticket id, message id)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        await asyncio.gather(*(self._one(client, ticket) for client, ticket in self.users))

    async def _one(self, client: SocketClient, ticket_id: str) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            text = f"{client.label} #{n} " + "x" * MESSAGE_CHARS
            ack = await client.call("send_message", {"ticketId": ticket_id, "message": text}, 10)
            assert isinstance(ack, dict) and ack.get("success") is True, ack
            self.sent.append((ticket_id, ack["data"]["messageId"]))
            if self.target_bytes is not None and self.bytes_sent >= self.target_bytes:
                self.stop.set()

    @property
    def bytes_sent(self) -> int:
        return len(self.sent) * MESSAGE_CHARS


@contextlib.asynccontextmanager
async def rss_peak(server: SlowServer) -> AsyncIterator[list[int]]:
    """Samples the server's RSS every 50 ms while the block runs; yields the samples."""
    samples = [server.rss_kib()]

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.05)
            samples.append(server.rss_kib())

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def with_id(message_id: str) -> Any:
    return lambda d: isinstance(d, dict) and d.get("messageId") == message_id


def of_admin(agent_id: str, online: bool) -> Any:
    return lambda d: (
        isinstance(d, dict) and d.get("adminId") == agent_id and d.get("isOnline") is online
    )


@pytest.fixture
async def api(slow_server: SlowServer) -> AsyncIterator[Api]:
    client = Api(slow_server.info.base_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def clients() -> AsyncIterator[list[SocketClient]]:
    opened: list[SocketClient] = []
    try:
        yield opened
    finally:
        await asyncio.gather(*(c.disconnect() for c in opened), return_exceptions=True)


async def connected(server: ServerInfo, who: Person, opened: list[SocketClient]) -> SocketClient:
    client = SocketClient(server.base_url, who.token, who.user_type, label=who.id)
    opened.append(client)
    await client.connect()
    return client


# --- tests -------------------------------------------------------------------------------


async def test_stalled_agent_is_disconnected_and_memory_stays_bounded(
    slow_server: SlowServer, api: Api, clients: list[SocketClient]
) -> None:
    info = slow_server.info
    watcher_person = new_person(info.secret, role=AGENT_ROLE)
    watcher = await connected(info, watcher_person, clients)
    users: list[tuple[SocketClient, str]] = []
    for _ in range(USERS):
        person = new_person(info.secret)
        ticket_id = (await start_chat(api, person))["ticketId"]
        users.append((await connected(info, person, clients), ticket_id))

    # Warm up (allocator, caches, the database's pages) before the reference level.
    warm = Flood(users)
    warming = asyncio.create_task(warm.run())
    await asyncio.sleep(1.5)
    warm.stop.set()
    await warming
    await asyncio.sleep(0.5)

    stalled_person = new_person(info.secret, role=AGENT_ROLE)
    stalled = await raw_agent(info, stalled_person)
    try:
        await watcher.wait_for("admin_status_update", of_admin(stalled_person.id, True))
        flood = Flood(users, target_bytes=FLOOD_MIB * 2**20)
        cut: list[tuple[float, float]] = []  # (seconds into the flood, MiB sent by then)

        async def watch_cut() -> None:
            # python-socketio's disconnect handler cleared the stalled agent's presence.
            await watcher.wait_for(
                "admin_status_update", of_admin(stalled_person.id, False), FLOOD_TIMEOUT
            )
            cut.append((time.monotonic() - started, flood.bytes_sent / 2**20))

        async with rss_peak(slow_server) as rss:
            baseline = rss[0]
            started = time.monotonic()
            watching = asyncio.create_task(watch_cut())
            try:
                await asyncio.wait_for(flood.run(), FLOOD_TIMEOUT)
            finally:
                flood.stop.set()
        flood_seconds = time.monotonic() - started
        with contextlib.suppress(TimeoutError, AssertionError):
            await asyncio.wait_for(watching, 2)  # cancelled if the cut never came
        peak_mib = (max(rss) - baseline) / 1024
        sent_mib = flood.bytes_sent / 2**20
        detail = (
            f"{sent_mib:.0f} MiB in {len(flood.sent)} messages over {flood_seconds:.1f} s; "
            + (
                f"stalled socket cut after {cut[0][0]:.1f} s ({cut[0][1]:.0f} MiB)"
                if cut
                else "stalled socket NOT cut"
            )
            + f"; server RSS {baseline / 1024:.0f} MiB before, peak +{peak_mib:.1f} MiB"
        )
        print(detail)

        # Memory: bounded, though the flood carried more than the bound after the cut.
        assert peak_mib < RSS_BOUND_MIB, detail
        assert cut, detail
        assert sent_mib - cut[0][1] > RSS_BOUND_MIB, detail

        # The server reset the connection (it is closed before the client reads a byte),
        # and what the client can still read ends with the close.
        state = stalled.tcp_state()
        assert state is None or state != TCP_ESTABLISHED, f"TCP state {state}; {detail}"
        assert await stalled.read_until_closed(5), "the stalled connection stayed open"
        assert f"disconnecting slow client {stalled.sid}" in slow_server.log()
        # Its engine.io session is gone.
        async with httpx.AsyncClient(base_url=info.base_url, timeout=5) as http:
            resp = await http.get(
                "/socket.io/", params={"EIO": "4", "transport": "polling", "sid": stalled.sid}
            )
        assert resp.status_code == 400 and "Invalid session" in resp.text, resp.text

        # The healthy agent got every user message of the flood, in order per ticket.
        for _, ticket_id in users:
            last = [m for t, m in flood.sent if t == ticket_id][-1]
            await watcher.wait_for("user_message", with_id(last))
        flooded = {m for _, m in flood.sent}
        received = [
            (d["ticketId"], d["messageId"])
            for d in watcher.events("user_message")
            if isinstance(d, dict) and d.get("messageId") in flooded
        ]
        assert len(received) == len(flood.sent), detail
        for _, ticket_id in users:
            assert [m for t, m in received if t == ticket_id] == [
                m for t, m in flood.sent if t == ticket_id
            ]
    finally:
        stalled.close()

    # ...and everyone keeps being served afterwards, both ways.
    for client, ticket_id in users:
        await ok_call(client, "send_message", {"ticketId": ticket_id, "message": "still here"})
        await watcher.wait_for("user_message", with_text(ticket_id, "still here"))
        await ok_call(watcher, "admin_send_message", {"ticketId": ticket_id, "message": "yes"})
        await client.wait_for("new_message", with_text(ticket_id, "yes"))
    assert watcher.connected
    assert all(client.connected for client, _ in users)
    await watcher.assert_no("disconnect", within=0.0)


async def test_a_reading_client_with_bursts_under_the_limit_stays_connected(
    slow_server: SlowServer, api: Api, clients: list[SocketClient]
) -> None:
    """Bursts of MAX_QUEUED - 10 messages at once, to an agent on python-socketio and to
    one on a raw WebSocket with the same small receive buffer as the stalled one, that
    reads: nobody is disconnected, everybody gets everything."""
    info = slow_server.info
    agent = await connected(info, new_person(info.secret, role=AGENT_ROLE), clients)
    raw = await raw_agent(info, new_person(info.secret, role=AGENT_ROLE))
    rounds, burst = 5, MAX_QUEUED - 10
    raw_got = 0
    raw_got_all = asyncio.Event()

    async def read_raw() -> None:
        nonlocal raw_got
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await raw.ws.recv()
                if frame == "2":  # Engine.IO ping
                    await raw.ws.send("3")
                elif isinstance(frame, str) and '"user_message"' in frame and "burst " in frame:
                    raw_got += 1
                    if raw_got == rounds * burst:
                        raw_got_all.set()

    reader = asyncio.create_task(read_raw())
    log_before = len(slow_server.log())
    try:
        person = new_person(info.secret)
        ticket_id = (await start_chat(api, person))["ticketId"]
        user = await connected(info, person, clients)
        for round_ in range(rounds):
            texts = [f"burst {round_}.{i} " + "y" * 2000 for i in range(burst)]
            acks = await asyncio.gather(
                *(
                    user.call("send_message", {"ticketId": ticket_id, "message": text})
                    for text in texts
                )
            )
            assert all(isinstance(a, dict) and a.get("success") for a in acks), acks
            for text in texts:
                await agent.wait_for("user_message", with_text(ticket_id, text))
        await asyncio.wait_for(raw_got_all.wait(), 5)
        assert agent.connected and user.connected
        assert not reader.done(), "the reading raw agent was disconnected"
        assert raw.tcp_state() in (None, TCP_ESTABLISHED)
        await agent.assert_no("disconnect", within=0.0)
        assert "slow client" not in slow_server.log()[log_before:]
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        raw.close()


async def test_a_polling_client_that_never_polls_is_disconnected_too(
    slow_server: SlowServer, api: Api, clients: list[SocketClient]
) -> None:
    """Long-polling has no transport backpressure at all: the queue is the only buffer,
    and a client that stops sending GETs (but could go on POSTing pongs) would keep it
    growing. The same limit applies."""
    info = slow_server.info
    watcher = await connected(info, new_person(info.secret, role=AGENT_ROLE), clients)
    idle = new_person(info.secret, role=AGENT_ROLE)
    async with httpx.AsyncClient(base_url=info.base_url, timeout=5) as http:
        params = {"EIO": "4", "transport": "polling"}
        opened = (await http.get("/socket.io/", params=params)).text
        assert opened.startswith("0{"), opened
        params["sid"] = json.loads(opened[1:])["sid"]
        connect = "40" + json.dumps({"token": idle.token, "userType": "admin"})
        assert (await http.post("/socket.io/", params=params, content=connect)).text == "OK"
        assert "40{" in (await http.get("/socket.io/", params=params)).text
        await watcher.wait_for("admin_status_update", of_admin(idle.id, True))

        person = new_person(info.secret)
        ticket_id = (await start_chat(api, person))["ticketId"]
        user = await connected(info, person, clients)
        for i in range(MAX_QUEUED + 10):
            await ok_call(user, "send_message", {"ticketId": ticket_id, "message": f"m{i}"})
        await watcher.wait_for("admin_status_update", of_admin(idle.id, False))
        assert f"disconnecting slow client {params['sid']}" in slow_server.log()
        resp = await http.get("/socket.io/", params=params)
        assert resp.status_code == 400 and "Invalid session" in resp.text, resp.text
    # Everybody else is served as before.
    await watcher.wait_for("user_message", with_text(ticket_id, f"m{MAX_QUEUED + 9}"))
    assert watcher.connected and user.connected
