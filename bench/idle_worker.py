"""A load-generator process of the idle-capacity scenario: open many user sockets, then
just hold them (answering Engine.IO pings) until told to report and close.

Phases over the pipe: ``ready`` (connected, failed, seconds) -> ``check`` ->
``alive`` (sockets still open, events received) -> ``close``.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from typing import Any

from . import wire
from .tokens import make_token
from .workers import inbox, run_worker


@dataclass(frozen=True)
class IdlePlan:
    index: int
    host: str
    port: int
    secret: str
    run_id: str
    first: int  # user indices [first, first + count)
    count: int
    concurrency: int = 100


@dataclass
class IdleReport:
    connected: int
    failed: int
    seconds: float
    first_error: str = ""


class Holder:
    def __init__(self, plan: IdlePlan) -> None:
        self.plan = plan
        self.conns: list[wire.Connection] = []
        self.closed = 0
        self.events = 0

    def on_event(self, conn: wire.Connection, name: str, data: Any, now_ns: int) -> None:
        self.events += 1

    def on_close(self, conn: wire.Connection) -> None:
        self.closed += 1

    async def open_all(self) -> IdleReport:
        plan = self.plan
        gate = asyncio.Semaphore(plan.concurrency)
        failed = 0
        first_error = ""

        async def one(i: int) -> None:
            nonlocal failed, first_error
            token = make_token(plan.secret, f"idle-{plan.run_id}-{i}")
            async with gate:
                for attempt in range(3):
                    try:
                        conn = await wire.connect(
                            plan.host, plan.port, {"token": token}, self, within=60
                        )
                        self.conns.append(conn)
                        return
                    except (OSError, TimeoutError, wire.ConnectionLost) as exc:
                        if attempt == 2:
                            failed += 1
                            first_error = first_error or repr(exc)
                        await asyncio.sleep(0.5)

        t = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(plan.first, plan.first + plan.count)))
        return IdleReport(len(self.conns), failed, time.monotonic() - t, first_error)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def idle_main(plan: IdlePlan, pipe: Pipe) -> None:
    async def main() -> None:
        raise_fd_limit()
        holder = Holder(plan)
        orders = inbox(pipe)
        pipe.send(("ready", await holder.open_all()))
        phase, _ = await orders.get()
        if phase == "check":
            alive = sum(1 for c in holder.conns if not c.closed)
            pipe.send(("alive", (alive, holder.events)))
            await orders.get()
        for conn in holder.conns:
            conn.close()
        await asyncio.sleep(0.5)

    run_worker(main, pipe)
