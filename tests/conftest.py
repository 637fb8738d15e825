"""Shared fixtures: every test that uses ``server`` (directly or through api/sockets/
user_factory/...) runs once against SQLite and once against PostgreSQL, each backed by
a real ``supportchat serve`` process. See tests/support/ for the building blocks.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import Api, SocketFactory
from support.postgres import PostgresCluster, cluster_for_tests, database_url_for
from support.server import Cli, ServerInfo, run_cli, running_server
from support.tokens import AGENT_ROLE, Person, PersonFactory, new_person


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Throwaway PostgreSQL cluster with an empty ``supportchat`` database (trust auth)."""
    yield from cluster_for_tests()


@pytest.fixture(scope="session", params=["sqlite", "postgres"], ids=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerInfo]:
    """A running server per backend. Session scoped, so pytest orders the tests to start
    each backend's server once, and stops the SQLite one before the PostgreSQL one starts."""
    database: str = request.param
    database_url = database_url_for(request, database)
    data_dir = tmp_path_factory.mktemp(f"server-{database}")
    with running_server(database, data_dir, database_url=database_url) as proc:
        assert proc.info is not None
        yield proc.info


@pytest.fixture
async def api(server: ServerInfo) -> AsyncIterator[Api]:
    client = Api(server.base_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client, for servers other than ``server`` (full URLs)."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def sockets(server: ServerInfo) -> AsyncIterator[SocketFactory]:
    """``client = await sockets(person, user_type=None, **connect_kwargs)``;
    ``refused = await sockets.refused(...)``. All clients are disconnected at test end."""
    factory = SocketFactory(server.base_url)
    try:
        yield factory
    finally:
        await factory.close_all()


@pytest.fixture
def user_factory(server: ServerInfo) -> PersonFactory:
    """``user_factory(name=None, email=None, user_id=None, expires_in=3600, **claims)``:
    a new customer (no role claim) with a unique id and a valid token."""

    def make(**kwargs: Any) -> Person:
        return new_person(server.secret, **kwargs)

    return make


@pytest.fixture
def agent_factory(server: ServerInfo) -> PersonFactory:
    """Like ``user_factory`` but the token carries role "admin" (a support agent)."""

    def make(**kwargs: Any) -> Person:
        kwargs.setdefault("role", AGENT_ROLE)
        return new_person(server.secret, **kwargs)

    return make


@pytest.fixture
def user(user_factory: PersonFactory) -> Person:
    return user_factory()


@pytest.fixture
def agent(agent_factory: PersonFactory) -> Person:
    return agent_factory()


@pytest.fixture
def cli(server: ServerInfo) -> Cli:
    """``cli("token", "--user-id", "u1", ..., check=True)`` runs the supportchat CLI with
    the server's environment. Blocking: in async tests use ``await asyncio.to_thread(cli, ...)``."""

    def run(
        *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(server.env, *args, check=check, timeout=timeout)

    return run


# --- failure diagnostics ---------------------------------------------------------------

_LOG_OFFSET = pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach what the server logged during a failed test to its report."""
    report = yield
    server = getattr(item, "funcargs", {}).get("server")
    if isinstance(server, ServerInfo):
        if report.when == "setup":
            item.stash[_LOG_OFFSET] = _log_size(server.log_path)
        elif report.failed:
            report.sections.append(
                (f"server log ({server.database}) during test", _log_since(server, item))
            )
    return report


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _log_since(server: ServerInfo, item: pytest.Item, max_lines: int = 150) -> str:
    try:
        with server.log_path.open("rb") as fh:
            fh.seek(item.stash.get(_LOG_OFFSET, 0))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-max_lines:]) or "(nothing logged)"
