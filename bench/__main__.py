"""``python -m bench``: load benchmarks of supportchat, each against the real server and,
in the same run, the bare python-socketio relay (bench/bare_relay.py).

  python -m bench floor --chats 200 --agents 10 --duration 30      the support floor
  python -m bench floor --ramp --agents 20 --duration 15           the most chats held
  python -m bench floor --chats 300 --profile                      + py-spy of the server
  python -m bench storm --chats 300 --agents 10                    reconnect storm
  python -m bench cluster --processes 3 --chats 300 --agents 10    1 process against 3
                                                     (PostgreSQL, Redis)
  python -m bench idle --sockets 10000                             idle capacity
  python -m bench rest                                             REST, large database

Each writes <stamp>-<scenario>.json and .md under --out (default bench/results/) and
prints the Markdown. The exit status is 1 when an acknowledged message was lost, or a
message delivered twice or to the wrong chat.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import report
from .servers import BARE, CLUSTER, REAL

if TYPE_CHECKING:
    from tests.support.postgres import PostgresCluster

    from .scenarios.floor import FloorConfig

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DEFAULT_RAMP = "100,200,300,400,600,800,1000,1200,1500,2000"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    floor = commands.add_parser("floor", help="users and agents chatting at a fixed rate")
    _floor_options(floor)
    _ramp_options(floor)
    _profile_option(floor)

    storm = commands.add_parser("storm", help="every socket drops and reconnects at once")
    _floor_options(storm, chats=300, duration=20.0)
    storm.add_argument(
        "--storm-at",
        type=float,
        default=8.0,
        help="seconds into the run when every socket drops (default 8)",
    )

    clustered = commands.add_parser(
        "cluster",
        help="the floor against one process and against several on PostgreSQL and Redis",
    )
    _floor_options(clustered, chats=300, targets=False)
    _ramp_options(clustered)
    _profile_option(clustered)
    clustered.add_argument(
        "--processes", type=int, default=3, help="server processes in the cluster (default 3)"
    )

    idle = commands.add_parser("idle", help="connected sockets held idle: RSS per socket")
    idle.add_argument("--sockets", type=int, default=10000)
    idle.add_argument(
        "--hold",
        type=float,
        default=30.0,
        help="seconds to hold them (default 30: past one Engine.IO ping)",
    )
    idle.add_argument("--workers", type=int, default=2)
    _common(idle)

    rest = commands.add_parser("rest", help="REST endpoints against a large database")
    rest.add_argument("--tickets", type=int, default=100_000)
    rest.add_argument("--messages", type=int, default=1_000_000)
    rest.add_argument("--users", type=int, default=20_000)
    rest.add_argument("--active", type=int, default=1_000, help="active chats among the tickets")
    rest.add_argument("--agents", type=int, default=20)
    rest.add_argument("--clients", type=int, default=8, help="concurrent clients per process")
    rest.add_argument("--duration", type=float, default=15.0, help="seconds per endpoint")
    rest.add_argument("--workers", type=int, default=2)
    _common(rest)

    args = parser.parse_args(argv)
    if args.command == "rest":
        from .scenarios.rest import run_rest_command

        return run_rest_command(args)
    if args.command == "idle":
        from .scenarios.idle import run_idle_command

        return run_idle_command(args)
    return run_floor_command(args)


def _common(p: argparse.ArgumentParser, *, targets: bool = True) -> None:
    if targets:
        p.add_argument(
            "--target",
            choices=["both", REAL, BARE],
            default="both",
            help="both (default): the real server and the bare relay, in one run",
        )
        p.add_argument(
            "--no-baseline",
            dest="target",
            action="store_const",
            const=REAL,
            help="the real server only",
        )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    p.add_argument(
        "--database-url",
        default=None,
        help="the real server's database (default: SQLite in a temporary directory; "
        "for `cluster`, a throwaway PostgreSQL with a new database per run)",
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="where the real server's data directory is created (e.g. /dev/shm to "
        "take the disk out); default: the system's temporary directory",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the real server (repeatable), e.g. "
        "SUPPORTCHAT_RATE_LIMITS_ENABLED=false",
    )


def _profile_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        action="store_true",
        help="record the real server (in a cluster, its first process) with py-spy "
        "during the window",
    )


def _ramp_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ramp",
        action="store_true",
        help="raise the number of chats (--ramp-steps) until p99 > 100 ms or a loss",
    )
    p.add_argument("--ramp-steps", default=DEFAULT_RAMP, help=f"default {DEFAULT_RAMP}")


def _floor_options(
    p: argparse.ArgumentParser, chats: int = 200, duration: float = 30.0, *, targets: bool = True
) -> None:
    p.add_argument("--chats", type=int, default=chats, help="active chats = users")
    p.add_argument("--agents", type=int, default=10)
    p.add_argument("--duration", type=float, default=duration, help="seconds of sending")
    p.add_argument(
        "--rate",
        type=float,
        default=30.0,
        help="messages per minute per chat, user and agent together (default 30)",
    )
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--message-size", type=int, default=100, help="characters per message")
    p.add_argument("--seed", type=int, default=1)
    _common(p, targets=targets)


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("SUPPORTCHAT_"):
            raise SystemExit(f"--server-env wants SUPPORTCHAT_NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def _targets(args: Any) -> list[str]:
    return [REAL, BARE] if args.target == "both" else [args.target]


def run_floor_command(args: Any) -> int:
    from .scenarios import floor

    cfg = floor.FloorConfig(
        chats=args.chats,
        agents=args.agents,
        duration_s=args.duration,
        rate_per_min=args.rate,
        workers=args.workers,
        message_size=args.message_size,
        database_url=args.database_url,
        seed=args.seed,
        storm_at_s=getattr(args, "storm_at", None),
        data_root=args.data_root,
        server_env=_env_pairs(args.server_env),
        processes=getattr(args, "processes", 3),
    )
    if args.command != "cluster":
        return _floor_runs(args, cfg, _targets(args), (REAL, BARE))
    from . import cluster

    with contextlib.ExitStack() as stack:
        postgres = None
        if not cfg.database_url:
            postgres = stack.enter_context(cluster.own_postgres(args.out / "logs"))
        elif not cfg.database_url.startswith("postgresql"):
            raise SystemExit("cluster: --database-url must be a PostgreSQL URL")
        return _floor_runs(args, cfg, [REAL, CLUSTER], (CLUSTER, REAL), postgres)


def _floor_runs(
    args: Any,
    cfg: FloorConfig,
    targets: list[str],
    compared: tuple[str, str],
    postgres: PostgresCluster | None = None,
) -> int:
    """The floor (or ramp) against each target in turn; ``compared`` names the pair whose
    ratios the results show (the first's figures divided by the second's)."""
    from .scenarios import floor

    machine = report.machine()
    logs = args.out / "logs"
    prefix = "cluster-" if args.command == "cluster" else ""
    if getattr(args, "ramp", False):
        steps = [int(s) for s in args.ramp_steps.split(",") if s.strip()]
        print(f"ramp over {steps} chats: {', '.join(targets)}", flush=True)
        done, held = floor.ramp(targets, steps, cfg, logs, postgres)
        cfg_line = (
            f"{cfg.agents} agents, {cfg.rate_per_min:g} messages/minute per chat, "
            f"{cfg.duration_s:g} s per step, {cfg.workers} generator process(es)"
        )
        md = report.ramp_markdown(done, held, machine, cfg_line, compared)
        data: dict[str, Any] = {
            "scenario": "ramp",
            "machine": machine,
            "config": asdict(cfg),
            "held": held,
            "steps": [
                {"chats": s.chats, "runs": {t: r.as_dict() for t, r in s.runs.items()}}
                for s in done
            ],
        }
        paths = report.write(args.out, f"{prefix}ramp", data, md)
        print(md)
        print(f"wrote {paths[0]} and {paths[1]}")
        return 0 if all(r.intact for s in done for r in s.runs.values()) else 1

    name = {"storm": "storm", "cluster": "cluster"}.get(args.command, "floor")
    runs: dict[str, floor.FloorRun] = {}
    for target in targets:
        profile_to = None
        if getattr(args, "profile", False) and target == compared[0]:
            profile_to = args.out / f"{report.stamp()}-profile-{target}-{cfg.chats}.txt"
        print(f"{name}: {target}, {cfg.chats} chats ...", flush=True)
        runs[target] = floor.run_floor(target, cfg, logs, profile_to, postgres)
        floor.print_step(runs[target])
    ratios = floor.ratios(*(runs[t] for t in compared)) if set(compared) <= set(runs) else None
    md = report.floor_markdown(runs, ratios, machine, compared)
    for run in runs.values():
        if run.profile and "own" in run.profile:
            from .profile import markdown

            md += f"\n### Where the {run.target} server's time goes\n\n"
            md += f"Raw profile (speedscope opens it): `{run.profile['raw']}`\n\n"
            md += markdown(run.profile, cfg.duration_s)
        elif run.profile:
            md += f"\nprofile failed: {run.profile.get('error')}\n"
    data = {
        "scenario": name,
        "machine": machine,
        "config": asdict(cfg),
        "runs": {t: r.as_dict() for t, r in runs.items()},
        "ratios": ratios,
    }
    paths = report.write(args.out, name, data, md)
    print(md)
    print(f"wrote {paths[0]} and {paths[1]}")
    # The bare relay keeps nothing, so what it drops in a storm is not a finding.
    judged = [r for r in runs.values() if name != "storm" or r.target == REAL]
    return 0 if all(r.intact for r in judged) else 1


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SIGTERM's default action ends the process without unwinding, so the servers the
    # scenarios start would live on (and skew the next run's figures); SystemExit runs
    # their `finally: server.stop()`.
    sys.exit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())
