"""Robustness: malformed Engine.IO / Socket.IO frames and random JSON over a raw WebSocket.

The fuzzer speaks Engine.IO v4 / Socket.IO v5 by hand (``websockets``, not a Socket.IO
client, so that it can send what no client library would): open
``/socket.io/?EIO=4&transport=websocket``, read the ``0{...}`` open packet, connect the
default namespace with ``40{"token", "userType"}``, then send frames. After each frame it
sends a barrier (an event with an ack id) and waits for that ack, so that whatever the
frame made the server log is written before the log is read and charged to the frame.

What must hold, for every frame, as a customer socket and as an agent socket:

* the server process stays alive and ``/health`` answers 200;
* the server logs no traceback (an exception logged by python-engineio/python-socketio or
  uvicorn, or an asyncio "Task exception was never retrieved"): a client's garbage is
  the client's problem, not an operator's, and nothing it sends may surface as an
  unhandled exception;
* other clients keep being served: a python-socketio customer and agent pair on its own
  ticket exchanges messages during the fuzzing (every round trip must arrive) and after
  it, and REST answers without a 5xx afterwards.

The server may close the fuzzing connection on a malformed frame; the fuzzer then
reconnects and carries on (how often is reported, never asserted).

Besides: malformed Engine.IO HTTP requests (handshake and long-polling), and two events
whose names python-socketio reserves ("connect", "disconnect"), which must not run the
connection lifecycle.

The random part is seeded: SEED below, or SUPPORTCHAT_FUZZ_SEED from the environment; a
failure message always names the seed, so the same frames can be replayed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from support import (
    AGENT_ROLE,
    Api,
    Person,
    ServerInfo,
    SocketClient,
    new_person,
    with_text,
)
from support.server import ARTIFACTS_DIR, ServerProcess, running_server

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC = REPO_ROOT / "src" / "supportchat" / "realtime"

SEED = int(os.environ.get("SUPPORTCHAT_FUZZ_SEED", "20240604"))
PAYLOADS_PER_EVENT = 12  # random payloads per event and role
MUTATIONS = 48  # randomly damaged frames per role
BARRIER_TIMEOUT = 2.0
UNKNOWN_ID = "0123456789abcdef01234567"  # well formed, names no ticket

# Every event the server handles: realtime/handlers.py (documented) and
# realtime/compat.py (the earlier server's). test_every_registered_event_is_fuzzed keeps
# this list in step with the source.
EVENTS = (
    "join_chat_room",
    "send_message",
    "user_typing",
    "join_admin_room",
    "join_chat",
    "admin_send_message",
    "admin_close_chat",
    "admin_typing",
    "start_chat",
    "get_chat_history",
    "rejoin_ticket",
    "leave_chat_room",
    "join_ticket",
    "close_chat",
    "get_active_chats",
    "get_admin_active_tickets",
)

pytestmark = pytest.mark.timeout(300)


# --- the server under fuzz ---------------------------------------------------------------


@dataclass(frozen=True)
class FuzzServer:
    info: ServerInfo
    process: ServerProcess

    @property
    def alive(self) -> bool:
        proc = self.process.proc
        return proc is not None and proc.poll() is None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.info.port}/socket.io/?EIO=4&transport=websocket"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    """A SQLite server of this module's own. The rate limits stay on (their code runs on
    every send) but are set high, so that the fuzzer's sends reach the domain code
    instead of stopping at "rate limited" after the first 30."""
    env: dict[str, str | None] = {
        f"SUPPORTCHAT_RATE_LIMIT_{quota}": "100000/minute"
        for quota in ("REST", "ADMIN", "MESSAGES", "TYPING")
    }
    with running_server("fuzz", tmp_path_factory.mktemp("server-fuzz"), env=env) as proc:
        assert proc.info is not None
        yield FuzzServer(proc.info, proc)
    # For whoever reads the artifacts: what the libraries logged (not failures).
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS_DIR / "fuzz-library-tracebacks.txt").write_text(
        "\n".join(sorted(library_noise)) + "\n"
    )


@dataclass(frozen=True)
class Cast:
    """The people and tickets the fuzzing runs against (made once per module)."""

    user: Person  # fuzzes as a customer
    agent: Person  # fuzzes as an agent
    ticket_ids: tuple[str, ...]  # real ids the random payloads draw from
    bystander_user: Person  # the pair that must keep being served
    bystander_agent: Person
    bystander_ticket: str


def _data(resp: httpx.Response, *statuses: int) -> Any:
    assert resp.status_code in (statuses or (200,)), f"{resp.status_code}: {resp.text}"
    return resp.json()["data"]


@pytest.fixture(scope="module")
def cast(fuzz_server: FuzzServer) -> Cast:
    secret = fuzz_server.info.secret
    user = new_person(secret)
    stranger = new_person(secret)
    agent = new_person(secret, role=AGENT_ROLE)
    bystander_user = new_person(secret)
    bystander_agent = new_person(secret, role=AGENT_ROLE)
    with httpx.Client(base_url=fuzz_server.info.base_url, timeout=10.0) as http:

        def start(who: Person) -> str:
            resp = http.post("/api/chat/start", headers=who.auth_header, json={"message": "hi"})
            ticket_id: str = _data(resp, 201)["ticketId"]
            return ticket_id

        closed = start(user)
        _data(http.post(f"/api/chat/admin/close/{closed}", headers=agent.auth_header))
        own = start(user)
        _data(http.post(f"/api/chat/admin/join/{own}", headers=agent.auth_header))
        strangers = start(stranger)
        bystanders = start(bystander_user)
    return Cast(
        user=user,
        agent=agent,
        ticket_ids=(own, closed, strangers, UNKNOWN_ID),
        bystander_user=bystander_user,
        bystander_agent=bystander_agent,
        bystander_ticket=bystanders,
    )


# --- the server log ----------------------------------------------------------------------

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


class LogWatch:
    """Reads what the server logged since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def take(self) -> str:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        return data.decode(errors="replace")


def _where(line: str) -> str:
    """A log record's first line without its timestamp, level and logger name."""
    line = TIMESTAMP_RE.sub("", line.strip())
    if line.startswith("future: <Task"):
        coro = re.search(r"coro=<([\w.]+)", line)
        return f"Task exception was never retrieved ({coro.group(1) if coro else '?'})"
    line = re.sub(r"^(ERROR|CRITICAL|WARNING)(:\s+|\s+)", "", line)
    return re.sub(r"^[\w.]+: ", "", line)


def _normalized(exception: str) -> str:
    """Positions and counters out of an exception line, so that one problem is one key."""
    exception = re.sub(r"line \d+ column \d+ \(char \d+\)", "line L column C (char N)", exception)
    exception = re.sub(r"position \d+", "position N", exception)
    return re.sub(r"Task-\d+", "Task-N", exception)


# A traceback frame in this project's source (not an installed library).
OWN_FRAME = re.compile(r'File "(?![^"]*site-packages)[^"]*/supportchat/')
# Library-internal tracebacks seen during the run, shown at the end of the session.
library_noise: set[str] = set()


def problems_in(text: str) -> list[str]:
    """One line per traceback in a piece of server log: its exception and the record that
    logged it, deduplicated (the server logs some records twice, through two handlers).

    ERROR records without a traceback are not counted: python-engineio logs the first
    bad handshake of each kind (unsupported protocol version, unknown session, ...) at
    ERROR by design, and answers it with a 400.

    Only tracebacks raised in this project's own code count: python-engineio and
    python-socketio log a traceback for many malformed protocol frames (an unknown packet
    type, truncated JSON, ...) and then drop that packet or connection, which is the
    right outcome; those are printed (`library_noise`) but are not failures."""
    lines = text.splitlines()
    found: list[str] = []
    chain_header: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Traceback (most recent call last)"):
            header = chain_header or (_where(lines[i - 1]) if i > 0 else "?")
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j][0] in " \t"):
                j += 1
            exception = lines[j].strip() if j < len(lines) else "(cut-off traceback)"
            k = j + 1
            while k < len(lines) and not lines[k].strip():
                k += 1
            frames = [f for f in lines[i:j] if f.lstrip().startswith('File "')]
            # Ours when the exception was raised in this project's code. The codec's
            # loads() refusing bad JSON is its contract (the engine catches and logs it).
            ours = (
                bool(frames)
                and bool(OWN_FRAME.search(frames[-1]))
                and ("realtime/codec.py" not in frames[-1])
            )
            if k < len(lines) and lines[k].startswith(CHAINED):
                chain_header = header  # the last exception of the chain is reported
            else:
                chain_header = None
                entry = f"{_normalized(exception)[:240]}  [logged as: {header[:120]}]"
                if ours:
                    found.append(entry)
                else:
                    library_noise.add(entry)
            i = j + 1
            continue
        i += 1
    return list(dict.fromkeys(found))


# --- a raw Engine.IO / Socket.IO client ----------------------------------------------------


class TextBytes(NamedTuple):
    """Bytes sent as a TEXT frame as they are (e.g. not UTF-8)."""

    data: bytes


class BinaryText(NamedTuple):
    """A string sent in a BINARY frame."""

    data: str


Part = str | bytes | TextBytes | BinaryText


@dataclass(frozen=True)
class Frame:
    label: str
    parts: tuple[Part, ...]  # sent in order (binary attachments follow their packet)
    # Sent on a fresh Engine.IO connection before its namespace connect (the frame is
    # itself a connect attempt, or an event from a socket that never connected).
    unconnected: bool = False
    # The frame leaves the namespace or the connection (41, 1, ...): reconnect after it
    # instead of waiting for a barrier ack that cannot come.
    ends_session: bool = False

    def describe(self) -> str:
        shown = " + ".join(repr(p)[:100] for p in self.parts)
        return f"{self.label}: {shown}"


class RawSocket:
    """One raw WebSocket to the server. A reader task answers Engine.IO pings and queues
    every other packet; ``barrier()`` waits for the ack of its own event."""

    def __init__(self, url: str, person: Person, user_type: str) -> None:
        self.url = url
        self.person = person
        self.user_type = user_type
        self.ws: ClientConnection | None = None
        self.inbox: asyncio.Queue[str | bytes] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None
        self.next_ack = 900_000

    async def open(self, *, join: bool = True) -> None:
        self.ws = await connect(
            self.url,
            open_timeout=5,
            close_timeout=1,
            compression=None,
            max_size=2**23,
            ping_interval=None,
            proxy=None,
        )
        opening = await asyncio.wait_for(self.ws.recv(), 5)
        assert isinstance(opening, str) and opening.startswith("0{"), opening
        self.reader = asyncio.create_task(self._read())
        if join:
            auth = {"token": self.person.token, "userType": self.user_type}
            await self.ws.send("40" + json.dumps(auth))
            answer = await self.expect(lambda p: p.startswith(("40", "44")), 5)
            assert answer is not None and answer.startswith("40{"), answer

    async def _read(self) -> None:
        assert self.ws is not None
        with suppress(websockets.ConnectionClosed):
            async for packet in self.ws:
                if packet == "2":
                    with suppress(websockets.ConnectionClosed):
                        await self.ws.send("3")
                    continue
                await self.inbox.put(packet)

    @property
    def open_now(self) -> bool:
        return self.ws is not None and self.reader is not None and not self.reader.done()

    async def expect(self, match: Any, timeout: float) -> str | None:  # noqa: ASYNC109
        """The first queued text packet matching ``match``; None on timeout or close."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (not self.open_now and self.inbox.empty()):
                return None
            try:
                packet = await asyncio.wait_for(self.inbox.get(), min(remaining, 0.1))
            except TimeoutError:
                continue
            if isinstance(packet, str) and match(packet):
                return packet

    async def send(self, part: Part) -> bool:
        """False when the connection is already gone."""
        assert self.ws is not None
        try:
            if isinstance(part, TextBytes):
                await self.ws.send(part.data, text=True)
            elif isinstance(part, BinaryText):
                await self.ws.send(part.data, text=False)
            else:
                await self.ws.send(part)
        except websockets.ConnectionClosed:
            return False
        return True

    async def barrier(self) -> bool:
        """Round trip of an event with an ack: True when the server answered it."""
        self.next_ack += 1
        ack_id = self.next_ack
        if not await self.send(f'42{ack_id}["join_admin_room"]'):
            return False
        prefix = f"43{ack_id}["
        return await self.expect(lambda p: p.startswith(prefix), BARRIER_TIMEOUT) is not None

    async def close(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            with suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        if self.reader is not None:
            self.reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self.reader
            self.reader = None
        self.inbox = asyncio.Queue()


@dataclass
class FuzzReport:
    seed: int
    role: str
    frames: int = 0
    reconnects: int = 0
    findings: dict[str, list[str]] = field(default_factory=dict)  # problem -> frames

    def add(self, frame_text: str, problems: Sequence[str]) -> None:
        for problem in problems:
            self.findings.setdefault(problem, []).append(frame_text)

    def render(self) -> str:
        lines = [
            f"seed {self.seed} (replay: SUPPORTCHAT_FUZZ_SEED={self.seed}), {self.role} socket: "
            f"{len(self.findings)} distinct exceptions in the server log over "
            f"{self.frames} frames ({self.reconnects} reconnects):"
        ]
        for problem, frames in self.findings.items():
            lines.append(f"- {problem}")
            lines.append(f"    {len(frames)} frame(s), e.g. {frames[0][:300]}")
            if len(frames) > 1:
                lines.append(f"    and {frames[1][:300]}")
        return "\n".join(lines)


async def fuzz(
    server: FuzzServer, person: Person, user_type: str, frames: Sequence[Frame], seed: int
) -> FuzzReport:
    """Send every frame, each followed by a barrier; charge what the server logs to it."""
    log = LogWatch(server.info.log_path)
    report = FuzzReport(seed=seed, role=user_type)
    sock = RawSocket(server.ws_url, person, user_type)
    try:
        for frame in frames:
            report.frames += 1
            if frame.unconnected:
                await sock.close()
                await sock.open(join=False)
            elif not sock.open_now:
                await sock.close()
                await sock.open()
                report.reconnects += 1
            delivered = True
            for part in frame.parts:
                delivered = delivered and await sock.send(part)
            if frame.unconnected or frame.ends_session or not delivered:
                await asyncio.sleep(0.2)  # let the server act on it before the log is read
                await sock.close()
            elif not await sock.barrier():
                await sock.close()  # the server dropped or stopped answering this connection
            report.add(frame.describe(), problems_in(log.take()))
            assert server.alive, f"server died after {frame.describe()}\n{report.render()}"
    finally:
        await sock.close()
    await asyncio.sleep(0.5)  # handlers still running when the last barrier came back
    report.add("(after the last frame)", problems_in(log.take()))
    return report


# --- frames ------------------------------------------------------------------------------


def ev(*items: Any, ack: int | None = None, nsp: str = "") -> str:
    """An EVENT packet as an Engine.IO MESSAGE: 4 2 [nsp,] [ack] json."""
    return f"42{nsp}{'' if ack is None else ack}{json.dumps(list(items))}"


def catalog(ticket_id: str) -> list[Frame]:
    """Hand-picked malformed frames, from the Engine.IO layer up to event payloads."""
    deep_list = "[" * 10_000 + "]" * 10_000
    deep_object = '{"a":' * 10_000 + "1" + "}" * 10_000
    huge_int = "1" + "0" * 5000
    placeholder = {"_placeholder": True, "num": 0}
    return [
        # Engine.IO packet types and frame kinds
        Frame("unknown Engine.IO type", ("9",)),
        Frame("unknown Engine.IO type with data", ("7hello",)),
        Frame("non-digit Engine.IO type", ("x",)),
        Frame("empty text frame", ("",)),
        Frame("empty binary frame", (b"",)),
        Frame("non-UTF-8 binary frame", (b"\xff\xfe\xfd\x00",)),
        Frame("binary frame, message type then garbage", (b"4\xff\x80",)),
        Frame("non-UTF-8 TEXT frame", (TextBytes(b'42["send_message","\xff\xfe"]'),)),
        Frame("event packet in a binary frame", (BinaryText(ev("send_message", {})),)),
        Frame("client-sent ping", ("2",)),
        Frame("client-sent ping probe", ("2probe",)),
        Frame("unsolicited pong", ("3",)),
        Frame("upgrade on an upgraded connection", ("5",)),
        Frame("noop", ("6",)),
        Frame("message over max_http_buffer_size", ("4" + "x" * (70 * 1024),)),
        Frame("event over max_http_buffer_size", (ev("send_message", {"message": "x" * 70_000}),)),
        Frame("Engine.IO close", ("1",), ends_session=True),
        # Socket.IO packet types
        Frame("empty Socket.IO packet", ("4",)),
        Frame("unknown Socket.IO type", ("47",)),
        Frame("unknown Socket.IO type with data", ("48[]",)),
        Frame("non-digit Socket.IO type", ("4x",)),
        Frame("client CONNECT_ERROR", ("44",)),
        Frame("client CONNECT_ERROR with data", ('44{"message":"x"}',)),
        Frame("connect again on the same namespace", ("40",)),
        Frame("disconnect the namespace", ("41",), ends_session=True),
        Frame("disconnect an unknown namespace", ("41/admin,",)),
        # namespaces
        Frame("connect a wrong namespace", ("40/admin,",)),
        Frame("connect a wrong namespace with auth", ('40/admin,{"token":"x"}',)),
        Frame("connect a namespace with a query", ("40/nsp?x=1,",)),
        Frame("connect a bare slash namespace", ("40/",)),
        Frame("event on a wrong namespace", (ev("send_message", {}, nsp="/admin,"),)),
        Frame("event with ack on a wrong namespace", (ev("send_message", {}, ack=5, nsp="/x,"),)),
        # event packets
        Frame("event without data", ("42",)),
        Frame("truncated JSON", ("42[",)),
        Frame("truncated JSON after the name", ('42["send_message"',)),
        Frame("truncated JSON in the payload", ('42["send_message",{"ticketId":"',)),
        Frame("event with no name", ("42[]",)),
        Frame("event data an object", ("42{}",)),
        Frame("event data null", ("42null",)),
        Frame("event data a string", ('42"send_message"',)),
        Frame("event name a number", ("42[1,{}]",)),
        Frame("event name a float", ("42[1.5]",)),
        Frame("event name an object", ("42[{},{}]",)),
        Frame("event name a list", ('42[["send_message"],{}]',)),
        Frame("event name null", ("42[null,{}]",)),
        Frame("event name true", ("42[true]",)),
        Frame("event name unknown", (ev("no_such_event", {}),)),
        Frame("event name reserved: connect", (ev("connect", {}, ack=7),)),
        Frame("event name reserved: disconnect", (ev("disconnect", "bye", ack=8),)),
        Frame("event name reserved: message", (ev("message", {}),)),
        Frame("event name reserved: catch-all", (ev("*", {}),)),
        Frame("event name huge", (ev("a" * 60_000),)),
        Frame("event with many arguments", (ev("send_message", {}, {}, {}, 1, None, ack=9),)),
        Frame("event without arguments", (ev("send_message", ack=10),)),
        Frame("deeply nested list (10,000)", ('42["send_message",' + deep_list + "]",)),
        Frame("deeply nested object (10,000)", ('42["send_message",' + deep_object + "]",)),
        Frame("deeply nested list as the packet", ("42" + deep_list,)),
        Frame(
            "deeply nested list (1,000)", ('42["send_message",' + "[" * 1000 + "]" * 1000 + "]",)
        ),
        Frame("huge integer (5,000 digits)", (f'42["send_message",{{"ticketId":{huge_int}}}]',)),
        Frame("huge integer as the data", (f'42["join_chat_room",{huge_int}]',)),
        Frame("huge integer in a list", (f'42["user_typing",[{huge_int}]]',)),
        Frame(
            "64-bit overflowing integer", ('42["send_message",{"ticketId":18446744073709551616}]',)
        ),
        Frame("float overflowing to infinity", ('42["send_message",{"message":1e999999}]',)),
        Frame("NaN literal", ('42["send_message",{"message":NaN}]',)),
        Frame("Infinity literal", ('42["send_message",{"message":-Infinity}]',)),
        Frame(
            "lone surrogate escape",
            ('42["send_message",{"ticketId":"\\ud800","message":"\\udfff"}]',),
        ),
        Frame(
            "NUL in strings", (ev("send_message", {"ticketId": ticket_id, "message": "a\x00b"}),)
        ),
        Frame("trailing garbage after JSON", ('42["send_message",{}]xyz',)),
        Frame("two JSON documents", ('42["send_message",{}]["send_message",{}]',)),
        # ack ids and acks
        Frame("ack id too long", ("42" + "1" * 150 + '["send_message",{}]',)),
        Frame("ack id huge", ('4299999999999999999999["send_message",{}]',)),
        Frame("ack for an unknown id", ("43999[]",)),
        Frame("ack for an unknown id with data", ('43123["x",{"y":1}]',)),
        Frame("ack without id", ("43[]",)),
        Frame("ack without data", ("43",)),
        Frame("ack with truncated data", ("431[",)),
        Frame("ack on a wrong namespace", ("43/admin,1[]",)),
        # binary attachments
        Frame(
            "binary event and its attachment",
            (f"451-{json.dumps(['send_message', placeholder])}", b"\x01\x02"),
        ),
        Frame(
            "placeholder pointing past the attachments",
            ('451-["send_message",{"_placeholder":true,"num":7}]', b"\x01"),
        ),
        Frame(
            "placeholder with a string index",
            ('451-["send_message",{"_placeholder":true,"num":"x"}]', b"\x01"),
        ),
        Frame(
            "placeholder as the event name",
            ('451-[{"_placeholder":true,"num":0}]', b"send_message"),
        ),
        Frame(
            "placeholder in a plain event", ('42["send_message",{"_placeholder":true,"num":0}]',)
        ),
        Frame("binary event announcing too many attachments", ('4599999999999-["send_message"]',)),
        Frame("binary event with a text attachment", ('451-["send_message",{}]', "41")),
        Frame("binary ack for an unknown id", ("461-7[{}]", b"\x00")),
        Frame("binary event without JSON", ("451-", b"\x00")),
        # connect attempts and events on a connection that never joined the namespace
        Frame(
            "event before connecting",
            (ev("send_message", {"ticketId": ticket_id}, ack=1),),
            unconnected=True,
        ),
        Frame("connect with truncated auth", ("40{",), unconnected=True),
        Frame("connect with list auth", ("40[]",), unconnected=True),
        Frame("connect with null auth", ("40null",), unconnected=True),
        Frame("connect with string auth", ('40"token"',), unconnected=True),
        Frame("connect with numeric token", ('40{"token":123,"userType":[]}',), unconnected=True),
        Frame("connect with a garbage token", ('40{"token":"x.y.z"}',), unconnected=True),
        Frame("connect with a deeply nested auth", ("40" + deep_list,), unconnected=True),
        Frame("connect with a huge integer", ('40{"token":' + huge_int + "}",), unconnected=True),
        Frame("ack before connecting", ("431[]",), unconnected=True),
        Frame(
            "binary event before connecting", ('451-["send_message",{}]', b"\x00"), unconnected=True
        ),
    ]


# Field names the random payloads draw from: every field an event reads, and fields a
# client must not be able to set.
FIELDS = (
    "ticketId",
    "lastMessageId",
    "message",
    "attachments",
    "clientMessageId",
    "isTyping",
    "status",
    "resolutionSummary",
    "category",
    "priority",
    "subject",
    "fileName",
    "fileUrl",
    "fileType",
    "sender",
    "senderModel",
    "assignedTo",
    "userId",
    "_placeholder",
    "num",
    "__proto__",
)
STRINGS = (
    "",
    " ",
    "open",
    "closed",
    "active",
    "in_progress",
    "urgent",
    "bug_report",
    "https://files.example.com/a.png",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "' OR 1=1 --",
    "%s%n%x",
    "\x00",
    "\ud800",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "😀" * 10,
    "../../etc/passwd",
    "null",
    "x" * 5001,
)
NUMBERS = (0, -1, 1, 2**31, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**30, 1e308, -0.0, 5e-324)


class Gen:
    """Random JSON values, bounded in depth and size, from one seeded ``random.Random``."""

    def __init__(self, rng: random.Random, ticket_ids: Sequence[str]) -> None:
        self.rng = rng
        self.ticket_ids = list(ticket_ids)

    def text(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice(self.ticket_ids)
        if r < 0.6:
            return self.rng.choice(STRINGS)
        alphabet = "abcXYZ019 -_<>&\"'\\/\n\t\x01é中😀"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(0, 40)))

    def scalar(self) -> Any:
        kind = self.rng.randrange(6)
        if kind == 0:
            return None
        if kind == 1:
            return self.rng.random() < 0.5
        if kind == 2:
            return self.rng.choice(NUMBERS)
        if kind == 3:
            return self.rng.randint(-(2**70), 2**70)
        return self.text()

    def value(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth >= 4 or r < 0.55:
            return self.scalar()
        if r < 0.75:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 5))]
        return self.obj(depth + 1)

    def obj(self, depth: int = 0) -> dict[str, Any]:
        keys = self.rng.sample(FIELDS, self.rng.randint(0, 6))
        if self.rng.random() < 0.2:
            keys.append(self.text())
        return {key: self.value(depth) for key in keys}

    def payload(self) -> Any:
        """Mostly objects with the events' own fields (so that validation sometimes
        passes and the domain code runs), sometimes any JSON at all."""
        r = self.rng.random()
        if r < 0.5:
            body = self.obj(1)
            if self.rng.random() < 0.7:
                body["ticketId"] = self.rng.choice(self.ticket_ids)
            if self.rng.random() < 0.4:
                body["message"] = self.text()
            return body
        if r < 0.6 and self.ticket_ids:
            return {"ticketId": self.rng.choice(self.ticket_ids), "message": self.text()}
        return self.value()

    def frame(self, event: str) -> Frame:
        args = [self.payload() for _ in range(self.rng.choice((0, 1, 1, 1, 1, 2, 3)))]
        ack = self.rng.randrange(10_000) if self.rng.random() < 0.7 else None
        ascii_only = self.rng.random() < 0.5
        # ensure_ascii keeps lone surrogates as \ud800 escapes; without it a surrogate
        # could not be sent as UTF-8 text, so those strings are escaped then.
        body = json.dumps([event, *args], ensure_ascii=ascii_only)
        body = body.encode("utf-8", "backslashreplace").decode("utf-8")
        packet = f"42{'' if ack is None else ack}{body}"
        return Frame(f"random {event}", (packet,))

    def mutate(self, frame: Frame) -> Frame:
        """A damaged copy of a frame: truncated, a character replaced, garbage inserted,
        or sent as bytes."""
        text = frame.parts[0]
        assert isinstance(text, str)
        pos = self.rng.randrange(max(1, len(text)))
        kind = self.rng.randrange(4)
        if kind == 0:
            return Frame(f"truncated {frame.label}", (text[:pos],))
        if kind == 1:
            char = self.rng.choice('[]{}",:0\\-/\x00é')
            return Frame(f"damaged {frame.label}", (text[:pos] + char + text[pos + 1 :],))
        if kind == 2:
            junk = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 8)))
            return Frame(
                f"junk in {frame.label}", (text.encode()[:pos] + junk + text.encode()[pos:],)
            )
        return Frame(f"{frame.label} as bytes", (text.encode(),))


def random_frames(seed: int, role: str, ticket_ids: Sequence[str]) -> list[Frame]:
    rng = random.Random(f"{seed}-{role}")
    gen = Gen(rng, ticket_ids)
    frames = [gen.frame(event) for event in EVENTS for _ in range(PAYLOADS_PER_EVENT)]
    damaged = [gen.mutate(rng.choice(frames)) for _ in range(MUTATIONS)]
    mixed = frames + damaged
    rng.shuffle(mixed)
    return mixed


# --- other clients -------------------------------------------------------------------------


@dataclass
class Bystanders:
    """A python-socketio customer and agent on their own ticket, exchanging messages."""

    user: SocketClient
    agent: SocketClient
    ticket_id: str
    sent: int = 0
    failures: list[str] = field(default_factory=list)

    async def exchange(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """One message each way; failures are recorded, not raised."""
        for sender, receiver, event in (
            (self.user, self.agent, "send_message"),
            (self.agent, self.user, "admin_send_message"),
        ):
            self.sent += 1
            text = f"bystander {self.sent} via {event}"
            try:
                ack = await sender.call(event, {"ticketId": self.ticket_id, "message": text})
                if not (isinstance(ack, dict) and ack.get("success") is True):
                    raise AssertionError(f"refused: {ack!r}")
                await receiver.wait_for("new_message", with_text(self.ticket_id, text), timeout)
            except AssertionError as exc:
                self.failures.append(f"{text}: {exc}"[:500])

    async def keep_exchanging(self, stop: asyncio.Event, every: float = 0.5) -> None:
        while not stop.is_set():
            await self.exchange()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


@asynccontextmanager
async def bystanders(server: FuzzServer, cast: Cast) -> AsyncIterator[Bystanders]:
    base = server.info.base_url
    user = SocketClient(base, cast.bystander_user.token, "user", label="bystander user")
    agent = SocketClient(base, cast.bystander_agent.token, "admin", label="bystander agent")
    try:
        await user.connect()
        await agent.connect()
        ack = await agent.call("join_chat", {"ticketId": cast.bystander_ticket})
        assert isinstance(ack, dict) and ack.get("success") is True, ack
        yield Bystanders(user, agent, cast.bystander_ticket)
    finally:
        await user.disconnect()
        await agent.disconnect()


async def fuzz_while_served(
    server: FuzzServer, cast: Cast, person: Person, user_type: str, frames: Sequence[Frame]
) -> tuple[FuzzReport, Bystanders]:
    """Fuzz while the bystanders keep exchanging; then one more exchange after it."""
    async with bystanders(server, cast) as pair:
        stop = asyncio.Event()
        background = asyncio.create_task(pair.keep_exchanging(stop))
        try:
            report = await fuzz(server, person, user_type, frames, SEED)
        finally:
            stop.set()
            await background
        await pair.exchange()
    return report, pair


async def assert_still_serving(server: FuzzServer, cast: Cast) -> None:
    assert server.alive, "the server process exited"
    api = Api(server.info.base_url)
    try:
        ticket = cast.bystander_ticket
        user, agent = cast.bystander_user, cast.bystander_agent
        checks = [
            await api.get("/health"),
            await api.get("/api/chat/history", token=user),
            await api.get("/api/chat/active", token=user),
            await api.get(f"/api/chat/{ticket}", token=user),
            await api.get(f"/api/chat/{ticket}/messages", token=agent),
            await api.post(f"/api/chat/{ticket}/message", token=user, json={"message": "REST"}),
            await api.get("/api/chat/admin/active", token=agent),
        ]
    finally:
        await api.aclose()
    answers = [f"{r.request.method} {r.request.url.path} -> {r.status_code}" for r in checks]
    assert all(r.status_code == 200 for r in checks), answers


def assert_served(pair: Bystanders) -> None:
    assert pair.sent >= 4, f"only {pair.sent} bystander messages were sent"
    assert not pair.failures, (
        f"{len(pair.failures)} of {pair.sent} bystander messages failed while fuzzing:\n"
        + "\n".join(pair.failures[:10])
    )


# --- tests ---------------------------------------------------------------------------------


def test_every_registered_event_is_fuzzed() -> None:
    """EVENTS is every event name handlers.py and compat.py register."""
    source = (SRC / "handlers.py").read_text() + (SRC / "compat.py").read_text()
    registered = set(re.findall(r"dispatch\.on\(\s*\"([^\"]+)\"", source))
    assert registered, "no dispatch.on(...) found: has the registration moved?"
    assert registered == set(EVENTS), {
        "registered but not fuzzed": sorted(registered - set(EVENTS)),
        "fuzzed but not registered": sorted(set(EVENTS) - registered),
    }


@pytest.mark.parametrize("role", ["user", "agent"])
async def test_malformed_frames(fuzz_server: FuzzServer, cast: Cast, role: str) -> None:
    """The catalog of malformed Engine.IO and Socket.IO frames, as either role."""
    person = cast.user if role == "user" else cast.agent
    user_type = "user" if role == "user" else "admin"
    frames = catalog(cast.ticket_ids[0])
    report, pair = await fuzz_while_served(fuzz_server, cast, person, user_type, frames)
    await assert_still_serving(fuzz_server, cast)
    assert_served(pair)
    if report.findings:
        pytest.fail(report.render(), pytrace=False)


@pytest.mark.parametrize("role", ["user", "agent"])
async def test_random_payloads_to_every_event(
    fuzz_server: FuzzServer, cast: Cast, role: str
) -> None:
    """Seeded random JSON to every event (and damaged copies of those frames)."""
    person = cast.user if role == "user" else cast.agent
    user_type = "user" if role == "user" else "admin"
    frames = random_frames(SEED, role, cast.ticket_ids)
    report, pair = await fuzz_while_served(fuzz_server, cast, person, user_type, frames)
    await assert_still_serving(fuzz_server, cast)
    assert_served(pair)
    if report.findings:
        pytest.fail(report.render(), pytrace=False)


async def test_malformed_engineio_http_requests(fuzz_server: FuzzServer) -> None:
    """The handshake URL and the polling transport, malformed: never a 5xx, nothing
    unhandled in the log, the server still healthy."""
    log = LogWatch(fuzz_server.info.log_path)
    path = "/socket.io/"
    handshakes: list[tuple[str, dict[str, str], bytes | None]] = [
        ("GET", {"EIO": "3", "transport": "polling"}, None),
        ("GET", {"EIO": "x", "transport": "polling"}, None),
        ("GET", {"EIO": "4", "transport": "carrier-pigeon"}, None),
        ("GET", {"EIO": "4"}, None),
        ("GET", {"EIO": "4", "transport": "polling", "sid": "nope"}, None),
        ("POST", {"EIO": "4", "transport": "polling", "sid": "nope"}, b"40"),
        ("PUT", {"EIO": "4", "transport": "polling"}, b""),
        ("GET", {"EIO": "4", "transport": "websocket"}, None),  # no Upgrade header
    ]
    # Each sent on a polling session of its own (some end the session they arrive on).
    payloads: list[tuple[bytes, dict[str, str]]] = [
        (b"9", {}),
        (b"", {}),
        (b"42[", {}),
        (b"40{", {}),
        (b"\xff\xfe", {}),
        (b"4\x1e9\x1e\x1e", {}),
        (b"b!!!not-base64", {}),
        (b"bAAEC\x1e4x", {}),
        (b"4" + b"x" * (70 * 1024), {}),
        (b"40" + b"[" * 10_000, {"Content-Type": "text/plain"}),
        (b"\x00\x01", {"Content-Type": "application/octet-stream"}),
    ]
    answers: list[tuple[str, int | None]] = []  # None: no answer within 5 s

    async def send(http: httpx.AsyncClient, what: str, method: str, **kwargs: Any) -> None:
        try:
            resp = await http.request(method, path, timeout=5.0, **kwargs)
        except httpx.TimeoutException:
            answers.append((what, None))
        else:
            answers.append((what, resp.status_code))

    async with httpx.AsyncClient(base_url=fuzz_server.info.base_url, timeout=10.0) as http:
        for method, params, body in handshakes:
            await send(http, f"{method} {params} {body!r:.40}", method, params=params, content=body)
        for body, headers in payloads:
            opened = await http.get(path, params={"EIO": "4", "transport": "polling"})
            assert opened.status_code == 200, opened.text
            sid = json.loads(opened.text[1:])["sid"]
            params = {"EIO": "4", "transport": "polling", "sid": sid}
            what = f"POST {body!r:.40} ({len(body)} bytes) to a polling session"
            await send(http, what, "POST", params=params, content=body, headers=headers)
        await asyncio.sleep(0.3)
        health = await http.get("/health")
    assert fuzz_server.alive, "the server process exited"
    assert health.status_code == 200, health.text
    failures = [
        f"{what} -> {'no answer within 5 s' if status is None else status}"
        for what, status in answers
        if status is None or status >= 500
    ]
    failures += problems_in(log.take())
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


# --- reserved event names ----------------------------------------------------------------
# python-socketio hands an EVENT packet named "connect" or "disconnect" to the server's
# connect/disconnect handlers as if the connection had opened or closed. A client must not
# be able to run the connection lifecycle by sending events.


async def test_a_disconnect_event_does_not_cancel_token_expiry(fuzz_server: FuzzServer) -> None:
    """A socket whose token expires is told so and disconnected, even if it sent an
    event named "disconnect" first (which must not cancel the expiry)."""
    person = new_person(fuzz_server.info.secret, expires_in=3)
    sock = RawSocket(fuzz_server.ws_url, person, "user")
    await sock.open()
    try:
        assert await sock.send('42["disconnect","client namespace disconnect"]')
        expired = await sock.expect(lambda p: "token_expired" in p, 8)
        still_served = await sock.barrier()
    finally:
        await sock.close()
    assert expired is not None and not still_served, (
        "after sending a 'disconnect' event, a socket whose token expired 3 s into the "
        f"connection got no token_expired error ({expired!r}) and its events are still "
        f"answered ({still_served}): the event ran the disconnect handler, which cancelled "
        "the expiry timer"
    )


async def test_a_connect_event_does_not_reauthenticate_the_socket(
    fuzz_server: FuzzServer, cast: Cast
) -> None:
    """An event named "connect" carrying other credentials leaves the socket who it was:
    a customer's socket stays a customer's socket."""
    sock = RawSocket(fuzz_server.ws_url, cast.user, "user")
    await sock.open()
    try:
        auth = {"token": cast.agent.token, "userType": "admin"}
        assert await sock.send(ev("connect", {"QUERY_STRING": "userType=admin"}, auth))
        assert await sock.barrier()
        assert await sock.send('42777["get_active_chats"]')
        answer = await sock.expect(lambda p: p.startswith("43777["), 5)
    finally:
        await sock.close()
    assert answer is not None, "no answer to get_active_chats"
    ack = json.loads(answer[len("43777") :])[0]
    assert ack.get("success") is False, (
        "a customer's socket that sent a 'connect' event with an agent's token is now "
        f"served agent-only events: get_active_chats -> {answer[:200]}"
    )


async def test_unencodable_ticket_id_is_answered(fuzz_server: FuzzServer, cast: Cast) -> None:
    """A ticketId holding a lone surrogate (valid JSON, "\\ud800", but no UTF-8 string) is
    refused like any invalid payload: a failed ack, and the socket keeps working."""
    sock = RawSocket(fuzz_server.ws_url, cast.user, "user")
    await sock.open()
    try:
        assert await sock.send('42555["send_message",{"ticketId":"\\ud800","message":"hi"}]')
        answer = await sock.expect(lambda p: p.startswith("43555["), 5)
        still_served = await sock.barrier()
    finally:
        await sock.close()
    assert answer is not None, (
        "send_message with ticketId '\\ud800' got no acknowledgement: the refusal echoes "
        "the ticketId in chat_error, which cannot be encoded, so the handler raised instead"
    )
    ack = json.loads(answer[len("43555") :])[0]
    assert ack.get("success") is False, answer
    assert still_served
