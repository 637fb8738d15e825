"""Several server processes as one service, the way docs/deployment.md runs them: one
PostgreSQL database, one Redis between the processes, three ``supportchat serve``
processes with the same settings, and nginx in front with the documented configuration
(tests/support/nginx.py).

Tests reach each process straight (``node_url(n)``) or through nginx (``nginx_url``).
nginx is sticky by client address, so a test client picks the process it reaches
through nginx by its source address: ``address_on(n)`` is a loopback address
(127.0.0.x, all of which reach this machine) that nginx sends to process n, found by
asking nginx at start-up.

A test may SIGKILL a process and start it again on the same port, or stop Redis and
start it again on the same port; ``make_whole()`` undoes whatever a test left broken.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from .net import is_ci
from .nginx import Nginx, find_nginx, start_nginx
from .postgres import PostgresCluster
from .redis_server import RedisServer, find_redis_server, start_redis
from .server import ARTIFACTS_DIR, ServerProcess
from .tokens import AGENT_ROLE, Person, new_person

NODES = 3
MESSAGE_LIMIT = 12  # messages per chat and minute (SUPPORTCHAT_RATE_LIMIT_MESSAGES)
PRESENCE_HEARTBEAT = 1.0  # seconds (SUPPORTCHAT_PRESENCE_HEARTBEAT_SECONDS)
PRESENCE_TTL = 3.0  # seconds (SUPPORTCHAT_PRESENCE_TTL_SECONDS)
# Liveness only: a process is healthy again within seconds of a restart, and nginx
# sends it its clients again once the documented fail_timeout (10 s) has passed.
RECOVERY_DEADLINE = 30.0
# Loopback addresses tried as client addresses (127.0.0.1 is the processes' own).
CANDIDATE_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 255)]
ADDRESSES_PER_NODE = 2


def require(binary: str | None, name: str) -> str:
    """``binary``, or skip the tests (fail them under CI, which must run them)."""
    if binary is not None:
        return binary
    msg = f"{name} not found: run `make install-test`"
    if is_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@dataclass
class Node:
    index: int
    process: ServerProcess
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def upstream(self) -> str:
        """How nginx names this process in $upstream_addr."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        proc = self.process.proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self.process.proc
        return proc.pid if proc is not None else None


@dataclass
class Cluster:
    secret: str
    metrics_token: str
    database_url: str
    redis: RedisServer
    nodes: list[Node]
    nginx: Nginx
    # Client address -> index of the process nginx sends it to (all processes up).
    routes: dict[str, int] = field(default_factory=dict)

    @property
    def nginx_url(self) -> str:
        return self.nginx.url

    def node_url(self, index: int) -> str:
        return self.nodes[index].url

    def person(self, *, agent: bool = False) -> Person:
        """A new user (or agent) whose token every process accepts."""
        return new_person(self.secret, role=AGENT_ROLE if agent else None)

    # -- routing through nginx ----------------------------------------------------------

    def node_of_upstream(self, upstream: str | None) -> int | None:
        return next((n.index for n in self.nodes if n.upstream == upstream), None)

    def route_now(self, local_addr: str) -> int | None:
        """The process nginx sends a client at ``local_addr`` to at this moment."""
        return self.node_of_upstream(self.nginx.upstream_for(local_addr))

    def address_on(self, index: int, nth: int = 0) -> str:
        """A client address that nginx sends to process ``index`` while all are up."""
        found = [addr for addr, node in self.routes.items() if node == index]
        assert len(found) > nth, f"no address #{nth} routed to node {index}: {self.routes}"
        return found[nth]

    def map_routes(self) -> None:
        """Ask nginx where client addresses go until every process has a few."""
        self.routes.clear()
        for addr in CANDIDATE_ADDRESSES:
            node = self.route_now(addr)
            assert node is not None, f"nginx sent {addr} to an unknown upstream"
            self.routes[addr] = node
            counts = [list(self.routes.values()).count(n.index) for n in self.nodes]
            if min(counts) >= ADDRESSES_PER_NODE:
                break
        else:
            raise AssertionError(f"nginx does not spread client addresses: {self.routes}")
        # The tests rely on each address staying where it went: ask again.
        for addr, node in self.routes.items():
            again = self.route_now(addr)
            assert again == node, f"nginx is not sticky: {addr} went to node{node}, then {again}"

    def upstreams_of(self, local_addr: str, uri_part: str = "") -> list[int | None]:
        """The process that answered each logged request from ``local_addr`` whose URI
        contains ``uri_part``, oldest first (None where nginx answered itself)."""
        return [
            self.node_of_upstream(entry.upstream)
            for entry in self.nginx.access_entries()
            if entry.remote == local_addr and uri_part in entry.uri
        ]

    # -- breaking and mending -----------------------------------------------------------

    def kill(self, index: int) -> None:
        """SIGKILL process ``index``: it dies at once, with nothing tidied up."""
        self.nodes[index].process.kill()

    def restart(self, index: int) -> None:
        """Start process ``index`` again on its port (where nginx and clients expect it)."""
        node = self.nodes[index]
        for attempt in range(3):
            try:
                node.process.start(node.port)
                return
            except RuntimeError:  # the old socket may linger a moment after a SIGKILL
                if attempt == 2:
                    raise
                time.sleep(0.5)

    def stop_redis(self) -> None:
        self.redis.stop()

    def start_redis(self) -> None:
        """Start Redis again on the port every process was configured with."""
        self.redis.start(same_port=True)

    def health(self, index: int) -> dict[str, Any]:
        """``data`` of process ``index``'s GET /health (200 or 503), or {} if it is down."""
        try:
            resp = httpx.get(f"{self.node_url(index)}/health", timeout=5.0)
        except httpx.TransportError:
            return {}
        data: dict[str, Any] = resp.json().get("data") or {}
        return data

    def wait_until(
        self, what: str, check: Callable[[], bool], deadline: float = RECOVERY_DEADLINE
    ) -> None:
        """Poll ``check()`` until it is true (liveness bound ``deadline`` seconds)."""
        give_up = time.monotonic() + deadline
        while not check():
            if time.monotonic() > give_up:
                raise AssertionError(f"not within {deadline} s: {what}; {self.describe()}")
            time.sleep(0.1)

    def describe(self) -> str:
        nodes = ", ".join(
            f"node{n.index}(:{n.port} pid={n.pid}) {self.health(n.index) or 'down'}"
            for n in self.nodes
        )
        return f"redis running={self.redis.running}; {nodes}"

    def make_whole(self) -> None:
        """Everything up and talking again: Redis, each process (restarted if a test
        killed it) healthy with Redis, and nginx sending each process its clients again
        (after a restart it waits out fail_timeout before trying the process)."""
        if not self.redis.running:
            self.start_redis()
        for node in self.nodes:
            if not node.running:
                self.restart(node.index)
        for node in self.nodes:
            self.wait_until(
                f"node{node.index} healthy with Redis", partial(self.redis_ok, node.index)
            )
        for node in self.nodes:
            addr = self.address_on(node.index)
            self.wait_until(
                f"nginx sends {addr} to node{node.index} again",
                partial(self.routed_to, addr, node.index),
            )

    def redis_ok(self, index: int) -> bool:
        """Process ``index`` says (GET /health) that it hears the others through Redis."""
        return self.health(index).get("redis") == "ok"

    def routed_to(self, local_addr: str, index: int) -> bool:
        return self.route_now(local_addr) == index


def node_env(redis_url: str, metrics_token: str) -> dict[str, str]:
    """The settings every process of the test service gets, besides database and secret."""
    return {
        "SUPPORTCHAT_REDIS_URL": redis_url,
        "SUPPORTCHAT_PRESENCE_HEARTBEAT_SECONDS": str(PRESENCE_HEARTBEAT),
        "SUPPORTCHAT_PRESENCE_TTL_SECONDS": str(PRESENCE_TTL),
        "SUPPORTCHAT_RATE_LIMIT_MESSAGES": f"{MESSAGE_LIMIT}/minute",
        # /metrics on the service port (with this token): nginx must still refuse it.
        "SUPPORTCHAT_METRICS_TOKEN": metrics_token,
        # A test's teardown stops the processes; nothing is in flight by then.
        "SUPPORTCHAT_SHUTDOWN_GRACE_SECONDS": "2",
    }


@contextmanager
def running_cluster(postgres: PostgresCluster, work_dir: Path) -> Iterator[Cluster]:
    """A started cluster on a database of its own in ``postgres``; everything is
    stopped at the end and the logs kept in test-artifacts/ (cluster-*)."""
    redis_binary = require(find_redis_server(), "redis-server")
    nginx_binary = require(find_nginx(), "nginx")
    secret, metrics_token = secrets.token_hex(32), secrets.token_hex(16)
    redis: RedisServer | None = None
    nginx: Nginx | None = None
    nodes: list[Node] = []
    with postgres.own_database("cluster") as database_url:
        try:
            redis = start_redis(redis_binary)
            for index in range(NODES):
                process = ServerProcess(
                    f"cluster-node{index}", work_dir / f"node{index}", database_url
                )
                process.secret = secret
                process.env["SUPPORTCHAT_JWT_SECRET"] = secret
                process.env.update(node_env(redis.url, metrics_token))
                nodes.append(Node(index, process))
            # One after the other, from this thread: a child's PR_SET_PDEATHSIG (which
            # stops it when pytest dies) fires when the *thread* that started it ends, so
            # a thread pool would stop the nodes as soon as it shut down.
            for node in nodes:
                try:
                    node.port = node.process.start().port
                except RuntimeError as exc:  # its message carries the log tail
                    pytest.fail(str(exc), pytrace=False)
            nginx = start_nginx(nginx_binary, [node.upstream for node in nodes])
            cluster = Cluster(
                secret=secret,
                metrics_token=metrics_token,
                database_url=database_url,
                redis=redis,
                nodes=nodes,
                nginx=nginx,
            )
            cluster.map_routes()
            yield cluster
        finally:
            if nginx is not None:
                nginx.cleanup(keep_logs_in=ARTIFACTS_DIR, prefix="cluster-nginx")
            for node in nodes:
                node.process.stop()
                node.process.keep_log(ARTIFACTS_DIR)
            if redis is not None:
                redis.cleanup(keep_log_in=ARTIFACTS_DIR, log_name="cluster-redis.log")
