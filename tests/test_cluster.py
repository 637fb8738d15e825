"""Three server processes as one service (issue 7, point 2; docs/deployment.md): one
PostgreSQL database, one Redis, three ``supportchat serve`` processes ("nodes") and
Debian's nginx in front with deploy/nginx/supportchat.conf (tests/support/cluster.py).

Clients talk to the nodes straight and through nginx. nginx is sticky by client
address, so each client that goes through nginx connects from a loopback address that
nginx sends to the node the test wants (``Cluster.address_on``). What must hold:

* a user on one node and an agent on another exchange messages and typing updates,
  both ways: acknowledged seqs number the chat, each side gets each of the other's
  messages once and in order, its own never;
* a new chat started on any node reaches the agents on every node;
* presence: an agent coming online, and going offline, is announced on every node, and
  the nodes agree; an agent whose node is SIGKILLed is announced offline everywhere once
  the presence TTL has passed;
* the per-chat message limit counts the sends of every node together;
* a SIGKILLed node's clients (through nginx) reconnect through nginx to another node and,
  re-joining with ``lastMessageId`` (docs/protocol.md §6 "After a reconnect"), end up
  with every acknowledged message exactly once;
* a Redis restart: sends keep working while it is down (the database is up), the nodes
  reconnect by themselves, and clients on the other nodes get every message that was
  sent across the outage, once and in order.

Every timeout here is a liveness bound, never a speed requirement. Each test starts
from a whole cluster (``Cluster.make_whole``: a node a test killed is started again on
its port, Redis too), so the tests do not depend on each other's order.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import socketio

from support.chat import (
    QUIET,
    assert_failed_ack,
    close_fast,
    ok_call,
    ok_data,
    start_chat,
)
from support.clients import Api, Predicate, SocketClient
from support.cluster import (
    MESSAGE_LIMIT,
    NODES,
    Cluster,
    running_cluster,
)
from support.nginx import DOCUMENTED_SITE, render_site
from support.postgres import PostgresCluster
from support.tokens import Person

DELIVERY_TIMEOUT = 10.0  # an event crossing nodes (milliseconds when healthy)
RECOVERY_TIMEOUT = 30.0  # after a kill or a Redis restart: TTLs, reconnects, read-backs
WEBSOCKET = ("websocket",)
POLLING = ("polling",)

pytestmark = pytest.mark.timeout(240)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """The cluster, started once for the module, on a database of its own in the
    session's PostgreSQL cluster."""
    postgres: PostgresCluster = request.getfixturevalue("postgres_cluster")
    with running_cluster(postgres, tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def cluster(service: Cluster) -> Cluster:
    """The module's cluster, whole again whatever the previous test did to it."""
    service.make_whole()
    return service


@dataclass(frozen=True)
class Route:
    """How a client reaches the service: straight to a node, or through nginx from an
    address that nginx sends to that node."""

    node: int
    url: str
    local_addr: str | None = None

    @property
    def label(self) -> str:
        return (
            f"nginx({self.local_addr})->node{self.node}" if self.local_addr else f"node{self.node}"
        )


class Clients:
    """The REST and Socket.IO clients of one test; all closed at its end."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.apis: dict[tuple[str, str | None], Api] = {}
        self.sockets: list[SocketClient] = []

    def direct(self, node: int) -> Route:
        return Route(node, self.cluster.node_url(node))

    def via_nginx(self, node: int, nth: int = 0) -> Route:
        return Route(node, self.cluster.nginx_url, self.cluster.address_on(node, nth))

    def route(self, path: str, node: int) -> Route:
        return self.via_nginx(node) if path == "nginx" else self.direct(node)

    def api(self, route: Route) -> Api:
        key = (route.url, route.local_addr)
        if key not in self.apis:
            self.apis[key] = Api(route.url, local_addr=route.local_addr)
        return self.apis[key]

    async def socket(
        self, who: Person, route: Route, transports: Iterable[str] = WEBSOCKET, **connect: Any
    ) -> SocketClient:
        """A connected client; ``connect`` goes to ``SocketClient.connect``."""
        client = SocketClient(
            route.url,
            who.token,
            who.user_type,
            label=f"{who.user_type}:{who.id}@{route.label}",
            local_addr=route.local_addr,
        )
        self.sockets.append(client)
        await client.connect(transports=transports, **connect)
        return client

    async def close(self) -> None:
        # close_fast: a polling client would otherwise wait for its pending GET.
        await asyncio.gather(*(close_fast(s) for s in self.sockets), return_exceptions=True)
        await asyncio.gather(*(api.aclose() for api in self.apis.values()))


@pytest.fixture
async def clients(cluster: Cluster) -> AsyncIterator[Clients]:
    opened = Clients(cluster)
    try:
        yield opened
    finally:
        await opened.close()


# --- helpers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """An acknowledged message."""

    seq: int
    message_id: str


def of(ticket_id: str, **fields: Any) -> Predicate:
    """An event payload about this ticket with these field values."""
    return lambda d: (
        isinstance(d, dict)
        and d.get("ticketId") == ticket_id
        and all(d.get(k) == v for k, v in fields.items())
    )


def status_of(agent: Person, online: bool, active_chats: int | None = None) -> Predicate:
    return lambda d: (
        isinstance(d, dict)
        and d.get("adminId") == agent.id
        and d.get("isOnline") is online
        and (active_chats is None or d.get("activeChats") == active_chats)
    )


async def send(client: SocketClient, ticket_id: str, text: str) -> Sent:
    """A Socket.IO send that must succeed: the ack and ``message_sent`` agree."""
    event = "admin_send_message" if client.user_type == "admin" else "send_message"
    client_id = uuid.uuid4().hex
    ack = await ok_call(
        client, event, {"ticketId": ticket_id, "message": text, "clientMessageId": client_id}
    )
    data = ack["data"]
    assert data["clientMessageId"] == client_id and data["duplicate"] is False, ack
    sent = Sent(int(data["seq"]), str(data["messageId"]))
    echo = await client.wait_for(
        "message_sent", lambda d: d.get("messageId") == sent.message_id, DELIVERY_TIMEOUT
    )
    assert echo["seq"] == sent.seq, (echo, ack)
    return sent


async def rest_send(api: Api, who: Person, ticket_id: str, text: str) -> Sent:
    """POST /api/chat/:ticketId/message that must succeed."""
    resp = await api.post(
        f"/api/chat/{ticket_id}/message",
        token=who,
        json={"message": text, "clientMessageId": uuid.uuid4().hex},
    )
    data = ok_data(resp)
    assert data["duplicate"] is False, data
    return Sent(int(data["seq"]), str(data["messageId"]))


async def wait_for_messages(
    client: SocketClient,
    ticket_id: str,
    expected: Iterable[Sent],
    timeout: float = DELIVERY_TIMEOUT,  # noqa: ASYNC109 - a liveness bound per message
) -> None:
    for sent in expected:
        await client.wait_for("new_message", of(ticket_id, messageId=sent.message_id), timeout)


def received(client: SocketClient, ticket_id: str) -> list[Sent]:
    """Every ``new_message`` of this ticket the client got, in arrival order, over all
    its connections."""
    return [
        Sent(int(d["seq"]), str(d["messageId"]))
        for d in client.events("new_message")
        if isinstance(d, dict) and d.get("ticketId") == ticket_id
    ]


async def assert_received_exactly(
    client: SocketClient, ticket_id: str, expected: Iterable[Sent]
) -> None:
    """After a quiet moment: the client got these messages, each once, in seq order,
    and no other message of the ticket (in particular none of its own sends)."""
    await asyncio.sleep(QUIET)
    want = sorted(expected, key=lambda s: s.seq)
    got = received(client, ticket_id)
    assert got == want, (
        f"{client.label}: new_message seqs {[s.seq for s in got]}, "
        f"expected {[s.seq for s in want]} (each once, in order)"
    )


async def stored(api: Api, who: Person, ticket_id: str) -> list[Sent]:
    ticket = ok_data(await api.get(f"/api/chat/{ticket_id}", token=who))["ticket"]
    return [Sent(int(m["seq"]), str(m["_id"])) for m in ticket["messages"]]


def collapsed(events: list[Any], agent: Person) -> list[tuple[bool, int]]:
    """The (isOnline, activeChats) states announced for ``agent``, in order, a repeated
    announcement of the same state counted once."""
    states: list[tuple[bool, int]] = []
    for d in events:
        if isinstance(d, dict) and d.get("adminId") == agent.id:
            state = (bool(d.get("isOnline")), int(d.get("activeChats", -1)))
            if not states or states[-1] != state:
                states.append(state)
    return states


async def reconnect_elsewhere(
    cluster: Cluster, client: SocketClient, route: Route, transports: Iterable[str], gone: int
) -> int:
    """Connect ``client`` again through nginx, from the same address (the node it was
    on is dead, so nginx must pass it on); the node nginx now sends that address to."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while True:
        try:
            await client.connect(transports=transports)
            break
        except socketio.exceptions.ConnectionError as exc:  # nginx had nowhere to send it
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{client.label}: no reconnect through nginx within {RECOVERY_TIMEOUT} s"
                ) from exc
            await asyncio.sleep(0.2)
    assert route.local_addr is not None
    now_on = await asyncio.to_thread(cluster.route_now, route.local_addr)
    assert now_on is not None and now_on != gone, (
        f"{client.label}: nginx sends {route.local_addr} to node{now_on} after node{gone} died"
    )
    return now_on


async def answered_by(cluster: Cluster, local_addr: str, uri_part: str) -> list[int | None]:
    """The nodes that answered the requests from ``local_addr`` whose URI contains
    ``uri_part`` (see ``Cluster.upstreams_of``), once at least one is in the access log:
    nginx writes a request's line just after sending its response."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not (answered := cluster.upstreams_of(local_addr, uri_part)):
        if time.monotonic() > deadline:
            raise AssertionError(f"no request from {local_addr} for {uri_part!r} in the log")
        await asyncio.sleep(0.02)
    return answered


# --- the documented configuration ---------------------------------------------------------


def test_the_tested_nginx_configuration_is_the_documented_one() -> None:
    """The harness changes only the upstream server lines and the listen line of
    deploy/nginx/supportchat.conf; every other line is tested as documented."""
    documented = DOCUMENTED_SITE.read_text()
    rendered = render_site(documented, ["127.0.0.1:1111", "127.0.0.1:2222"], "127.0.0.1:3333")
    rewritten = re.compile(r"^\s*(server\s+[^\s{]+[^;]*;|listen\s)")

    def kept(text: str) -> list[str]:
        return [line for line in text.splitlines() if not rewritten.match(line)]

    assert kept(rendered) == kept(documented), "the harness changed more than the addresses"
    first = re.search(r"^\s*server\s+[^\s{]+(?P<params>[^;]*);", documented, re.M)
    assert first is not None, "no upstream server line in the documented configuration"
    servers = [m.group(0).strip() for m in re.finditer(r"^\s*server\s+127[^;]*;", rendered, re.M)]
    assert servers == [
        f"server 127.0.0.1:1111{first['params']};",
        f"server 127.0.0.1:2222{first['params']};",
    ], servers
    assert re.findall(r"^\s*listen\s[^;]*;", rendered, re.M) == ["    listen 127.0.0.1:3333;"]
    for directive in (
        "hash $remote_addr consistent;",
        "proxy_next_upstream error timeout;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_buffering off;",
        "location ^~ /metrics",
    ):
        assert directive in documented, f"the documented configuration lost {directive!r}"


# --- nginx itself ---------------------------------------------------------------------------


async def test_nginx_proxies_rest_websocket_and_sticky_long_polling(
    cluster: Cluster, clients: Clients
) -> None:
    # REST reaches the node the client's address is routed to, which sees the client's
    # own address (X-Forwarded-For) rather than nginx's.
    for node in range(NODES):
        route = clients.via_nginx(node)
        assert route.local_addr is not None
        resp = await clients.api(route).get("/health")
        assert ok_data(resp)["status"] == "ok", resp.text
        answered = await answered_by(cluster, route.local_addr, "/health")
        assert answered[-1] == node, f"{route.label}: answered by {answered}"
    marker = uuid.uuid4().hex
    route = clients.via_nginx(2)
    assert route.local_addr is not None
    ok_data(await clients.api(route).get("/health", params={"seen": marker}))
    log = cluster.nodes[2].process.log_path.read_text(errors="replace")
    lines = [line for line in log.splitlines() if marker in line]
    assert lines and f"{route.local_addr}:" in lines[-1], f"node2 logged: {lines}"

    # /metrics: each node serves it (to the metrics token); nginx never passes it on.
    bearer = {"Authorization": f"Bearer {cluster.metrics_token}"}
    direct = await clients.api(clients.direct(0)).get("/metrics", headers=bearer)
    assert direct.status_code == 200 and "supportchat_" in direct.text, direct.status_code
    for path in ("/metrics", "/metrics/", "/metrics?x=1"):
        proxied = await clients.api(clients.via_nginx(0)).get(path, headers=bearer)
        assert proxied.status_code == 404 and "supportchat_" not in proxied.text, (
            path,
            proxied.status_code,
        )

    # A browser page served from nginx's address may connect (its Origin is the page's
    # own scheme://Host, which reaches the node unchanged); a page elsewhere may not.
    page = await clients.socket(
        cluster.person(), clients.via_nginx(1), headers={"Origin": cluster.nginx_url}
    )
    assert page.connected
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.socket(
            cluster.person(), clients.via_nginx(1), headers={"Origin": "https://evil.example"}
        )

    # Long-polling only: every request of the Engine.IO session reaches one node.
    user, agent = cluster.person(), cluster.person(agent=True)
    user_at, agent_at = clients.via_nginx(2), clients.via_nginx(0)
    ticket_id = (await start_chat(clients.api(user_at), user))["ticketId"]
    poller = await clients.socket(user, user_at, POLLING)
    assert poller.transport == "polling"
    # Polling, then the upgrade to WebSocket, as browsers connect by default.
    upgrading = await clients.socket(agent, agent_at, transports=("polling", "websocket"))
    await ok_call(upgrading, "join_chat", {"ticketId": ticket_id})
    mine = await send(poller, ticket_id, "over long-polling")
    theirs = await send(upgrading, ticket_id, "over the upgraded connection")
    await wait_for_messages(upgrading, ticket_id, [mine])
    await wait_for_messages(poller, ticket_id, [theirs])
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while upgrading.transport != "websocket":
        assert time.monotonic() < deadline, f"no upgrade: {upgrading.transport}"
        await asyncio.sleep(0.05)
    assert poller.sio is not None and user_at.local_addr is not None
    session = f"sid={poller.sio.eio.sid}"
    served = cluster.upstreams_of(user_at.local_addr, session)
    assert len(served) >= 2 and set(served) == {2}, f"polling requests of {session}: {served}"


# --- messages and typing across nodes ------------------------------------------------------


@pytest.mark.parametrize("path", ["direct", "nginx"])
async def test_user_and_agent_on_different_nodes_exchange_messages_and_typing(
    cluster: Cluster, clients: Clients, path: str
) -> None:
    user_at, agent_at = clients.route(path, 0), clients.route(path, 1)
    user, agent = cluster.person(), cluster.person(agent=True)
    ticket_id = (await start_chat(clients.api(user_at), user))["ticketId"]
    # Through nginx the user long-polls: its session only works if nginx is sticky.
    user_socket = await clients.socket(user, user_at, POLLING if path == "nginx" else WEBSOCKET)
    agent_socket = await clients.socket(agent, agent_at)
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})
    await user_socket.wait_for("agent_joined", of(ticket_id, agentId=agent.id), DELIVERY_TIMEOUT)

    from_user: list[Sent] = []
    from_agent: list[Sent] = []
    for n in range(3):
        from_user.append(await send(user_socket, ticket_id, f"user {n}"))
        from_agent.append(await send(agent_socket, ticket_id, f"agent {n}"))
    seqs = [s.seq for pair in zip(from_user, from_agent, strict=True) for s in pair]
    assert seqs == list(range(2, 8)), f"acks must number the messages after the opening: {seqs}"
    await wait_for_messages(agent_socket, ticket_id, from_user)
    await wait_for_messages(user_socket, ticket_id, from_agent)
    await assert_received_exactly(agent_socket, ticket_id, from_user)
    await assert_received_exactly(user_socket, ticket_id, from_agent)
    everything = await stored(clients.api(agent_at), agent, ticket_id)
    assert everything[1:] == sorted(from_user + from_agent, key=lambda s: s.seq), everything

    for typing in (True, False):
        await ok_call(user_socket, "user_typing", {"ticketId": ticket_id, "isTyping": typing})
        got = await agent_socket.wait_for(
            "user_typing", of(ticket_id, isTyping=typing), DELIVERY_TIMEOUT
        )
        assert got["userId"] == user.id, got
        await ok_call(agent_socket, "admin_typing", {"ticketId": ticket_id, "isTyping": typing})
        got = await user_socket.wait_for(
            "agent_typing", of(ticket_id, isTyping=typing), DELIVERY_TIMEOUT
        )
        assert got["agentId"] == agent.id, got
    await agent_socket.assert_no("user_typing", within=QUIET)
    await user_socket.assert_no("agent_typing", within=0)
    # Typing goes only to the other side, never back to the typist.
    assert not user_socket.events("user_typing") and not agent_socket.events("agent_typing")

    if path == "nginx":
        assert user_at.local_addr is not None and user_socket.sio is not None
        served = cluster.upstreams_of(user_at.local_addr, f"sid={user_socket.sio.eio.sid}")
        assert served and set(served) == {0}, f"the user's polling requests went to {served}"


# --- a new chat -------------------------------------------------------------------------------


async def test_a_new_chat_reaches_agents_on_every_node(cluster: Cluster, clients: Clients) -> None:
    agents = [
        await clients.socket(cluster.person(agent=True), route)
        for node in range(NODES)
        for route in (clients.direct(node), clients.via_nginx(node))
    ]
    # A chat started on each node, straight and through nginx.
    starts = [clients.direct(node) for node in range(NODES)] + [clients.via_nginx(1)]
    tickets = []
    for route in starts:
        user = cluster.person()
        ticket = await start_chat(clients.api(route), user, message=f"hello from {route.label}")
        tickets.append((ticket["ticketId"], user))
    for ticket_id, user in tickets:
        for agent_socket in agents:
            got = await agent_socket.wait_for("new_chat_ticket", of(ticket_id), DELIVERY_TIMEOUT)
            assert got["userId"] == user.id, got
    await asyncio.sleep(QUIET)
    for agent_socket in agents:
        announced = [d["ticketId"] for d in agent_socket.events("new_chat_ticket")]
        assert sorted(announced) == sorted(t for t, _ in tickets), (
            f"{agent_socket.label}: new_chat_ticket for {announced}, each chat exactly once"
        )


# --- presence ----------------------------------------------------------------------------------


async def test_presence_is_announced_and_agreed_on_every_node(
    cluster: Cluster, clients: Clients
) -> None:
    watchers = [
        await clients.socket(cluster.person(agent=True), clients.direct(n)) for n in range(NODES)
    ]
    watchers.append(await clients.socket(cluster.person(agent=True), clients.via_nginx(2)))
    arriving = cluster.person(agent=True)
    arriving_socket = await clients.socket(arriving, clients.via_nginx(1))
    for watcher in watchers:
        await watcher.wait_for(
            "admin_status_update", status_of(arriving, True, 0), DELIVERY_TIMEOUT
        )

    # Each node's own view of the agent: a join through node n that assigns a chat makes
    # node n announce the agent's status as it sees it.
    for node in range(NODES):
        route = clients.direct(node)
        ticket_id = (await start_chat(clients.api(route), cluster.person()))["ticketId"]
        ok_data(await clients.api(route).post(f"/api/chat/admin/join/{ticket_id}", token=arriving))
        for watcher in watchers:
            await watcher.wait_for(
                "admin_status_update", status_of(arriving, True, node + 1), DELIVERY_TIMEOUT
            )

    await close_fast(arriving_socket)
    for watcher in watchers:
        await watcher.wait_for(
            "admin_status_update", status_of(arriving, False, NODES), DELIVERY_TIMEOUT
        )
    await asyncio.sleep(QUIET)
    expected = [(True, 0), (True, 1), (True, 2), (True, 3), (False, 3)]
    for watcher in watchers:
        states = collapsed(watcher.events("admin_status_update"), arriving)
        assert states == expected, f"{watcher.label} saw {states}, expected {expected}"


async def test_a_killed_nodes_agents_are_shown_offline_on_every_node(
    cluster: Cluster, clients: Clients
) -> None:
    victim = 2
    watchers = [
        await clients.socket(cluster.person(agent=True), route)
        for route in (clients.direct(0), clients.direct(1), clients.via_nginx(0))
    ]
    doomed = cluster.person(agent=True)
    await clients.socket(doomed, clients.direct(victim))
    for watcher in watchers:
        await watcher.wait_for("admin_status_update", status_of(doomed, True, 0), DELIVERY_TIMEOUT)

    cluster.kill(victim)
    # Nothing of the dead process says goodbye: the others notice that its presence
    # rows are no longer refreshed (SUPPORTCHAT_PRESENCE_TTL_SECONDS) and announce it.
    for watcher in watchers:
        await watcher.wait_for("admin_status_update", status_of(doomed, False, 0), RECOVERY_TIMEOUT)

    # Every surviving node sees the agent offline: a join through each that assigns a
    # chat announces the agent's status as that node sees it.
    for count, node in enumerate((0, 1), start=1):
        route = clients.direct(node)
        ticket_id = (await start_chat(clients.api(route), cluster.person()))["ticketId"]
        ok_data(await clients.api(route).post(f"/api/chat/admin/join/{ticket_id}", token=doomed))
        for watcher in watchers:
            await watcher.wait_for(
                "admin_status_update", status_of(doomed, False, count), DELIVERY_TIMEOUT
            )
    await asyncio.sleep(QUIET)
    expected = [(True, 0), (False, 0), (False, 1), (False, 2)]
    for watcher in watchers:
        states = collapsed(watcher.events("admin_status_update"), doomed)
        assert states == expected, f"{watcher.label} saw {states}, expected {expected}"


# --- the per-chat message limit -----------------------------------------------------------------


def assert_rate_limited(resp: httpx.Response) -> None:
    """A 429 with the documented envelope and a Retry-After."""
    assert resp.status_code == 429, f"expected 429, got {resp.status_code}: {resp.text}"
    body = resp.json()
    assert body["success"] is False and body.get("code") == "RATE_LIMITED", body
    assert resp.headers.get("Retry-After", "").isdigit(), resp.headers


async def assert_socket_refused(client: SocketClient, event: str, ticket_id: str) -> None:
    """A failed ack and a ``chat_error``, both rate_limited."""
    ack = await client.call(event, {"ticketId": ticket_id, "message": "over the limit"})
    assert_failed_ack(ack)
    assert ack.get("code") == "RATE_LIMITED" and isinstance(ack.get("retryAfter"), int), ack
    error = await client.wait_for("chat_error", of(ticket_id, type="rate_limited"))
    assert error.get("retryAfter") == ack["retryAfter"], (error, ack)


async def test_the_per_chat_message_limit_holds_across_nodes(
    cluster: Cluster, clients: Clients
) -> None:
    user, agent = cluster.person(), cluster.person(agent=True)
    routes = [clients.direct(n) for n in range(NODES)]
    ticket_id = (await start_chat(clients.api(routes[0]), user))["ticketId"]
    user_sockets = [await clients.socket(user, route) for route in routes]
    agent_socket = await clients.socket(agent, clients.via_nginx(1))
    await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id})

    # The quota, spent through every node in turn, over REST and Socket.IO, by both
    # sides (the opening message is part of starting the chat and does not count).
    accepted: list[Sent] = []
    for n in range(MESSAGE_LIMIT):
        node = n % NODES
        if n % 4 == 3:
            accepted.append(await send(agent_socket, ticket_id, f"m{n} agent"))
        elif n % 2 == 0:
            accepted.append(await rest_send(clients.api(routes[node]), user, ticket_id, f"m{n}"))
        else:
            accepted.append(await send(user_sockets[node], ticket_id, f"m{n}"))
    assert [s.seq for s in accepted] == list(range(2, MESSAGE_LIMIT + 2))

    # One more through any node, by either side, over either transport: refused.
    for route in [*routes, clients.via_nginx(2)]:
        assert_rate_limited(
            await clients.api(route).post(
                f"/api/chat/{ticket_id}/message", token=user, json={"message": "over"}
            )
        )
    for user_socket in user_sockets:
        await assert_socket_refused(user_socket, "send_message", ticket_id)
    await assert_socket_refused(agent_socket, "admin_send_message", ticket_id)
    messages = await stored(clients.api(routes[1]), agent, ticket_id)
    assert messages[1:] == accepted, "exactly the accepted messages are stored"


# --- a node killed under its clients ----------------------------------------------------------


class Holder:
    """What one client holds of a chat, as docs/protocol.md §6 tells a client to keep
    it: messages by id (from its acks, new_message and a join's transcript)."""

    def __init__(self, client: SocketClient, ticket_id: str) -> None:
        self.client = client
        self.ticket_id = ticket_id
        self.own: dict[str, int] = {}  # acknowledged sends and transcripts, by message id
        self.socket_sends: set[str] = set()  # never to come back as new_message

    def sent(self, sent: Sent, *, over_socket: bool = True) -> Sent:
        self.own[sent.message_id] = sent.seq
        if over_socket:
            self.socket_sends.add(sent.message_id)
        return sent

    def transcript(self, ack: dict[str, Any]) -> None:
        for message in ack["data"].get("messages") or []:
            self.own.setdefault(str(message["_id"]), int(message["seq"]))

    def held(self) -> dict[str, int]:
        held = dict(self.own)
        held.update({s.message_id: s.seq for s in received(self.client, self.ticket_id)})
        return held

    def resume_point(self) -> str:
        """``lastMessageId``: the newest message before the first gap in what is held."""
        by_seq = {seq: mid for mid, seq in self.held().items()}
        seq = 1
        while seq + 1 in by_seq:
            seq += 1
        return by_seq[seq]


async def test_a_killed_nodes_clients_reconnect_through_nginx_and_catch_up(
    cluster: Cluster, clients: Clients
) -> None:
    victim, survivor = 1, 0
    user_at, agent_at = clients.via_nginx(victim, 0), clients.via_nginx(victim, 1)
    helper_at = clients.via_nginx(survivor)
    user, agent, helper = cluster.person(), cluster.person(agent=True), cluster.person(agent=True)
    opening = await start_chat(clients.api(user_at), user)
    ticket_id = opening["ticketId"]
    user_socket = await clients.socket(user, user_at)
    agent_socket = await clients.socket(agent, agent_at, POLLING)
    helper_socket = await clients.socket(helper, helper_at)
    holders = {
        "user": Holder(user_socket, ticket_id),
        "agent": Holder(agent_socket, ticket_id),
        "helper": Holder(helper_socket, ticket_id),
    }
    holders["user"].own[opening["messages"][0]["_id"]] = 1
    holders["agent"].transcript(await ok_call(agent_socket, "join_chat", {"ticketId": ticket_id}))
    holders["helper"].transcript(await ok_call(helper_socket, "join_chat", {"ticketId": ticket_id}))

    before = [
        holders["user"].sent(await send(user_socket, ticket_id, "before, user")),
        holders["agent"].sent(await send(agent_socket, ticket_id, "before, agent")),
        holders["helper"].sent(await send(helper_socket, ticket_id, "before, helper")),
    ]
    for name, holder in holders.items():
        others = [s for s in before if s.message_id not in holder.own]
        await wait_for_messages(holder.client, ticket_id, others)
        assert set(holder.held().values()) == {1, 2, 3, 4}, (name, holder.held())

    cluster.kill(victim)
    for lost in (user_socket, agent_socket):
        await lost.wait_for("disconnect", timeout=RECOVERY_TIMEOUT)
    assert helper_socket.connected, "a client of a surviving node lost its connection"

    # While they are away: the helper writes, and the user's REST send goes through
    # nginx to a live node.
    during = [
        holders["helper"].sent(await send(helper_socket, ticket_id, "during, helper 1")),
        holders["helper"].sent(await send(helper_socket, ticket_id, "during, helper 2")),
        holders["user"].sent(
            await rest_send(clients.api(user_at), user, ticket_id, "during, user over REST"),
            over_socket=False,
        ),
    ]
    assert user_at.local_addr is not None
    answered = await answered_by(cluster, user_at.local_addr, f"/api/chat/{ticket_id}/message")
    assert answered[-1] not in (None, victim), f"REST send answered by {answered}"

    # Reconnect through nginx (same client addresses), then re-join with lastMessageId:
    # what was missed is replayed as new_message, in seq order, before the ack.
    so_far = await stored(clients.api(helper_at), helper, ticket_id)
    for name, route, transports in (("user", user_at, WEBSOCKET), ("agent", agent_at, POLLING)):
        holder = holders[name]
        await reconnect_elsewhere(cluster, holder.client, route, transports, victim)
        first_new = len(holder.client.received)
        last_id = holder.resume_point()
        event = "join_chat" if name == "agent" else "join_chat_room"
        ack = await ok_call(holder.client, event, {"ticketId": ticket_id, "lastMessageId": last_id})
        if name == "agent":
            holder.transcript(ack)
        replayed = [
            Sent(int(r.data["seq"]), str(r.data["messageId"]))
            for r in holder.client.received[first_new:]
            if r.event == "new_message" and of(ticket_id)(r.data)
        ]
        last_seq = holder.held()[last_id]
        missed = [s for s in so_far if s.seq > last_seq]
        assert missed and replayed == missed, (
            f"{name}: replay after seq {last_seq} was {[s.seq for s in replayed]}, "
            f"expected {[s.seq for s in missed]}"
        )
    assert agent_socket.sio is not None and agent_at.local_addr is not None
    session = f"sid={agent_socket.sio.eio.sid}"

    after = [
        holders["user"].sent(await send(user_socket, ticket_id, "after, user")),
        holders["agent"].sent(await send(agent_socket, ticket_id, "after, agent")),
        holders["helper"].sent(await send(helper_socket, ticket_id, "after, helper")),
    ]
    everything = await stored(clients.api(helper_at), helper, ticket_id)
    assert [s.seq for s in everything] == list(range(1, 11)), everything
    acked = before + during + after
    assert {s.message_id: s.seq for s in acked}.items() <= {
        s.message_id: s.seq for s in everything
    }.items(), "an acknowledged message is missing or stored with another seq"
    for name, holder in holders.items():
        missing = [s for s in everything if s.message_id not in holder.held()]
        await wait_for_messages(holder.client, ticket_id, missing, RECOVERY_TIMEOUT)
        assert holder.held() == {s.message_id: s.seq for s in everything}, name
        seqs = [s.seq for s in received(holder.client, ticket_id)]
        assert len(seqs) == len(set(seqs)), f"{name}: a message arrived twice: {seqs}"
        echoed = holder.socket_sends & {s.message_id for s in received(holder.client, ticket_id)}
        assert not echoed, f"{name}: its own socket sends came back as new_message: {echoed}"
    # The re-connected long-polling session stayed on one (live) node.
    served = cluster.upstreams_of(agent_at.local_addr, session)
    assert served and len(set(served)) == 1 and served[0] not in (None, victim), served


# --- a Redis restart ---------------------------------------------------------------------------


async def test_after_a_redis_restart_nodes_reconnect_and_clients_catch_up(
    cluster: Cluster, clients: Clients
) -> None:
    user, agent, watcher = cluster.person(), cluster.person(agent=True), cluster.person(agent=True)
    user_at, agent_at, watcher_at = clients.direct(0), clients.direct(1), clients.via_nginx(2)
    ticket_id = (await start_chat(clients.api(user_at), user))["ticketId"]
    user_socket = await clients.socket(user, user_at)
    agent_socket = await clients.socket(agent, agent_at)
    watcher_socket = await clients.socket(watcher, watcher_at)
    for joining in (agent_socket, watcher_socket):
        await ok_call(joining, "join_chat", {"ticketId": ticket_id})
    pids = [node.pid for node in cluster.nodes]

    before = [
        await send(user_socket, ticket_id, "before, user"),
        await send(agent_socket, ticket_id, "before, agent"),
    ]
    await wait_for_messages(watcher_socket, ticket_id, before)

    cluster.stop_redis()
    try:
        # The nodes notice (GET /health: 200, "redis": "unavailable")...
        await asyncio.to_thread(
            cluster.wait_until,
            "every node reports Redis unavailable",
            lambda: all(cluster.health(n).get("redis") == "unavailable" for n in range(NODES)),
        )
        # ...and sends still succeed: the database is up.
        by_user = [
            await send(user_socket, ticket_id, "during, user 1"),
            await rest_send(clients.api(user_at), user, ticket_id, "during, user over REST"),
            await send(user_socket, ticket_id, "during, user 2"),
        ]
        by_agent = [
            await send(agent_socket, ticket_id, "during, agent 1"),
            await send(agent_socket, ticket_id, "during, agent 2"),
        ]
    finally:
        cluster.start_redis()
    await asyncio.to_thread(
        cluster.wait_until,
        "every node reconnected to Redis by itself",
        lambda: all(cluster.health(n).get("redis") == "ok" for n in range(NODES)),
    )
    assert [node.pid for node in cluster.nodes] == pids, "a node was restarted"

    # Clients on other nodes than the sender's get what was sent across the outage.
    await wait_for_messages(agent_socket, ticket_id, by_user, RECOVERY_TIMEOUT)
    await wait_for_messages(user_socket, ticket_id, by_agent, RECOVERY_TIMEOUT)
    await wait_for_messages(watcher_socket, ticket_id, by_user + by_agent, RECOVERY_TIMEOUT)
    # And live delivery goes on.
    after = [
        await send(user_socket, ticket_id, "after, user"),
        await send(agent_socket, ticket_id, "after, agent"),
    ]
    await wait_for_messages(agent_socket, ticket_id, after[:1])
    await wait_for_messages(user_socket, ticket_id, after[1:])
    await wait_for_messages(watcher_socket, ticket_id, after)

    rest_message = by_user[1]  # a REST send reaches the sender's sockets too
    await assert_received_exactly(
        user_socket, ticket_id, [before[1], rest_message, *by_agent, after[1]]
    )
    await assert_received_exactly(agent_socket, ticket_id, [before[0], *by_user, after[0]])
    await assert_received_exactly(watcher_socket, ticket_id, before + by_user + by_agent + after)
    everything = await stored(clients.api(watcher_at), watcher, ticket_id)
    assert [s.seq for s in everything] == list(range(1, 11)), everything
