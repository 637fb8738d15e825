"""Typed dependencies: the service and the caller, taken from the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import TokenVerifier
from ..domain.context import Chat
from ..domain.errors import Forbidden
from ..domain.identity import Actor, Person, Role
from ..domain.limits import Quota

_bearer = HTTPBearer(auto_error=False, description="JWT issued by the host application")


def get_chat(request: Request) -> Chat:
    chat: Chat = request.app.state.chat
    return chat


async def get_person(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Person:
    """The caller, from their token; each authenticated request counts against their
    REST quota (the window is shown in X-RateLimit-* headers, see ratelimit_headers)."""
    verifier: TokenVerifier = request.app.state.verifier
    person = verifier.verify(credentials.credentials if credentials else None).person
    chat: Chat = request.app.state.chat
    request.state.rate_window = await chat.limits.hit(Quota.REST, person.id)
    return person


def as_user(person: Annotated[Person, Depends(get_person)]) -> Actor:
    return Actor(person, Role.USER)


def as_agent(person: Annotated[Person, Depends(get_person)]) -> Actor:
    if not person.is_agent:
        raise Forbidden("Admin privileges required")
    return Actor(person, Role.AGENT)


def as_either(person: Annotated[Person, Depends(get_person)]) -> Actor:
    """Agents act as agents (and as the user on their own chats); everyone else as a user."""
    return Actor(person, Role.AGENT if person.is_agent else Role.USER)


ChatService = Annotated[Chat, Depends(get_chat)]
CurrentUser = Annotated[Actor, Depends(as_user)]
CurrentAgent = Annotated[Actor, Depends(as_agent)]
CurrentActor = Annotated[Actor, Depends(as_either)]
