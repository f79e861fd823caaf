"""Jobs, their steps and events, device locks, and the fenced writes of the rarer paths.

A worker *claims* a job by taking its lease: the job's ``lease_epoch`` grows by one and the
worker remembers it. Every later write the worker makes for that job starts with ``fence()``,
which locks the job row and checks the epoch; a worker whose lease was taken over (a zombie,
back from a long pause) gets ``LeaseLost`` and its transaction writes nothing.

Claims, heartbeats and every fenced write of a running job are in ``leases.py``,
``journal.py`` and ``transitions.py``, on the raw connection (listed in ``writes.py``); this
repository keeps enqueue, reads, cancel and retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.errors import Conflict, DeviceBusy, FieldError, NotFound, ValidationFailed
from pitstop.domain.job_requests import JobRequest
from pitstop.domain.jobs import (
    Event,
    Job,
    JobStatus,
    JobType,
    Level,
    Mode,
    Step,
    StepPlan,
    StepStatus,
)
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.connector import in_session
from pitstop.storage.journal import JobEnd, end_job
from pitstop.storage.pages import Page, decode_cursor, encode_cursor
from pitstop.storage.refs import as_uuid
from pitstop.storage.tables import (
    DeviceLockRow,
    DeviceRow,
    FabricRow,
    JobEventRow,
    JobRow,
    JobStepRow,
)

# Core tables for the hot path: the fenced writes a worker makes at every step.
JOBS = cast(Table, JobRow.__table__)
STEPS = cast(Table, JobStepRow.__table__)
EVENTS = cast(Table, JobEventRow.__table__)

CLAIM_LOCK_KEY = 0x70697473  # "pits": serialises claims across replicas on PostgreSQL


def _step(row: JobStepRow) -> Step:
    return Step(
        idx=row.idx,
        name=row.name,
        status=StepStatus(row.status),
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at),
        expected_s=row.expected_s,
        timeout_s=row.timeout_s,
        runs=row.runs,
        output=row.output or {},
        error=row.error,
    )


def job_from_row(row: JobRow, device: str, fabric: str, steps: Sequence[JobStepRow] = ()) -> Job:
    created = as_utc(row.created_at)
    assert created
    return Job(
        id=row.id,
        type=JobType(row.type),
        device_id=row.device_id,
        device=device,
        fabric_id=row.fabric_id,
        fabric=fabric,
        mode=Mode(row.mode) if row.mode else None,
        request=JobRequest.from_json(row.params),
        status=JobStatus(row.status),
        progress=row.progress,
        current_step=row.current_step,
        result=row.result or {},
        error=row.error,
        created_by=row.created_by,
        created_at=created,
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at),
        attempt=row.attempt,
        cancel_requested=row.cancel_requested,
        lease_owner=row.lease_owner,
        lease_epoch=row.lease_epoch,
        lease_expires_at=as_utc(row.lease_expires_at),
        steps=tuple(_step(s) for s in sorted(steps, key=lambda s: s.idx)),
    )


class JobRepository:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._s = session
        self._clock = clock
        self._pg = session.bind.dialect.name == "postgresql" if session.bind else False

    # Queue -------------------------------------------------------------------------------

    async def enqueue(
        self,
        *,
        job_type: JobType,
        device_id: uuid.UUID,
        fabric_id: uuid.UUID,
        mode: Mode | None,
        request: JobRequest,
        steps: Sequence[StepPlan],
        created_by: str,
    ) -> uuid.UUID:
        """Insert a queued job and take the device's lock, in the caller's transaction."""
        now = self._clock()
        await self._take_lock(device_id, None)
        job_id = uuid.uuid4()
        self._s.add(
            JobRow(
                id=job_id,
                type=job_type.value,
                device_id=device_id,
                fabric_id=fabric_id,
                mode=mode.value if mode else None,
                params=request.to_json(),
                status=JobStatus.QUEUED.value,
                progress=0,
                result={},
                created_by=created_by,
                created_at=now,
                attempt=1,
                cancel_requested=False,
                lease_epoch=0,
            )
        )
        self._s.add_all(
            JobStepRow(
                job_id=job_id,
                idx=i,
                name=p.name,
                status=StepStatus.PENDING.value,
                expected_s=p.expected_s,
                timeout_s=p.timeout_s,
                runs=0,
                output={},
            )
            for i, p in enumerate(steps)
        )
        await self._s.flush()
        self._s.add(DeviceLockRow(device_id=device_id, job_id=job_id, acquired_at=now))
        try:
            await self._s.flush()
        except IntegrityError as exc:  # a concurrent enqueue won the lock
            raise DeviceBusy("another job holds this device", device_id=str(device_id)) from exc
        return job_id

    async def _take_lock(self, device_id: uuid.UUID, job_id: uuid.UUID | None) -> None:
        holder = await self._s.scalar(
            select(DeviceLockRow.job_id).where(DeviceLockRow.device_id == device_id)
        )
        if holder is not None and holder != job_id:
            raise DeviceBusy(
                f"job {holder} is running on this device; wait for it or cancel it",
                job_id=str(holder),
            )

    async def lock_holder(self, device_id: uuid.UUID) -> uuid.UUID | None:
        return await self._s.scalar(
            select(DeviceLockRow.job_id).where(DeviceLockRow.device_id == device_id)
        )

    # Reading -----------------------------------------------------------------------------

    async def get(self, job_id: uuid.UUID) -> Job:
        found = (
            await self._s.execute(
                select(JobRow, DeviceRow.name, FabricRow.name)
                .join(DeviceRow, DeviceRow.id == JobRow.device_id)
                .join(FabricRow, FabricRow.id == JobRow.fabric_id)
                .where(JobRow.id == job_id)
                # Fenced writes go through Core: always read the rows afresh.
                .execution_options(populate_existing=True)
            )
        ).one_or_none()
        if found is None:
            raise NotFound(f"job {job_id} does not exist", kind="job")
        row, device, fabric = found
        steps = list(
            await self._s.scalars(
                select(JobStepRow)
                .where(JobStepRow.job_id == job_id)
                .execution_options(populate_existing=True)
            )
        )
        return job_from_row(row, device, fabric, steps)

    async def page(
        self,
        *,
        device_id: uuid.UUID | None = None,
        statuses: Sequence[JobStatus] = (),
        job_type: JobType | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Job]:
        """Newest first, without steps."""
        q = (
            select(JobRow, DeviceRow.name, FabricRow.name)
            .join(DeviceRow, DeviceRow.id == JobRow.device_id)
            .join(FabricRow, FabricRow.id == JobRow.fabric_id)
            .order_by(JobRow.created_at.desc(), JobRow.id.desc())
            .limit(limit + 1)
        )
        if device_id is not None:
            q = q.where(JobRow.device_id == device_id)
        if statuses:
            q = q.where(JobRow.status.in_([s.value for s in statuses]))
        if job_type is not None:
            q = q.where(JobRow.type == job_type.value)
        if cursor:
            at, last_id = decode_cursor(cursor, 2)
            last = as_uuid(str(last_id))
            try:
                when = datetime.fromisoformat(str(at))
            except ValueError:
                last = None
            if last is None:
                raise ValidationFailed(
                    "bad cursor", [FieldError("cursor", "not a cursor from this listing")]
                )
            q = q.where(
                or_(
                    JobRow.created_at < when,
                    and_(JobRow.created_at == when, JobRow.id < last),
                )
            )
        rows = list((await self._s.execute(q)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = None
        if more:
            last_row = rows[-1][0]
            created = as_utc(last_row.created_at)
            assert created
            nxt = encode_cursor([created.isoformat(), str(last_row.id)])
        return Page([job_from_row(r, d, f) for r, d, f in rows], nxt)

    async def events(self, job_id: uuid.UUID, *, after: int = 0, limit: int = 500) -> list[Event]:
        rows = await self._s.scalars(
            select(JobEventRow)
            .where(JobEventRow.job_id == job_id, JobEventRow.id > after)
            .order_by(JobEventRow.id)
            .limit(limit)
        )
        return [
            Event(
                id=r.id,
                job_id=r.job_id,
                at=as_utc(r.at) or self._clock(),
                level=Level(r.level),
                step=r.step,
                device=r.device,
                message=r.message,
                data=r.data or {},
            )
            for r in rows
        ]

    # Control -----------------------------------------------------------------------------

    async def request_cancel(self, job_id: uuid.UUID) -> Job:
        row = await self._s.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
        if row is None:
            raise NotFound(f"job {job_id} does not exist", kind="job")
        status = JobStatus(row.status)
        if status.finished:
            raise Conflict(f"job {job_id} already {status.value}", job_status=status.value)
        if status is JobStatus.QUEUED:
            # Never started: nothing to undo. The job end every path writes, in this session.
            end = JobEnd(JobStatus.CANCELLED, {}, error="cancelled")
            await in_session(self._s, lambda: end_job(row.id, end, self._clock()))
        else:
            row.cancel_requested = True
            await self._s.flush()
        return await self.get(job_id)

    async def retry(self, job_id: uuid.UUID) -> Job:
        """Queue a failed job again: it resumes at its first step that did not succeed."""
        row = await self._s.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
        if row is None:
            raise NotFound(f"job {job_id} does not exist", kind="job")
        if row.status != JobStatus.FAILED.value:
            raise Conflict(f"only a failed job can be retried; this one is {row.status}")
        await self._take_lock(row.device_id, row.id)
        now = self._clock()
        if await self.lock_holder(row.device_id) is None:
            self._s.add(DeviceLockRow(device_id=row.device_id, job_id=row.id, acquired_at=now))
        await self._s.execute(
            update(JobStepRow)
            .where(
                JobStepRow.job_id == job_id,
                or_(
                    # Validation always runs again: the device may have moved on since.
                    JobStepRow.idx == 0,
                    JobStepRow.status.in_(
                        [
                            StepStatus.FAILED.value,
                            StepStatus.ROLLED_BACK.value,
                            StepStatus.RUNNING.value,
                        ]
                    ),
                ),
            )
            .values(status=StepStatus.PENDING.value, error=None)
            .execution_options(synchronize_session=False)
        )
        row.status = JobStatus.QUEUED.value
        row.attempt += 1
        row.error = None
        row.finished_at = None
        row.cancel_requested = False
        try:
            await self._s.flush()
        except IntegrityError as exc:
            raise DeviceBusy("another job holds this device") from exc
        return await self.get(job_id)
