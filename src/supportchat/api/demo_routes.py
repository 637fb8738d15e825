"""The first-run demo: tokens for a demo user and a demo agent, so that someone who has
just run `make run` can open the customer view and the agent view and chat with
themself (the landing page calls these).

Outside demo mode the routes answer 404 as if they did not exist: a token must come
from the host application, never from the UI. Demo mode needs both SUPPORTCHAT_DEMO and
a server bound to this machine (Settings.demo_active), since a demo token makes anyone
who can reach the server an agent."""

from __future__ import annotations

import secrets
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from ..auth import issue_token
from ..config import Settings
from . import schemas as s
from .envelope import ok

router = APIRouter(prefix="/api/demo", tags=["demo"])

# A demo session lasts a working day; a new one is a click away.
DEMO_TOKEN_SECONDS = 8 * 3600


class DemoStatusOut(s.Out):
    enabled: bool


class DemoTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "agent"]


class DemoTokenOut(s.Out):
    token: str
    userId: str
    name: str
    role: Literal["user", "agent"]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("", response_model=s.Envelope[DemoStatusOut], summary="Is the demo on?")
async def demo_status(request: Request) -> Response:
    return ok("Demo mode", {"enabled": _settings(request).demo_active})


@router.post(
    "/token",
    response_model=s.Envelope[DemoTokenOut],
    responses={
        **s.errors_doc(400),
        404: {"model": s.ErrorOut, "description": "Demo mode is off"},
    },
    summary="A token for a new demo user or demo agent (demo mode only)",
)
async def demo_token(request: Request, body: DemoTokenIn) -> Response:
    settings = _settings(request)
    if not settings.demo_active:
        raise HTTPException(404)  # the answer to a route that does not exist
    # A new person on every call: each customer tab is another customer.
    tag = secrets.token_hex(3)
    if body.role == "agent":
        user_id, name, role = f"demo-agent-{tag}", f"Demo agent {tag}", settings.admin_roles[0]
    else:
        user_id, name, role = f"demo-user-{tag}", f"Demo customer {tag}", None
    token = issue_token(
        settings,
        user_id=user_id,
        name=name,
        email=f"{user_id}@demo.invalid",
        role=role,
        expires_in=DEMO_TOKEN_SECONDS,
    )
    return ok("Demo token", {"token": token, "userId": user_id, "name": name, "role": body.role})
