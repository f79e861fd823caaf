"""Shared fixtures: a fake clock, and a freshly migrated database per test on SQLite and on
PostgreSQL.

Migrations run once per session into a template (a SQLite file, a PostgreSQL template
database); every test then gets its own copy, so tests never see each other's rows.

PostgreSQL is found at ``PITSTOP_TEST_PG`` (a base URL such as
``postgresql+asyncpg://postgres@127.0.0.1:5432``; a database in it names the database used for
administration, ``test`` by default). When it cannot be reached the ``postgres`` tests are
skipped, except under ``CI=true``, where that is an error.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from pitstop.storage.database import Database, create_engine
from pitstop.storage.migrate import upgrade
from pitstop.storage.store import Store

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
PG_ADMIN_DATABASE = "test"
START = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)

T = TypeVar("T")


# The clock ----------------------------------------------------------------------------------


class FakeClock:
    """A settable clock: returns the same aware UTC instant until moved."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now

    def set(self, now: datetime) -> None:
        assert now.tzinfo is not None, "the clock hands out aware datetimes"
        self.now = now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Helpers ------------------------------------------------------------------------------------


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code (session-scoped fixtures), even
    when that code was reached from inside a running event loop (``getfixturevalue`` in an
    async fixture): then it runs on a loop of its own in another thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def migrate_url(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _quote(name: str) -> str:
    assert name.replace("_", "").isalnum(), name
    return f'"{name}"'


# SQLite -------------------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, made once per session; copy it, never open it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    run_blocking(lambda: migrate_url(sqlite_url(path)))
    # Fold the write-ahead log into the main file so that copying that one file is enough.
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return path


class SqliteCopies:
    """Fresh copies of the template file, each kept open by an idle connection until closed.

    Whenever the last connection to a WAL database closes, SQLite checkpoints and fsyncs. The
    idle connection held here (it holds no lock and starts no transaction) keeps that from
    happening each time pitstop closes its connections (after every transaction without a
    pool, or when a ``Database`` is closed), which keeps the suite fast without changing
    anything the tests observe."""

    def __init__(self, template: Path, directory: Path) -> None:
        self._template = template
        self._directory = directory
        self._keepers: list[sqlite3.Connection] = []

    def __call__(self) -> str:
        dest = self._directory / f"{_unique('pitstop')}.db"
        shutil.copyfile(self._template, dest)
        keeper = sqlite3.connect(dest)
        keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
        self._keepers.append(keeper)
        return sqlite_url(dest)

    def close(self) -> None:
        for keeper in self._keepers:
            keeper.close()
        self._keepers.clear()


@pytest.fixture
def fresh_sqlite_url(sqlite_template: Path, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Call it for another fresh migrated SQLite database (e.g. once per hypothesis example);
    returns the database's URL."""
    copies = SqliteCopies(sqlite_template, tmp_path)
    try:
        yield copies
    finally:
        copies.close()


# PostgreSQL ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgServer:
    base: URL  # postgresql+asyncpg://user@host:port, no database
    admin_database: str

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    def dsn(self, database: str) -> str:
        """The same address for asyncpg itself (which does not know SQLAlchemy's driver name)."""
        return self.base.set(drivername="postgresql", database=database).render_as_string(
            hide_password=False
        )

    async def admin(self, sql: str) -> None:
        con = await asyncpg.connect(self.dsn(self.admin_database), timeout=10)
        try:
            await con.execute(sql)
        finally:
            await con.close()

    async def create_database(self, name: str, *, template: str | None = None) -> None:
        tpl = f" TEMPLATE {_quote(template)}" if template else ""
        await self.admin(f"CREATE DATABASE {_quote(name)}{tpl}")

    async def drop_database(self, name: str) -> None:
        await self.admin(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")


def _pg_server_from_env() -> PgServer:
    url = make_url(os.environ.get("PITSTOP_TEST_PG") or DEFAULT_PG)
    if url.drivername != "postgresql+asyncpg":
        url = url.set(drivername="postgresql+asyncpg")
    return PgServer(url.set(database=None), url.database or PG_ADMIN_DATABASE)


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    """The PostgreSQL server, checked once; skips (or fails under CI) when it is not there."""
    server = _pg_server_from_env()

    async def probe() -> None:
        con = await asyncpg.connect(server.dsn(server.admin_database), timeout=5)
        await con.close()

    try:
        run_blocking(probe)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        where = server.url(server.admin_database)
        message = f"PostgreSQL is not reachable at {where}: {exc!r}"
        if _in_ci():
            pytest.fail(
                f"{message}. CI=true, so the postgres tests must run: start the server or "
                "point PITSTOP_TEST_PG at it.",
                pytrace=False,
            )
        pytest.skip(f"{message} (set PITSTOP_TEST_PG to run the postgres tests)")
    return server


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> Iterator[str]:
    """A PostgreSQL database migrated to head, made once per session; clone it, never open it."""
    name = _unique("pitstop_tpl")

    async def make() -> None:
        await pg_server.create_database(name)
        await migrate_url(pg_server.url(name))

    try:
        run_blocking(make)
        yield name
    finally:
        run_blocking(lambda: pg_server.drop_database(name))


class PgClones:
    """Per-test clones of the template database, made ahead of time and dropped afterwards
    on worker threads, so that the (fsync-bound) CREATE and DROP DATABASE overlap with the
    tests instead of adding to their time. Creating and dropping have separate workers so
    that a backlog of drops never holds up the next test."""

    AHEAD = 4

    def __init__(self, server: PgServer, template: str) -> None:
        self._server = server
        self._template = template
        self._creators = concurrent.futures.ThreadPoolExecutor(3, "pg-create")
        self._droppers = concurrent.futures.ThreadPoolExecutor(4, "pg-drop")
        self._ready: collections.deque[concurrent.futures.Future[str]] = collections.deque()
        self._drops: list[concurrent.futures.Future[None]] = []

    def _create(self, template: str | None) -> str:
        name = _unique("pitstop_t")
        asyncio.run(self._server.create_database(name, template=template))
        return name

    def _drop(self, name: str) -> None:
        asyncio.run(self._server.drop_database(name))

    def take(self) -> str:
        """The name of a fresh clone, for one test only."""
        while len(self._ready) <= self.AHEAD:
            self._ready.append(self._creators.submit(self._create, self._template))
        return self._ready.popleft().result()

    def blank(self) -> str:
        """The name of a new empty (never migrated) database, for one test only."""
        return self._creators.submit(self._create, None).result()

    def give_back(self, name: str) -> None:
        self._drops.append(self._droppers.submit(self._drop, name))

    def close(self) -> None:
        try:
            for made in self._ready:
                with contextlib.suppress(Exception):  # a failed create left nothing to drop
                    self.give_back(made.result())
            for dropped in self._drops:
                dropped.result()
        finally:
            self._creators.shutdown(wait=True)
            self._droppers.shutdown(wait=True)


@pytest.fixture(scope="session")
def pg_clones(pg_server: PgServer, pg_template: str) -> Iterator[PgClones]:
    clones = PgClones(pg_server, pg_template)
    try:
        yield clones
    finally:
        clones.close()


@pytest.fixture
def pg_database(pg_server: PgServer, pg_clones: PgClones) -> Iterator[str]:
    """A fresh migrated PostgreSQL database for one test (a clone of the template, dropped
    after the test); returns its URL."""
    name = pg_clones.take()
    try:
        yield pg_server.url(name)
    finally:
        pg_clones.give_back(name)


# The database under test ----------------------------------------------------------------------

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh database migrated to head, on each backend in turn."""
    if request.param == "sqlite":
        fresh: Callable[[], str] = request.getfixturevalue("fresh_sqlite_url")
        return fresh()
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def store(db: Database, clock: FakeClock) -> Store:
    return Store(db, clock=clock)
