"""Run the real supportchat server as a subprocess on a free loopback port.

Tests talk to it over HTTP and Socket.IO exactly like a browser would, so what is tested
is the shipped entry point (CLI -> uvicorn -> ASGI app), not an in-process app object.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .net import free_port

# Type of the ``cli`` fixture: cli(*args, check=True, timeout=60) -> CompletedProcess[str].
Cli = Callable[..., "subprocess.CompletedProcess[str]"]

STARTUP_TIMEOUT = 30.0
SHUTDOWN_GRACE = 10.0


@dataclass(frozen=True)
class ServerInfo:
    base_url: str
    database: str  # "sqlite" or "postgres"
    secret: str  # SUPPORTCHAT_JWT_SECRET the server verifies tokens with
    data_dir: Path
    log_path: Path
    env: dict[str, str]  # full environment the server runs with (reuse it for CLI calls)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _die_with_parent() -> None:
    """Runs in the child before exec: have Linux SIGTERM the server if pytest itself dies
    (killed by a CI timeout, say), so no orphan keeps its port and data dir busy."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: best effort only


def spawn(
    argv: list[str], *, cwd: Path, log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A child process of the harness: output appended to ``log_path``, no stdin, and
    stopped by the kernel if pytest dies (so no server outlives a crashed run)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


def stop_child(proc: subprocess.Popen[bytes] | None, timeout: float) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout``; the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def supportchat_cmd() -> list[str]:
    """The CLI of the interpreter running pytest: its console script if installed, else -m."""
    script = Path(sys.executable).parent / "supportchat"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "supportchat"]


def server_env(data_dir: Path, secret: str, database_url: str | None) -> dict[str, str]:
    # Drop any SUPPORTCHAT_* settings from the developer's shell so they can't leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTCHAT_")}
    env.update(
        SUPPORTCHAT_DATA_DIR=str(data_dir),
        SUPPORTCHAT_JWT_SECRET=secret,
        PYTHONUNBUFFERED="1",  # log lines reach the file before a crash
    )
    if database_url is not None:
        env["SUPPORTCHAT_DATABASE_URL"] = database_url
    return env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``supportchat <args>`` with the given environment (normally ``ServerInfo.env``).

    Runs in the data dir: Settings also reads ./.env, and a developer's .env in the repo
    must not leak into tests.
    """
    proc = subprocess.run(
        [*supportchat_cmd(), *args],
        env=env,
        cwd=env.get("SUPPORTCHAT_DATA_DIR"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"supportchat {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


class ServerProcess:
    """Owns one server subprocess; ``start()`` returns once /health answers 200."""

    def __init__(self, database: str, data_dir: Path, database_url: str | None = None) -> None:
        self.database = database
        self.data_dir = data_dir
        self.secret = secrets.token_hex(32)
        self.env = server_env(data_dir, self.secret, database_url)
        self.log_path = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: ServerInfo | None = None

    def start(self, port: int | None = None) -> ServerInfo:
        """Start (or restart) the server. ``port`` pins the port, e.g. to bring a killed
        server back where its clients reconnect; by default a free one is picked (and
        another one tried if it was taken between probe and bind)."""
        # `serve` applies migrations itself before binding, so no separate migrate step.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pinned = port
        for _attempt in range(1 if pinned is not None else 3):
            port = pinned if pinned is not None else free_port()
            base_url = f"http://127.0.0.1:{port}"
            with self.log_path.open("ab") as log:
                log.write(f"=== supportchat serve on port {port} ===\n".encode())
            self.proc = spawn(
                [*supportchat_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=self.env,
                cwd=self.data_dir,  # keeps a repo-level .env out, as in run_cli
                log_path=self.log_path,
            )
            if self._wait_healthy(base_url):
                self.info = ServerInfo(
                    base_url=base_url,
                    database=self.database,
                    secret=self.secret,
                    data_dir=self.data_dir,
                    log_path=self.log_path,
                    env=dict(self.env),
                )
                return self.info
            if "address already in use" not in tail(self.log_path, 20).lower():
                break
        raise RuntimeError(
            f"supportchat serve ({self.database}) did not become healthy "
            f"(exit code {self.proc.poll() if self.proc else None}); log tail:\n"
            f"{tail(self.log_path)}"
        )

    def _wait_healthy(self, base_url: str) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with httpx.Client(base_url=base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False  # exited early: the caller reports the log tail
                try:
                    if client.get("/health").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(0.1)
        self.stop()
        return False

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period; returns the exit code."""
        proc, self.proc = self.proc, None
        return stop_child(proc, SHUTDOWN_GRACE)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with no chance to finish anything."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def terminate(self, timeout: float = SHUTDOWN_GRACE) -> int:
        """SIGTERM and wait for the exit code (a graceful shutdown); fails if it hangs."""
        proc, self.proc = self.proc, None
        assert proc is not None, "server not running"
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"server did not exit within {timeout} s of SIGTERM") from None

    def keep_log(self, artifacts_dir: Path) -> None:
        """Copy the log out of the temp dir so it survives pytest's tmp cleanup."""
        if self.log_path.exists():
            artifacts_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, artifacts_dir / f"server-{self.database}.log")


# Server and PostgreSQL logs are copied here at teardown (gitignored) for post-mortems.
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"


@contextmanager
def running_server(
    label: str,
    data_dir: Path,
    *,
    env: Mapping[str, str | None] | None = None,
    database_url: str | None = None,
    secret: str | None = None,
) -> Iterator[ServerProcess]:
    """A started server process, stopped (and its log kept as
    test-artifacts/server-<label>.log) when the block ends. ``env`` entries override the
    defaults (None removes one); ``secret`` makes it accept another server's tokens.
    A server that does not come up fails the test with its log tail."""
    proc = ServerProcess(label, data_dir, database_url)
    if secret is not None:
        proc.secret = secret
        proc.env["SUPPORTCHAT_JWT_SECRET"] = secret
    for key, value in (env or {}).items():
        if value is None:
            proc.env.pop(key, None)
        else:
            proc.env[key] = value
    try:
        proc.start()
    except RuntimeError as exc:
        proc.stop()
        proc.keep_log(ARTIFACTS_DIR)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield proc
    finally:
        proc.stop()
        proc.keep_log(ARTIFACTS_DIR)
