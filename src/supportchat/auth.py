"""Bearer tokens issued by the host application, verified here and turned into a Person.

The accepted algorithms come from configuration, never from the token, so a token
cannot choose `none` or switch an RS256 setup to HS256 keyed with the public key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from .config import Settings
from .domain.errors import NotAuthenticated
from .domain.identity import Person
from .domain.inputs import is_storable


@dataclass(frozen=True, slots=True)
class Verified:
    person: Person
    expires_at: float | None  # seconds since the epoch, from `exp`


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.verification_key()
        self._algorithms = list(settings.jwt_algorithms)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._require = ["exp"] if settings.jwt_require_exp else []
        self._admin_roles = frozenset(settings.admin_roles)

    def verify(self, token: str | None) -> Verified:
        if not token:
            raise NotAuthenticated("Authentication token required", code="TOKEN_MISSING")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": self._require, "verify_aud": self._audience is not None},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("Authentication token expired", code="TOKEN_EXPIRED") from None
        except jwt.PyJWTError:
            raise NotAuthenticated("Invalid token provided", code="TOKEN_INVALID") from None
        return Verified(self._person(claims), _number(claims.get("exp")))

    def _person(self, claims: dict[str, Any]) -> Person:
        person_id = next(
            (str(claims[k]) for k in ("userId", "sub", "id") if claims.get(k) not in (None, "")),
            None,
        )
        if person_id is None or len(person_id) > 128 or not is_storable(person_id):
            raise NotAuthenticated("Invalid token provided: no user id", code="TOKEN_INVALID")
        role = claims.get("role")
        role = str(role) if role is not None else None
        name = claims.get("fullName") or claims.get("name") or ""
        email = claims.get("email") or ""
        return Person(
            id=person_id,
            full_name=_printable(str(name))[:200],
            email=_printable(str(email))[:320],
            role=role,
            is_agent=role in self._admin_roles,
        )


def issue_token(
    settings: Settings,
    *,
    user_id: str,
    name: str,
    email: str,
    role: str | None = None,
    expires_in: int = 86400,
) -> str:
    """A token this server accepts: for development, tests and the `token` command."""
    issued = int(time.time())
    claims: dict[str, Any] = {
        "userId": user_id,
        "fullName": name,
        "email": email,
        "iat": issued,
        "exp": issued + expires_in,
    }
    if role:
        claims["role"] = role
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.signing_key(), algorithm=settings.jwt_algorithms[0])


def _printable(text: str) -> str:
    """Names and emails come from the host application's token: keep what can be stored."""
    if is_storable(text):
        return text
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
