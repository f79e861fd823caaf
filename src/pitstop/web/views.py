"""What the pages show, read from storage: a device's current job, its status history, its
last health-check results and snapshot diff, and a job's drain measurement.

Everything here is read-only and built from what the engine already records (job steps, their
outputs, log events, and the audit log); the web keeps no state of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pitstop.domain.audit import AuditEntry
from pitstop.domain.errors import ValidationFailed
from pitstop.domain.jobs import Event, Job, JobStatus, JobType, Step
from pitstop.domain.parameters import resolve
from pitstop.domain.step_outputs import (
    HEALTH_STEPS,
    CompareKey,
    DrainKey,
    HealthKey,
    StepName,
    VerdictKey,
)
from pitstop.storage.store import Unit

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


async def current_jobs(u: Unit) -> dict[uuid.UUID, Job]:
    """The queued or running job of each device that has one."""
    page = await u.jobs.page(statuses=ACTIVE, limit=500)
    out: dict[uuid.UUID, Job] = {}
    for job in page.items:
        out.setdefault(job.device_id, job)
    return out


async def status_history(u: Unit, device_id: uuid.UUID, limit: int = 20) -> list[AuditEntry]:
    page = await u.audit.query(device_id=device_id, action="device.status", limit=limit)
    return [e for e in page.items if e.to_status]


async def job_transitions(u: Unit, job: Job) -> list[AuditEntry]:
    """The device's status changes since this job was created, oldest first."""
    page = await u.audit.query(
        device_id=job.device_id, action="device.status", since=job.created_at, limit=50
    )
    return list(reversed([e for e in page.items if e.to_status]))


@dataclass(frozen=True, slots=True)
class HealthResult:
    job: Job
    step: Step
    checks: list[dict[str, Any]]
    overall: str | None


def health_of(job: Job) -> HealthResult | None:
    """The health-check results a job measured (its last health step with output)."""
    for step in reversed(job.steps):
        if step.name in HEALTH_STEPS and step.output.get(HealthKey.CHECKS):
            return HealthResult(
                job=job,
                step=step,
                checks=[c for c in step.output[HealthKey.CHECKS] if c.get("status") != "skip"],
                overall=step.output.get(HealthKey.OVERALL),
            )
    return None


async def last_health(u: Unit, device_id: uuid.UUID) -> HealthResult | None:
    for summary in (await u.jobs.page(device_id=device_id, limit=20)).items:
        found = health_of(await u.jobs.get(summary.id))
        if found is not None:
            return found
    return None


def diff_of(job: Job) -> dict[str, Any] | None:
    step = step_named(job, StepName.COMPARE)
    if step is None or not step.output.get(CompareKey.COMPARED):
        return None
    return dict(step.output)


async def last_diff(u: Unit, device_id: uuid.UUID) -> tuple[Job, dict[str, Any]] | None:
    page = await u.jobs.page(device_id=device_id, job_type=JobType.DEACTIVATE, limit=10)
    for summary in page.items:
        job = await u.jobs.get(summary.id)
        found = diff_of(job)
        if found is not None:
            return job, found
    return None


def step_named(job: Job, name: str) -> Step | None:
    return next((s for s in job.steps if s.name == name), None)


@dataclass(frozen=True, slots=True)
class Drain:
    samples: list[tuple[float, float]]  # (seconds since the drain began, transit pps)
    limit: float | None
    done: bool

    @property
    def latest(self) -> float | None:
        return self.samples[-1][1] if self.samples else None

    def polyline(self, width: int = 520, height: int = 140) -> str:
        """SVG points for the samples, scaled to the box (the first sample is the top)."""
        if not self.samples:
            return ""
        t_max = max(self.samples[-1][0], 1.0)
        v_max = max(max(v for _, v in self.samples), 1.0)
        return " ".join(
            f"{t / t_max * width:.1f},{height - v / v_max * height:.1f}" for t, v in self.samples
        )

    @property
    def peak(self) -> float:
        return max((v for _, v in self.samples), default=0.0)

    @property
    def span(self) -> float:
        return self.samples[-1][0] if self.samples else 0.0

    def limit_y(self, height: int = 140) -> float | None:
        if self.limit is None or not self.samples:
            return None
        v_max = max(max(v for _, v in self.samples), 1.0)
        return round(height - min(self.limit / v_max, 1.0) * height, 1)


def drain_of(job: Job, events: Sequence[Event]) -> Drain | None:
    """The drain measurement: from the finished step's output, or while it runs, from the
    log events it writes at every sample."""
    step = step_named(job, StepName.VERIFY_DRAIN)
    if step is None:
        return None
    if step.output.get(DrainKey.SAMPLES):
        samples = [
            (float(s[DrainKey.T]), float(s[DrainKey.PPS])) for s in step.output[DrainKey.SAMPLES]
        ]
        return Drain(samples, step.output.get(DrainKey.LIMIT_PPS), True)
    live = [
        (float(e.data[DrainKey.ELAPSED_S]), float(e.data[DrainKey.TRANSIT_PPS]))
        for e in events
        if e.step == StepName.VERIFY_DRAIN
        and DrainKey.TRANSIT_PPS in e.data
        and DrainKey.ELAPSED_S in e.data
    ]
    return Drain(live, drain_limit(job), False) if live or step else None


def drain_limit(job: Job) -> float:
    """The residual traffic the job's drain must get under: the limit its parameters,
    resolved at submit, give the engine. A job stored before they were kept shows its
    overrides over the built-in defaults (what it showed then)."""
    if job.request.effective is not None:
        return job.request.effective.drain.max_residual_pps
    try:
        return resolve(dict(job.request.overrides)).drain.max_residual_pps
    except ValidationFailed:
        return resolve().drain.max_residual_pps


def summarise_problems(job: Job) -> list[str]:
    verdict = step_named(job, StepName.VERDICT)
    if verdict is not None and verdict.output.get(VerdictKey.PROBLEMS):
        return [str(p) for p in verdict.output[VerdictKey.PROBLEMS]]
    return [job.error] if job.error else []


def distinct(values: Iterable[str]) -> list[str]:
    return sorted({v for v in values if v})
