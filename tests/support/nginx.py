"""Debian's nginx in front of the test cluster, with the configuration we document.

The site configuration is deploy/nginx/supportchat.conf itself: ``render_site`` replaces
only the upstream ``server`` lines (with the addresses of the processes under test) and
the ``listen`` line (with a free loopback port), so what the tests exercise is what
docs/deployment.md tells operators to install. Around it, a generated top-level
nginx.conf keeps everything (pid, logs, temp files) in a temp dir, and logs for each
request which upstream answered it, so that a test can tell which process a client
reached.

nginx runs in the foreground (``daemon off``) as a child process of pytest, like the
other servers of the harness (tests/support/server.py, redis_server.py).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .net import free_port
from .server import spawn, stop_child, tail

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED_SITE = REPO / "deploy" / "nginx" / "supportchat.conf"
DEBIAN_BINARY = "/usr/sbin/nginx"
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
LOG_TIMEOUT = 5.0  # an access-log line is written right after its response (liveness)

# The documented file's upstream block, and in it the `server host:port params;` lines.
_UPSTREAM_BLOCK = re.compile(r"^[ \t]*upstream[ \t]+supportchat[ \t]*\{.*?^[ \t]*\}", re.M | re.S)
_UPSTREAM_SERVER = re.compile(
    r"^(?P<indent>[ \t]*)server[ \t]+(?P<address>[^\s;]+)(?P<params>[^;\n]*);(?P<comment>[^\n]*)\n",
    re.M,
)
_LISTEN = re.compile(r"^(?P<indent>[ \t]*)listen[ \t]+[^;\n]+;", re.M)

# One access-log line per request (see LOG_FORMAT); $upstream_addr lists every process
# tried, comma-separated, the one that answered last ("-" when nginx answered itself).
LOG_FORMAT = '$remote_addr $status "$request_method $request_uri" upstream="$upstream_addr"'
_LOG_LINE = re.compile(
    r'^(?P<remote>\S+) (?P<status>\d+) "(?P<method>\S+) (?P<uri>[^"]*)"'
    r' upstream="(?P<upstream>[^"]*)"$'
)


def find_nginx() -> str | None:
    """Path of Debian's nginx binary (or one on PATH), or None when it is not installed."""
    if os.access(DEBIAN_BINARY, os.X_OK):
        return DEBIAN_BINARY
    return shutil.which("nginx")


def render_site(documented: str, upstreams: Sequence[str], listen: str) -> str:
    """The documented site configuration with its upstream servers replaced by
    ``upstreams`` ("host:port", each with the parameters of the documented first line)
    and its listen address by ``listen``; nothing else changes. Raises ValueError when
    the file no longer has the shape this relies on, so a test fails rather than
    silently running some other configuration."""
    if not upstreams:
        raise ValueError("at least one upstream address is needed")
    blocks = list(_UPSTREAM_BLOCK.finditer(documented))
    if len(blocks) != 1:
        raise ValueError(f"expected one `upstream supportchat {{...}}` block, found {len(blocks)}")
    block = blocks[0]
    servers = list(_UPSTREAM_SERVER.finditer(block.group(0)))
    if not servers:
        raise ValueError("the upstream block has no `server host:port ...;` line")
    first = servers[0]
    replacement = "".join(
        f"{first['indent']}server {address}{first['params']};  # rendered for the tests\n"
        for address in upstreams
    )
    # Every documented server line goes; the rendered ones take the first one's place.
    body = block.group(0)
    pieces: list[str] = []
    position = 0
    for line in servers:
        pieces.append(body[position : line.start()])
        if line is first:
            pieces.append(replacement)
        position = line.end()
    pieces.append(body[position:])
    listens = list(_LISTEN.finditer(documented))
    if len(listens) != 1:
        raise ValueError(f"expected one `listen` line, found {len(listens)}")
    rendered = documented[: block.start()] + "".join(pieces) + documented[block.end() :]
    return _LISTEN.sub(lambda m: f"{m['indent']}listen {listen};", rendered, count=1)


@dataclass(frozen=True)
class AccessEntry:
    """One line of the access log."""

    remote: str  # client address as nginx saw it ($remote_addr)
    status: int
    method: str
    uri: str  # path and query string, as the client sent them
    upstreams: tuple[str, ...]  # every "host:port" tried, in order; () if none

    @property
    def upstream(self) -> str | None:
        """The process that answered (the last one tried), or None."""
        return self.upstreams[-1] if self.upstreams else None


def parse_access_line(line: str) -> AccessEntry | None:
    found = _LOG_LINE.match(line.rstrip("\n"))
    if found is None:
        return None
    upstream = found["upstream"]
    tried = tuple(u.strip() for u in upstream.replace(" : ", ", ").split(",") if u.strip())
    return AccessEntry(
        remote=found["remote"],
        status=int(found["status"]),
        method=found["method"],
        uri=found["uri"],
        upstreams=() if upstream == "-" else tried,
    )


@dataclass
class Nginx:
    binary: str
    root: Path
    upstreams: list[str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def site_path(self) -> Path:
        return self.root / "supportchat.conf"

    @property
    def error_log_path(self) -> Path:
        return self.root / "error.log"

    @property
    def access_log_path(self) -> Path:
        return self.root / "access.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _write_config(self) -> None:
        site = render_site(
            DOCUMENTED_SITE.read_text(), self.upstreams, listen=f"127.0.0.1:{self.port}"
        )
        self.site_path.write_text(site)
        temp = self.root / "temp"
        for kind in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (temp / kind).mkdir(parents=True, exist_ok=True)
        # As root, nginx's workers switch to `nobody`, who cannot enter this 0700 temp
        # dir (temp files, and the site file at a reload). Tests only: the workers stay
        # root here. An installed nginx keeps Debian's `user www-data`.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf_path.write_text(
            f"""# Generated by tests/support/nginx.py for one test run.
{user}worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.error_log_path} notice;

events {{
    worker_connections 1024;
}}

http {{
    # Debian's build points these at /var/lib/nginx; keep this run's files here.
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    # Which process answered each request: how the tests tell where a client landed.
    log_format supportchat_test '{LOG_FORMAT}';
    access_log {self.access_log_path} supportchat_test;

    include {self.site_path};
}}
"""
        )

    def start(self) -> None:
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            self._write_config()
            self.proc = spawn(
                [
                    self.binary,
                    "-p",
                    f"{self.root}/",
                    "-c",
                    str(self.conf_path),
                    "-e",
                    str(self.error_log_path),
                    "-g",
                    "daemon off;",
                ],
                cwd=self.root,
                log_path=self.root / "stderr.log",
            )
            if self._wait_ready():
                return
            self.stop()
            if "address already in use" not in self.log_tail(20).lower():
                break
        raise RuntimeError(f"nginx did not start; log tail:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        """True once the listening socket accepts connections (the workers take them
        from its backlog as soon as they are up)."""
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Fast shutdown (SIGTERM): open WebSockets and long-polls are cut at once, as
        a graceful one (SIGQUIT) would wait for them."""
        proc, self.proc = self.proc, None
        stop_child(proc, STOP_TIMEOUT)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{tail(path, lines)}"
            for path in (self.root / "stderr.log", self.error_log_path)
        )

    # -- the access log -----------------------------------------------------------------

    def access_entries(self) -> list[AccessEntry]:
        try:
            text = self.access_log_path.read_text(errors="replace")
        except OSError:
            return []
        return [e for e in map(parse_access_line, text.splitlines()) if e is not None]

    def upstream_for(self, local_addr: str) -> str:
        """The upstream ("host:port") nginx sends a client at ``local_addr`` to right
        now: a request from that address, found again in the access log by a marker."""
        marker = uuid.uuid4().hex
        transport = httpx.HTTPTransport(local_address=local_addr)
        with httpx.Client(base_url=self.url, transport=transport, timeout=10.0) as client:
            resp = client.get("/health", params={"probe": marker})
        deadline = time.monotonic() + LOG_TIMEOUT
        while True:
            for entry in reversed(self.access_entries()):
                if f"probe={marker}" in entry.uri:
                    if entry.upstream is None:
                        raise AssertionError(f"nginx answered the probe itself: {entry}")
                    return entry.upstream
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"probe {marker} from {local_addr} (HTTP {resp.status_code}) is not in "
                    f"the access log; log tail:\n{tail(self.access_log_path)}"
                )
            time.sleep(0.02)

    def cleanup(self, keep_logs_in: Path | None = None, prefix: str = "nginx") -> None:
        """Stop, optionally keep the logs (as ``keep_logs_in/<prefix>-*.log``) and the
        rendered configuration, and delete the temp dir."""
        try:
            self.stop()
        finally:
            if keep_logs_in is not None:
                keep_logs_in.mkdir(parents=True, exist_ok=True)
                for path, name in (
                    (self.error_log_path, "error.log"),
                    (self.access_log_path, "access.log"),
                    (self.site_path, "supportchat.conf"),
                ):
                    if path.exists():
                        shutil.copyfile(path, keep_logs_in / f"{prefix}-{name}")
            shutil.rmtree(self.root, ignore_errors=True)


def start_nginx(binary: str, upstreams: Sequence[str]) -> Nginx:
    """Start nginx in front of ``upstreams`` ("host:port" each); the caller must
    ``cleanup()``."""
    server = Nginx(
        binary=binary,
        root=Path(tempfile.mkdtemp(prefix="supportchat-nginx-")),
        upstreams=list(upstreams),
    )
    try:
        server.start()
    except BaseException:
        server.cleanup()
        raise
    return server
