"""References: the API and CLI name things by UUID or by name; this resolves either."""

from __future__ import annotations

import uuid


def as_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None
