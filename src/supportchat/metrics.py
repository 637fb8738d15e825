"""Prometheus metrics of one server process, in the text format, at `/metrics`.

Each process reports its own figures; Prometheus adds them up across processes. The
counts live as plain integers in the components that own them (the publisher, the
client manager, the rate limits, the database) and are read when Prometheus scrapes, so
the message path pays an integer increment, not a metrics library's lock per message.
The delivery latency is a prometheus-client histogram: one observation per message and
process.

The endpoint is not for the public: with `SUPPORTCHAT_METRICS_TOKEN` set it answers on
the service's port to `Authorization: Bearer <token>`; with `SUPPORTCHAT_METRICS_PORT`
set it is served on a port of its own (bound to `SUPPORTCHAT_METRICS_HOST`, loopback by
default), for a Prometheus on an internal network. With neither, there is no endpoint.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .domain.limits import RateLimits
from .realtime.catchup import GatedManager
from .realtime.fanout import RedisFanout
from .realtime.publisher import SocketPublisher
from .realtime.rooms import ALL_AGENTS
from .storage.database import Database

# From a message being stored to this process putting it in its recipients' queues.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Sources:
    """The components whose counts are reported."""

    manager: GatedManager
    publisher: SocketPublisher
    limits: RateLimits
    database: Database


class ServiceMetrics(Collector):
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.registry = CollectorRegistry(auto_describe=False)
        self.delivery_latency = Histogram(
            "supportchat_delivery_latency_seconds",
            "Time from a message being stored to this process delivering it to its sockets",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(self)
        sources.manager.on_live_message = self.delivered

    def delivered(self, payload: dict[str, Any]) -> None:
        try:
            stored = datetime.fromisoformat(payload["timestamp"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return
        self.delivery_latency.observe(max(0.0, time.time() - stored))

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def collect(self) -> Iterator[Metric]:
        manager, limits = self.sources.manager, self.sources.limits
        connected = manager.rooms.get("/", {}).get(None, {})
        agents = sum(1 for _ in manager.get_participants("/", ALL_AGENTS)) if connected else 0
        sockets = GaugeMetricFamily(
            "supportchat_sockets", "Connected Socket.IO sockets, by role", labels=["role"]
        )
        sockets.add_metric(["agent"], agents)
        sockets.add_metric(["user"], len(connected) - agents)
        yield sockets
        yield _counter(
            "supportchat_messages_stored",
            "Messages this process stored and announced",
            self.sources.publisher.messages_published,
        )
        yield _counter(
            "supportchat_messages_delivered",
            "new_message packets this process put in its sockets' queues",
            manager.messages_delivered,
        )
        refused = CounterMetricFamily(
            "supportchat_rate_limited", "Uses refused by a rate limit, by quota", labels=["quota"]
        )
        for quota, count in limits.refused.items():
            refused.add_metric([quota.value], count)
        yield refused
        yield _counter(
            "supportchat_database_errors",
            "Operations that failed because the database was unavailable",
            self.sources.database.outages,
        )
        yield _counter(
            "supportchat_messages_read_back",
            "Messages read back from the database to fill a gap in live delivery",
            manager.sequencer.gaps_filled,
        )
        yield _counter(
            "supportchat_messages_repeated",
            "new_message events heard again (live and read back) and not delivered twice",
            manager.sequencer.duplicates_dropped,
        )
        redis = CounterMetricFamily(
            "supportchat_redis_errors", "Failed Redis operations, by use", labels=["use"]
        )
        redis.add_metric(["rate_limits"], limits.redis_errors)
        if isinstance(manager, RedisFanout):
            redis.add_metric(["publish"], manager.publish_errors)
            redis.add_metric(["subscribe"], manager.listen_errors)
            yield redis
            yield GaugeMetricFamily(
                "supportchat_redis_up",
                "1 while this process is subscribed to Redis and publishing works",
                value=1 if manager.healthy else 0,
            )
        else:
            yield redis


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


class MetricsEndpoint:
    """ASGI wrapper answering `/metrics`: on the metrics port (when one is configured)
    to anyone who can reach it, and nothing else there; on the service's port only to
    `Authorization: Bearer <SUPPORTCHAT_METRICS_TOKEN>`, and as any unknown path (404)
    without a token configured."""

    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics, *, token: str | None, port: int | None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.token = token
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        server = scope.get("server")
        on_metrics_port = self.port is not None and server is not None and server[1] == self.port
        wants_metrics = scope["type"] == "http" and scope["path"] == "/metrics"
        if on_metrics_port:
            answer = self._metrics() if wants_metrics else Response(status_code=404)
        elif wants_metrics and self.token:
            answer = self._metrics() if self._authorized(scope) else _unauthorized()
        else:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        given = Headers(scope=scope).get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def _metrics(self) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _unauthorized() -> Response:
    return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
