"""One full conversation driven by the official JavaScript client (socket.io-client 4,
pinned in tests/js/package-lock.json), connecting as the shipped web client does:
polling then upgrade, userType in the query string, token in auth.

tests/js/conversation.mjs does the talking and prints a JSON summary; this test runs it
with node against each backend's server and checks the summary and what was stored.
`make install-test` installs tests/js/node_modules (npm ci). Without node or those
modules the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from support import Api, PersonFactory, ServerInfo, make_token
from support.net import is_ci

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "conversation.mjs"
# The script gives up by itself after 15 s; this only guards against a hung node.
NODE_TIMEOUT = 60.0
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
TICKET_NUMBER = re.compile(r"^TKT-\d{4}-\d{6}$")


def missing_prerequisite(js_dir: Path = JS_DIR) -> str | None:
    """Why the JS client cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (the JS client test needs Node.js 18+)"
    if not (js_dir / "node_modules" / "socket.io-client" / "package.json").is_file():
        return f"{js_dir / 'node_modules'} is missing: run `make install-test`"
    return None


def require_js_client(js_dir: Path = JS_DIR) -> Path:
    """The path of node; skips the test when a prerequisite is missing, fails under CI."""
    reason = missing_prerequisite(js_dir)
    if reason is not None:
        if is_ci():
            pytest.fail(f"{reason} (CI must run the JS client test)", pytrace=False)
        pytest.skip(reason)
    node = shutil.which("node")
    assert node is not None
    return Path(node)


async def run_conversation(
    node: Path, url: str, user_token: str, agent_token: str, **extra_env: str
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "CHAT_SERVER_URL": url,
        "CHAT_USER_TOKEN": user_token,
        "CHAT_AGENT_TOKEN": agent_token,
        "NO_COLOR": "1",
        **extra_env,
    }
    proc = await asyncio.create_subprocess_exec(
        str(node),
        str(SCRIPT),
        cwd=JS_DIR,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"node {SCRIPT.name} still running after {NODE_TIMEOUT}s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def last_json_line(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise AssertionError(f"no JSON summary in the script's output:\n{stdout}")


async def test_js_client_walks_a_full_conversation(
    server: ServerInfo, api: Api, user_factory: PersonFactory, agent_factory: PersonFactory
) -> None:
    node = require_js_client()
    user, agent = user_factory(name="Jane Browser"), agent_factory(name="John Dashboard")

    code, out, err = await run_conversation(node, server.base_url, user.token, agent.token)

    assert code == 0, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    summary = last_json_line(out)
    assert summary["ok"] is True, summary
    assert "error" not in summary, summary
    assert [s["step"] for s in summary["steps"]] == [
        "connected",
        "chat_started",
        "new_chat_ticket",
        "ticket_joined",
        "agent_joined",
        "user_message",
        "admin_reply",
        "rejoin_ticket",
        "typing",
        "chat_closed",
        "stored",
    ]
    for who in ("user", "agent", "userTab"):
        assert summary["transports"][who] == {
            "initial": "polling",
            "upgradedTo": "websocket",
            "final": "websocket",
        }, summary["transports"]
    ticket_id = summary["ticketId"]
    assert OBJECT_ID.match(ticket_id), summary
    assert TICKET_NUMBER.match(summary["ticketNumber"]), summary
    assert [(m["from"], m["seq"]) for m in summary["messages"]] == [
        ("user", 1),
        ("user", 2),
        ("agent", 3),
    ]
    assert summary["finalStatus"] == "resolved"

    # Cross-check from Python what the JS client made the server store.
    resp = await api.get(f"/api/chat/{ticket_id}", token=agent)
    assert resp.status_code == 200, resp.text
    ticket = resp.json()["data"]["ticket"]
    assert ticket["ticketNumber"] == summary["ticketNumber"]
    assert ticket["status"] == "resolved"
    assert ticket["userId"]["_id"] == user.id
    assert ticket["assignedTo"]["_id"] == agent.id
    assert ticket["resolvedBy"]["_id"] == agent.id
    assert ticket["category"] == "account_support"
    assert [
        (m["sender"], m["senderModel"], m["isAdminReply"], m["message"]) for m in ticket["messages"]
    ] == [
        (user.id, "DTUser", False, summary["messages"][0]["message"]),
        (user.id, "DTUser", False, summary["messages"][1]["message"]),
        (agent.id, "Admin", True, summary["messages"][2]["message"]),
    ]


async def test_js_client_reports_a_refused_connection(
    server: ServerInfo, user_factory: PersonFactory
) -> None:
    """The script fails (non-zero, ok false) instead of hanging when a check fails: here
    a user token offered as the agent's is refused at the handshake (userType=admin)."""
    node = require_js_client()
    user, not_an_agent = user_factory(), user_factory()

    code, out, err = await run_conversation(node, server.base_url, user.token, not_an_agent.token)

    assert code == 1, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    summary = last_json_line(out)
    assert summary["ok"] is False
    assert "agent: connect_error Admin privileges required" in summary["error"], summary


async def test_js_client_gives_up_on_a_silent_server() -> None:
    """A server that accepts connections and never answers: the script stops by itself
    at its overall time limit (shortened here through CHAT_TIMEOUT_MS) with exit 2."""
    node = require_js_client()
    token = make_token("x" * 32, "u-silent", "Silent", "silent@example.com")

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        code, out, err = await run_conversation(
            node, f"http://127.0.0.1:{port}", token, token, CHAT_TIMEOUT_MS="1500"
        )
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert code == 2, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    summary = last_json_line(out)
    assert summary["ok"] is False
    assert summary["error"] == "timed out after 1500 ms", summary
    assert elapsed < 15, elapsed


# --- the prerequisite check itself (no server, no node needed) -----------------------------


def test_missing_modules_fail_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the JS client test"):
        require_js_client(tmp_path)


def test_missing_modules_skip_outside_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_js_client(tmp_path)


def test_missing_node_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(pytest.fail.Exception, match="node is not installed"):
        require_js_client()
