"""Several server processes as one service: python-socketio's Redis client manager carries
every emit to every process, and each delivers to its own sockets (through the catch-up
gates and the sequencer of GatedManager).

Redis pub/sub keeps nothing: what is published while Redis is down, or while a process
is cut off from it, never arrives. The database has every message, so this manager
notices when something may have been lost and then reads the messages back from the
database (domain/recovery.py); the sequencer drops those already delivered:

- its own subscription broke: once subscribed again, it reads back what was stored
  since the last thing it heard (every process publishes a heartbeat each second, so
  that is at most about a second before the break);
- a publish of its own failed: once publishing works again, it asks every process to
  read back from the moment of the failure.

While Redis is unreachable, publishing is not retried for `PAUSE_SECONDS` after a
failure, so that sends are answered at database speed meanwhile instead of each waiting
for a connection timeout; nothing depends on those publishes arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import socketio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..domain.events import Event
from .catchup import GatedManager

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
PAUSE_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 2.0
# Wall clocks of two machines differ a little; read back a bit further than needed.
CLOCK_MARGIN_SECONDS = 5.0
RESUBSCRIBE_FIRST_DELAY = 0.2
RESUBSCRIBE_MAX_DELAY = 2.0
# Messages of this manager's own, next to python-socketio's ("emit", "disconnect", ...).
CONTROL_PREFIX = b'{"method":"supportchat:'

ReadBack = Callable[[datetime], Awaitable[list[Event]]]


class RedisFanout(socketio.AsyncRedisManager, GatedManager):  # type: ignore[misc]
    def __init__(self, url: str, channel: str = "supportchat") -> None:
        super().__init__(url, channel=channel)
        # No retries inside redis-py: a broken connection must reach this class at once
        # (a silent reconnect would hide a window in which messages were lost).
        self._options: dict[str, Any] = {
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        }
        self._publisher: Redis | None = None
        self.read_back: ReadBack | None = None  # set once the domain exists (app.py)
        self.last_heard = time.time()
        self.subscribed = False
        self._subscriptions = 0
        self._paused_until = 0.0
        self._failed_since: float | None = None  # the first publish lost, not yet re-read
        self._reading_back = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.publish_errors = 0
        self.listen_errors = 0

    @property
    def healthy(self) -> bool:
        return self.subscribed and self._failed_since is None

    def initialize(self) -> None:
        super().initialize()
        self._spawn(self._heartbeat())

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        target = to or room
        if isinstance(target, str) and self.is_connected(target, namespace or "/"):
            # One socket of this process (an answer, a replay): no other process has it.
            kwargs["ignore_queue"] = True
        await super().emit(
            event,
            data,
            namespace=namespace,
            room=target,
            skip_sid=skip_sid,
            callback=callback,
            **kwargs,
        )

    # -- publishing -------------------------------------------------------------------------

    async def _publish(self, data: Any) -> None:
        await self._send(self.json.dumps(data))

    async def _send(self, text: str | bytes) -> bool:
        moment = time.time()
        if moment < self._paused_until:
            self._lost(moment)
            return False
        try:
            if self._publisher is None:
                self._publisher = Redis.from_url(self.redis_url, **self._options)
            await self._publisher.publish(self.channel, text)
        except Exception as exc:
            self.publish_errors += 1
            self._paused_until = moment + PAUSE_SECONDS
            self._lost(moment)
            publisher, self._publisher = self._publisher, None
            if publisher is not None:
                with contextlib.suppress(Exception):
                    await publisher.aclose()
            log.warning("publishing to Redis failed (%s); pausing %.0f s", exc, PAUSE_SECONDS)
            return False
        if self._failed_since is not None:
            since, self._failed_since = self._failed_since, None
            control = {"method": "supportchat:read_back", "since": since, "host": self.host_id}
            if not await self._send(orjson.dumps(control)):
                self._lost(since)  # asked again after the next publish that works
        return True

    def _lost(self, moment: float) -> None:
        if self._failed_since is None or moment < self._failed_since:
            self._failed_since = moment

    async def _heartbeat(self) -> None:
        alive = orjson.dumps({"method": "supportchat:alive", "host": self.host_id})
        while True:
            await self._send(alive)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    # -- listening --------------------------------------------------------------------------

    async def _listen(self) -> AsyncIterator[bytes]:
        channel = self.channel.encode()
        delay = RESUBSCRIBE_FIRST_DELAY
        while True:
            client = Redis.from_url(self.redis_url, **self._options)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self._on_subscribed()
                        delay = RESUBSCRIBE_FIRST_DELAY
                        continue
                    if message["type"] != "message" or message["channel"] != channel:
                        continue
                    self.last_heard = time.time()
                    data: bytes = message["data"]
                    if data.startswith(CONTROL_PREFIX):
                        self._on_control(data)
                        continue
                    yield data
            except Exception as exc:
                self.listen_errors += 1
                log.warning("Redis subscription lost (%s); retrying in %.1f s", exc, delay)
            finally:
                self.subscribed = False
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_DELAY)

    def _on_subscribed(self) -> None:
        self.subscribed = True
        self._subscriptions += 1
        if self._subscriptions > 1:
            # Subscribed again: whatever was published since the last thing heard may
            # have gone by.
            self._spawn(self._read_back_since(self.last_heard))

    def _on_control(self, data: bytes) -> None:
        try:
            control = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if control.get("method") == "supportchat:read_back" and control.get("host") != (
            self.host_id
        ):
            self._spawn(self._read_back_since(float(control["since"])))

    async def _read_back_since(self, since: float) -> None:
        if self.read_back is None:
            return
        moment = datetime.fromtimestamp(since - CLOCK_MARGIN_SECONDS, UTC)
        async with self._reading_back:
            try:
                events = await self.read_back(moment)
            except Exception:
                log.exception("could not read back the messages since %s", moment.isoformat())
                return
            self.admit_read_back(events)
        log.info("read back %d message(s) stored since %s", len(events), moment.isoformat())

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)  # held until done, so it is not garbage-collected mid-way
        task.add_done_callback(self._tasks.discard)
