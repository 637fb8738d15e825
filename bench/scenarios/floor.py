"""The support floor: U users, each with an active chat, A agents answering them, both
sides sending at a fixed rate; against the real server and the bare relay in one run
(or one real process and a cluster of them), and the ramp that finds the most chats
each one holds."""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import profile, servers, stats
from ..loadgen import worker_main
from ..plan import SetupInfo, WorkerResult, split_plans
from ..procstats import Usage, Watch, peak_rss_bytes
from ..workers import Pool

if TYPE_CHECKING:
    from tests.support.postgres import PostgresCluster

P99_TARGET_MS = 100.0
# A load-generator process above this share of one core may be what limits the run.
GENERATOR_BOUND_PERCENT = 80.0
# A scheduler this late (p99) is not sending on time: the generator is behind.
GENERATOR_LAG_MS = 50.0
MIB = 1024 * 1024
# What the real server leans on, reported with its CPU (process names as ps shows them).
BACKING = ("postgres", "redis-server")


@dataclass
class FloorConfig:
    chats: int = 200
    agents: int = 10
    duration_s: float = 30.0
    rate_per_min: float = 30.0  # per chat, user and agent together (half each)
    workers: int = 2
    message_size: int = 100
    database_url: str | None = None
    seed: int = 1
    drain_timeout_s: float = 20.0
    storm_at_s: float | None = None
    # Where the real server's data directories go (None: the system's temp directory).
    data_root: str | None = None
    # Extra environment for the real server (SUPPORTCHAT_* settings to compare).
    server_env: dict[str, str] = field(default_factory=dict)
    # Server processes of the CLUSTER target.
    processes: int = 3

    @property
    def period_s(self) -> float:
        """Seconds between two messages of one side of a chat."""
        return 60.0 / (self.rate_per_min / 2)


@dataclass
class FloorRun:
    """One target's figures for one floor configuration."""

    target: str
    chats: int
    agents: int
    rate_per_min: float
    duration_s: float
    workers: int
    processes: int = 1
    sent: int = 0
    acked: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    unacked: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    delivered_unacked: int = 0
    misrouted: int = 0
    foreign: int = 0
    echoed: int = 0
    duplicate_acks: int = 0
    lost_examples: list[str] = field(default_factory=list)
    fanout_expected: int = 0
    fanout_received: int = 0
    fanout_missing: int = 0
    fanout_duplicated: int = 0
    unexpected_disconnects: int = 0
    latency_ms: dict[str, dict[str, Any]] = field(default_factory=dict)
    throughput: dict[str, float] = field(default_factory=dict)
    server: dict[str, float] = field(default_factory=dict)
    # CPU of PostgreSQL's and Redis's processes in the window (% of one core), by name.
    backing: dict[str, float] = field(default_factory=dict)
    generator: list[dict[str, float]] = field(default_factory=list)
    generator_bound: bool = False
    setup: dict[str, float] = field(default_factory=dict)
    other_events: dict[str, int] = field(default_factory=dict)
    storm: dict[str, Any] | None = None
    # CPU that other processes on the machine used during the window (% of one core).
    machine_noise: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Every message acknowledged and delivered exactly once, fan-out complete."""
        return not self.problems

    @property
    def intact(self) -> bool:
        """Nothing acknowledged was lost, nothing delivered twice or to the wrong chat
        (slowness, and sends left unanswered by an overloaded server, are not counted)."""
        return not (self.lost or self.duplicated or self.fanout_duplicated or self.misrouted)

    @property
    def held(self) -> bool:
        """Clean and p99 end-to-end latency within the target."""
        return self.clean and self.latency_ms["e2e"]["p99"] <= P99_TARGET_MS

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["clean"] = self.clean
        out["intact"] = self.intact
        out["held"] = self.held
        return out


def run_floor(
    target: str,
    cfg: FloorConfig,
    log_dir: Path | None = None,
    profile_to: Path | None = None,
    postgres: PostgresCluster | None = None,
) -> FloorRun:
    """Start a fresh server of ``target`` (on a new database of ``postgres`` when given),
    run the floor against it, stop it."""
    with contextlib.ExitStack() as stack:
        database_url = cfg.database_url
        if postgres is not None and target != servers.BARE:
            database_url = stack.enter_context(postgres.own_database("bench"))
        server: servers.Service
        if target == servers.CLUSTER:
            from .. import cluster  # the test suite's PostgreSQL and Redis harness

            if not database_url:
                raise SystemExit("the cluster target needs PostgreSQL")
            server = cluster.start(
                cfg.processes, database_url, data_root=cfg.data_root, extra_env=cfg.server_env
            )
        else:
            server = servers.start(
                target,
                database_url=database_url,
                data_root=cfg.data_root,
                extra_env=cfg.server_env if target == servers.REAL else None,
            )
        try:
            return drive(server, cfg, profile_to, label=target)
        finally:
            server.stop(keep_log_in=log_dir)


def drive(
    server: servers.Service,
    cfg: FloorConfig,
    profile_to: Path | None = None,
    *,
    label: str | None = None,
) -> FloorRun:
    plans = split_plans(
        kind=server.kind,
        host=server.host,
        ports=server.ports,
        secret=server.secret,
        run_id=secrets.token_hex(4),
        chats=cfg.chats,
        agents=cfg.agents,
        workers=cfg.workers,
        period_s=cfg.period_s,
        duration_s=cfg.duration_s,
        message_size=cfg.message_size,
        seed=cfg.seed,
        storm_at_s=cfg.storm_at_s,
        drain_timeout_s=cfg.drain_timeout_s,
    )
    setup_timeout = 120 + cfg.chats * 0.2
    with Pool(worker_main, plans) as pool:
        infos: list[SetupInfo] = pool.gather("ready", setup_timeout)
        watch = Watch([*server.pids, *pool.pids])
        watch.start()
        t0 = time.monotonic_ns() + 200_000_000
        pool.send_all("go", t0)
        spy = None
        if profile_to is not None:
            time.sleep(max(0.0, (t0 - time.monotonic_ns()) / 1e9))
            spy = profile.start(server.pids[0], cfg.duration_s, profile_to)
        run_timeout = cfg.duration_s + 2 * cfg.drain_timeout_s + 120
        user_acked: list[int] = pool.gather("sent", run_timeout)
        pool.send_all("expect", sum(user_acked))
        results: list[WorkerResult] = pool.gather("result", cfg.drain_timeout_s + 60)
        usage = watch.stop()
        server_hwm = sum(peak_rss_bytes(pid) for pid in server.pids)
        spy_error = profile.finish(spy) if spy is not None else ""
    run = FloorRun(
        target=label or server.kind,
        chats=cfg.chats,
        agents=cfg.agents,
        rate_per_min=cfg.rate_per_min,
        duration_s=cfg.duration_s,
        workers=len(plans),
        processes=len(server.pids),
    )
    tally(run, results, total_agents=cfg.agents)
    served = Usage.total([usage[pid] for pid in server.pids])
    account(run, served, [usage[r.pid] for r in results], server_hwm, cfg)
    run.backing = {
        name: round(100 * watch.others_by_name.get(name, 0.0) / served.wall_seconds, 1)
        for name in BACKING
        if name in watch.others_by_name
    }
    run.machine_noise = {
        "others_cpu_s": round(watch.others_cpu_seconds, 2),
        "others_cpu_percent": round(100 * watch.others_cpu_seconds / served.wall_seconds, 1),
        "others_top": watch.others_top,
    }
    setup_summary(run, infos)
    judge(run, storm=cfg.storm_at_s is not None)
    if profile_to is not None:
        if spy_error or not profile_to.exists():
            run.profile = {"error": spy_error or "py-spy wrote nothing"}
        else:
            run.profile = {"raw": str(profile_to), **profile.top(profile_to)}
    return run


# The counts each generator process reports and the run adds up, under the same names.
SUMMED_COUNTS = (
    "sent",
    "acked",
    "delivered",
    "lost",
    "duplicated",
    "unacked",
    "delivered_unacked",
    "misrouted",
    "foreign",
    "echoed",
    "duplicate_acks",
    "fanout_duplicated",
    "unexpected_disconnects",
)


def tally(run: FloorRun, results: list[WorkerResult], *, total_agents: int) -> None:
    for r in results:
        for name in SUMMED_COUNTS:
            setattr(run, name, getattr(run, name) + getattr(r, name))
        run.lost_examples.extend(r.lost_examples[: 10 - len(run.lost_examples)])
        for code, n in r.failed.items():
            run.refused[code] = run.refused.get(code, 0) + n
        for name, n in r.other_events.items():
            run.other_events[name] = run.other_events.get(name, 0) + n
    user_acked = sum(r.user_acked for r in results)
    run.fanout_expected = user_acked * total_agents
    run.fanout_received = sum(n for r in results for n in r.fanout_unique.values())
    run.fanout_missing = run.fanout_expected - run.fanout_received
    run.latency_ms = {
        "e2e": stats.summary(stats.merge(r.e2e_us for r in results)),
        "ack": stats.summary(stats.merge(r.ack_us for r in results)),
        "fanout": stats.summary(stats.merge(r.fanout_us for r in results)),
        "scheduler_lag": stats.summary(stats.merge(r.lag_us for r in results)),
    }
    storms = [r for r in results if r.storm_sockets]
    if storms:
        run.storm = {
            "sockets": sum(r.storm_sockets for r in storms),
            "reconnect_failures": sum(r.storm_reconnect_failures for r in storms),
            "all_reconnected_s": _max(r.storm_reconnected_s for r in storms),
            "all_caught_up_s": _max(r.storm_caught_up_s for r in storms),
            "errors": _sum_counts(r.storm_errors for r in storms),
        }


def _sum_counts(counts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, n in c.items():
            out[k] = out.get(k, 0) + n
    return out


def _max(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return round(max(present), 3) if present else None


def account(
    run: FloorRun, server: Usage, generators: list[Usage], server_hwm: int, cfg: FloorConfig
) -> None:
    seconds = cfg.duration_s
    run.throughput = {
        "messages_per_s": round(run.acked / seconds, 1),
        "deliveries_per_s": round(run.delivered / seconds, 1),
        "fanout_per_s": round(run.fanout_received / seconds, 1),
        "offered_per_s": round(cfg.chats * cfg.rate_per_min / 60, 1),
    }
    run.server = {
        "cpu_s": round(server.cpu_seconds, 2),
        "cpu_percent": round(server.cpu_percent, 1),
        "window_s": round(server.wall_seconds, 2),
        "cpu_ms_per_message": round(1000 * server.cpu_seconds / run.acked, 3) if run.acked else 0,
        "peak_rss_mib": round(server.peak_rss_bytes / MIB, 1),
        "hwm_rss_mib": round(server_hwm / MIB, 1),
    }
    run.generator = [
        {
            "cpu_s": round(g.cpu_seconds, 2),
            "cpu_percent": round(g.cpu_percent, 1),
            "peak_rss_mib": round(g.peak_rss_bytes / MIB, 1),
        }
        for g in generators
    ]
    run.generator_bound = (
        any(g.cpu_percent > GENERATOR_BOUND_PERCENT for g in generators)
        or run.latency_ms["scheduler_lag"]["p99"] > GENERATOR_LAG_MS
    )


def setup_summary(run: FloorRun, infos: list[SetupInfo]) -> None:
    started = sum(i.chats_started for i in infos)
    start_s = max(i.start_seconds for i in infos)
    run.setup = {
        "chats_started": started,
        "start_s": round(start_s, 2),
        "starts_per_s": round(started / start_s, 1) if started and start_s else 0,
        "connections": sum(i.connections for i in infos),
        "connect_s": round(max(i.connect_seconds for i in infos), 2),
        "join_s": round(max(i.join_seconds for i in infos), 2),
    }


def judge(run: FloorRun, *, storm: bool = False) -> None:
    checks = {
        "lost (acknowledged, never delivered)": run.lost,
        "duplicated deliveries": run.duplicated,
        "unanswered sends": run.unacked,
        "refused sends": sum(run.refused.values()),
        "delivered but not acknowledged": run.delivered_unacked,
        "misrouted": run.misrouted,
        "user_message fan-out missing": run.fanout_missing,
        "user_message fan-out duplicated": run.fanout_duplicated,
        "unexpected disconnects": run.unexpected_disconnects,
    }
    if storm:
        # user_message is a live notification: an agent hears none while disconnected,
        # and catching up replays new_message only. What the storm cost is reported,
        # not judged.
        del checks["user_message fan-out missing"]
    run.problems = [f"{name}: {n}" for name, n in checks.items() if n]
    if not (run.sent == run.acked == run.delivered):
        run.problems.append(
            f"sent {run.sent}, acknowledged {run.acked}, delivered {run.delivered}: not equal"
        )


def ratios(run: FloorRun, baseline: FloorRun) -> dict[str, float | None]:
    """Each figure of ``run`` divided by ``baseline``'s, from the same run: the real
    server's by the bare relay's, or the cluster's by the one process's."""

    def ratio(figure: Any) -> float | None:
        a, b = figure(run), figure(baseline)
        return round(a / b, 2) if b else None

    return {
        "messages_per_s": ratio(lambda r: r.throughput["messages_per_s"]),
        "e2e_p50": ratio(lambda r: r.latency_ms["e2e"]["p50"]),
        "e2e_p99": ratio(lambda r: r.latency_ms["e2e"]["p99"]),
        "fanout_p99": ratio(lambda r: r.latency_ms["fanout"]["p99"]),
        "server_cpu_s": ratio(lambda r: r.server["cpu_s"]),
        "cpu_ms_per_message": ratio(lambda r: r.server["cpu_ms_per_message"]),
        "peak_rss": ratio(lambda r: r.server["peak_rss_mib"]),
    }


@dataclass
class RampStep:
    chats: int
    runs: dict[str, FloorRun]


def ramp(
    targets: list[str],
    steps: list[int],
    cfg: FloorConfig,
    log_dir: Path | None = None,
    postgres: PostgresCluster | None = None,
) -> tuple[list[RampStep], dict[str, int]]:
    """Raise the number of chats step by step; a target drops out at its first step
    that is not held (p99 over the target, or any loss). Returns the steps and, per
    target, the most chats it held."""
    held: dict[str, int] = dict.fromkeys(targets, 0)
    active = list(targets)
    done: list[RampStep] = []
    for chats in steps:
        if not active:
            break
        step = RampStep(chats, {})
        for target in active:
            step_cfg = FloorConfig(**{**asdict(cfg), "chats": chats})
            run = run_floor(target, step_cfg, log_dir, postgres=postgres)
            step.runs[target] = run
            print_step(run)
            if run.held:
                held[target] = chats
        active = [t for t in active if step.runs[t].held]
        done.append(step)
    return done, held


def print_step(run: FloorRun) -> None:
    lat = run.latency_ms["e2e"]
    gen = max((g["cpu_percent"] for g in run.generator), default=0)
    print(
        f"  {run.target:7} chats={run.chats:5} msgs/s={run.throughput['messages_per_s']:7} "
        f"p50={lat['p50']:7}ms p99={lat['p99']:8}ms max={lat['max']:8}ms "
        f"server cpu={run.server['cpu_percent']:5}% rss={run.server['peak_rss_mib']}MiB "
        + "".join(f"{name} cpu={cpu}% " for name, cpu in run.backing.items())
        + f"gen max cpu={gen}%{' GENERATOR-BOUND' if run.generator_bound else ''} "
        f"{'held' if run.held else 'NOT held'}"
        + (f" problems: {'; '.join(run.problems)}" if run.problems else ""),
        flush=True,
    )
