"""Results as JSON (everything) and a Markdown table (what a reader compares), plus the
machine they were measured on."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from .scenarios.floor import FloorRun, RampStep

PACKAGES = (
    "python-socketio",
    "python-engineio",
    "uvicorn",
    "websockets",
    "uvloop",
    "httptools",
    "orjson",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "fastapi",
)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src")),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return ""
    return out.strip()


def machine_line(m: dict[str, Any]) -> str:
    pk = m["packages"]
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, python-socketio {pk.get('python-socketio')}, "
        f"python-engineio {pk.get('python-engineio')}, uvicorn {pk.get('uvicorn')}, "
        f"websockets {pk.get('websockets')}, uvloop {pk.get('uvloop')}; "
        f"commit {m['commit']}{' (src modified)' if m['dirty'] else ''}; "
        f"load average at start {m['load_average']}"
    )


def stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def write(out_dir: Path, name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"{stamp()}-{name}"
    json_path = base.with_suffix(".json")
    md_path = base.with_suffix(".md")
    json_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


# -- the floor -----------------------------------------------------------------------------


def _lat(run: FloorRun, kind: str) -> str:
    s = run.latency_ms[kind]
    return f"{s['p50']} / {s['p95']} / {s['p99']} / {s['max']}"


def _gen(run: FloorRun) -> str:
    cpus = ", ".join(f"{g['cpu_percent']}" for g in run.generator)
    return f"{cpus}{' **generator-bound**' if run.generator_bound else ''}"


def _backing(run: FloorRun) -> str:
    return " / ".join(str(run.backing.get(name, "-")) for name in ("postgres", "redis-server"))


def _verdict(run: FloorRun) -> str:
    if run.problems:
        return "**" + "; ".join(run.problems) + "**"
    return "held (clean, p99 ≤ 100 ms)" if run.held else "clean, p99 > 100 ms"


FLOOR_ROWS: list[tuple[str, Any, str | None]] = [
    ("offered load (messages/s)", lambda r: r.throughput["offered_per_s"], None),
    (
        "messages acknowledged per second",
        lambda r: r.throughput["messages_per_s"],
        "messages_per_s",
    ),
    ("sent / acknowledged / delivered", lambda r: f"{r.sent} / {r.acked} / {r.delivered}", None),
    ("lost / duplicated", lambda r: f"{r.lost} / {r.duplicated}", None),
    (
        "user_message fan-out received / expected",
        lambda r: f"{r.fanout_received} / {r.fanout_expected}",
        None,
    ),
    ("fan-out deliveries per second", lambda r: r.throughput["fanout_per_s"], None),
    ("end-to-end latency p50 / p95 / p99 / max (ms)", lambda r: _lat(r, "e2e"), "e2e_p99"),
    ("fan-out latency p50 / p95 / p99 / max (ms)", lambda r: _lat(r, "fanout"), "fanout_p99"),
    ("acknowledgement latency p50 / p95 / p99 / max (ms)", lambda r: _lat(r, "ack"), None),
    ("server processes", lambda r: r.processes, None),
    ("server CPU (% of one core)", lambda r: r.server["cpu_percent"], "server_cpu_s"),
    ("server CPU per message (ms)", lambda r: r.server["cpu_ms_per_message"], "cpu_ms_per_message"),
    ("server peak RSS (MiB)", lambda r: r.server["peak_rss_mib"], "peak_rss"),
    ("PostgreSQL / Redis CPU (% of one core)", lambda r: _backing(r), None),
    ("generator CPU per process (% of one core)", _gen, None),
    (
        "other processes' CPU meanwhile (% of one core)",
        lambda r: r.machine_noise.get("others_cpu_percent"),
        None,
    ),
    ("verdict", _verdict, None),
]


def floor_markdown(
    runs: dict[str, FloorRun],
    ratios: dict[str, float | None] | None,
    m: dict[str, Any],
    compared: tuple[str, str] = ("real", "bare"),
) -> str:
    first = next(iter(runs.values()))
    targets = list(runs)
    lines = [
        f"## Support floor: {first.chats} chats, {first.agents} agents, "
        f"{first.rate_per_min:g} messages/minute per chat, {first.duration_s:g} s, "
        f"{first.workers} generator process(es)",
        "",
        f"Machine: {machine_line(m)}",
        "",
        "| figure | "
        + " | ".join(targets)
        + (f" | {compared[0]} / {compared[1]} |" if ratios else " |"),
        "|---|" + "---|" * len(targets) + ("---|" if ratios else ""),
    ]
    for label, get, ratio_key in FLOOR_ROWS:
        cells = [str(get(runs[t])) for t in targets]
        row = f"| {label} | " + " | ".join(cells) + " |"
        if ratios:
            value = ratios.get(ratio_key) if ratio_key else None
            row += f" {value if value is not None else ''} |"
        lines.append(row)
    real = runs.get("real")
    if real is not None and real.setup.get("chats_started"):
        lines += [
            "",
            f"Setup (not measured in the window): {real.setup['chats_started']} chats started "
            f"with POST /api/chat/start in {real.setup['start_s']} s "
            f"({real.setup['starts_per_s']}/s, 16 concurrent per generator process); "
            f"{real.setup['connections']} sockets connected in {real.setup['connect_s']} s; "
            f"joins in {real.setup['join_s']} s.",
        ]
    for run in runs.values():
        if run.storm:
            s = run.storm
            lines += [
                "",
                f"Reconnect storm ({run.target}): {s['sockets']} sockets dropped at once; all back "
                f"in {s['all_reconnected_s']} s, all caught up in {s['all_caught_up_s']} s; "
                f"{s['reconnect_failures']} failed reconnects; user_message fan-out missed "
                f"while agents were away: {run.fanout_missing} (not replayed, by design)"
                + (
                    f"; refusals while catching up (retried): {s['errors']}"
                    if s.get("errors")
                    else ""
                )
                + ".",
            ]
    return "\n".join(lines) + "\n"


def ramp_markdown(
    steps: Sequence[RampStep],
    held: dict[str, int],
    m: dict[str, Any],
    cfg_line: str,
    compared: tuple[str, str] = ("real", "bare"),
) -> str:
    lines = [
        f"## Ramp: {cfg_line}",
        "",
        f"Machine: {machine_line(m)}",
        "",
        "| chats | target | messages/s | e2e p50 / p99 / max (ms) | fan-out p99 (ms) "
        "| server CPU % | PostgreSQL / Redis CPU % | peak RSS (MiB) | generator CPU % "
        "| others' CPU % | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in steps:
        for target, r in step.runs.items():
            e2e = r.latency_ms["e2e"]
            lines.append(
                f"| {step.chats} | {target} | {r.throughput['messages_per_s']} "
                f"| {e2e['p50']} / {e2e['p99']} / {e2e['max']} "
                f"| {r.latency_ms['fanout']['p99']} | {r.server['cpu_percent']} "
                f"| {_backing(r)} | {r.server['peak_rss_mib']} | {_gen(r)} "
                f"| {r.machine_noise.get('others_cpu_percent')} | {_verdict(r)} |"
            )
    lines += [
        "",
        "Most chats held (p99 ≤ 100 ms, nothing lost): "
        + ", ".join(f"{t} {n}" for t, n in held.items()),
    ]
    a, b = compared
    if held.get(a) is not None and held.get(b):
        lines[-1] += f"; {a} / {b} = {held[a] / held[b]:.2f}"
    return "\n".join(lines) + "\n"
