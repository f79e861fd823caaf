"""The SQLite database holds token hashes and the audit log: only its owner may read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from pitstop.storage.database import Database
from pitstop.storage.migrate import upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_file_and_its_wal_are_private_to_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "new" / "pitstop.db"
    old = os.umask(0o022)  # the usual umask, which leaves files readable by everyone
    try:
        db = Database.from_url(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(db.engine)
            async with db.transaction() as s:
                await s.execute(text("SELECT 1"))
            assert _mode(path) == 0o600
            assert _mode(path.parent) == 0o700
            wal = path.with_name(path.name + "-wal")
            assert wal.exists()
            assert _mode(wal) == 0o600
        finally:
            await db.close()
    finally:
        os.umask(old)


async def test_an_existing_database_file_keeps_the_mode_its_owner_set(tmp_path: Path) -> None:
    path = tmp_path / "pitstop.db"
    path.touch()
    path.chmod(0o640)
    db = Database.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(db.engine)
    finally:
        await db.close()
    assert _mode(path) == 0o640
