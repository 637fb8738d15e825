"""Idle capacity: how many connected sockets a server holds, and what each costs in RSS.

Every socket is a different user (a token of its own, no chat), connected over the
websocket transport and then left alone except for Engine.IO's pings. The server's RSS
is read before the first connection and while they are held; RSS per socket is the
difference divided by the number of sockets."""

from __future__ import annotations

import argparse
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import report, servers
from ..idle_worker import IdlePlan, IdleReport, idle_main, raise_fd_limit
from ..procstats import Watch, rss_bytes
from ..workers import Pool

MIB = 1024 * 1024
RSS_TARGET_BYTES = 1024 * MIB  # the target: 10,000 sockets in under 1 GiB
SETTLE_S = 5.0


@dataclass
class IdleRun:
    target: str
    sockets: int
    connected: int = 0
    failed: int = 0
    first_error: str = ""
    connect_s: float = 0.0
    alive_after_hold: int = 0
    hold_s: float = 0.0
    rss_before_mib: float = 0.0
    rss_held_mib: float = 0.0
    peak_rss_mib: float = 0.0
    rss_per_socket_kib: float = 0.0
    server_cpu_percent_while_held: float = 0.0
    generator: list[dict[str, float]] = field(default_factory=list)
    others_cpu_percent: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.alive_after_hold == self.sockets


def run_idle(target: str, sockets: int, hold_s: float, workers: int, **start: Any) -> IdleRun:
    raise_fd_limit()  # the server inherits it
    server = servers.start(target, **start)
    try:
        time.sleep(1.0)
        run = IdleRun(target, sockets, hold_s=hold_s)
        before = rss_bytes(server.pid)
        run.rss_before_mib = round(before / MIB, 1)
        per = -(-sockets // workers)
        plans = [
            IdlePlan(
                w,
                server.host,
                server.port,
                server.secret,
                secrets.token_hex(4),
                w * per,
                max(0, min(per, sockets - w * per)),
            )
            for w in range(workers)
        ]
        with Pool(idle_main, plans) as pool:
            connect_watch = Watch([server.pid])
            connect_watch.start()
            reports: list[IdleReport] = pool.gather("ready", 600)
            connect_usage = connect_watch.stop()[server.pid]
            run.connected = sum(r.connected for r in reports)
            run.failed = sum(r.failed for r in reports)
            run.first_error = next((r.first_error for r in reports if r.first_error), "")
            run.connect_s = round(max(r.seconds for r in reports), 2)
            time.sleep(SETTLE_S)  # work the connections queued (a user's active chats)
            watch = Watch([server.pid, *pool.pids], interval=0.5)
            watch.start()
            time.sleep(hold_s)
            held = rss_bytes(server.pid)
            pool.send_all("check")
            alive = pool.gather("alive", 60)
            usage = watch.stop()
        run.alive_after_hold = sum(a for a, _events in alive)
        run.rss_held_mib = round(held / MIB, 1)
        run.peak_rss_mib = round(
            max(usage[server.pid].peak_rss_bytes, connect_usage.peak_rss_bytes) / MIB, 1
        )
        if run.connected:
            run.rss_per_socket_kib = round((held - before) / run.connected / 1024, 1)
        run.server_cpu_percent_while_held = round(usage[server.pid].cpu_percent, 1)
        run.generator = [
            {
                "cpu_percent": round(usage[p].cpu_percent, 1),
                "peak_rss_mib": round(usage[p].peak_rss_bytes / MIB, 1),
            }
            for p in pool.pids
            if p in usage
        ]
        run.others_cpu_percent = round(
            100 * watch.others_cpu_seconds / usage[server.pid].wall_seconds, 1
        )
        return run
    finally:
        server.stop()


def idle_markdown(runs: dict[str, IdleRun], m: dict[str, Any]) -> str:
    targets = list(runs)
    first = next(iter(runs.values()))
    both = len(runs) == 2
    # (label, figure, whether real / bare is worth showing)
    rows: list[tuple[str, Any, bool]] = [
        ("sockets connected / asked", lambda r: f"{r.connected} / {r.sockets}", False),
        ("time to connect them all (s)", lambda r: r.connect_s, True),
        (f"still connected after {first.hold_s:g} s idle", lambda r: r.alive_after_hold, False),
        ("server RSS before (MiB)", lambda r: r.rss_before_mib, True),
        ("server RSS while held (MiB)", lambda r: r.rss_held_mib, True),
        ("server peak RSS (MiB)", lambda r: r.peak_rss_mib, True),
        ("RSS per socket (KiB)", lambda r: r.rss_per_socket_kib, True),
        ("server CPU while held (% of one core)", lambda r: r.server_cpu_percent_while_held, True),
        (
            "generator CPU per process (%)",
            lambda r: ", ".join(str(g["cpu_percent"]) for g in r.generator),
            False,
        ),
        ("other processes' CPU meanwhile (%)", lambda r: r.others_cpu_percent, False),
    ]
    lines = [
        f"## Idle capacity: {first.sockets} sockets held {first.hold_s:g} s",
        "",
        f"Machine: {report.machine_line(m)}",
        "",
        "| figure | " + " | ".join(targets) + (" | real / bare |" if both else " |"),
        "|---|" + "---|" * len(targets) + ("---|" if both else ""),
    ]
    for label, get, with_ratio in rows:
        row = f"| {label} | " + " | ".join(str(get(runs[t])) for t in targets) + " |"
        if both:
            real, bare = get(runs[servers.REAL]), get(runs[servers.BARE])
            shown = with_ratio and isinstance(real, int | float) and bare
            row += f" {round(real / bare, 2) if shown else ''} |"
        lines.append(row)
    real_run = runs.get(servers.REAL)
    if real_run is not None:
        met = real_run.ok and real_run.peak_rss_mib * MIB < RSS_TARGET_BYTES
        lines += [
            "",
            f"Target ({first.sockets} idle sockets in under 1 GiB RSS, real server): "
            + ("met" if met else "NOT met"),
        ]
    for r in runs.values():
        if r.first_error:
            lines.append(f"\n{r.target}: first connection error: {r.first_error}")
    return "\n".join(lines) + "\n"


def run_idle_command(args: argparse.Namespace) -> int:
    machine = report.machine()
    targets = [servers.REAL, servers.BARE] if args.target == "both" else [args.target]
    runs: dict[str, IdleRun] = {}
    for target in targets:
        print(f"idle: {target}, {args.sockets} sockets ...", flush=True)
        start: dict[str, Any] = {"data_root": args.data_root}
        if target == servers.REAL:
            start["database_url"] = args.database_url
        runs[target] = run_idle(target, args.sockets, args.hold, args.workers, **start)
    md = idle_markdown(runs, machine)
    data = {
        "scenario": "idle",
        "machine": machine,
        "runs": {t: {**asdict(r), "ok": r.ok} for t, r in runs.items()},
    }
    paths = report.write(args.out, "idle", data, md)
    print(md)
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0 if all(r.ok for r in runs.values()) else 1
