"""HTTP and Socket.IO clients for talking to the server under test.

``SocketClient`` records every event it receives so tests can assert on the order and
content of pushes without racing the server: ``wait_for`` consumes the first matching
event that has not been consumed yet, whether it arrived before or after the call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
import socketio

from .tokens import Person

Predicate = Callable[[Any], bool]
_DEFAULT: Any = object()  # sentinel: "build auth from the token", distinct from auth=None


def _token_of(who: Person | str | None) -> str | None:
    return who.token if isinstance(who, Person) else who


async def answer_or_loss(
    answer: asyncio.Future[Any],
    lost: asyncio.Event,
    timeout: float,  # noqa: ASYNC109 - a bounded wait whose outcome the caller looks at
) -> None:
    """Wait until an acknowledgement came or its connection was lost, whichever is first
    (at most `timeout`: a liveness bound). The caller looks at which it was."""
    lost_wait = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait({answer, lost_wait}, timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        lost_wait.cancel()


class Api:
    """Thin async wrapper over httpx: ``await api.get("/api/x", token=person)``.

    ``local_addr`` makes every request come from that local IP address (e.g.
    "127.0.0.7"): a load balancer that is sticky by client address then tells clients
    apart (tests/test_cluster.py)."""

    def __init__(
        self, base_url: str, timeout: float = 10.0, *, local_addr: str | None = None
    ) -> None:
        transport = (
            httpx.AsyncHTTPTransport(local_address=local_addr) if local_addr is not None else None
        )
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: Person | str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        hdrs = dict(headers or {})
        if (tok := _token_of(token)) is not None:
            hdrs.setdefault("Authorization", f"Bearer {tok}")
        return await self.http.request(
            method, path, json=json, params=params, headers=hdrs, **kwargs
        )

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass
class Received:
    event: str
    data: Any  # one argument as is; several as a tuple; none as None
    at: float
    consumed: bool = False


@dataclass(frozen=True)
class RefusedConnection:
    """What a client saw when the server refused its Socket.IO connection."""

    message: str  # text of socketio.exceptions.ConnectionError
    data: Any  # payload of the connect_error event (e.g. {"message": "..."}), None if none


class SocketClient:
    """One Socket.IO connection that records everything it receives.

    Besides server events, the reserved events are recorded too, under their own names:
    ``connect`` (None), ``connect_error`` (error payload) and ``disconnect`` (reason),
    so ``await c.wait_for("disconnect")`` detects a server-side kick.

    ``local_addr`` is the local IP address its connections come from (as for ``Api``).
    ``connect`` may be called again after the connection was lost: the record of
    received events goes on across connections.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        user_type: str = "user",
        label: str | None = None,
        *,
        local_addr: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.user_type = user_type
        self.label = label or user_type
        self.local_addr = local_addr
        self.received: list[Received] = []
        # One condition for all events: handlers notify it, waiters re-scan the list.
        self._cond = asyncio.Condition()
        self._http: aiohttp.ClientSession | None = None
        self.sio: socketio.AsyncClient | None = None

    # -- connection -----------------------------------------------------------------

    async def connect(
        self,
        *,
        auth: Any = _DEFAULT,
        transports: Iterable[str] | None = ("websocket",),
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        namespaces: list[str] | None = None,
        wait_timeout: float = 5.0,
    ) -> None:
        """Connect; raises socketio.exceptions.ConnectionError if refused.

        ``auth`` defaults to ``{"token": token, "userType": user_type}``; pass None or a
        custom dict for compatibility tests, ``transports=None`` for polling+upgrade, and
        ``query`` for legacy clients that send credentials in the URL.
        """
        if auth is _DEFAULT:
            auth = {"token": self.token, "userType": self.user_type}
        # A reconnect: let go of the previous connection and its HTTP session first.
        await self.disconnect()
        # Our own aiohttp session (engineio leaves external ones alone) so that we always
        # close it, also after a refused connection; an unclosed one would warn -> error.
        # Both transports (polling requests, the WebSocket) go through its connector.
        connector = (
            aiohttp.TCPConnector(local_addr=(self.local_addr, 0))
            if self.local_addr is not None
            else None
        )
        self._http = aiohttp.ClientSession(connector=connector)
        self.sio = socketio.AsyncClient(
            reconnection=False, handle_sigint=False, http_session=self._http
        )
        self._register(self.sio)
        url = self.base_url + (f"?{urlencode(query)}" if query else "")
        try:
            await self.sio.connect(
                url,
                auth=auth,
                transports=list(transports) if transports is not None else None,
                headers=dict(headers or {}),
                namespaces=namespaces,
                wait_timeout=wait_timeout,
            )
        except BaseException:
            await self.disconnect()
            raise

    def _register(self, sio: socketio.AsyncClient) -> None:
        async def on_any(event: str, *args: Any) -> None:
            await self._record(event, args)

        async def on_connect() -> None:
            await self._record("connect", ())

        async def on_connect_error(data: Any = None) -> None:
            await self._record("connect_error", (data,))

        async def on_disconnect(reason: Any = None) -> None:
            await self._record("disconnect", (reason,))

        sio.on("*", on_any)
        sio.on("connect", on_connect)
        sio.on("connect_error", on_connect_error)
        sio.on("disconnect", on_disconnect)

    async def _record(self, event: str, args: tuple[Any, ...]) -> None:
        data = None if not args else args[0] if len(args) == 1 else args
        async with self._cond:
            self.received.append(Received(event, data, time.monotonic()))
            self._cond.notify_all()

    async def disconnect(self) -> None:
        """Idempotent; also closes the HTTP session."""
        sio, self.sio = self.sio, None
        http, self._http = self._http, None
        try:
            if sio is not None and sio.connected:
                await sio.disconnect()
        finally:
            if http is not None and not http.closed:
                await http.close()

    @property
    def connected(self) -> bool:
        return self.sio is not None and bool(self.sio.connected)

    @property
    def sid(self) -> str | None:
        return None if self.sio is None else self.sio.get_sid()

    @property
    def transport(self) -> str | None:
        return None if self.sio is None else self.sio.transport()

    # -- sending ----------------------------------------------------------------------

    def _sio(self) -> socketio.AsyncClient:
        if self.sio is None:
            raise AssertionError(f"{self.label}: socket is not connected")
        return self.sio

    async def emit(self, event: str, data: Any = None) -> None:
        await self._sio().emit(event, data)

    async def call(
        self,
        event: str,
        data: Any = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a per-call timeout is this helper's API
    ) -> Any:
        """Emit with an ack callback and return the ack payload."""
        try:
            return await self._sio().call(event, data, timeout=timeout)
        except socketio.exceptions.TimeoutError:
            raise AssertionError(
                f"{self.label}: no ack for {event!r} within {timeout}s; {self._summary()}"
            ) from None

    # -- receiving --------------------------------------------------------------------

    def _find(self, event: str, predicate: Predicate | None) -> Received | None:
        for rec in self.received:
            if (
                not rec.consumed
                and rec.event == event
                and (predicate is None or predicate(rec.data))
            ):
                return rec
        return None

    async def wait_for(
        self,
        event: str,
        predicate: Predicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a per-call timeout is this helper's API
    ) -> Any:
        """Consume and return the data of the first unconsumed ``event`` matching
        ``predicate``, waiting up to ``timeout`` seconds for it to arrive."""
        async with self._cond:
            try:
                async with asyncio.timeout(timeout):
                    await self._cond.wait_for(lambda: self._find(event, predicate) is not None)
            except TimeoutError:
                raise AssertionError(
                    f"{self.label}: no {event!r} event"
                    f"{' matching predicate' if predicate else ''} within {timeout}s; "
                    f"{self._summary()}"
                ) from None
            rec = self._find(event, predicate)
            assert rec is not None
            rec.consumed = True
            return rec.data

    async def assert_no(
        self, event: str, predicate: Predicate | None = None, within: float = 0.5
    ) -> None:
        """Fail if an unconsumed matching ``event`` is (or within ``within`` s becomes) present."""
        async with self._cond:
            try:
                async with asyncio.timeout(within):
                    await self._cond.wait_for(lambda: self._find(event, predicate) is not None)
            except TimeoutError:
                return
            rec = self._find(event, predicate)
        raise AssertionError(
            f"{self.label}: unexpected {event!r} event: {rec.data if rec else None!r}"
        )

    def events(self, name: str) -> list[Any]:
        """Data of every ``name`` event received so far, consumed or not, in order."""
        return [rec.data for rec in self.received if rec.event == name]

    def event_names(self) -> list[str]:
        return [rec.event for rec in self.received]

    def consume_all(self, event: str | None = None) -> None:
        """Mark everything (or every ``event``) received so far as consumed."""
        for rec in self.received:
            if event is None or rec.event == event:
                rec.consumed = True

    def _summary(self) -> str:
        pending = [f"{r.event}: {r.data!r}"[:200] for r in self.received if not r.consumed]
        return f"unconsumed events: {pending or 'none'}"


class SocketFactory:
    """Per-test socket opener (the ``sockets`` fixture); disconnects everything at test end.

    ``await sockets(person)`` connects as ``person.user_type`` ("admin" for agents,
    "user" otherwise) unless ``user_type`` is given; ``who`` may also be a raw token
    string or None (no token). ``local_addr`` (the factory's, or one call's) is the
    local IP address the client connects from (see ``SocketClient``).
    """

    def __init__(self, base_url: str, *, local_addr: str | None = None) -> None:
        self.base_url = base_url
        self.local_addr = local_addr
        self.clients: list[SocketClient] = []

    def _client(
        self, who: Person | str | None, user_type: str | None, local_addr: str | None
    ) -> SocketClient:
        if user_type is None:
            user_type = who.user_type if isinstance(who, Person) else "user"
        label = f"{user_type}:{who.id if isinstance(who, Person) else 'raw-token'}"
        client = SocketClient(
            self.base_url,
            _token_of(who),
            user_type,
            label=label,
            local_addr=local_addr if local_addr is not None else self.local_addr,
        )
        self.clients.append(client)
        return client

    async def __call__(
        self,
        who: Person | str | None,
        user_type: str | None = None,
        *,
        local_addr: str | None = None,
        **kwargs: Any,
    ) -> SocketClient:
        """Connected client; kwargs go to ``SocketClient.connect``."""
        client = self._client(who, user_type, local_addr)
        await client.connect(**kwargs)
        return client

    async def refused(
        self,
        who: Person | str | None,
        user_type: str | None = None,
        *,
        local_addr: str | None = None,
        **kwargs: Any,
    ) -> RefusedConnection:
        """Expect the server to refuse the connection and return what the client saw."""
        client = self._client(who, user_type, local_addr)
        try:
            await client.connect(**kwargs)
        except socketio.exceptions.ConnectionError as exc:
            errors = client.events("connect_error")
            return RefusedConnection(message=str(exc), data=errors[-1] if errors else None)
        await client.disconnect()
        raise AssertionError(f"{client.label}: connection was accepted, expected a refusal")

    async def close_all(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)
        self.clients.clear()
