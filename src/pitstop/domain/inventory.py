"""Inventory values: fabrics, redundancy groups and devices, as the rest of pitstop sees them."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pitstop.domain.lifecycle import DeviceStatus

# A count beyond any fleet, and small enough for every integer column.
MAX_BUDGET = 1_000_000
_BUDGET = re.compile(r"\s*([0-9]{1,12})\s*(%?)\s*")


@dataclass(frozen=True, slots=True)
class Budget:
    """``max_unavailable`` of a redundancy group: a count, or a percentage of its members."""

    value: int
    percent: bool = False

    @classmethod
    def parse(cls, text: str | int) -> Budget:
        if isinstance(text, int) and not isinstance(text, bool):
            if text < 0:
                raise ValueError("must not be negative")
            if text > MAX_BUDGET:
                raise ValueError(f"must be at most {MAX_BUDGET}")
            return cls(text)
        m = _BUDGET.fullmatch(str(text))
        if not m:
            raise ValueError(f"{text!r} is neither a count (2) nor a percentage (25%)")
        value, pct = int(m.group(1)), bool(m.group(2))
        if pct and value > 100:
            raise ValueError("a percentage must be at most 100%")
        if value > MAX_BUDGET:
            raise ValueError(f"a count must be at most {MAX_BUDGET}")
        return cls(value, pct)

    def slots(self, members: int) -> int:
        """How many members may be unavailable at once. A percentage rounds down, but a
        non-zero percentage of a non-empty group always allows one, so a group can be
        maintained at all."""
        if not self.percent:
            return self.value
        if self.value == 0 or members == 0:
            return 0
        return max(1, math.floor(members * self.value / 100))

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


@dataclass(frozen=True, slots=True)
class Fabric:
    id: uuid.UUID
    name: str
    description: str
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    # Fabric defaults for advanced_parameters: a partial mapping over the built-in defaults.
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RedundancyGroup:
    id: uuid.UUID
    fabric_id: uuid.UUID
    name: str
    max_unavailable: Budget
    description: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Connection:
    """How a driver reaches a device. Never a secret: ``credentials_ref`` names where the
    secret lives (``env:VAR``, ``file:/path``), and only the driver resolves it."""

    host: str | None = None
    port: int | None = None
    credentials_ref: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MaintenanceInfo:
    reason: str | None = None
    ticket: str | None = None
    requested_by: str | None = None
    entered_at: datetime | None = None
    expected_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Device:
    id: uuid.UUID
    fabric_id: uuid.UUID
    fabric: str
    name: str
    role: str
    driver: str
    connection: Connection
    labels: dict[str, str]
    groups: tuple[str, ...]
    status: DeviceStatus
    status_reason: str | None
    status_changed_by: str | None
    status_changed_at: datetime | None
    maintenance: MaintenanceInfo
    needs_attention: bool
    attention_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
