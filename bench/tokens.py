"""JWTs the server accepts: HS256 with the claims it reads (userId, fullName, email, role)."""

from __future__ import annotations

import time

import jwt

AGENT_ROLE = "admin"


def make_token(secret: str, user_id: str, *, agent: bool = False, expires_in: int = 86400) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "userId": user_id,
        "fullName": f"Bench {user_id}",
        "email": f"{user_id}@bench.example.com",
        "iat": now,
        "exp": now + expires_in,
    }
    if agent:
        claims["role"] = AGENT_ROLE
    return jwt.encode(claims, secret, algorithm="HS256")
