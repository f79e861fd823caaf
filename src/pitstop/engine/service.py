"""Submitting and controlling jobs: the checks a request passes before a job is queued.

Queueing a job takes the device's lock in the same transaction, so two requests can never both
start work on one device. A device in maintenance accepts only deactivation and health checks
(``DEVICE_UNDER_MAINTENANCE``); a device with a job gives ``DEVICE_BUSY``. An
``expected_end`` must be an aware time in the future: the watchdog compares it with the clock,
and a naive time would mean something else on every machine.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pitstop.domain.errors import (
    Conflict,
    DeviceBusy,
    DeviceUnderMaintenance,
    FieldError,
    Forbidden,
    ValidationFailed,
)
from pitstop.domain.jobs import ALLOWED_IN_MAINTENANCE, Job, JobStatus, JobType, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.limits import MAX_REASON, MAX_TICKET, check_text
from pitstop.domain.parameters import resolve
from pitstop.domain.policy import check_allowed, check_force
from pitstop.domain.roles import Actor, Role, Via
from pitstop.engine.workflows import plans
from pitstop.storage.store import Store

_STARTS_FROM = {
    JobType.ACTIVATE: DeviceStatus.ACTIVATED,
    JobType.DEACTIVATE: DeviceStatus.MAINTENANCE,
}


class JobService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def submit(
        self,
        *,
        job_type: JobType,
        device: str,
        fabric: str | None,
        mode: Mode | None,
        advanced_parameters: Mapping[str, Any] | None,
        reason: str | None,
        ticket: str | None,
        expected_end: datetime | None,
        actor: Actor,
        via: Via,
        force: bool = False,
        force_reason: str | None = None,
        override: Mapping[str, Any] | None = None,
    ) -> Job:
        """Queue a job. ``override``: an admin went ahead despite a failed or stale test run;
        what was overridden is audited as ``job.override`` in the same transaction."""
        if actor.role is Role.VIEWER:
            raise Forbidden("viewers may not start jobs")
        check_text("reason", reason, MAX_REASON)
        check_text("force_reason", force_reason, MAX_REASON)
        check_text("ticket", ticket, MAX_TICKET)
        forced = check_force(role=actor.role, force=force, force_reason=force_reason)
        self._check_expected_end(expected_end)
        if job_type is not JobType.ACTIVATE:
            mode = None
        elif mode is None:
            mode = Mode.ACTIVATE
        async with self._store.unit() as u:
            named = await u.fabrics.row(fabric) if fabric else None
            device_id = await u.devices.resolve(device, fabric_id=named.id if named else None)
            dev = await u.devices.get(device_id)
            # The fabric named is the device's: read once (submit's CPU is mostly its reads).
            fabric_row = (
                named
                if named is not None and named.id == dev.fabric_id
                else await u.fabrics.row(str(dev.fabric_id))
            )
            # Refuse bad parameters now, not half-way through the job.
            resolve(dict(fabric_row.parameters or {}), dict(advanced_parameters or {}))
            actor.ensure_may_write(dev.fabric)
            if dev.status is DeviceStatus.MAINTENANCE and job_type not in ALLOWED_IN_MAINTENANCE:
                raise DeviceUnderMaintenance(
                    f"{dev.name} is in maintenance: only deactivation and health checks may run",
                    device=dev.name,
                )
            holder = await u.jobs.lock_holder(dev.id)
            if holder is not None:
                raise DeviceBusy(
                    f"job {holder} is running on {dev.name}; wait for it or cancel it",
                    job_id=str(holder),
                )
            needed = _STARTS_FROM.get(job_type)
            if needed is not None and dev.status is not needed and mode is not Mode.TEST_RUN:
                raise Conflict(
                    f"{dev.name} is {dev.status.value}; "
                    f"{job_type.value} starts from {needed.value}",
                    current_status=dev.status.value,
                )
            if dev.status in (DeviceStatus.DECOMMISSIONED, DeviceStatus.PENDING):
                raise Conflict(f"{dev.name} is {dev.status.value}; no job may run on it")
            if job_type is JobType.ACTIVATE and mode is Mode.ACTIVATE:
                # Refused now rather than half-way; the job checks again when it marks the
                # device draining, which is also where its budget slot is reserved.
                check_allowed(
                    await u.budgets.policy(dev.fabric_id),
                    fabric=dev.fabric,
                    device=dev.name,
                    forced=forced,
                )
            params = {
                "advanced_parameters": dict(advanced_parameters or {}),
                "reason": reason,
                "ticket": ticket,
                "expected_end": expected_end.isoformat() if expected_end else None,
                "via": via.value,
                **({"force_reason": forced} if forced is not None else {}),
            }
            job_id = await u.jobs.enqueue(
                job_type=job_type,
                device_id=dev.id,
                fabric_id=dev.fabric_id,
                mode=mode,
                params=params,
                steps=plans(job_type, mode),
                created_by=actor.name,
            )
            entries: list[tuple[str, dict[str, Any]]] = [
                (
                    "job.submit",
                    {
                        "type": job_type.value,
                        "mode": mode.value if mode else None,
                        **({"forced": forced} if forced is not None else {}),
                    },
                )
            ]
            if override is not None:
                entries.append(("job.override", dict(override)))
            for action, details in entries:
                await u.audit.append(
                    actor=actor.name,
                    action=action,
                    via=via.value,
                    fabric=dev.fabric,
                    device=dev.name,
                    device_id=dev.id,
                    reason=reason,
                    ticket=ticket,
                    job_id=job_id,
                    details=details,
                )
            job = await u.jobs.get(job_id)
        self._store.job_queued.fire()
        return job

    def _check_expected_end(self, expected_end: datetime | None) -> None:
        if expected_end is None:
            return
        problem = None
        if expected_end.tzinfo is None or expected_end.utcoffset() is None:
            problem = "needs a time zone (an offset such as Z or +02:00)"
        elif expected_end <= self._store.clock():
            problem = "must be in the future"
        if problem is not None:
            raise ValidationFailed(f"expected_end {problem}", [FieldError("expected_end", problem)])

    async def cancel(self, job_id: uuid.UUID, *, actor: Actor, via: Via) -> Job:
        return await self._control(job_id, actor=actor, via=via, action="cancel")

    async def retry(self, job_id: uuid.UUID, *, actor: Actor, via: Via) -> Job:
        return await self._control(job_id, actor=actor, via=via, action="retry")

    async def _control(self, job_id: uuid.UUID, *, actor: Actor, via: Via, action: str) -> Job:
        async with self._store.unit() as u:
            job = await u.jobs.get(job_id)
            self._may_control(actor, job)
            if action == "cancel":
                out = await u.jobs.request_cancel(job_id)
            else:
                out = await u.jobs.retry(job_id)
            await u.audit.append(
                actor=actor.name,
                action=f"job.{action}",
                via=via.value,
                fabric=job.fabric,
                device=job.device,
                device_id=job.device_id,
                job_id=job.id,
                details={"attempt": out.attempt},
            )
        if action == "retry":
            self._store.job_queued.fire()
        elif out.status is JobStatus.RUNNING:
            self._store.job_cancel_requested.fire()
        return out

    @staticmethod
    def _may_control(actor: Actor, job: Job) -> None:
        if actor.role is Role.VIEWER or not actor.may_write_fabric(job.fabric):
            raise Forbidden(f"token {actor.name!r} may not control jobs in fabric {job.fabric!r}")
