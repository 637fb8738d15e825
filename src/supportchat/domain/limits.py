"""Rate limits of the API document, counted with the `limits` library (moving window).

Counts live in memory by default and in Redis when one is configured, so that several
server processes share one count. The quotas are the document's: REST requests per
user, admin actions per agent, messages per chat (REST and Socket.IO sends alike), and
typing indicators per person and chat, which are dropped rather than refused.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from .errors import RateLimited


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
        self._items: dict[Quota, RateLimitItem] = {q: parse(text) for q, text in quotas.items()}
        if storage_uri:
            # redis-py, the client python-socketio's Redis manager uses too.
            storage = storage_from_string(f"async+{storage_uri}", implementation="redispy")
        else:
            storage = storage_from_string("async+memory://")
        self._limiter = MovingWindowRateLimiter(storage)

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

    async def hit_all(self, *uses: tuple[Quota, tuple[str, ...]]) -> None:
        """Count one use of each quota, or of none: an action that one quota refuses is
        not charged to the others."""
        if not self.enabled:
            return
        for quota, key in uses:
            item = self._items[quota]
            if not await self._limiter.test(item, quota.value, *key):
                stats = await self._limiter.get_window_stats(item, quota.value, *key)
                raise self._refusal(quota, stats.reset_time)
        for quota, key in uses:
            await self.hit(quota, *key)

    def _refusal(self, quota: Quota, reset_at: float) -> RateLimited:
        item = self._items[quota]
        retry_after = max(1, math.ceil(reset_at - time.time()))
        return RateLimited(
            f"Too many {_WHAT[quota]}: the limit is {item.amount} per "
            f"{_period(item)}. Retry in {retry_after} seconds.",
            retry_after=retry_after,
            limit=item.amount,
            reset_at=reset_at,
        )


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
