"""Jobs as values: their types, statuses, steps and log events.

A job runs one workflow on one device as an ordered list of steps. Steps are idempotent, so a
worker that takes over a job whose worker died re-runs the interrupted step safely (at-least-
once execution). Which steps exist, and what they do, is the engine's business; here are only
the values every layer shares.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pitstop.domain.job_requests import JobRequest


class JobType(enum.StrEnum):
    ACTIVATE = "maintenance.activate"
    DEACTIVATE = "maintenance.deactivate"
    HEALTHCHECK = "healthcheck"


class Mode(enum.StrEnum):
    TEST_RUN = "test_run"
    ACTIVATE = "activate"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    # Undone by a rollback: a retry runs it again.
    ROLLED_BACK = "rolled_back"
    # Interrupted while running by a cancel of its job; the job's undo ran after it.
    CANCELLED = "cancelled"


class Level(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# Jobs that may run on a device in maintenance; anything else is DEVICE_UNDER_MAINTENANCE.
ALLOWED_IN_MAINTENANCE: frozenset[JobType] = frozenset({JobType.DEACTIVATE, JobType.HEALTHCHECK})


@dataclass(frozen=True, slots=True)
class StepPlan:
    name: str
    expected_s: float
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Step:
    idx: int
    name: str
    status: StepStatus
    started_at: datetime | None
    finished_at: datetime | None
    expected_s: float
    timeout_s: float
    runs: int
    output: Mapping[str, Any]
    error: str | None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Job:
    id: uuid.UUID
    type: JobType
    device_id: uuid.UUID
    device: str
    fabric_id: uuid.UUID
    fabric: str
    mode: Mode | None
    request: JobRequest
    status: JobStatus
    progress: int
    current_step: str | None
    result: Mapping[str, Any]
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    cancel_requested: bool
    lease_owner: str | None
    lease_epoch: int
    lease_expires_at: datetime | None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    job_id: uuid.UUID
    at: datetime
    level: Level
    step: str | None
    device: str | None
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)
