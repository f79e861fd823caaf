"""Cursor pagination: an opaque cursor that encodes the sort key of the last row returned."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pitstop.domain.errors import FieldError, ValidationFailed

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValidationFailed(
            "bad cursor", [FieldError("cursor", "not a cursor from a listing")]
        ) from exc
    if not isinstance(key, list) or len(key) != size:
        raise ValidationFailed(
            "bad cursor", [FieldError("cursor", "not a cursor from this listing")]
        )
    return key
