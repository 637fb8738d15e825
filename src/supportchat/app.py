"""The ASGI application: Socket.IO and the REST API in one app, sharing one domain layer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import socketio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from . import __version__
from .api import admin_routes, chat_routes, demo_routes
from .api.body_limit import BodySizeLimit
from .api.envelope import FastJSONResponse, ok
from .api.errors import install_error_handlers
from .api.openapi import install_openapi
from .api.pages import install_pages
from .api.ratelimit_headers import RateLimitHeaders
from .api.schemas import Envelope, HealthOut
from .auth import TokenVerifier
from .config import Settings
from .domain import presence, recovery
from .domain.context import Chat
from .domain.errors import ChatError, Unavailable
from .domain.inputs import Rules
from .domain.limits import Quota, RateLimits
from .metrics import MetricsEndpoint, ServiceMetrics, Sources
from .realtime.backpressure import SlowClientGuard
from .realtime.catchup import GatedManager
from .realtime.codec import OrjsonCodec, Packet
from .realtime.compat import CompatHandlers
from .realtime.connections import Connections
from .realtime.dispatch import Dispatcher
from .realtime.drain import Drain
from .realtime.fanout import RedisFanout
from .realtime.handlers import EventHandlers
from .realtime.origins import origin_checker
from .realtime.publisher import SocketPublisher
from .storage.database import Database

log = logging.getLogger(__name__)

FORGET_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Service:
    """The ASGI app, and what the server must call on SIGTERM before closing connections."""

    app: ASGIApp
    drain: Drain


def create_app(settings: Settings) -> Service:
    settings.ensure_data_dir()
    database = Database(settings.resolved_database_url)
    # One process delivers to its own sockets; with Redis, every process hears every emit.
    delivery = GatedManager() if not settings.redis_url else RedisFanout(settings.redis_url)
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=delivery,
        cors_allowed_origins=origin_checker(settings.cors_origins),
        # Tokens are never cookies: no Access-Control-Allow-Credentials, as for REST.
        cors_credentials=False,
        json=OrjsonCodec,
        serializer=Packet,
        max_http_buffer_size=settings.max_http_buffer_size,
        logger=False,
        engineio_logger=False,
    )
    publisher = SocketPublisher(sio)
    chat = Chat(
        db=database,
        publisher=publisher,
        rules=Rules(
            categories=tuple(settings.categories),
            default_category=settings.default_category,
            max_message_length=settings.max_message_length,
            max_attachments=settings.max_attachments,
        ),
        limits=RateLimits(
            {
                Quota.REST: settings.rate_limit_rest,
                Quota.ADMIN: settings.rate_limit_admin,
                Quota.MESSAGES: settings.rate_limit_messages,
                Quota.TYPING: settings.rate_limit_typing,
            },
            storage_uri=settings.redis_url,
            enabled=settings.rate_limits_enabled,
        ),
        presence_ttl_seconds=settings.presence_ttl_seconds,
    )
    delivery.read_between = partial(recovery.messages_between, chat)
    if isinstance(delivery, RedisFanout):
        delivery.read_back = partial(recovery.messages_since, chat)
    verifier = TokenVerifier(settings)
    node_id = uuid.uuid4().hex
    connections = Connections(sio, chat, verifier, node_id)
    sio.on("connect", connections.connect)
    sio.on("disconnect", connections.disconnect)
    drain = Drain(sio)
    dispatch = Dispatcher(sio, connections, drain)
    documented = EventHandlers(sio, chat, delivery)
    documented.register(dispatch)
    compat = CompatHandlers(sio, chat, documented)
    compat.register(dispatch)
    connections.after_connect.append(compat.send_active_tickets)
    connections.after_connect.append(documented.send_roster)
    guard = SlowClientGuard(
        sio,
        max_queued_packets=settings.max_queued_packets,
        interval=settings.slow_client_check_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not sio.manager_initialized:
            # python-socketio starts its client manager on the first connection; a
            # process must hear the others (and publish its heartbeat) from the start.
            sio.manager_initialized = True
            delivery.initialize()
        beat = asyncio.create_task(_presence_heartbeat(chat, connections, settings))
        slow_clients = asyncio.create_task(guard.run())
        try:
            yield
        finally:
            beat.cancel()
            slow_clients.cancel()
            # Tidying only: the rows expire by themselves after the presence TTL, so a
            # database that is locked or gone must not hold the exit up.
            with contextlib.suppress(ChatError, TimeoutError):
                await asyncio.wait_for(presence.forget_node(chat, node_id), FORGET_SECONDS)
            await database.dispose()

    api = FastAPI(
        title="supportchat",
        version=__version__,
        summary="Live support chat: every chat is a ticket. REST API; real-time events "
        "are Socket.IO on the same origin (see docs/protocol.md).",
        lifespan=lifespan,
    )
    api.state.chat = chat
    api.state.verifier = verifier
    api.state.settings = settings
    api.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        # Tokens travel in the Authorization header, never in cookies: no credentials,
        # so a "*" origin can never be combined with them.
        allow_credentials=False,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=[
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ],
    )
    api.add_middleware(RateLimitHeaders)
    install_error_handlers(api)
    install_openapi(api)
    api.include_router(admin_routes.router)
    api.include_router(chat_routes.router)
    api.include_router(demo_routes.router)
    install_pages(api)

    @api.get("/health", response_model=Envelope[HealthOut], tags=["service"])
    async def health() -> Response:
        """200 while the database answers; 503 (same shape) while it does not. With Redis
        configured, `redis` says whether this process hears the others; without it the
        process still serves its own sockets (and catches up when Redis is back), so a
        load balancer should keep sending it traffic: `status` is then "degraded", with
        200."""
        shared: dict[str, str] = {}
        if isinstance(delivery, RedisFanout):
            shared["redis"] = "ok" if delivery.healthy else "unavailable"
        if await database.ping():
            status = "ok" if shared.get("redis", "ok") == "ok" else "degraded"
            return ok("ok", {"status": status, "database": "ok", **shared})
        return FastJSONResponse(
            {
                "success": False,
                "message": "Database unavailable",
                "code": Unavailable.code,
                "data": {"status": "degraded", "database": "unavailable", **shared},
            },
            503,
            headers={"Retry-After": "5"},
        )

    # The guard's wrapper sees each websocket's transport, to abort a stalled one. The
    # body cap wraps Engine.IO's long-polling too: the engine answers an oversized POST
    # by waiting for a close that never comes, holding the request open.
    app = BodySizeLimit(
        guard.wrap(socketio.ASGIApp(sio, other_asgi_app=api, socketio_path="socket.io")),
        max_bytes=settings.max_http_buffer_size,
        cors_origins=settings.cors_origins,
    )
    metrics = ServiceMetrics(Sources(delivery, publisher, chat.limits, database))
    observed = MetricsEndpoint(
        app, metrics, token=settings.metrics_token, port=settings.metrics_port
    )
    return Service(observed, drain)


async def _presence_heartbeat(chat: Chat, connections: Connections, settings: Settings) -> None:
    while True:
        try:
            await presence.heartbeat(chat, connections.node_id, await connections.local_agents())
        except ChatError:
            log.warning("presence heartbeat skipped: database unavailable")
        except Exception:
            log.exception("presence heartbeat failed")
        await asyncio.sleep(settings.presence_heartbeat_seconds)
