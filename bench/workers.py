"""Load-generator processes and the little message protocol between them and the
orchestrator (tuples over a multiprocessing pipe: ``(phase, payload)``)."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any

ERROR = "error"


def run_worker(
    main: Callable[[], Coroutine[Any, Any, None]], pipe: multiprocessing.connection.Connection
) -> None:
    """A worker process's body: `main` under uvloop; a crash is reported to the
    orchestrator as ``(ERROR, traceback)`` before it propagates."""
    import uvloop

    try:
        uvloop.run(main())
    except BaseException:
        with contextlib.suppress(OSError):
            pipe.send((ERROR, traceback.format_exc()))
        raise


def inbox(pipe: multiprocessing.connection.Connection) -> asyncio.Queue[tuple[str, Any]]:
    """In a worker's event loop: a queue that receives what the orchestrator sends (an EOF
    arrives as ``("close", None)``)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def readable() -> None:
        while pipe.poll():
            try:
                queue.put_nowait(pipe.recv())
            except EOFError:
                loop.remove_reader(pipe.fileno())
                queue.put_nowait(("close", None))
                return

    loop.add_reader(pipe.fileno(), readable)
    # The loop made the descriptor non-blocking; a large pipe.send() (a worker's results)
    # would then fail half-way with EAGAIN. Reads only happen once poll() saw data.
    os.set_blocking(pipe.fileno(), True)
    return queue


class WorkerFailed(RuntimeError):
    pass


class Pool:
    """Start one process per plan running ``target(plan, pipe)``; ``gather(phase)`` waits
    for every worker's message of that phase. Used as a context manager: leaving it ends
    the workers (politely, then by force)."""

    def __init__(self, target: Callable[[Any, Any], None], plans: Sequence[Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipes: list[multiprocessing.connection.Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        for plan in plans:
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=target, args=(plan, child_end), daemon=True)
            proc.start()
            child_end.close()
            self._pipes.append(parent_end)
            self._procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def send_all(self, phase: str, payload: Any = None) -> None:
        for pipe in self._pipes:
            pipe.send((phase, payload))

    def gather(self, phase: str, timeout: float) -> list[Any]:
        """Each worker's payload for ``phase``, in worker order."""
        deadline = time.monotonic() + timeout
        out: list[Any] = [None] * len(self._pipes)
        waiting = dict(enumerate(self._pipes))
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailed(
                    f"workers {sorted(waiting)} sent no {phase!r} in {timeout:.0f} s"
                )
            ready = multiprocessing.connection.wait(list(waiting.values()), timeout=left)
            for i, pipe in list(waiting.items()):
                if pipe not in ready:
                    continue
                try:
                    got, payload = pipe.recv()
                except EOFError:
                    raise WorkerFailed(f"worker {i} exited during {phase!r}") from None
                if got == ERROR:
                    raise WorkerFailed(f"worker {i} failed during {phase!r}:\n{payload}")
                if got != phase:
                    raise WorkerFailed(f"worker {i} sent {got!r}, expected {phase!r}")
                out[i] = payload
                del waiting[i]
        return out

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(("close", None))
        deadline = time.monotonic() + 15
        for proc in self._procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in self._pipes:
            pipe.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
