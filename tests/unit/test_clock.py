"""Reading a stored instant back: one rule for the ORM's columns, SQLite's raw text and
asyncpg's aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pitstop.storage.clock import as_utc

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "stored",
    [
        NOON,
        NOON.replace(tzinfo=None),  # SQLite's ORM columns
        NOON.astimezone(timezone(timedelta(hours=2))),  # an aware time in another zone
        "2026-03-01 12:00:00.000000",  # SQLite's raw connection
        "2026-03-01T14:00:00+02:00",
    ],
)
def test_every_spelling_of_one_instant_reads_back_as_the_same_utc_time(stored: object) -> None:
    got = as_utc(stored)
    assert got == NOON
    assert got is not None and got.utcoffset() == timedelta(0)
    assert got.tzinfo is UTC


def test_nothing_stored_reads_back_as_nothing() -> None:
    assert as_utc(None) is None
