"""Start the server under test as its own process: the real ``supportchat serve`` or the
bare python-socketio relay (bench/bare_relay.py), on a free loopback port."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

REAL = "real"
BARE = "bare"
# Several real processes on PostgreSQL and Redis (bench/cluster.py).
CLUSTER = "cluster"

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0

# The per-chat message limit stays enabled so its cost is measured, but far above the
# offered rate: a schedule with jitter must never be refused. REST and admin actions
# (agents' joins and replies count as admin actions) get room for the setup phase and
# for agents who answer many chats.
BENCH_LIMITS = {
    "SUPPORTCHAT_RATE_LIMIT_MESSAGES": "600/minute",
    "SUPPORTCHAT_RATE_LIMIT_REST": "1000000/minute",
    "SUPPORTCHAT_RATE_LIMIT_ADMIN": "1000000/minute",
}


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class Service(Protocol):
    """What the load generator is pointed at: one process, or several forming one service."""

    kind: str  # REAL or BARE: which protocol the load generator speaks
    secret: str

    @property
    def host(self) -> str: ...

    @property
    def ports(self) -> tuple[int, ...]: ...

    @property
    def pids(self) -> list[int]: ...

    def stop(self, keep_log_in: Path | None = None) -> None: ...


@dataclass
class Server:
    """A running server process."""

    kind: str  # REAL or BARE
    proc: subprocess.Popen[bytes]
    port: int
    secret: str
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid]

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port,)

    @property
    def host(self) -> str:
        return HOST

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, keep_log_in: Path | None = None, *, remove_data: bool = True) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if keep_log_in is not None and self.log_path.exists():
            keep_log_in.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, keep_log_in / f"server-{self.kind}-{self.port}.log")
        if remove_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _supportchat_cmd() -> list[str]:
    script = Path(sys.executable).parent / "supportchat"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "supportchat"]


def start(
    kind: str,
    *,
    data_root: str | None = None,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    prepare: Callable[[Path, dict[str, str]], None] | None = None,
    secret: str | None = None,
) -> Server:
    """Start a server of ``kind`` and return once its /health answers 200. Its data
    directory (the SQLite database, its log) is a new directory under ``data_root``
    (default: the system's temporary directory), removed when it stops. ``prepare(data_dir,
    env)`` runs before the server starts (to fill its database, say). Processes of one
    service share their JWT ``secret`` (default: a new one)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-", dir=data_root))
    secret = secret or secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTCHAT_")}
    env.update(
        SUPPORTCHAT_DATA_DIR=str(data_dir),
        SUPPORTCHAT_JWT_SECRET=secret,
        SUPPORTCHAT_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
        **BENCH_LIMITS,
    )
    if database_url:
        env["SUPPORTCHAT_DATABASE_URL"] = database_url
    env.update(extra_env or {})
    log_path = data_dir / "server.log"
    if prepare is not None:
        prepare(data_dir, env)
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        if kind == REAL:
            cmd = [*_supportchat_cmd(), "serve", "--host", HOST, "--port", str(port)]
            cwd = str(data_dir)
        else:
            cmd = [sys.executable, "-m", "bench.bare_relay", "--host", HOST, "--port", str(port)]
            cwd = str(Path(__file__).resolve().parents[1])
            env["PYTHONPATH"] = cwd + os.pathsep + env.get("PYTHONPATH", "")
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        server = Server(kind, proc, port, secret, data_dir, log_path, env)
        if _wait_healthy(server):
            return server
        last_error = server.log_tail()
        server.stop(remove_data=False)
        if "address already in use" not in last_error.lower():
            break
    shutil.rmtree(data_dir, ignore_errors=True)
    raise RuntimeError(f"{kind} server did not become healthy; log tail:\n{last_error}")


def migrate(data_dir: Path, env: dict[str, str]) -> None:
    """``supportchat migrate``: the schema, in the database the server will use."""
    subprocess.run(
        [*_supportchat_cmd(), "migrate"],
        env=env,
        cwd=data_dir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=120,
    )


def _wait_healthy(server: Server) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if not server.alive():
            return False
        try:
            with urllib.request.urlopen(f"{server.base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return False
