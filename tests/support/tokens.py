"""JWTs and test identities.

The server trusts HS256 tokens signed with SUPPORTCHAT_JWT_SECRET; tests mint their own
with the same secret instead of going through the CLI, so each test can create as many
independent people as it needs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

AGENT_ROLE = "admin"


def make_token(
    secret: str,
    user_id: str,
    name: str,
    email: str,
    role: str | None = None,
    expires_in: int = 3600,
    **extra_claims: Any,
) -> str:
    """HS256 JWT with the claim names the server expects (userId, fullName, email, role).

    A negative ``expires_in`` yields an already expired token; ``extra_claims`` override
    or add claims (e.g. ``iat=...`` or a bogus ``role``) for negative tests.
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "userId": user_id,
        "fullName": name,
        "email": email,
        "iat": now,
        "exp": now + expires_in,
    }
    if role is not None:
        claims["role"] = role
    claims.update(extra_claims)
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass(frozen=True)
class Person:
    """A user or agent identity plus a ready-made bearer token for it."""

    id: str
    name: str
    email: str
    token: str
    role: str | None = None

    @property
    def is_agent(self) -> bool:
        return self.role == AGENT_ROLE

    @property
    def user_type(self) -> str:
        """The socket ``userType`` this person normally connects with."""
        return "admin" if self.is_agent else "user"

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_person(
    secret: str,
    *,
    role: str | None = None,
    name: str | None = None,
    email: str | None = None,
    user_id: str | None = None,
    expires_in: int = 3600,
    **extra_claims: Any,
) -> Person:
    """Mint a Person with a fresh uuid-based id so tests never share server-side state."""
    prefix = "agent" if role == AGENT_ROLE else "user"
    pid = user_id or f"{prefix}-{uuid.uuid4().hex[:16]}"
    name = name or f"{prefix.title()} {pid[-6:]}"
    email = email or f"{pid}@example.com"
    token = make_token(secret, pid, name, email, role=role, expires_in=expires_in, **extra_claims)
    return Person(id=pid, name=name, email=email, token=token, role=role)


# Type of the user_factory / agent_factory fixtures: (**new_person kwargs) -> Person.
PersonFactory = Callable[..., Person]
