"""Campaigns as stored and shown: the campaign, each of its devices, and its log lines."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pitstop.domain.campaigns import CampaignState, DeviceState
from pitstop.domain.jobs import Level


@dataclass(frozen=True, slots=True)
class Campaign:
    id: uuid.UUID
    name: str
    fabric_id: uuid.UUID
    fabric: str
    spec: Mapping[str, Any]
    state: CampaignState
    plan: Mapping[str, Any]
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    lease_owner: str | None
    lease_epoch: int
    lease_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class CampaignDevice:
    position: int
    device_id: uuid.UUID
    name: str
    role: str
    groups: tuple[str, ...]
    after: tuple[str, ...]
    wave: int
    canary: bool
    state: DeviceState
    step: str | None = None
    job_id: uuid.UUID | None = None
    started_at: datetime | None = None
    phase_started_at: datetime | None = None
    finished_at: datetime | None = None
    soak_until: datetime | None = None
    hang_warned: bool = False
    approved_by: str | None = None
    # How slow it was next to its peers in earlier campaigns (None: never seen before).
    pace: float | None = None
    action_ran: bool = False
    result: str | None = None
    error: str | None = None

    def duration_s(self, now: datetime) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or now) - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class CampaignEvent:
    id: int
    campaign_id: uuid.UUID
    at: datetime
    level: Level
    device: str | None
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)
