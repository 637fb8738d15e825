"""The first-run demo's token endpoint (api/demo_routes.py) on real servers, and how the
web UI's pages are served (api/pages.py).

Demo mode must be asked for and the server bound to this machine; otherwise its routes
answer 404 and no token can be had from the UI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from support.server import ServerInfo, running_server
from supportchat.api.pages import PAGE_POLICY, install_pages
from supportchat.config import Settings


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    with running_server(
        "demo", tmp_path_factory.mktemp("demo"), env={"SUPPORTCHAT_DEMO": "true"}
    ) as proc:
        assert proc.info is not None
        yield proc.info


async def demo_token(http: httpx.AsyncClient, base: str, role: str) -> dict[str, str]:
    resp = await http.post(f"{base}/api/demo/token", json={"role": role})
    assert resp.status_code == 200, resp.text
    data: dict[str, str] = resp.json()["data"]
    return data


async def test_demo_tokens_make_a_user_and_an_agent(
    demo_server: ServerInfo, http: httpx.AsyncClient
) -> None:
    base = demo_server.base_url
    status = await http.get(f"{base}/api/demo")
    assert status.json() == {"success": True, "message": "Demo mode", "data": {"enabled": True}}
    user = await demo_token(http, base, "user")
    agent = await demo_token(http, base, "agent")
    assert user["role"] == "user" and agent["role"] == "agent"
    assert user["userId"] != (await demo_token(http, base, "user"))["userId"]  # a new one each
    as_user = {"Authorization": f"Bearer {user['token']}"}
    as_agent = {"Authorization": f"Bearer {agent['token']}"}
    started = await http.post(
        f"{base}/api/chat/start", json={"message": "hello from the demo"}, headers=as_user
    )
    assert started.status_code == 201, started.text
    ticket_id = started.json()["data"]["ticketId"]
    # The user token is no agent's; the agent token is.
    assert (await http.get(f"{base}/api/chat/admin/active", headers=as_user)).status_code == 403
    active = await http.get(f"{base}/api/chat/admin/active", headers=as_agent)
    assert active.status_code == 200, active.text
    assert ticket_id in {t["_id"] for t in active.json()["data"]["chats"]}


@pytest.mark.parametrize(
    "body", [{"role": "admin"}, {}, {"role": "user", "name": "Mallory"}, ["user"]]
)
async def test_demo_token_refuses_bad_input(
    demo_server: ServerInfo, http: httpx.AsyncClient, body: object
) -> None:
    resp = await http.post(f"{demo_server.base_url}/api/demo/token", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["success"] is False


async def test_no_demo_unless_asked(server: ServerInfo, http: httpx.AsyncClient) -> None:
    """conftest's server: SUPPORTCHAT_DEMO not set."""
    status = await http.get(f"{server.base_url}/api/demo")
    assert status.json()["data"] == {"enabled": False}
    resp = await http.post(f"{server.base_url}/api/demo/token", json={"role": "agent"})
    assert resp.status_code == 404, resp.text
    assert resp.json()["success"] is False and "token" not in resp.text


@pytest.mark.parametrize(
    ("demo", "host", "active"),
    [
        (True, "127.0.0.1", True),
        (True, "localhost", True),
        (True, "::1", True),
        (True, "0.0.0.0", False),
        (True, "192.168.1.20", False),
        (False, "127.0.0.1", False),
    ],
)
def test_demo_only_on_a_server_bound_to_this_machine(demo: bool, host: str, active: bool) -> None:
    assert Settings(demo=demo, host=host).demo_active is active


# --- the pages ------------------------------------------------------------------------------


def pages_app(build: Path) -> httpx.AsyncClient:
    api = FastAPI()
    install_pages(api, build)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://ui")


def fake_build(root: Path) -> Path:
    """The shape of a web/ build: three pages, the widget and one hashed asset."""
    (root / "assets").mkdir(parents=True)
    for name in ("index.html", "chat.html", "agent.html"):
        (root / name).write_text(f"<!doctype html><title>{name}</title>")
    (root / "widget.js").write_text("window.SupportChat = {};")
    (root / "assets" / "app-1a2b3c.js").write_text("console.log(1);")
    return root


async def test_pages_are_served_with_a_strict_policy(tmp_path: Path) -> None:
    async with pages_app(fake_build(tmp_path / "webui")) as ui:
        for route, name in (("/", "index.html"), ("/chat", "chat.html"), ("/agent", "agent.html")):
            resp = await ui.get(route)
            assert resp.status_code == 200 and name in resp.text, route
            assert resp.headers["content-type"].startswith("text/html")
            assert resp.headers["content-security-policy"] == PAGE_POLICY
            assert resp.headers["cache-control"] == "no-cache"
            assert resp.headers["x-content-type-options"] == "nosniff"
        widget = await ui.get("/widget.js")
        assert widget.status_code == 200 and "SupportChat" in widget.text
        assert widget.headers["content-type"].startswith("text/javascript")
        asset = await ui.get("/assets/app-1a2b3c.js")
        assert asset.status_code == 200
        assert "immutable" in asset.headers["cache-control"]
        assert (await ui.get("/assets/missing.js")).status_code == 404
        # Encoded, so that the client does not resolve the ".." itself: the request
        # reaches the assets and asks for a file outside them.
        assert (await ui.get("/assets/%2e%2e/index.html")).status_code == 404


async def test_without_a_build_the_pages_say_how_to_build(tmp_path: Path) -> None:
    async with pages_app(tmp_path / "nothing") as ui:
        resp = await ui.get("/")
        assert resp.status_code == 503 and "make install" in resp.text
        assert (await ui.get("/widget.js")).status_code == 404
        assert (await ui.get("/assets/app.js")).status_code == 404
