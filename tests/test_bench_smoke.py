"""A small run of the load benchmark (bench/, docs/performance.md): a few chats for a few
seconds against the real server and, in the same run, the bare python-socketio relay.

It checks that the benchmark's lean Socket.IO client and its accounting work against
the real server, and that under load no message is lost or delivered twice. It asserts
nothing about timing: latency on a shared machine is for the full benchmark to report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_bench(out: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--out", str(out)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    found = sorted(out.glob("*.json"))
    assert found, (
        f"the benchmark wrote no results (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    data: dict[str, Any] = json.loads(found[-1].read_text())
    return data


def test_floor_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data = run_bench(
        tmp_path,
        "floor",
        "--chats", "6",
        "--agents", "2",
        "--duration", "4",
        "--rate", "120",  # a message per side per second, so each chat sends ~8
        "--workers", "2",
    )  # fmt: skip
    assert set(data["runs"]) == {"real", "bare"}
    for target, run in data["runs"].items():
        counts = {k: run[k] for k in ("sent", "acked", "delivered", "lost", "duplicated")}
        assert run["sent"] > 0, (target, counts)
        assert run["lost"] == 0, (target, counts, run["lost_examples"])
        assert run["duplicated"] == 0, (target, counts)
        assert run["sent"] == run["acked"] == run["delivered"], (target, counts, run["refused"])
        # Every agent hears every user message (user_message), once.
        assert run["fanout_duplicated"] == 0, target
        assert run["fanout_received"] == run["fanout_expected"] > 0, (
            target,
            run["fanout_received"],
            run["fanout_expected"],
        )


def test_cluster_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """`bench cluster`: one process on PostgreSQL, then two on PostgreSQL and Redis with
    each chat's user and agent on different processes (docs/deployment.md section 8)."""
    data = run_bench(
        tmp_path,
        "cluster",
        "--processes", "2",
        "--chats", "6",
        "--agents", "3",
        "--duration", "4",
        "--rate", "120",
        "--workers", "2",
    )  # fmt: skip
    assert {t: run["processes"] for t, run in data["runs"].items()} == {"real": 1, "cluster": 2}
    for target, run in data["runs"].items():
        counts = {k: run[k] for k in ("sent", "acked", "delivered", "lost", "duplicated")}
        assert run["sent"] > 0, (target, counts)
        assert run["lost"] == 0 and run["duplicated"] == 0, (target, counts, run["lost_examples"])
        assert run["sent"] == run["acked"] == run["delivered"], (target, counts, run["refused"])
        assert run["fanout_duplicated"] == 0, target
        assert run["fanout_received"] == run["fanout_expected"] > 0, target
    # Both processes served, and Redis carried their emits.
    assert "redis-server" in data["runs"]["cluster"]["backing"], data["runs"]["cluster"]
    assert data["ratios"]["messages_per_s"] is not None
