"""Bodies of the jobs API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from pitstop.api.schemas import Strict
from pitstop.domain.jobs import Event, Job, JobStatus, JobType, Mode, Step, StepStatus


class JobIn(Strict):
    type: JobType
    device: str = Field(min_length=1, max_length=63, description="Device name or id")
    fabric: str | None = Field(
        default=None, max_length=63, description="Needed when the name repeats"
    )
    mode: Mode | None = Field(default=None, description="For maintenance.activate")
    advanced_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Overrides; see GET /api/v1/parameters/schema"
    )
    reason: str | None = Field(default=None, max_length=2000)
    ticket: str | None = Field(default=None, max_length=127)
    expected_end: datetime | None = None
    force: bool = Field(
        default=False, description="Admins: start even though the fabric disallows maintenance"
    )
    force_reason: str | None = Field(
        default=None, max_length=2000, description="Required with force; recorded in the audit"
    )


class StepOut(BaseModel):
    idx: int
    name: str
    status: StepStatus
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    expected_s: float
    timeout_s: float
    runs: int
    error: str | None
    output: dict[str, Any]

    @classmethod
    def of(cls, s: Step, *, with_output: bool) -> StepOut:
        output = dict(s.output) if with_output else {}
        # A config backup can be large and holds the device's config: only on request.
        output.pop("config", None)
        return cls(
            idx=s.idx,
            name=s.name,
            status=s.status,
            started_at=s.started_at,
            finished_at=s.finished_at,
            duration_s=s.duration_s,
            expected_s=s.expected_s,
            timeout_s=s.timeout_s,
            runs=s.runs,
            error=s.error,
            output=output,
        )


class JobOut(BaseModel):
    id: uuid.UUID
    type: JobType
    mode: Mode | None
    device: str
    device_id: uuid.UUID
    fabric: str
    status: JobStatus
    progress: int
    current_step: str | None
    reason: str | None
    ticket: str | None
    # The overrides the job was submitted with; the defaults fill in the rest.
    advanced_parameters: dict[str, Any]
    effective_parameters: dict[str, Any] | None = Field(
        description="What the job runs with: the defaults, the fabric's and the overrides, "
        "resolved when it was submitted (null for a job stored before they were kept)"
    )
    result: dict[str, Any]
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    cancel_requested: bool
    worker: str | None
    steps: list[StepOut]

    @classmethod
    def of(cls, j: Job, *, with_output: bool = False) -> JobOut:
        return cls(
            id=j.id,
            type=j.type,
            mode=j.mode,
            device=j.device,
            device_id=j.device_id,
            fabric=j.fabric,
            status=j.status,
            progress=j.progress,
            current_step=j.current_step,
            reason=j.request.reason,
            ticket=j.request.ticket,
            advanced_parameters=dict(j.request.overrides),
            effective_parameters=(
                j.request.effective.model_dump(mode="json") if j.request.effective else None
            ),
            result=dict(j.result),
            error=j.error,
            created_by=j.created_by,
            created_at=j.created_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
            attempt=j.attempt,
            cancel_requested=j.cancel_requested,
            worker=j.lease_owner,
            steps=[StepOut.of(s, with_output=with_output) for s in j.steps],
        )


class EventOut(BaseModel):
    id: int
    at: datetime
    level: str
    step: str | None
    device: str | None
    message: str
    data: dict[str, Any]

    @classmethod
    def of(cls, e: Event) -> EventOut:
        return cls(
            id=e.id,
            at=e.at,
            level=e.level.value,
            step=e.step,
            device=e.device,
            message=e.message,
            data=dict(e.data),
        )
