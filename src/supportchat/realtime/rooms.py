"""Socket.IO room names. Every socket joins its rooms at connection and never later:
what a socket receives is decided by who it is, and by data in the database (which
agents follow a ticket), so any server process can address any socket."""

from __future__ import annotations

ALL_AGENTS = "agents"


def user_room(person_id: str) -> str:
    return f"user:{person_id}"


def agent_room(person_id: str) -> str:
    return f"agent:{person_id}"
