"""The raw driver connection for the engine's hot path: transactions of named SQL statements,
without the ORM or statement building.

A worker writes at every step boundary (see ``journal.py``). Through the SQLAlchemy session
that cost milliseconds of CPU per step, most of it building statements and, on SQLite, moving
every DBAPI call (cursor, execute, fetch, commit) to aiosqlite's thread and back. Here a
transaction is one call:

- SQLite: a synchronous ``sqlite3`` connection owned by one thread; the whole transaction
  (``BEGIN IMMEDIATE`` to ``COMMIT``) runs there in one hop. It takes the same per-process
  write turn as the SQLAlchemy sessions (``Database.write_turn``), so writers stay fair.
- PostgreSQL: a small asyncpg pool of its own, whose connections cache the prepared
  statements. A connection goes back to the pool without asyncpg's session reset (see
  ``_keep_session``).

Statements are written once with ``?`` placeholders (rewritten to ``$n`` for PostgreSQL).
Values are plain Python (UUID, aware datetime, bool, str, int, JSON already as text) and
converted here to what each driver stores, matching the SQLAlchemy column types.
Schema and migrations stay with SQLAlchemy and Alembic (ADR 0007).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

Row = tuple[Any, ...]
T = TypeVar("T")
log = logging.getLogger("pitstop.storage")
LISTEN_RETRY_S = 0.5  # first wait before listening again, doubled up to the max
LISTEN_RETRY_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class Query:
    """One statement of a transaction body. The body gets back the first row (``fetch``), all
    rows (``fetch_all``) or the number of rows changed; ``rows`` makes it an executemany."""

    sql: str
    args: Sequence[Any] = ()
    rows: Sequence[Sequence[Any]] | None = None
    fetch: bool = False
    fetch_all: bool = False
    lock: str = ""  # e.g. "FOR UPDATE", on PostgreSQL; a SQLite transaction holds the write lock


# A transaction body: yields its queries, gets each one's result back, returns its own. Plain
# generators let one body run synchronously in the SQLite thread and asynchronously on
# asyncpg, with its decisions (fence checks, status transitions, hashes) written once.
Body = Callable[[], Generator[Query, Any, T]]


class Connector(ABC):
    postgres = False
    closed = False

    @abstractmethod
    async def transaction(self, body: Body[T]) -> T:
        """Run ``body`` in one write transaction: committed when it returns, rolled back
        when it raises."""

    @abstractmethod
    async def read(self, body: Body[T]) -> T:
        """Run ``body``, which only reads, without taking a write turn."""

    @abstractmethod
    async def fetchone(self, sql: str, args: Sequence[Any]) -> Row | None:
        """One statement as a transaction of its own, and its first row. On SQLite it takes
        no write turn, so there it may only read."""

    async def notify(self, channel: str, payload: str) -> None:
        """Tell every process listening on ``channel`` (PostgreSQL); SQLite has no such thing,
        and its processes poll."""
        return None

    async def listen(
        self, channel: str, *, on_notice: Callable[[str], None], on_ready: Callable[[], None]
    ) -> None:
        """Deliver ``channel``'s payloads to ``on_notice`` until cancelled, reconnecting as
        needed; ``on_ready`` runs each time the listening (re)starts, since notices sent
        while it was not listening are lost. SQLite: nothing ever arrives."""
        await asyncio.Event().wait()

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

    def _run_sync(self, body: Body[T], begin: str) -> T:
        conn = self._connection()
        conn.execute(begin)
        try:
            steps = body()
            result: Any = None
            while True:
                try:
                    q = steps.send(result)
                except StopIteration as done:
                    conn.execute("COMMIT")
                    value: T = done.value
                    return value
                if q.rows is not None:
                    result = conn.executemany(q.sql, [_sqlite_args(r) for r in q.rows]).rowcount
                    continue
                cursor = conn.execute(q.sql, _sqlite_args(q.args))
                if q.fetch_all:
                    result = [tuple(r) for r in cursor.fetchall()]
                elif q.fetch:
                    row = cursor.fetchone()
                    result = None if row is None else tuple(row)
                    cursor.close()
                else:
                    result = cursor.rowcount
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def transaction(self, body: Body[T]) -> T:
        async with self._turn():
            result: T = await self._call(self._run_sync, body, "BEGIN IMMEDIATE")
            return result

    async def read(self, body: Body[T]) -> T:
        # A deferred transaction: one consistent snapshot, beside any writer (WAL).
        result: T = await self._call(self._run_sync, body, "BEGIN")
        return result

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


# Inside a unit ----------------------------------------------------------------------------


async def drive(body: Body[T], execute: Callable[[Query], Awaitable[Any]]) -> T:
    """Feed each query ``body`` yields to ``execute`` and its result back, on an event loop
    (asyncpg, a unit's session); returns what the body returns."""
    steps = body()
    result: Any = None
    while True:
        try:
            q = steps.send(result)
        except StopIteration as done:
            value: T = done.value
            return value
        result = await execute(q)


async def in_session(session: AsyncSession, body: Body[T]) -> T:
    """Run ``body`` in the transaction of an ORM session, beside the repositories' writes:
    for a named write a unit makes (a queued job cancelled), so that it has one spelling.
    Its statements take plain ``?`` placeholders (no ``?::type`` casts)."""
    postgres = session.get_bind().dialect.name == "postgresql"

    async def execute(q: Query) -> Any:
        if q.rows is not None:
            raise NotImplementedError("executemany in a session")
        parts = f"{q.sql} {q.lock}".split("?") if postgres and q.lock else q.sql.split("?")
        sql = parts[0] + "".join(f":p{n}{part}" for n, part in enumerate(parts[1:]))
        args = q.args if postgres else _sqlite_args(q.args)
        cursor = await session.execute(text(sql), {f"p{n}": v for n, v in enumerate(args)})
        if q.fetch_all:
            return [tuple(r) for r in cursor.all()]
        if q.fetch:
            found = cursor.first()
            return None if found is None else tuple(found)
        return getattr(cursor, "rowcount", 0)

    return await drive(body, execute)


# PostgreSQL --------------------------------------------------------------------------------


def _count(status: str) -> int:
    """Rows changed, from asyncpg's command tag ("UPDATE 1", "INSERT 0 3")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1, $2, ...`` (the named queries hold no literal ?)."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is, instead of asyncpg's default reset
    (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``), a round trip and a
    quarter of the statements of a step.

    Safe because nothing on these connections outlives its transaction: asyncpg still rolls
    back a transaction left open before this runs; pitstop takes only transaction-scoped
    advisory locks (``pg_advisory_xact_lock``), no session ones; cursors close with their
    transaction; no statement here runs ``SET`` (only ``SET LOCAL``, if any) or ``LISTEN``
    (the listener for other processes' notices has a connection of its own, ``notices.py``).
    ``tests/integration/test_pg_sessions.py`` fails if a named query takes session state.
    """


class PostgresConnector(Connector):
    """A small asyncpg pool of its own: checking a connection out of SQLAlchemy's pool costs
    a ping round trip and two greenlet switches, more than a step boundary itself."""

    def __init__(self, engine: AsyncEngine, *, max_size: int = 10) -> None:
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._sql: dict[str, str] = {}

    def _pg(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = _numbered(sql)
        return found

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self.closed:  # a late notice must not open a pool nobody will close
                    raise RuntimeError("the database connection is closed")
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=0, max_size=self._max_size, reset=_keep_session
                    )
        return self._pool

    postgres = True

    async def transaction(self, body: Body[T]) -> T:
        pool = await self._get_pool()
        async with pool.acquire() as raw, raw.transaction():
            return await self._drive(raw, body)

    async def read(self, body: Body[T]) -> T:
        pool = await self._get_pool()
        async with pool.acquire() as raw, raw.transaction(readonly=True):
            return await self._drive(raw, body)

    async def _drive(self, raw: Any, body: Body[T]) -> T:
        async def execute(q: Query) -> Any:
            sql = self._pg(f"{q.sql} {q.lock}" if q.lock else q.sql)
            if q.rows is not None:
                await raw.executemany(sql, q.rows)
                return len(q.rows)
            if q.fetch_all:
                return [tuple(r) for r in await raw.fetch(sql, *q.args)]
            if q.fetch:
                row = await raw.fetchrow(sql, *q.args)
                return None if row is None else tuple(row)
            return _count(await raw.execute(sql, *q.args))

        return await drive(body, execute)

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Row | None:
        pool = await self._get_pool()
        async with pool.acquire() as raw:
            row = await raw.fetchrow(self._pg(sql), *args)
            return None if row is None else tuple(row)

    async def notify(self, channel: str, payload: str) -> None:
        # pg_notify rather than NOTIFY: the channel and payload are parameters, not SQL text.
        await self.fetchone("SELECT pg_notify(?, ?)", (channel, payload))

    async def listen(
        self, channel: str, *, on_notice: Callable[[str], None], on_ready: Callable[[], None]
    ) -> None:
        # A connection of its own, outside the pool: LISTEN is session state, which the pool's
        # connections never keep (``_keep_session``).
        backoff = LISTEN_RETRY_S
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except Exception as exc:  # down, refused, timed out: the polls carry on meanwhile
                log.warning("listening for %s: cannot connect (%s); retrying", channel, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, LISTEN_RETRY_MAX_S)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(channel, lambda *a: on_notice(a[3]))
                backoff = LISTEN_RETRY_S
                on_ready()
                await lost.wait()
                log.warning("listening for %s: connection lost; reconnecting", channel)
            except Exception as exc:
                log.warning("listening for %s failed (%s); retrying", channel, exc)
                await asyncio.sleep(backoff)
            finally:
                # terminate, not close: close waits on the server, which may be gone.
                conn.terminate()

    async def close(self) -> None:
        self.closed = True
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
