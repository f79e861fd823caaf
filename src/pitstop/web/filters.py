"""Jinja filters: how statuses, times, durations and numbers read on a page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment

from pitstop.domain.health import fmt

# Every status gets a colour *and* its name as text, so colour is never the only signal.
_TONE = {
    "activated": "ok",
    "succeeded": "ok",
    "pass": "ok",
    "draining": "busy",
    "undraining": "busy",
    "running": "busy",
    "queued": "idle",
    "pending": "idle",
    "skipped": "idle",
    "skip": "idle",
    "rolled_back": "warn",
    "maintenance": "maint",
    "warn": "warn",
    "warning": "warn",
    "cancelled": "warn",
    "error": "bad",
    "failed": "bad",
    "fail": "bad",
    "decommissioned": "idle",
    # Campaigns and their devices.
    "created": "idle",
    "validating": "busy",
    "validation_failed": "bad",
    "paused": "warn",
    "stopping": "warn",
    "aborting": "warn",
    "aborted": "warn",
    "rolling_back": "busy",
    "entering": "busy",
    "action": "busy",
    "awaiting_approval": "maint",
    "exiting": "busy",
    "soaking": "busy",
    "done": "ok",
}


def tone(status: object) -> str:
    return _TONE.get(str(status), "idle")


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def clock(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0.1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes} min {rest:02d} s"


def pace(value: float | None) -> str:
    """A device's pace next to its peers in earlier campaigns, as ``campaign show`` prints it."""
    return "—" if value is None else f"{value:.2f}x"


def number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, int | float):
        return fmt(float(value))
    if isinstance(value, list | tuple):
        return ", ".join(number(v) for v in value) or "none"
    return str(value)


def label_text(path: str) -> str:
    return path.rsplit(".", 1)[-1].replace("_", " ")


def install(env: Environment) -> None:
    env.filters.update(
        tone=tone,
        when=when,
        clock=clock,
        seconds=seconds,
        number=number,
        label_text=label_text,
        pace=pace,
    )
