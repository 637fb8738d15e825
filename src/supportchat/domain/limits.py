"""Rate limits of the API document (moving windows): REST requests per user, admin
actions per agent, messages per chat (REST and Socket.IO sends alike), and typing
indicators per person and chat, which are dropped rather than refused.

With Redis configured, counts live there so that several server processes share one
count, and the `limits` library does the counting. In one process they live in memory,
in `LocalWindows` below rather than in the library's memory storage: that storage walks
every key it holds (one thread-pool call per key) after each hit, which at a thousand
open chats cost more CPU than storing the messages (docs/performance.md).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from limits import RateLimitItem, WindowStats, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .errors import RateLimited

log = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 2.0


class Quota(StrEnum):
    REST = "rest"
    ADMIN = "admin"
    MESSAGES = "messages"
    TYPING = "typing"


_WHAT = {
    Quota.REST: "requests",
    Quota.ADMIN: "admin actions",
    Quota.MESSAGES: "messages in this chat",
    Quota.TYPING: "typing updates",
}


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    remaining: int
    reset_at: float  # seconds since the epoch


class RateLimits:
    def __init__(
        self, quotas: dict[Quota, str], *, storage_uri: str | None = None, enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self.refused: dict[Quota, int] = dict.fromkeys(Quota, 0)  # uses refused, by quota
        self._items: dict[Quota, RateLimitItem] = {q: parse(text) for q, text in quotas.items()}
        self._limiter: Limiter
        if storage_uri:
            # redis-py, the client python-socketio's Redis manager uses too.
            # Fail fast while Redis is down (SharedWindows then counts here) instead of
            # redis-py's retries holding each request up for seconds.
            fail_fast: dict[str, Any] = {
                "retry": Retry(NoBackoff(), 0),
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
            }
            storage = storage_from_string(
                f"async+{storage_uri}", implementation="redispy", **fail_fast
            )
            self._limiter = SharedWindows(MovingWindowRateLimiter(storage), LocalWindows())
        else:
            self._limiter = LocalWindows()

    async def hit(self, quota: Quota, *key: str) -> Window | None:
        """Count one use; raise RateLimited (with when to retry) if the quota is spent."""
        if not self.enabled:
            return None
        item = self._items[quota]
        allowed = await self._limiter.hit(item, quota.value, *key)
        stats = await self._limiter.get_window_stats(item, quota.value, *key)
        if not allowed:
            raise self._refusal(quota, stats.reset_time)
        return Window(item.amount, max(0, stats.remaining), stats.reset_time)

    async def charge(self, quota: Quota, *key: str) -> None:
        """Count one use, as `hit` does, without reading the window's figures back."""
        await self.hit_all((quota, key))

    async def hit_all(self, *uses: tuple[Quota, tuple[str, ...]]) -> None:
        """Count one use of each quota, or of none: an action that one quota refuses is
        not charged to the others."""
        if not self.enabled:
            return
        if len(uses) > 1:
            for quota, key in uses:
                if not await self._limiter.test(self._items[quota], quota.value, *key):
                    raise await self._refused(quota, key)
        # A hit is itself a test: a refused one counts nothing. And a send needs no window
        # figures unless refused, so a use costs one call (one Redis round trip).
        for quota, key in uses:
            if not await self._limiter.hit(self._items[quota], quota.value, *key):
                raise await self._refused(quota, key)

    async def _refused(self, quota: Quota, key: tuple[str, ...]) -> RateLimited:
        stats = await self._limiter.get_window_stats(self._items[quota], quota.value, *key)
        return self._refusal(quota, stats.reset_time)

    @property
    def redis_errors(self) -> int:
        return self._limiter.errors if isinstance(self._limiter, SharedWindows) else 0

    def _refusal(self, quota: Quota, reset_at: float) -> RateLimited:
        self.refused[quota] += 1
        item = self._items[quota]
        retry_after = max(1, math.ceil(reset_at - time.time()))
        return RateLimited(
            f"Too many {_WHAT[quota]}: the limit is {item.amount} per "
            f"{_period(item)}. Retry in {retry_after} seconds.",
            retry_after=retry_after,
            limit=item.amount,
            reset_at=reset_at,
        )


class Limiter(Protocol):
    """The part of `limits`' async moving-window limiter used here."""

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    async def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


class SharedWindows:
    """Counts in Redis, and in this process while Redis does not answer: a Redis outage
    must not stop the chat, and limits counted per process for a while are still limits
    (each process lets through at most the quota; what was counted in Redis before the
    outage is still there when it ends)."""

    RETRY_SECONDS = 1.0  # after a failure, Redis is tried again after this long

    def __init__(self, shared: Limiter, local: Limiter) -> None:
        self._shared = shared
        self._local = local
        self._down_until = 0.0
        self.errors = 0

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() >= self._down_until:
            try:
                return await getattr(self._shared, method)(*args, **kwargs)
            except Exception as exc:  # redis-py's and the library's errors alike
                self.errors += 1
                self._down_until = time.monotonic() + self.RETRY_SECONDS
                log.warning("rate limits counted in this process: Redis failed (%s)", exc)
        return await getattr(self._local, method)(*args, **kwargs)

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return bool(await self._call("hit", item, *identifiers, cost=cost))

    async def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return bool(await self._call("test", item, *identifiers, cost=cost))

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        stats: WindowStats = await self._call("get_window_stats", item, *identifiers)
        return stats


class LocalWindows:
    """Moving windows in this process: per key, the times of the hits still inside the
    window, oldest first. Each call trims its own key; keys nobody used for a whole
    window are dropped in a sweep every `SWEEP_EVERY` hits, so memory follows the
    active keys."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self._hits: dict[tuple[str, ...], deque[float]] = {}
        self._longest = 0.0
        self._since_sweep = 0

    def _window(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> deque[float]:
        key = (item.key_for(), *identifiers)
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        cutoff = time.time() - item.get_expiry()
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        hits = self._window(item, identifiers)
        if len(hits) + cost > item.amount:
            return False
        hits.extend([time.time()] * cost)
        self._longest = max(self._longest, item.get_expiry())
        self._since_sweep += 1
        if self._since_sweep >= self.SWEEP_EVERY:
            self._sweep()
        return True

    async def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return len(self._window(item, identifiers)) + cost <= item.amount

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        hits = self._window(item, identifiers)
        # Room frees up when the oldest hit leaves the window.
        reset = (hits[0] if hits else time.time()) + item.get_expiry()
        return WindowStats(reset, item.amount - len(hits))

    def _sweep(self) -> None:
        self._since_sweep = 0
        cutoff = time.time() - self._longest
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
