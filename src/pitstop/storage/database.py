"""Connecting to the database: one async engine, and transactions that behave the same on
SQLite and PostgreSQL.

SQLite allows one writer. Every transaction opens with ``BEGIN IMMEDIATE`` so that a
transaction which reads and then writes takes the write lock up front and waits (for
``busy_timeout``) instead of failing on a stale snapshot halfway through. WAL mode lets readers
carry on meanwhile.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from pitstop.storage.connector import Connector, PostgresConnector, SqliteConnector


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, busy_timeout_ms: int = 5000, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:":
            _private_file(Path(path))
        memory = not path or path == ":memory:"
        # A file database keeps a small pool: opening a connection (and its PRAGMAs) costs
        # more than most transactions here. An in-memory one must not be shared.
        engine = (
            create_async_engine(
                url, connect_args={"timeout": busy_timeout_ms / 1000}, poolclass=NullPool
            )
            if memory
            else create_async_engine(
                url,
                connect_args={"timeout": busy_timeout_ms / 1000},
                pool_size=pool_size,
                max_overflow=pool_size,
            )
        )
        _sqlite_transactions(engine, busy_timeout_ms)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _private_file(path: Path) -> None:
    """Create the database file (and the directory pitstop makes for it) readable by its owner
    only, before SQLite opens it: it holds the token hashes and the audit log. SQLite gives
    its ``-wal`` and ``-shm`` files the mode of the database file. An existing file is left as
    its owner set it."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    # The mode given to os.open passes through the umask, which can only take bits away.
    os.fchmod(fd, 0o600)
    os.close(fd)


def _sqlite_transactions(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engine plus a session factory; ``transaction()`` is the unit of work."""

    def __init__(self, engine: AsyncEngine, *, busy_timeout_ms: int = 5000) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._busy_timeout_ms = busy_timeout_ms
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.sqlite else None
        self._connector: Connector | None = None

    @classmethod
    def from_url(cls, url: str, *, busy_timeout_ms: int = 5000) -> Database:
        return cls(
            create_engine(url, busy_timeout_ms=busy_timeout_ms), busy_timeout_ms=busy_timeout_ms
        )

    @property
    def connector(self) -> Connector:
        """The raw driver connection for the engine's hot path (``connector.py``)."""
        if self._connector is None:
            if self.sqlite:
                path = self.engine.url.database
                if not path or path == ":memory:":
                    raise RuntimeError("the job engine needs a file database on SQLite")
                self._connector = SqliteConnector(
                    path, busy_timeout_ms=self._busy_timeout_ms, turn=self.write_turn
                )
            else:
                self._connector = PostgresConnector(self.engine)
        return self._connector

    def write_turn(self) -> Any:
        """This process's turn to write (SQLite); PostgreSQL writers need no turn."""
        return self._write_lock if self._write_lock is not None else nullcontext()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.

        On SQLite the transactions of one process take turns (every one is a writer): many
        concurrent tasks polling SQLite's busy handler starve each other past the busy
        timeout, while a queue in the process is fair and only processes contend for the file.
        """
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._connector is not None:
            await self._connector.close()
            self._connector = None
        await self.engine.dispose()
