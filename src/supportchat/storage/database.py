"""Engines and transactions. SQLite and PostgreSQL differ here and nowhere else above SQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..domain.errors import Unavailable

log = logging.getLogger(__name__)

# Errors that mean "the database cannot be reached or is overloaded", as opposed to a
# constraint or programming error: they become a 503 / failed acknowledgement.
# OSError covers the socket errors (ConnectionError, TimeoutError are subclasses);
# PoolTimeout: no connection freed up in time (the database is overloaded).
_UNAVAILABLE = (OperationalError, InterfaceError, OSError, PoolTimeout)


DATABASE_UNAVAILABLE = "The database is unavailable; nothing was changed. Retry shortly"


# SQLSTATEs of a PostgreSQL that is there but will not serve: connection exceptions (08),
# too many connections (53300), shutting down / crashed / starting up (57P01-57P03).
_UNAVAILABLE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03")


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
    return isinstance(exc, _UNAVAILABLE)


class Database:
    """Hands out read and write transactions.

    SQLite allows one writer at a time. Writes go through a one-connection engine whose
    transactions start with BEGIN IMMEDIATE, so they queue in-process instead of failing
    with "database is locked" when a read transaction tries to upgrade. Reads use WAL
    snapshots on a separate pool and never wait for writers.

    Durability: SQLite runs in WAL mode with synchronous=FULL, so a commit is on disk
    when it returns; PostgreSQL keeps its defaults (fsync on, synchronous_commit on).
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.outages = 0  # operations that failed because the database was unavailable
        # Errors must not copy message text (the SQL parameters) into logs.
        common: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            self._writer = create_async_engine(url, pool_size=1, max_overflow=0, **common)
            self._reader = create_async_engine(url, pool_size=4, max_overflow=4, **common)
            _configure_sqlite(self._writer, begin="BEGIN IMMEDIATE")
            _configure_sqlite(self._reader, begin="BEGIN")
        else:
            self._writer = create_async_engine(
                url, pool_size=10, max_overflow=10, pool_pre_ping=True, **common
            )
            self._reader = self._writer

    @property
    def dialect(self) -> str:
        return self._writer.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends without an exception."""
        async with self._translate_outages(), self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._translate_outages(), self._reader.connect() as conn:
            yield conn

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Unavailable:
            return False

    async def dispose(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()

    @asynccontextmanager
    async def _translate_outages(self) -> AsyncIterator[None]:
        try:
            yield
        except Exception as exc:
            if not _is_outage(exc):
                raise
            self.outages += 1
            # One line per failed request; the traceback only when debugging.
            log.warning("database unavailable: %s: %s", type(exc).__name__, _first_line(exc))
            log.debug("database unavailable", exc_info=exc)
            raise Unavailable(DATABASE_UNAVAILABLE) from exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:200] if text else ""


def _configure_sqlite(engine: AsyncEngine, *, begin: str) -> None:
    # The sqlite3 module's own implicit transactions are turned off so that SQLAlchemy's
    # BEGIN is the one that runs (SQLAlchemy's documented recipe for pysqlite/aiosqlite).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
