"""API tokens: a scannable ``pst_`` prefix, and only a SHA-256 hash is ever stored."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pitstop.domain.limits import MAX_DURATION
from pitstop.domain.roles import Role

PREFIX = "pst_"
_TOKEN = re.compile(r"pst_[A-Za-z0-9_-]{32,}")
_DURATION = re.compile(r"\s*([0-9]{1,12})\s*([smhdw])\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    return bool(_TOKEN.fullmatch(token))


def display_prefix(token: str) -> str:
    """The part shown in listings so a person can tell tokens apart: ``pst_AbCd1234``."""
    return token[: len(PREFIX) + 8]


def looks_like_duration(text: str) -> bool:
    """Digits and a unit (``30d``), however many digits: a duration, if perhaps too long."""
    return bool(re.fullmatch(r"\s*[0-9]+\s*[smhdw]\s*", text))


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` or ``45s``; longer than zero, at most ten years."""
    m = _DURATION.fullmatch(text)
    if not m and looks_like_duration(text):
        raise ValueError(f"a duration may be at most {MAX_DURATION.days} days (ten years)")
    if not m:
        raise ValueError(f"{text[:40]!r} is not a duration like 30d, 12h, 90m, 2w or 45s")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds == 0:
        raise ValueError("a duration must be longer than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"a duration may be at most {MAX_DURATION.days} days (ten years)")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: uuid.UUID
    name: str
    role: Role
    fabrics: tuple[str, ...]
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at
