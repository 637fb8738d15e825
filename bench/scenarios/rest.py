"""REST with a large database: POST /api/chat/start, GET /api/chat/history and
GET /api/chat/admin/active, each hammered by a fixed number of concurrent clients for a
while, against a server whose SQLite database holds (by default) 100,000 tickets and
1,000,000 messages (bench/seed.py), 1,000 of the tickets active.

The bare stack's counterpart of each endpoint is the relay's ``/bytes/<n>``: the same
uvicorn/httptools stack answering a JSON body of the endpoint's mean size, with no
application, auth or database; each figure of the real server is also given as a ratio
to it."""

from __future__ import annotations

import argparse
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import report, servers, stats
from ..procstats import Watch
from ..rest_worker import ACTIVE, BYTES, DASHBOARD, HISTORY, START, RestJob, RestResult, rest_main
from ..seed import SeedShape, seed
from ..workers import Pool

ENDPOINTS = {
    HISTORY: "GET /api/chat/history?limit=10 (a user with 5 chats of 10 messages)",
    ACTIVE: "GET /api/chat/admin/active (the default page: 500 active chats, 50 messages each)",
    DASHBOARD: "GET /api/chat/admin/active?limit=50&messages=1 (a dashboard's first page)",
    START: "POST /api/chat/start (a new user each time)",
}


@dataclass
class Measure:
    endpoint: str
    target: str
    clients: int
    duration_s: float
    answered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    per_s: float = 0.0
    latency_ms: dict[str, Any] = field(default_factory=dict)
    mean_body_bytes: int = 0
    server_cpu_percent: float = 0.0
    generator_cpu_percent: list[float] = field(default_factory=list)
    others_cpu_percent: float = 0.0


def measure(
    pool: Pool, server: servers.Server, job: RestJob, endpoint: str, workers: int
) -> Measure:
    watch = Watch([server.pid, *pool.pids])
    watch.start()
    pool.send_all("job", job)
    results: list[RestResult] = pool.gather("done", job.duration_s + 180)
    usage = watch.stop()
    m = Measure(endpoint, server.kind, job.concurrency * workers, job.duration_s)
    m.answered = sum(r.answered for r in results)
    for r in results:
        for k, n in r.errors.items():
            m.errors[k] = m.errors.get(k, 0) + n
    wall = usage[server.pid].wall_seconds
    m.per_s = round(m.answered / wall, 1)
    m.latency_ms = stats.summary(stats.merge(r.latency_us for r in results))
    m.mean_body_bytes = sum(r.body_bytes for r in results) // m.answered if m.answered else 0
    m.server_cpu_percent = round(usage[server.pid].cpu_percent, 1)
    m.generator_cpu_percent = [round(usage[r.pid].cpu_percent, 1) for r in results]
    m.others_cpu_percent = round(100 * watch.others_cpu_seconds / wall, 1)
    return m


def run_rest(
    shape: SeedShape, clients_per_worker: int, duration_s: float, workers: int, baseline: bool
) -> tuple[list[Measure], float]:
    seconds: list[float] = []

    def prepare(data_dir: Path, env: dict[str, str]) -> None:
        servers.migrate(data_dir, env)
        seconds.append(seed(data_dir / "supportchat.db", shape))

    real = servers.start(servers.REAL, prepare=prepare)
    measures: list[Measure] = []
    try:
        with Pool(rest_main, list(range(workers))) as pool:
            for kind, endpoint in ENDPOINTS.items():
                print(f"rest: real, {endpoint} ...", flush=True)
                job = RestJob(
                    kind,
                    real.base_url,
                    real.secret,
                    clients_per_worker,
                    duration_s,
                    users=shape.users,
                    agents=shape.agents,
                    tag=secrets.token_hex(4),
                )
                measures.append(measure(pool, real, job, kind, workers))
    finally:
        real.stop()
    if baseline:
        bare = servers.start(servers.BARE)
        try:
            with Pool(rest_main, list(range(workers))) as pool:
                for m in list(measures):
                    print(f"rest: bare, /bytes/{m.mean_body_bytes} ...", flush=True)
                    job = RestJob(
                        BYTES,
                        bare.base_url,
                        "",
                        clients_per_worker,
                        duration_s,
                        size=m.mean_body_bytes,
                    )
                    measures.append(measure(pool, bare, job, m.endpoint, workers))
        finally:
            bare.stop()
    return measures, seconds[0] if seconds else 0.0


def rest_markdown(
    measures: list[Measure], shape: SeedShape, seed_s: float, m: dict[str, Any]
) -> str:
    first = measures[0]
    lines = [
        f"## REST with a large database: {shape.tickets} tickets, "
        f"{shape.tickets * shape.messages_per_ticket} messages, {shape.users} users, "
        f"{shape.active} active chats; {first.clients} concurrent clients, "
        f"{first.duration_s:g} s per endpoint",
        "",
        f"Machine: {report.machine_line(m)}",
        "",
        f"Seeding the database took {seed_s:.0f} s (not measured).",
        "",
        "| endpoint | target | answered/s | p50 / p95 / p99 / max (ms) | mean body (bytes) "
        "| errors | server CPU % | generator CPU % | others' CPU % | real / bare (answered/s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bare = {x.endpoint: x for x in measures if x.target == servers.BARE}
    for x in measures:
        lat = x.latency_ms
        ratio = ""
        if x.target == servers.REAL and x.endpoint in bare and bare[x.endpoint].per_s:
            ratio = f"{x.per_s / bare[x.endpoint].per_s:.3f}"
        name = ENDPOINTS[x.endpoint] if x.target == servers.REAL else f"/bytes/<{x.endpoint} size>"
        lines.append(
            f"| {name} | {x.target} | {x.per_s} | {lat['p50']} / {lat['p95']} / {lat['p99']} / "
            f"{lat['max']} | {x.mean_body_bytes} | {x.errors or ''} | {x.server_cpu_percent} "
            f"| {', '.join(map(str, x.generator_cpu_percent))} | {x.others_cpu_percent} "
            f"| {ratio} |"
        )
    return "\n".join(lines) + "\n"


def run_rest_command(args: argparse.Namespace) -> int:
    shape = SeedShape(
        users=args.users,
        tickets=args.tickets,
        messages=args.messages,
        active=args.active,
        agents=args.agents,
    )
    machine = report.machine()
    measures, seed_s = run_rest(
        shape, args.clients, args.duration, args.workers, baseline=args.target == "both"
    )
    md = rest_markdown(measures, shape, seed_s, machine)
    data = {
        "scenario": "rest",
        "machine": machine,
        "shape": asdict(shape),
        "seed_seconds": round(seed_s, 1),
        "measures": [asdict(x) for x in measures],
    }
    paths = report.write(args.out, "rest", data, md)
    print(md)
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0
