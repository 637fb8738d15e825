"""Events the domain publishes after a commit, and who should receive them.

The domain names its audience in its own terms (a ticket's owner, the agents who follow
it, all agents); the real-time transport maps those to Socket.IO rooms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Audience:
    users: tuple[str, ...] = ()  # every user socket of these people
    agents: tuple[str, ...] = ()  # every agent socket of these people
    all_agents: bool = False  # every agent socket
    # The connection that caused the event: it learns the outcome from its own answer.
    exclude_connection: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    payload: dict[str, Any]
    audience: Audience = field(default_factory=Audience)


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...


class NullPublisher:
    """For commands that change data with no connected clients to tell (the CLI)."""

    async def publish(self, events: Sequence[Event]) -> None:
        return None
