"""A load-generator process of the REST scenarios: a fixed number of concurrent clients
send one kind of request back to back for a while (closed loop), and report how many
were answered, how fast, and how big the answers were.

Phases over the pipe: the orchestrator sends ``job`` (a :class:`RestJob`), the worker
answers ``done`` (a :class:`RestResult`); ``close`` ends it.
"""

from __future__ import annotations

import array
import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe

import aiohttp

from .seed import AGENT_PREFIX, USER_PREFIX
from .tokens import make_token
from .workers import inbox, run_worker

HISTORY, ACTIVE, DASHBOARD, START, BYTES = "history", "active", "dashboard", "start", "bytes"
READS = {
    HISTORY: "/api/chat/history?limit=10",
    ACTIVE: "/api/chat/admin/active",
    DASHBOARD: "/api/chat/admin/active?limit=50&messages=1",
}


@dataclass(frozen=True)
class RestJob:
    kind: str  # HISTORY, ACTIVE, DASHBOARD, START or BYTES
    base_url: str
    secret: str
    concurrency: int
    duration_s: float
    users: int = 0  # seeded users to pick from (HISTORY)
    agents: int = 0  # seeded agents to pick from (ACTIVE, DASHBOARD)
    size: int = 0  # body size (BYTES)
    tag: str = ""  # makes new users unique (START)


@dataclass
class RestResult:
    pid: int
    answered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    body_bytes: int = 0
    latency_us: bytes = b""


async def run_job(job: RestJob, worker: int) -> RestResult:
    result = RestResult(os.getpid())
    latency = array.array("q")
    rng = random.Random(worker)
    tokens: list[str] = []
    if job.kind == HISTORY:
        tokens = [
            make_token(job.secret, f"{USER_PREFIX}{rng.randrange(job.users)}") for _ in range(500)
        ]
    elif job.kind in (ACTIVE, DASHBOARD):
        tokens = [
            make_token(job.secret, f"{AGENT_PREFIX}{a}", agent=True) for a in range(job.agents)
        ]
    counter = 0
    end = time.monotonic() + job.duration_s
    connector = aiohttp.TCPConnector(limit=job.concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(job.base_url, connector=connector, timeout=timeout) as http:

        async def one() -> None:
            nonlocal counter
            if job.kind == START:
                counter += 1
                token = make_token(job.secret, f"rest-{job.tag}-{worker}-{counter}")
                request = http.post(
                    "/api/chat/start",
                    json={"message": "Hello, I need help with my account"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            elif job.kind == BYTES:
                request = http.get(f"/bytes/{job.size}")
            else:
                headers = {"Authorization": f"Bearer {rng.choice(tokens)}"}
                request = http.get(READS[job.kind], headers=headers)
            t = time.monotonic_ns()
            async with request as response:
                body = await response.read()
            if response.status in (200, 201):
                result.answered += 1
                result.body_bytes += len(body)
                latency.append((time.monotonic_ns() - t) // 1000)
            else:
                key = str(response.status)
                result.errors[key] = result.errors.get(key, 0) + 1

        async def client() -> None:
            while time.monotonic() < end:
                try:
                    await one()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    key = type(exc).__name__
                    result.errors[key] = result.errors.get(key, 0) + 1

        await asyncio.gather(*(client() for _ in range(job.concurrency)))
    result.latency_us = latency.tobytes()
    return result


def rest_main(worker: int, pipe: Pipe) -> None:
    """Process entry point (see workers.Pool); ``worker`` is its index."""

    async def main() -> None:
        orders = inbox(pipe)
        while True:
            phase, job = await orders.get()
            if phase != "job":
                return
            pipe.send(("done", await run_job(job, worker)))

    run_worker(main, pipe)
