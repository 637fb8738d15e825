"""A throwaway PostgreSQL cluster for the test session.

Runs the real server binaries (initdb/pg_ctl) in a temp dir on a free loopback port,
so the PostgreSQL code path is tested against the same major version we deploy on,
without touching any system cluster. initdb refuses to run as root, so when the tests
run as root every PostgreSQL command is executed as an unprivileged OS user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .net import free_port, is_ci
from .server import ARTIFACTS_DIR

PREFERRED_MAJOR = "15"
DB_SUPERUSER = "postgres"
DB_NAME = "supportchat"


def find_pg_bindir() -> Path | None:
    """Directory holding initdb/pg_ctl: Debian's v15, else the newest Debian version, else
    whatever initdb is on PATH. $SUPPORTCHAT_TEST_PG_BINDIR, when set, is the only candidate
    (point it at a non-existent dir to rehearse the "binaries missing" path)."""
    candidates: list[Path] = []
    if override := os.environ.get("SUPPORTCHAT_TEST_PG_BINDIR"):
        candidates.append(Path(override))
        return candidates[0] if _has_server_binaries(candidates[0]) else None
    debian = Path("/usr/lib/postgresql")
    candidates.append(debian / PREFERRED_MAJOR / "bin")
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()),
            key=lambda p: int(p.name),
            reverse=True,
        )
        candidates.extend(p / "bin" for p in versions)
    if on_path := shutil.which("initdb"):
        candidates.append(Path(on_path).parent)
    return next((b for b in candidates if _has_server_binaries(b)), None)


def _has_server_binaries(bindir: Path) -> bool:
    return all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def _unprivileged_user() -> pwd.struct_passwd | None:
    """OS account to run PostgreSQL as; None means "the current user" (already not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root but neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path
    port: int = 0
    os_user: pwd.struct_passwd | None = None
    superuser: str = DB_SUPERUSER
    dbname: str = DB_NAME
    running: bool = field(default=False, init=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        # Kept in the temp dir (short path: unix socket paths are limited to ~100 bytes).
        return self.root

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        """SQLAlchemy URL the server gets as SUPPORTCHAT_DATABASE_URL."""
        return self.url_of(self.dbname)

    def url_of(self, dbname: str) -> str:
        return f"postgresql+asyncpg://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def _client_tool(self, tool: str, *args: str) -> None:
        """createdb/dropdb over TCP as the superuser (trust authentication)."""
        self._run(tool, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.superuser, *args)

    @contextmanager
    def own_database(self, prefix: str) -> Iterator[str]:
        """A new, empty database for one test or module (when what it checks is the
        whole database); its URL. Dropped afterwards, best effort: the cluster itself is
        removed at the end of the session anyway."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._client_tool("createdb", name)
        try:
            yield self.url_of(name)
        finally:
            with contextlib.suppress(RuntimeError):
                self._client_tool("dropdb", "--force", "--if-exists", name)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.root),
            "LC_ALL": "C.UTF-8",
            "PGHOST": "127.0.0.1",
        }
        user = self.os_user
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,  # the unprivileged user may not be able to read our cwd
            env=env,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
                f"\n--- {self.log_path} ---\n{self.log_tail()}"
            )
        return proc

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> None:
        try:
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", self.superuser, "--auth=trust",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
            )  # fmt: skip
        except RuntimeError:
            # Locales differ between images; plain C always exists.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", self.superuser, "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-instructions",
            )  # fmt: skip
        # The port is chosen before the server binds it; retry if someone grabbed it meanwhile.
        for attempt in range(3):
            self.port = free_port()
            try:
                self._pg_ctl_start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        self.running = True
        self._client_tool("createdb", self.dbname)

    def _pg_ctl_start(self) -> None:
        """``pg_ctl start`` on ``self.port`` and the existing data dir; waits until it accepts
        connections."""
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.socket_dir}"
        )
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
                  "-l", str(self.log_path), "-o", opts)  # fmt: skip

    def stop(self, mode: str = "fast", *, wait: bool = True) -> None:
        """Stop the cluster and wait until it is down. ``mode`` is pg_ctl's shutdown mode:
        "fast" (the default) rolls back open transactions and disconnects every client,
        "immediate" aborts without a clean shutdown (crash recovery at the next start),
        "smart" refuses new connections and waits for the existing ones to end.

        ``wait=False`` only starts the shutdown (``pg_ctl stop -W``) and returns at once;
        the cluster still counts as running, and a later ``stop()`` (say "fast" after a
        "smart" one that the clients keep waiting) finishes it."""
        if not self.running:
            return
        if not wait:
            self._run("pg_ctl", "stop", "-W", "-m", mode, "-D", str(self.data_dir))
            return
        self.running = False
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data_dir))

    def restart(self) -> None:
        """Start a stopped cluster again on the same port and data dir (same databases,
        same data), as an operator bringing the database back would: clients that keep
        the old address reach it again. Fails if the port was taken in the meantime."""
        if self.running:
            raise RuntimeError("cluster is running: stop() it first")
        self._pg_ctl_start()
        self.running = True

    def cleanup(self, keep_log_in: Path | None = None, log_name: str = "postgres.log") -> None:
        """Stop (if needed), optionally keep the server log (as ``keep_log_in/log_name``),
        and delete the temp dir."""
        try:
            self.stop()
        finally:
            if keep_log_in is not None and self.log_path.exists():
                keep_log_in.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.log_path, keep_log_in / log_name)
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(bindir: Path) -> PostgresCluster:
    """Create, start and return a cluster with database ``supportchat``; caller must cleanup()."""
    os_user = _unprivileged_user()
    # Not pytest's tmp_path: that lives under a 0700 root-owned dir the postgres user can't enter.
    root = Path(tempfile.mkdtemp(prefix="supportchat-pg-"))
    if os_user is not None:
        os.chown(root, os_user.pw_uid, os_user.pw_gid)
    cluster = PostgresCluster(bindir=bindir, root=root, os_user=os_user)
    try:
        cluster.start()
    except BaseException:
        cluster.cleanup()
        raise
    return cluster


def cluster_for_tests(log_name: str = "postgres.log") -> Iterator[PostgresCluster]:
    """Body of a cluster fixture (``yield from`` it): a started cluster, removed at the
    end with its log kept as test-artifacts/<log_name>. Without the server binaries the
    tests skip, except in CI, which must exercise PostgreSQL and fails instead."""
    bindir = find_pg_bindir()
    if bindir is None:
        msg = "PostgreSQL server binaries (initdb, pg_ctl) not found: run `make install-test`"
        if is_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    cluster = start_cluster(bindir)
    try:
        yield cluster
    finally:
        cluster.cleanup(keep_log_in=ARTIFACTS_DIR, log_name=log_name)


def database_url_for(request: pytest.FixtureRequest, database: str) -> str | None:
    """The server's database URL for a test parametrised by database: None for SQLite (in
    the server's data dir), else the session's PostgreSQL cluster, requested lazily so
    that SQLite-only runs (-k sqlite) never need PostgreSQL."""
    if database == "sqlite":
        return None
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.url
