"""Alembic migrations on SQLite and PostgreSQL: they reach head, match the models, and can be
run again."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from pitstop.domain.audit import GENESIS
from pitstop.storage.database import Database, create_engine
from pitstop.storage.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    schema_drift,
    upgrade,
)
from pitstop.storage.tables import Base


def test_migration_history_has_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [head_revision()]


async def test_upgrade_reaches_head_and_matches_the_models(blank_database_url: str) -> None:
    engine = create_engine(blank_database_url)
    try:
        assert await current_revision(engine) is None
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        assert await schema_drift(engine) == []

        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent(blank_database_url: str) -> None:
    engine = create_engine(blank_database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        assert await schema_drift(engine) == []
        async with engine.connect() as conn:
            heads = (await conn.execute(text("SELECT id, seq, hash FROM audit_head"))).all()
        assert [tuple(r) for r in heads] == [(1, 0, GENESIS)]  # seeded once, not twice
    finally:
        await engine.dispose()


async def test_per_test_database_is_migrated_and_empty(db: Database) -> None:
    """The copied/cloned template every other test runs on is at head, drift-free and empty."""
    assert await current_revision(db.engine) == head_revision()
    assert await schema_drift(db.engine) == []
    await upgrade(db.engine)  # upgrading an already migrated copy changes nothing
    assert await current_revision(db.engine) == head_revision()
    async with db.transaction() as s:
        for table in Base.metadata.tables:
            rows = (await s.execute(text(f"SELECT * FROM {table}"))).all()
            if table == "audit_head":
                # The chain's head starts at genesis, so the first appends lock a row.
                assert [tuple(r) for r in rows] == [(1, 0, GENESIS)]
            else:
                assert rows == [], table
