"""Chat helpers shared by the test files: the REST envelope, the two calls most tests set
up with (start a chat, read a ticket back), Socket.IO predicates and ack checks, and the
formats of ids and timestamps.

Setup helpers (``start_chat``, ``get_ticket``) check the whole success envelope; the
envelope helpers (``ok_data``, ``error_body``) check what every file needs, and a file
that wants more (``test_rest_errors.py``) adds its checks on top.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .clients import Api, Predicate, SocketClient
from .tokens import Person

OBJECT_ID_RE = re.compile(r"^[0-9a-f]{24}$")  # ticket and message ids
TICKET_NUMBER_RE = re.compile(r"^TKT-(\d{4})-(\d{6})$")  # groups: year, sequence
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")  # UTC, ms, Z

OPENING = "Hello, I need help"  # start_chat's default first message
NOT_FOUND = "Chat ticket not found"
DEFAULT_SUMMARY = "Chat session completed successfully"  # resolution of a bare close
ERROR_KEYS = {"success", "message", "code", "errors"}  # all an error envelope may hold
QUIET = 0.3  # window for "this never arrives" checks, taken after a barrier event


# --- REST envelope -----------------------------------------------------------------------


def assert_status(resp: httpx.Response, *statuses: int) -> None:
    """The response has one of ``statuses`` (200 when none is given)."""
    allowed = statuses or (200,)
    expected = allowed[0] if len(allowed) == 1 else f"one of {allowed}"
    assert resp.status_code in allowed, f"expected {expected}, got {resp.status_code}: {resp.text}"


def body_of(resp: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The JSON object of a response with one of ``statuses`` (200 when none is given)."""
    assert_status(resp, *statuses)
    body = resp.json()
    assert isinstance(body, dict), body
    return body


def ok_data(resp: httpx.Response, *statuses: int, with_message: bool = False) -> Any:
    """``data`` of a success envelope with one of ``statuses`` (default 200);
    ``with_message``: its ``message`` must be a non-empty string too."""
    body = body_of(resp, *statuses)
    assert body["success"] is True, body
    if with_message:
        assert isinstance(body["message"], str) and body["message"], body
    return body["data"]


def error_body(resp: httpx.Response, status: int = 400) -> dict[str, Any]:
    """An error envelope: ``success`` false, a non-empty ``message``, nothing else than
    ``code`` and ``errors`` besides."""
    body = body_of(resp, status)
    assert body["success"] is False, body
    assert isinstance(body["message"], str) and body["message"], body
    assert set(body) <= ERROR_KEYS, body
    return body


# --- REST setup --------------------------------------------------------------------------


async def start_chat(
    api: Api, who: Person, message: str = OPENING, **fields: Any
) -> dict[str, Any]:
    """POST /api/chat/start for a brand-new chat (asserts 201); its data."""
    resp = await api.post("/api/chat/start", token=who, json={"message": message, **fields})
    data: dict[str, Any] = ok_data(resp, 201, with_message=True)
    return data


async def get_ticket(api: Api, who: Person, ticket_id: str) -> dict[str, Any]:
    """GET /api/chat/:ticketId as ``who`` (asserts 200); the ticket."""
    data = ok_data(await api.get(f"/api/chat/{ticket_id}", token=who), with_message=True)
    ticket: dict[str, Any] = data["ticket"]
    return ticket


# --- timestamps --------------------------------------------------------------------------


def parse_ts(value: str) -> datetime:
    """An API timestamp (ISO 8601 UTC with milliseconds and Z) as an aware datetime."""
    assert TIMESTAMP_RE.match(value), f"not ISO 8601 UTC with milliseconds and Z: {value!r}"
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def assert_recent(value: str, past: float = 60.0, future: float = 5.0) -> None:
    """``value`` is an API timestamp from at most ``past`` seconds ago to at most
    ``future`` seconds ahead (clock skew between the test and the server)."""
    moment = parse_ts(value)
    now = datetime.now(UTC)
    assert now - timedelta(seconds=past) <= moment <= now + timedelta(seconds=future), value


# --- Socket.IO ---------------------------------------------------------------------------


def of_ticket(ticket_id: str) -> Predicate:
    """``wait_for`` / ``assert_no`` predicate: an event payload about this ticket."""
    return lambda d: isinstance(d, dict) and d.get("ticketId") == ticket_id


def with_text(ticket_id: str, text: str) -> Predicate:
    """An event payload about this ticket whose ``message`` is ``text``."""
    return lambda d: (
        isinstance(d, dict) and d.get("ticketId") == ticket_id and d.get("message") == text
    )


async def ok_call(client: SocketClient, event: str, data: Any = None) -> dict[str, Any]:
    """Emit with an ack; the ack must be a success. Returns the whole ack."""
    ack = await client.call(event, data)
    assert isinstance(ack, dict) and ack.get("success") is True, ack
    return ack


def assert_failed_ack(ack: Any) -> None:
    """A refusal ack: ``{success: false, message: <non-empty>}``."""
    assert isinstance(ack, dict), ack
    assert ack.get("success") is False, ack
    assert isinstance(ack.get("message"), str) and ack["message"], ack


def assert_chat_error(err: Any, ticket_id: str | None = None) -> None:
    """A ``chat_error`` payload: non-empty ``type`` and ``message``, and a ``ticketId``
    key (equal to ``ticket_id`` when one is given)."""
    assert isinstance(err, dict), err
    assert isinstance(err.get("type"), str) and err["type"], err
    assert isinstance(err.get("message"), str) and err["message"], err
    assert "ticketId" in err, err
    if ticket_id is not None:
        assert err["ticketId"] == ticket_id, err


async def close_fast(client: SocketClient) -> None:
    """Disconnect without waiting for a pending long-poll GET.

    python-engineio's client waits on a normal disconnect of a polling connection until
    its outstanding GET returns, which the server only answers at its next ping (~25 s);
    aborting sends the close packet and returns at once. Harmless for websockets."""
    sio = client.sio
    if sio is not None and sio.connected:
        await sio.eio.disconnect(abort=True)
    await client.disconnect()
