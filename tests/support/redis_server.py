"""A throwaway redis-server for tests that need counts shared between server processes.

Runs Debian's ``redis-server`` binary (``make install-test`` installs it) in the
foreground as a child process, on a free loopback port, with persistence off and its
own temp dir, so nothing touches a system Redis or leaves files behind.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .net import free_port
from .server import spawn, stop_child, tail

STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def find_redis_server() -> str | None:
    """Path of the redis-server binary, or None when it is not installed."""
    return shutil.which("redis-server")


@dataclass
class RedisServer:
    binary: str
    root: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """What the server under test gets as SUPPORTCHAT_REDIS_URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.root / "redis.log"

    def start(self, *, same_port: bool = False) -> None:
        """Start on a free port, or (``same_port``, a restart) on the one it had, where
        the servers under test expect it."""
        for _attempt in range(1 if same_port else 3):  # a free port may be taken meanwhile
            if not same_port:
                self.port = free_port()
            self.proc = spawn(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.root),
                    "--protected-mode",
                    "yes",
                ],
                cwd=self.root,
                log_path=self.log_path,
            )
            if self._wait_ready():
                return
            self.stop()
            if "address already in use" not in tail(self.log_path, 20).lower():
                break
        raise RuntimeError(f"redis-server did not start; log tail:\n{tail(self.log_path)}")

    def _wait_ready(self) -> bool:
        """True once the server answers PING with PONG (plain RESP, no client library)."""
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass  # not listening yet
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_child(proc, STOP_TIMEOUT)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self, keep_log_in: Path | None = None, log_name: str = "redis.log") -> None:
        """Stop, optionally keep the log (as ``keep_log_in/log_name``), and delete the
        temp dir."""
        try:
            self.stop()
        finally:
            if keep_log_in is not None and self.log_path.exists():
                keep_log_in.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.log_path, keep_log_in / log_name)
            shutil.rmtree(self.root, ignore_errors=True)


def start_redis(binary: str) -> RedisServer:
    """Start and return a redis-server; the caller must ``cleanup()``."""
    server = RedisServer(binary=binary, root=Path(tempfile.mkdtemp(prefix="supportchat-redis-")))
    try:
        server.start()
    except BaseException:
        server.cleanup()
        raise
    return server
