"""The raw driver connection for the engine's hot path: fenced batches of named SQL statements,
without the ORM or statement building.

A worker writes at every step boundary (see ``journal.py``). Through the SQLAlchemy session
that cost milliseconds of CPU per step, most of it building statements and, on SQLite, moving
every DBAPI call (cursor, execute, fetch, commit) to aiosqlite's thread and back. Here a
transaction is one call:

- SQLite: a synchronous ``sqlite3`` connection owned by one thread; the whole transaction
  (``BEGIN IMMEDIATE`` to ``COMMIT``) runs there in one hop. It takes the same per-process
  write turn as the SQLAlchemy sessions (``Database.write_turn``), so writers stay fair.
- PostgreSQL: the asyncpg connection under a pooled SQLAlchemy connection, whose prepared
  statements asyncpg caches.

Statements are written once with ``?`` placeholders (rewritten to ``$n`` for PostgreSQL).
Values are plain Python (UUID, aware datetime, bool, str, int, JSON already as text) and
converted here to what each driver stores, matching the SQLAlchemy column types.
Schema and migrations stay with SQLAlchemy and Alembic (ADR 0007).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Write:
    """One statement of a fenced batch; ``rows`` makes it an executemany."""

    sql: str
    args: Sequence[Any] = ()
    rows: Sequence[Sequence[Any]] | None = None
    unless_cancelled: bool = False  # skipped when the fence row says a cancel was requested


class Connector:
    """Runs fenced batches: the first statement must return a row (the fence) or nothing is
    written; ``cancelled_column`` names the fence row's column that skips the writes marked
    ``unless_cancelled``."""

    async def fenced(
        self, fence: Write, writes: Sequence[Write], *, cancelled_column: int
    ) -> Row | None:
        raise NotImplementedError

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        """One statement in its own transaction; returns the rows it changed."""
        raise NotImplementedError

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Row | None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


# SQLite ------------------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    # As SQLAlchemy stores them: Uuid as 32 hex digits, UTCDateTime as naive UTC text.
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def _sqlite_args(args: Sequence[Any]) -> list[Any]:
    return [_sqlite_value(v) for v in args]


class SqliteConnector(Connector):
    def __init__(self, path: str, *, busy_timeout_ms: int, turn: Any) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._turn = turn  # () -> async context manager: the process's write turn
        # One thread, one connection: sqlite3 objects stay on the thread that made them.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pitstop-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, timeout=self._busy_timeout_ms / 1000, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _fenced_sync(self, fence: Write, writes: Sequence[Write], cancelled_column: int) -> Any:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(fence.sql, _sqlite_args(fence.args)).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                return None
            cancelled = bool(row[cancelled_column])
            for w in writes:
                if w.unless_cancelled and cancelled:
                    continue
                if w.rows is not None:
                    if w.rows:
                        conn.executemany(w.sql, [_sqlite_args(r) for r in w.rows])
                else:
                    conn.execute(w.sql, _sqlite_args(w.args))
            conn.execute("COMMIT")
            return tuple(row)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def fenced(
        self, fence: Write, writes: Sequence[Write], *, cancelled_column: int
    ) -> Row | None:
        async with self._turn():
            result: Row | None = await self._call(
                self._fenced_sync, fence, writes, cancelled_column
            )
            return result

    def _execute_sync(self, sql: str, args: Sequence[Any]) -> int:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            count = conn.execute(sql, _sqlite_args(args)).rowcount
            conn.execute("COMMIT")
            return count
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        async with self._turn():
            count: int = await self._call(self._execute_sync, sql, args)
            return count

    def _fetchone_sync(self, sql: str, args: Sequence[Any]) -> Row | None:
        row = self._connection().execute(sql, _sqlite_args(args)).fetchone()
        return None if row is None else tuple(row)

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Row | None:
        # A read needs no write turn: WAL lets it run beside a writer.
        row: Row | None = await self._call(self._fetchone_sync, sql, args)
        return row

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._call(self._close_sync)
        self._thread.shutdown(wait=True)


# PostgreSQL --------------------------------------------------------------------------------


def _numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1, $2, ...`` (the named queries hold no literal ?)."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


class PostgresConnector(Connector):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sql: dict[str, str] = {}

    def _pg(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = _numbered(sql)
        return found

    async def fenced(
        self, fence: Write, writes: Sequence[Write], *, cancelled_column: int
    ) -> Row | None:
        # The pooled connection's asyncpg driver, in a transaction of our own: SQLAlchemy's
        # adapter has none open on a fresh checkout, so returning it to the pool is a no-op.
        async with self._engine.connect() as sa_conn:
            raw = (await sa_conn.get_raw_connection()).driver_connection
            assert raw is not None
            async with raw.transaction():
                row = await raw.fetchrow(self._pg(fence.sql), *fence.args)
                if row is None:
                    return None
                cancelled = bool(row[cancelled_column])
                for w in writes:
                    if w.unless_cancelled and cancelled:
                        continue
                    if w.rows is not None:
                        if w.rows:
                            await raw.executemany(self._pg(w.sql), w.rows)
                    else:
                        await raw.execute(self._pg(w.sql), *w.args)
                return tuple(row)

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        async with self._engine.connect() as sa_conn:
            raw = (await sa_conn.get_raw_connection()).driver_connection
            assert raw is not None
            status: str = await raw.execute(self._pg(sql), *args)
            # asyncpg returns the command tag, e.g. "UPDATE 1".
            return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Row | None:
        async with self._engine.connect() as sa_conn:
            raw = (await sa_conn.get_raw_connection()).driver_connection
            assert raw is not None
            row = await raw.fetchrow(self._pg(sql), *args)
            return None if row is None else tuple(row)
