"""The wall clock, injected so tests can run on fake time, and the one place an instant read
back from a database is made aware and UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, overload

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | str) -> datetime: ...
@overload
def as_utc(value: Any) -> datetime | None: ...
def as_utc(value: Any) -> datetime | None:
    """An instant as a driver or the ORM hands it back, aware and in UTC. Everything pitstop
    stores is UTC: SQLite's ORM columns come back naive, its raw connection gives text,
    asyncpg gives aware datetimes."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
