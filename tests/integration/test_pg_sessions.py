"""The engine's PostgreSQL connections go back to their pool without asyncpg's session reset
(``connector._keep_session``). That is safe only while nothing on them outlives its
transaction; these tests keep it so."""

from __future__ import annotations

import ast
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import pitstop.storage
from pitstop.storage.connector import PostgresConnector, Query
from pitstop.storage.database import Database

pytestmark = pytest.mark.postgres

STORAGE = Path(pitstop.storage.__file__).parent
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|SET|LISTEN|DECLARE|CREATE)\b", re.I)
# Session state that a connection would carry to the next borrower of the pool.
SESSION_STATE = re.compile(
    r"pg_(try_)?advisory_lock(_shared)?\s*\("  # session advisory locks (xact ones end)
    r"|^\s*LISTEN\b"
    r"|(^|;)\s*SET\s+(?!LOCAL\b)(SESSION\s+)?\w+\s*(=|\bTO\b)"  # SET x = (not SET LOCAL)
    r"|\bset_config\s*\([^)]*,\s*false\s*\)"
    r"|\bDECLARE\b.*\bWITH\s+HOLD\b"
    r"|\bCREATE\s+TEMP",
    re.I | re.S,
)


def sql_strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and SQL_START.match(node.value)
    ]


def session_state(sql: str) -> bool:
    return SESSION_STATE.search(sql) is not None


def test_the_checker_knows_session_state_from_transaction_state() -> None:
    assert session_state("SELECT pg_advisory_lock(?)")
    assert session_state("LISTEN pitstop")
    assert session_state("SET statement_timeout = 0")
    assert session_state("SELECT set_config('x', 'y', false)")
    assert not session_state("SELECT pg_advisory_xact_lock(?)")
    assert not session_state("SET LOCAL statement_timeout = 0")
    assert not session_state("UPDATE jobs SET status = ? WHERE id = ?")


def test_no_named_query_of_storage_takes_session_state() -> None:
    found = {
        f"{path.name}: {sql[:80]!r}"
        for path in sorted(STORAGE.glob("*.py"))
        for sql in sql_strings(path)
        if session_state(sql)
    }
    assert not found, f"these would leak into the next transaction on the connection: {found}"
    # The scan does see the queries: the claim's transaction-scoped lock is among them.
    assert any("pg_advisory_xact_lock" in s for s in sql_strings(STORAGE / "leases.py"))


async def test_a_connection_goes_back_to_the_pool_without_a_reset(pg_database: str) -> None:
    db = Database.from_url(pg_database)
    connector = PostgresConnector(db.engine, max_size=1)  # every call gets the same one
    try:
        await connector.fetchone("SELECT set_config('application_name', 'kept', false)", ())
        # asyncpg's default reset (RESET ALL) would have put the default name back.
        assert await connector.fetchone("SELECT current_setting('application_name')", ()) == (
            "kept",
        )
    finally:
        await connector.close()
        await db.close()


async def test_a_failed_transaction_leaves_no_lock_or_transaction_behind(
    pg_database: str,
) -> None:
    db = Database.from_url(pg_database)
    connector = PostgresConnector(db.engine, max_size=1)
    dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other = await asyncpg.connect(dsn)

    def locks_then_fails() -> Generator[Query, Any, None]:
        yield Query("SELECT pg_advisory_xact_lock(?)", (4242,), fetch=True)
        raise RuntimeError("the body gave up")

    try:
        with pytest.raises(RuntimeError):
            await connector.transaction(locks_then_fails)
        assert await other.fetchval("SELECT pg_try_advisory_lock(4242)") is True
        await other.execute("SELECT pg_advisory_unlock(4242)")

        # The pool's one connection is usable: a new transaction opens on it.
        def reads() -> Generator[Query, Any, Any]:
            row = yield Query("SELECT 1", fetch=True)
            return row

        assert await connector.transaction(reads) == (1,)
    finally:
        await other.close()
        await connector.close()
        await db.close()
