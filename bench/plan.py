"""What the orchestrator hands each load-generator process, and what it gets back.

Chat ``i`` (0-based, global) belongs to user ``i`` and is answered by agent
``i % agents``; agent ``a`` runs in worker ``a % workers``. So both ends of every chat
live in the same process, which checks each message's delivery locally; only the
``user_message`` fan-out (every agent hears every user message) crosses processes, and
the orchestrator totals it.

Against several server processes (``ports`` has one per process), user ``i`` connects
to process ``i % n`` and agent ``a`` to process ``a % n``: most chats then have their
two ends on different processes, as they would behind a load balancer.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkerPlan:
    index: int
    kind: str  # "real" or "bare"
    host: str
    ports: tuple[int, ...]  # one per server process
    secret: str
    run_id: str  # makes user/agent ids unique per run
    chats: tuple[int, ...]  # global chat indices this worker drives (both ends)
    agents: tuple[int, ...]  # global agent indices this worker connects
    total_agents: int
    period_s: float  # time between two messages of one side of one chat
    duration_s: float
    message_size: int  # characters per message body
    seed: int
    connect_concurrency: int = 64
    drain_timeout_s: float = 20.0
    # Reconnect storm: at this many seconds after the start every socket of the worker
    # is dropped and reconnects at once, then catches up. None: no storm.
    storm_at_s: float | None = None

    def port_for(self, index: int) -> int:
        """The server process that user (or agent) ``index`` connects to."""
        return self.ports[index % len(self.ports)]


def split_plans(
    *,
    kind: str,
    host: str,
    ports: tuple[int, ...],
    secret: str,
    run_id: str,
    chats: int,
    agents: int,
    workers: int,
    period_s: float,
    duration_s: float,
    message_size: int,
    seed: int,
    storm_at_s: float | None = None,
    drain_timeout_s: float = 20.0,
) -> list[WorkerPlan]:
    workers = max(1, min(workers, agents))
    plans = []
    for w in range(workers):
        mine_agents = tuple(a for a in range(agents) if a % workers == w)
        mine_chats = tuple(i for i in range(chats) if (i % agents) % workers == w)
        plans.append(
            WorkerPlan(
                index=w,
                kind=kind,
                host=host,
                ports=ports,
                secret=secret,
                run_id=run_id,
                chats=mine_chats,
                agents=mine_agents,
                total_agents=agents,
                period_s=period_s,
                duration_s=duration_s,
                message_size=message_size,
                seed=seed * 1000 + w,
                storm_at_s=storm_at_s,
                drain_timeout_s=drain_timeout_s,
            )
        )
    return plans


@dataclass
class SetupInfo:
    """How long the worker's setup took (before the measured window)."""

    chats_started: int = 0
    start_seconds: float = 0.0  # POST /api/chat/start for all its chats (real server only)
    connect_seconds: float = 0.0
    join_seconds: float = 0.0
    connections: int = 0


@dataclass
class WorkerResult:
    index: int
    pid: int
    sent: int = 0
    acked: int = 0
    user_acked: int = 0  # acknowledged user messages: each is owed to every agent
    failed: dict[str, int] = field(default_factory=dict)  # refused sends, by code
    delivered: int = 0  # messages that reached their intended recipient (once counted)
    duplicated: int = 0  # extra deliveries of a message to its recipient
    lost: int = 0  # acknowledged, never delivered
    unacked: int = 0  # sent, neither acknowledged nor refused
    delivered_unacked: int = 0  # delivered but never acknowledged
    foreign: int = 0  # new_message with an id this worker never sent
    misrouted: int = 0  # new_message that reached the wrong chat's peer
    echoed: int = 0  # new_message back to its own sender (replays count here)
    duplicate_acks: int = 0  # acks saying "duplicate": a resend the server recognised
    lost_examples: list[str] = field(default_factory=list)
    fanout_unique: dict[int, int] = field(default_factory=dict)  # per agent index
    fanout_duplicated: int = 0
    other_events: dict[str, int] = field(default_factory=dict)
    unexpected_disconnects: int = 0
    # Latency samples in microseconds, as array('q') bytes.
    e2e_us: bytes = b""
    ack_us: bytes = b""
    fanout_us: bytes = b""
    lag_us: bytes = b""  # how late the scheduler sent each message
    # Reconnect storm (when planned): seconds from the drop to the last socket back,
    # and to the last catch-up answered.
    storm_reconnected_s: float | None = None
    storm_caught_up_s: float | None = None
    storm_reconnect_failures: int = 0
    storm_sockets: int = 0
    storm_errors: dict[str, int] = field(default_factory=dict)  # refusals while catching up
