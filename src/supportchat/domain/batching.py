"""Group commit: many requests written in one transaction, each answered after it commits.

A transaction costs a round of statements and a durable commit (an fsync) however few
rows it writes. Under load, requests that arrive while one transaction is being written
wait for it to end and then go together in the next one, so the cost is shared; with
one request at a time, each still has its own. Nothing is answered before the commit
that stored it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741  # the request type
R = TypeVar("R")  # the result type

# A batch writes at most this many requests; the rest wait for the next one. Bounds the
# size of one transaction and of the statements it sends.
MAX_BATCH = 256

# A batch's writer returns, for each request in order, its result or the error that
# refused it alone (a refused request does not fail the others). An exception raised
# by the writer fails the whole batch: its transaction stored nothing.
Write = Callable[[Sequence[I]], Awaitable[Sequence[R | Exception]]]


class GroupCommit(Generic[I, R]):
    """Runs `write` on batches of submitted requests, one batch at a time."""

    def __init__(self, write: Write[I, R], max_batch: int = MAX_BATCH) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, request: I) -> R:
        """Queue a request and wait for its outcome. If the waiting is cancelled, the
        request may still be written (with the others of its batch)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._write_batch(batch)
        finally:
            self._writer = None
            # Cancelled while requests were waiting: they are not left hanging.
            for _request, future in self._pending:
                if not future.done():
                    future.set_exception(RuntimeError("the writer stopped"))
            self._pending.clear()

    async def _write_batch(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._write([request for request, _future in batch])
        except Exception as exc:  # the transaction failed: nothing of it was stored
            for _request, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException as exc:
            for _request, future in batch:
                if not future.done():
                    future.set_exception(RuntimeError(f"the writer stopped: {exc!r}"))
            raise
        for (_request, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its sender stopped waiting
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
