"""Origins: which web pages may talk to the service from a browser.

Issue 4, item 4: REST CORS and the Socket.IO handshake accept only
SUPPORTCHAT_CORS_ORIGINS (default: the page's own origin and the local development
server); a handshake from a foreign Origin is refused; never ``*`` together with
credentials.

Browsers do not apply CORS to WebSocket handshakes, so the server itself must refuse a
foreign ``Origin`` there (and on the polling transport, whose answers a browser would
otherwise let the foreign page read). A client that sends no Origin is not a browser and
is judged by its token alone.

The default configuration runs on the shared ``server`` (whose own origin is
http://127.0.0.1:<its port>); a configured origin list and ``*`` run on small
module-scoped SQLite servers of their own.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from support import ServerInfo, SocketFactory, close_fast, new_person
from support.server import running_server

APP_ORIGIN = "https://app.example.com"
EVIL = "http://evil.example"
DEV_SERVER = "http://localhost:5173"  # the local development server of the defaults
EXPOSED = {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"}
TRANSPORTS = ["websocket", "polling"]


# --- servers and clients -------------------------------------------------------------------


@contextlib.contextmanager
def extra_server(
    tmp_path_factory: pytest.TempPathFactory, label: str, env: dict[str, str]
) -> Iterator[ServerInfo]:
    with running_server(f"sqlite-{label}", tmp_path_factory.mktemp(label), env=env) as proc:
        assert proc.info is not None
        yield proc.info


@pytest.fixture(scope="module")
def configured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """SUPPORTCHAT_CORS_ORIGINS names one web app: it replaces the default list."""
    env = {"SUPPORTCHAT_CORS_ORIGINS": APP_ORIGIN}
    with extra_server(tmp_path_factory, "cors-configured", env) as info:
        yield info


@pytest.fixture(scope="module")
def any_origin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    with extra_server(tmp_path_factory, "cors-any", {"SUPPORTCHAT_CORS_ORIGINS": "*"}) as info:
        yield info


@pytest.fixture
async def socket_clients() -> AsyncIterator[dict[str, SocketFactory]]:
    """``socket_clients[base_url]``: a SocketFactory per server, all closed at test end."""
    made: dict[str, SocketFactory] = {}

    class Factories(dict[str, SocketFactory]):
        def __missing__(self, base_url: str) -> SocketFactory:
            made[base_url] = self[base_url] = SocketFactory(base_url)
            return made[base_url]

    yield Factories()
    for factory in made.values():
        for client in factory.clients:
            await close_fast(client)
        await factory.close_all()


def own_origin(server: ServerInfo) -> str:
    return server.base_url  # http://127.0.0.1:<port>: scheme and Host of its requests


async def handshake_get(server: ServerInfo, origin: str | None) -> httpx.Response:
    """The first request of a polling Socket.IO connection, as a browser sends it.
    An accepted one opens an Engine.IO session: close it again."""
    headers = {"Origin": origin} if origin is not None else {}
    params = {"EIO": "4", "transport": "polling"}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5.0) as http:
        resp = await http.get("/socket.io/", params=params, headers=headers)
        if resp.status_code == 200 and resp.text.startswith("0"):
            sid = json.loads(resp.text[1:])["sid"]
            await http.post(
                "/socket.io/", params={**params, "sid": sid}, content="1", headers=headers
            )
    return resp


async def assert_socket_refused(
    clients: dict[str, SocketFactory], server: ServerInfo, origin: str, transport: str
) -> None:
    user = new_person(server.secret)
    refused = await clients[server.base_url].refused(
        user, headers={"Origin": origin}, transports=[transport]
    )
    assert refused.message, refused


async def assert_socket_accepted(
    clients: dict[str, SocketFactory], server: ServerInfo, origin: str | None, transport: str
) -> None:
    user = new_person(server.secret)
    headers = {"Origin": origin} if origin is not None else {}
    client = await clients[server.base_url](user, headers=headers, transports=[transport])
    try:
        assert client.connected
        assert client.transport == transport
        # Really connected as this user: an event round-trips.
        ack = await client.call("join_admin_room")
        assert ack.get("success") is False, ack  # a user socket, answered
    finally:
        await close_fast(client)


# --- Socket.IO handshake: the default configuration ----------------------------------------


async def test_foreign_origin_polling_handshake_is_400(server: ServerInfo) -> None:
    resp = await handshake_get(server, EVIL)
    assert resp.status_code == 400, resp.text
    assert "access-control-allow-origin" not in resp.headers, resp.headers
    assert not resp.text.startswith("0"), resp.text  # no Engine.IO session was opened


def _lookalikes(server: ServerInfo) -> list[str]:
    port = server.port
    return [
        EVIL,
        "null",  # sandboxed iframes, file:// pages
        f"http://127.0.0.1:{port + 1}",  # another port on the same host
        f"https://127.0.0.1:{port}",  # another scheme
        f"http://127.0.0.1:{port}.evil.example",  # own origin as a prefix
        f"http://evil.example/http://127.0.0.1:{port}",
        f"http://localhost:{port}",  # same machine, but not the Host the page used
    ]


@pytest.mark.parametrize("index", range(7))
async def test_lookalike_origins_are_refused_at_the_polling_handshake(
    server: ServerInfo, index: int
) -> None:
    origin = _lookalikes(server)[index]
    resp = await handshake_get(server, origin)
    assert resp.status_code == 400, (origin, resp.text)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_client_with_a_foreign_origin_fails_to_connect(
    server: ServerInfo, socket_clients: dict[str, SocketFactory], transport: str
) -> None:
    await assert_socket_refused(socket_clients, server, EVIL, transport)
    await assert_socket_refused(socket_clients, server, "null", transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_own_origin_is_accepted(
    server: ServerInfo, socket_clients: dict[str, SocketFactory], transport: str
) -> None:
    resp = await handshake_get(server, own_origin(server))
    assert resp.status_code == 200, resp.text
    await assert_socket_accepted(socket_clients, server, own_origin(server), transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_default_local_development_server_is_accepted(
    server: ServerInfo, socket_clients: dict[str, SocketFactory], transport: str
) -> None:
    await assert_socket_accepted(socket_clients, server, DEV_SERVER, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_origin_header_is_accepted(
    server: ServerInfo, socket_clients: dict[str, SocketFactory], transport: str
) -> None:
    resp = await handshake_get(server, None)
    assert resp.status_code == 200, resp.text
    await assert_socket_accepted(socket_clients, server, None, transport)


# --- Socket.IO handshake: a configured list ------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_configured_origin_is_accepted(
    configured_server: ServerInfo, socket_clients: dict[str, SocketFactory], transport: str
) -> None:
    resp = await handshake_get(configured_server, APP_ORIGIN)
    assert resp.status_code == 200, resp.text
    await assert_socket_accepted(socket_clients, configured_server, APP_ORIGIN, transport)
    # The page's own origin stays allowed next to the configured ones.
    await assert_socket_accepted(
        socket_clients, configured_server, own_origin(configured_server), transport
    )


@pytest.mark.parametrize(
    "origin",
    [
        EVIL,
        DEV_SERVER,  # a default, replaced by the configured list
        "http://app.example.com",  # the configured host over another scheme
        "https://app.example.com:8443",
        "https://app.example.com.evil.example",
        "https://evil-app.example.com",
    ],
)
async def test_origins_not_configured_are_refused(
    configured_server: ServerInfo, socket_clients: dict[str, SocketFactory], origin: str
) -> None:
    resp = await handshake_get(configured_server, origin)
    assert resp.status_code == 400, (origin, resp.text)
    await assert_socket_refused(socket_clients, configured_server, origin, "websocket")


async def test_no_origin_is_accepted_with_a_configured_list(
    configured_server: ServerInfo, socket_clients: dict[str, SocketFactory]
) -> None:
    await assert_socket_accepted(socket_clients, configured_server, None, "websocket")


async def test_polling_answers_to_a_configured_origin_allow_no_credentials(
    configured_server: ServerInfo,
) -> None:
    """Tokens travel in the handshake's auth payload, never in cookies, and REST says
    Access-Control-Allow-Credentials nowhere; the Socket.IO polling answers must not
    either (a page that may read them must not get the user's cookies sent along)."""
    resp = await handshake_get(configured_server, APP_ORIGIN)
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("access-control-allow-origin") == APP_ORIGIN, resp.headers
    assert resp.headers.get("access-control-allow-credentials") != "true", resp.headers


# --- "*": every origin, never with credentials ---------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_star_allows_any_origin_at_the_handshake(
    any_origin_server: ServerInfo, socket_clients: dict[str, SocketFactory], transport: str
) -> None:
    await assert_socket_accepted(socket_clients, any_origin_server, EVIL, transport)


async def test_star_never_comes_with_credentials_on_socketio_polling(
    any_origin_server: ServerInfo,
) -> None:
    """With "*", any page may open a connection; if the answers also said
    Access-Control-Allow-Credentials: true (with the caller's origin echoed), any page
    could make credentialed reads: exactly the "* with credentials" the issue forbids."""
    resp = await handshake_get(any_origin_server, EVIL)
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("access-control-allow-credentials") != "true", resp.headers


async def test_star_never_comes_with_credentials_on_rest(any_origin_server: ServerInfo) -> None:
    user = new_person(any_origin_server.secret)
    async with httpx.AsyncClient(base_url=any_origin_server.base_url, timeout=5.0) as http:
        pre = await http.options("/api/chat/active", headers=preflight_headers(EVIL, "GET"))
        got = await http.get("/api/chat/active", headers={"Origin": EVIL, **user.auth_header})
    assert pre.status_code == 200, pre.text
    assert pre.headers.get("access-control-allow-origin") == "*", pre.headers
    assert got.status_code == 200, got.text
    assert got.headers.get("access-control-allow-origin") == "*", got.headers
    for resp in (pre, got):
        assert "access-control-allow-credentials" not in resp.headers, resp.headers


# --- REST CORS -----------------------------------------------------------------------------


def preflight_headers(origin: str, method: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


def header_set(resp: httpx.Response, name: str) -> set[str]:
    return {part.strip().lower() for part in resp.headers.get(name, "").split(",") if part.strip()}


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/chat/active"), ("POST", "/api/chat/start")]
)
async def test_preflight_from_a_configured_origin_is_allowed_without_credentials(
    configured_server: ServerInfo, method: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=configured_server.base_url, timeout=5.0) as http:
        resp = await http.options(path, headers=preflight_headers(APP_ORIGIN, method))
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("access-control-allow-origin") == APP_ORIGIN, resp.headers
    assert "access-control-allow-credentials" not in resp.headers, resp.headers
    assert method.lower() in header_set(resp, "access-control-allow-methods"), resp.headers
    assert {"authorization", "content-type"} <= header_set(resp, "access-control-allow-headers"), (
        resp.headers
    )


@pytest.mark.parametrize(
    "origin", [EVIL, DEV_SERVER, "http://app.example.com", "https://app.example.com.evil.example"]
)
async def test_preflight_from_a_foreign_origin_gets_no_allow_origin(
    configured_server: ServerInfo, origin: str
) -> None:
    async with httpx.AsyncClient(base_url=configured_server.base_url, timeout=5.0) as http:
        resp = await http.options("/api/chat/active", headers=preflight_headers(origin, "GET"))
    assert "access-control-allow-origin" not in resp.headers, resp.headers
    assert "access-control-allow-credentials" not in resp.headers, resp.headers


async def test_default_preflight_allows_the_development_server_only(server: ServerInfo) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5.0) as http:
        dev = await http.options("/api/chat/active", headers=preflight_headers(DEV_SERVER, "GET"))
        evil = await http.options("/api/chat/active", headers=preflight_headers(EVIL, "GET"))
    assert dev.headers.get("access-control-allow-origin") == DEV_SERVER, dev.headers
    assert "access-control-allow-credentials" not in dev.headers, dev.headers
    assert "access-control-allow-origin" not in evil.headers, evil.headers


async def test_cors_get_exposes_the_rate_limit_headers(configured_server: ServerInfo) -> None:
    user = new_person(configured_server.secret)
    async with httpx.AsyncClient(base_url=configured_server.base_url, timeout=5.0) as http:
        resp = await http.get(
            "/api/chat/active", headers={"Origin": APP_ORIGIN, **user.auth_header}
        )
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("access-control-allow-origin") == APP_ORIGIN, resp.headers
    assert "access-control-allow-credentials" not in resp.headers, resp.headers
    assert header_set(resp, "access-control-expose-headers") >= EXPOSED, resp.headers
    # And the headers a page may now read are there.
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert resp.headers.get(name, "").isdigit(), (name, resp.headers)


async def test_cors_get_from_a_foreign_origin_is_not_readable(
    configured_server: ServerInfo,
) -> None:
    user = new_person(configured_server.secret)
    async with httpx.AsyncClient(base_url=configured_server.base_url, timeout=5.0) as http:
        resp = await http.get("/api/chat/active", headers={"Origin": EVIL, **user.auth_header})
    # Served (the token is good), but without Access-Control-Allow-Origin the browser
    # keeps the answer from the foreign page.
    assert resp.status_code == 200, resp.text
    assert "access-control-allow-origin" not in resp.headers, resp.headers
    assert "access-control-allow-credentials" not in resp.headers, resp.headers


async def test_error_answers_to_a_configured_origin_are_readable(
    configured_server: ServerInfo,
) -> None:
    """A web app on an allowed origin can read why it was refused (the envelope's
    message), for a bad token as for a body over the size limit."""
    async with httpx.AsyncClient(base_url=configured_server.base_url, timeout=5.0) as http:
        unauthorized = await http.get(
            "/api/chat/active", headers={"Origin": APP_ORIGIN, "Authorization": "Bearer x.y.z"}
        )
        too_large = await http.post(
            "/api/chat/start",
            headers={"Origin": APP_ORIGIN, "Content-Type": "application/json"},
            content=b'{"message": "' + b"x" * (70 * 1024) + b'"}',
        )
    assert unauthorized.status_code == 401, unauthorized.text
    assert unauthorized.headers.get("access-control-allow-origin") == APP_ORIGIN
    assert too_large.status_code == 413, too_large.text
    assert too_large.headers.get("access-control-allow-origin") == APP_ORIGIN, too_large.headers
