"""Submitting and controlling jobs: the checks a request passes before a job is queued.

Queueing a job takes the device's lock in the same transaction, so two requests can never both
start work on one device. A device in maintenance accepts only deactivation and health checks
(``DEVICE_UNDER_MAINTENANCE``); a device with a job gives ``DEVICE_BUSY``. An
``expected_end`` must be an aware time in the future: the watchdog compares it with the clock,
and a naive time would mean something else on every machine. Taking a device out of service
needs a reason, and an activation after a test run needs that test run passed and still the
device's latest job (``activate_tested``). These rules are here, not in a client, so the API,
the web and campaigns all meet the same ones.

The job's parameters are resolved here, once, and stored with it (``JobRequest``).
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
from pitstop.domain.job_requests import JobRequest
from pitstop.domain.jobs import ALLOWED_IN_MAINTENANCE, Job, JobStatus, JobType, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.limits import MAX_REASON, MAX_TICKET, check_text
from pitstop.domain.parameters import AdvancedParameters, resolve
from pitstop.domain.policy import check_allowed, check_force
from pitstop.domain.roles import Actor, Role, Via
from pitstop.engine.workflows import plans
from pitstop.storage.store import Store, Unit

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
        parameters: AdvancedParameters | None = None,
    ) -> Job:
        """Queue a job. ``override``: an admin went ahead despite a failed or stale test run;
        what was overridden is audited as ``job.override`` in the same transaction.
        ``parameters``: run with these, already resolved (an activation after its test run),
        instead of resolving ``advanced_parameters`` over the fabric's defaults now."""
        if actor.role is Role.VIEWER:
            raise Forbidden("viewers may not start jobs")
        check_text("reason", reason, MAX_REASON)
        check_text("force_reason", force_reason, MAX_REASON)
        check_text("ticket", ticket, MAX_TICKET)
        forced = check_force(role=actor.role, force=force, force_reason=force_reason)
        problems = self.request_problems(
            job_type=job_type, reason=reason, expected_end=expected_end
        )
        if problems:
            raise ValidationFailed("; ".join(f"{p.field} {p.message}" for p in problems), problems)
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
            # Resolved once, here: every run of the job (a retry, a takeover) uses these, so
            # a fabric default changed later never changes what a queued job does. Bad
            # parameters are refused now, not half-way through the job.
            effective = parameters or resolve(
                dict(fabric_row.parameters or {}), dict(advanced_parameters or {})
            )
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
            request = JobRequest(
                reason=reason,
                ticket=ticket,
                expected_end=expected_end,
                via=via,
                force_reason=forced,
                overrides=dict(advanced_parameters or {}),
                effective=effective,
            )
            job_id = await u.jobs.enqueue(
                job_type=job_type,
                device_id=dev.id,
                fabric_id=dev.fabric_id,
                mode=mode,
                request=request,
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

    def request_problems(
        self, *, job_type: JobType, reason: str | None, expected_end: datetime | None
    ) -> list[FieldError]:
        """What is wrong with a request, field by field: ``submit`` refuses it with these, and
        a form shows them beside its own parse errors before submitting."""
        problems: list[FieldError] = []
        if job_type is JobType.ACTIVATE and not (reason or "").strip():
            # It goes into the audit row and the device's maintenance record.
            problems.append(FieldError("reason", "say why the device goes into maintenance"))
        if expected_end is not None:
            if expected_end.tzinfo is None or expected_end.utcoffset() is None:
                problems.append(
                    FieldError("expected_end", "needs a time zone (an offset such as Z or +02:00)")
                )
            elif expected_end <= self._store.clock():
                problems.append(FieldError("expected_end", "must be in the future"))
        return problems

    async def activate_tested(
        self, test_run: uuid.UUID, *, actor: Actor, via: Via, override: bool = False
    ) -> Job:
        """Activate with what a test run checked: its reason, ticket, expected end and the
        very parameters it ran with. The test run must have passed and be the device's
        latest job (another job since means its verdict may no longer describe the device);
        otherwise only an admin, with ``override``, goes ahead, audited as ``job.override``."""
        async with self._store.unit() as u:
            test = await u.jobs.get(test_run)
            if test.type is not JobType.ACTIVATE or test.mode is not Mode.TEST_RUN:
                raise Conflict(f"job {test.id} is not a test run")
            newer = await newer_job(u, test)
        failed = test.status is not JobStatus.SUCCEEDED
        if failed or newer is not None:
            if not override:
                why = (
                    "another job ran on this device after this test run; run the test again"
                    if newer is not None
                    else f"the test run is {test.status.value}; activation needs a passed test run"
                )
                raise Conflict(f"{why} (an admin may override)", current_status=test.status.value)
            if actor.role is not Role.ADMIN:
                raise Forbidden("only an admin may activate despite a failed or stale test run")
        request = test.request
        return await self.submit(
            job_type=JobType.ACTIVATE,
            device=str(test.device_id),
            fabric=None,
            mode=Mode.ACTIVATE,
            advanced_parameters=request.overrides,
            parameters=request.effective,
            reason=request.reason,
            ticket=request.ticket,
            expected_end=request.expected_end,
            actor=actor,
            via=via,
            override={
                "test_run": str(test.id),
                "test_run_status": test.status.value,
                "newer_job": str(newer) if newer is not None else None,
            }
            if failed or newer is not None
            else None,
        )

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


async def newer_job(u: Unit, job: Job) -> uuid.UUID | None:
    """The device's latest job when it is not ``job``: a test run followed by another job is
    stale, since that job may have changed the device."""
    latest = (await u.jobs.page(device_id=job.device_id, limit=1)).items
    return latest[0].id if latest and latest[0].id != job.id else None
