"""Socket connection lifecycle: the handshake's authentication, rooms, presence, expiry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import socketio

from ..auth import TokenVerifier
from ..domain import presence
from ..domain.context import Chat
from ..domain.errors import ChatError, NotAuthenticated
from ..domain.identity import Actor, Person, Role
from .rooms import ALL_AGENTS, agent_room, user_room

log = logging.getLogger(__name__)

# Run for each new socket once its connection is acknowledged: (socket id, actor).
AfterConnect = Callable[[str, Actor], Coroutine[Any, Any, None]]

USER_TYPES = {"user": Role.USER, "dtuser": Role.USER, "admin": Role.AGENT}


@dataclass(frozen=True, slots=True)
class Handshake:
    token: str | None
    user_type: str | None


def read_handshake(environ: dict[str, Any], auth: Any) -> Handshake:
    """Token from auth.token, else the Authorization header, else ?token=; role from
    auth.userType, else ?userType= (the shipped web client passes it in the query)."""
    auth = auth if isinstance(auth, dict) else {}
    query = parse_qs(environ.get("QUERY_STRING", ""))
    token = auth.get("token")
    if not token:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
    if not token:
        token = (query.get("token") or [None])[0]
    user_type = auth.get("userType") or (query.get("userType") or [None])[0]
    return Handshake(
        token if isinstance(token, str) else None,
        user_type if isinstance(user_type, str) else None,
    )


class Connections:
    def __init__(
        self, sio: socketio.AsyncServer, chat: Chat, verifier: TokenVerifier, node_id: str
    ) -> None:
        self.sio = sio
        self.chat = chat
        self.verifier = verifier
        self.node_id = node_id
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Run after a socket's connection is acknowledged (an emit from inside the
        # connect handler would reach the client before its CONNECT packet).
        self.after_connect: list[AfterConnect] = []

    async def actor(self, sid: str) -> Actor:
        session = await self.sio.get_session(sid)
        actor: Actor = session["actor"]
        return actor

    async def local_agents(self) -> dict[str, Person]:
        """This process's agent sockets (socket id -> agent): the members of the agents'
        room here, which the presence heartbeat makes the database agree with."""
        found: dict[str, Person] = {}
        for sid, _eio_sid in list(self.sio.manager.get_participants("/", ALL_AGENTS)):
            try:
                found[sid] = (await self.actor(sid)).person
            except KeyError:
                continue  # left while being listed
        return found

    def _is_client_event(self, sid: str) -> bool:
        """python-socketio also calls the connect/disconnect handlers for EVENT packets a
        client names "connect" or "disconnect". The real ones run while the socket is
        still connecting or already disconnecting; a client's event arrives while it is
        fully connected, and must neither re-authenticate it nor cancel its expiry."""
        return bool(self.sio.manager.is_connected(sid, "/"))

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if self._is_client_event(sid):
            return
        handshake = read_handshake(environ, auth)
        try:
            verified = self.verifier.verify(handshake.token)
            role = USER_TYPES.get((handshake.user_type or "user").lower())
            if role is None:
                raise NotAuthenticated(
                    "userType must be 'user', 'dtuser' or 'admin'", code="INVALID_USER_TYPE"
                )
            if role is Role.AGENT and not verified.person.is_agent:
                raise NotAuthenticated("Admin privileges required", code="FORBIDDEN")
        except ChatError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message,
                {
                    "type": "authentication_failed",
                    "code": "AUTH_ERROR",
                    "reason": exc.code,
                    "message": exc.message,
                },
            ) from None
        actor = Actor(verified.person, role)
        await self.sio.save_session(sid, {"actor": actor})
        if actor.is_agent:
            await self.sio.enter_room(sid, agent_room(actor.id))
            await self.sio.enter_room(sid, ALL_AGENTS)
            try:
                await presence.agent_connected(self.chat, actor.person, sid, self.node_id)
            except ChatError:
                log.warning("presence not recorded for %s: database unavailable", actor.id)
        else:
            await self.sio.enter_room(sid, user_room(actor.id))
        if verified.expires_at is not None:
            self._schedule_expiry(sid, verified.expires_at)
        for hook in self.after_connect:
            self._spawn(self._after_connect(hook, sid, actor))

    async def disconnect(self, sid: str, *_reason: Any) -> None:
        if self._is_client_event(sid):
            return
        handle = self._expiry.pop(sid, None)
        if handle is not None:
            handle.cancel()
        try:
            actor = await self.actor(sid)
        except KeyError:
            return
        if actor.is_agent:
            try:
                await presence.agent_disconnected(self.chat, actor.id, sid)
            except ChatError:
                log.warning("presence not cleared for %s: database unavailable", actor.id)

    async def _after_connect(self, hook: AfterConnect, sid: str, actor: Actor) -> None:
        """What a hook sends is a courtesy the client can ask for again: without the
        database it is skipped, not an error."""
        try:
            await hook(sid, actor)
        except ChatError:
            log.warning("%s skipped for %s: database unavailable", hook.__name__, sid)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)  # held until done, so it is not garbage-collected mid-way
        task.add_done_callback(self._tasks.discard)

    def _schedule_expiry(self, sid: str, expires_at: float) -> None:
        def fire() -> None:
            self._spawn(self._expire(sid))

        delay = max(0.0, expires_at - time.time())
        self._expiry[sid] = asyncio.get_running_loop().call_later(delay, fire)

    async def _expire(self, sid: str) -> None:
        self._expiry.pop(sid, None)
        await self.sio.emit(
            "error",
            {
                "type": "token_expired",
                "message": "Authentication token expired",
                "code": "TOKEN_EXPIRED",
            },
            to=sid,
        )
        await self.sio.disconnect(sid)
