"""Who is asking: a person known from a verified token, acting as a user or an agent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import Ticket


class Role(StrEnum):
    USER = "user"
    AGENT = "admin"


@dataclass(frozen=True, slots=True)
class Person:
    """A directory entry, as the host application's token describes the person."""

    id: str
    full_name: str
    email: str
    role: str | None
    is_agent: bool


@dataclass(frozen=True, slots=True)
class Actor:
    """A person acting in one role. An agent may also act as a user (their own chats)."""

    person: Person
    role: Role

    @property
    def id(self) -> str:
        return self.person.id

    @property
    def name(self) -> str:
        return self.person.full_name

    @property
    def is_agent(self) -> bool:
        return self.role is Role.AGENT

    def as_user(self) -> Actor:
        return Actor(self.person, Role.USER)

    def on(self, ticket: Ticket) -> Actor:
        """The role this actor speaks in on a ticket: on their own chat, an agent is its user."""
        if self.is_agent and ticket.user.id == self.id:
            return self.as_user()
        return self
