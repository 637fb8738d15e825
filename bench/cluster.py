"""Several ``supportchat serve`` processes forming one service, as docs/deployment.md
runs them: one PostgreSQL, one Redis, the same JWT secret. The load generator connects
to the processes directly (plan.py spreads users and agents over them), so what is
measured is the service, not a load balancer in front of it.

PostgreSQL and Redis are the test suite's throwaway instances (tests/support): the real
server binaries, in temporary directories, on free loopback ports."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import PostgresCluster, find_pg_bindir, start_cluster
from tests.support.redis_server import RedisServer, find_redis_server, start_redis

from . import servers

MISSING = "{what} not found: run `make install-test` (it installs PostgreSQL, Redis and nginx)"


@dataclass
class Cluster:
    """Running processes of one service (and the Redis that carries their emits)."""

    processes: list[servers.Server]
    redis: RedisServer | None
    secret: str

    kind = servers.REAL
    host = servers.HOST

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(p.port for p in self.processes)

    def stop(self, keep_log_in: Path | None = None) -> None:
        try:
            for process in self.processes:
                process.stop(keep_log_in=keep_log_in)
        finally:
            if self.redis is not None:
                self.redis.cleanup(keep_log_in=keep_log_in)


def start(
    count: int,
    database_url: str,
    *,
    data_root: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Cluster:
    """``count`` processes on ``database_url`` (PostgreSQL), with a Redis of their own
    when there is more than one, each returned once its /health answers."""
    redis = None
    if count > 1:
        binary = find_redis_server()
        if binary is None:
            raise SystemExit(MISSING.format(what="redis-server"))
        redis = start_redis(binary)
    cluster = Cluster([], redis, secrets.token_hex(32))
    env = dict(extra_env or {})
    if redis is not None:
        env["SUPPORTCHAT_REDIS_URL"] = redis.url
    try:
        for _ in range(count):
            # One at a time: the first one migrates the schema, the others find it done.
            cluster.processes.append(
                servers.start(
                    servers.REAL,
                    database_url=database_url,
                    data_root=data_root,
                    extra_env=env,
                    secret=cluster.secret,
                )
            )
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def own_postgres(keep_log_in: Path | None = None) -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL for the run (each floor run gets a database of its own)."""
    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit(MISSING.format(what="PostgreSQL's server binaries (initdb, pg_ctl)"))
    postgres = start_cluster(bindir)
    try:
        yield postgres
    finally:
        postgres.cleanup(keep_log_in=keep_log_in, log_name="postgres-bench.log")
