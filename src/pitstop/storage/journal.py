"""The job journal: what a worker writes at every step boundary, as one fenced transaction of
named SQL statements on the raw driver connection (``connector.py``).

A boundary records the step that ended, the log lines buffered since the last write, the
job's progress and the start of the next step (or the end of the job), after the fence: the
first statement updates the job row only while ``lease_epoch`` is the one the worker claimed
with, so it both locks the row (no claim can move the epoch until the transaction ends) and
refuses a zombie's write with ``LeaseLost``. A requested cancel stops the next step from
starting; the runner then rolls back.

A step that was running when its worker stopped keeps its first ``started_at`` when the next
worker starts it again, and the boundary returns it: a step's time limit (a drain's
``timeout_s``) counts from there, so a takeover does not start the clock over.

Claims and heartbeats are in ``leases.py``; the repositories (``jobs.py``) keep the rest:
enqueue, reads, cancel, retry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pitstop.domain.jobs import JobStatus, JobType, Level, Mode, StepStatus
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.connector import Connector, Query

_RUNNING = JobStatus.RUNNING.value

# The fence. It also writes the job's progress and, unless a cancel was requested, the name
# of the step about to start.
FENCE = f"""
UPDATE jobs SET
  progress = COALESCE(?, progress),
  current_step = CASE WHEN cancel_requested THEN current_step ELSE COALESCE(?, current_step) END
WHERE id = ? AND lease_epoch = ? AND status = '{_RUNNING}'
RETURNING device_id, cancel_requested
"""
ADD_EVENT = """
INSERT INTO job_events (job_id, at, level, step, device, message, data)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
END_STEP = """
UPDATE job_steps SET status = ?, finished_at = ?, error = ?, output = COALESCE(?, output),
  started_at = COALESCE(started_at, ?)
WHERE job_id = ? AND idx = ?
"""
# A step still ``running`` was cut off by its worker: it keeps the time it first started.
_FIRST_START = (
    f"CASE WHEN {{s}}status = '{StepStatus.RUNNING.value}' AND {{s}}started_at IS NOT NULL"
    " THEN {s}started_at ELSE ? END"
)
START_STEP = f"""
UPDATE job_steps SET status = '{StepStatus.RUNNING.value}',
  started_at = {_FIRST_START.format(s="")}, finished_at = NULL, runs = runs + 1, error = NULL
WHERE job_id = ? AND idx = ?
RETURNING started_at
"""
END_JOB = """
UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?, current_step = NULL,
  lease_owner = NULL, lease_expires_at = NULL
WHERE id = ?
"""
RELEASE_DEVICE = """
DELETE FROM device_locks
WHERE device_id = (SELECT device_id FROM jobs WHERE id = ?) AND job_id = ?
"""
DEVICE_STATUS = "SELECT status FROM devices WHERE id = ?"
LAST_STEP_OUTPUT = f"""
SELECT j.id, s.output FROM jobs j JOIN job_steps s ON s.job_id = j.id AND s.name = ?
WHERE j.device_id = ? AND j.type = ? AND j.status = '{JobStatus.SUCCEEDED.value}'
  AND (j.mode IS NULL OR j.mode <> '{Mode.TEST_RUN.value}')
ORDER BY j.finished_at DESC
LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class Fenced:
    """A job whose lease this transaction has checked and locked. ``step_started_at``: when
    the step this boundary started first started (kept across a takeover)."""

    job_id: uuid.UUID
    device_id: uuid.UUID
    cancel_requested: bool
    step_started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingEvent:
    at: datetime
    level: Level
    message: str
    step: str | None
    device: str | None
    data: Mapping[str, Any]


class LeaseLost(Exception):
    """This worker no longer holds the job's lease; whatever it was about to write is void."""


@dataclass(frozen=True, slots=True)
class StepEnd:
    idx: int
    status: StepStatus
    output: Mapping[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobEnd:
    status: JobStatus
    result: Mapping[str, Any]
    error: str | None = None


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value))


def fence(
    job_id: uuid.UUID, epoch: int, *, progress: int | None = None, step: str | None = None
) -> Generator[Query, Any, Fenced]:
    """The first statement of every fenced body; raises ``LeaseLost`` when ``epoch`` no
    longer holds the lease (the transaction then writes nothing)."""
    row = yield Query(FENCE, (progress, step, job_id, epoch), fetch=True)
    if row is None:
        raise LeaseLost(f"job {job_id}: lease epoch {epoch} is no longer current")
    return Fenced(job_id=job_id, device_id=uuid.UUID(str(row[0])), cancel_requested=bool(row[1]))


def add_events(job_id: uuid.UUID, events: Sequence[PendingEvent]) -> Generator[Query, Any, None]:
    if events:
        yield Query(
            ADD_EVENT,
            rows=[
                (job_id, e.at, e.level.value, e.step, e.device, e.message, json.dumps(dict(e.data)))
                for e in events
            ],
        )


def end_job(job_id: uuid.UUID, finish: JobEnd, now: datetime) -> Generator[Query, Any, None]:
    """End the job and release its device, after ``fence`` in the same body (the SQLite
    boundary and a status change that ends the job; PostgreSQL's boundary folds the same
    writes into its one statement)."""
    result = _json(finish.result)
    yield Query(END_JOB, (finish.status.value, result, finish.error, now, job_id))
    yield Query(RELEASE_DEVICE, (job_id, job_id))


def _one_statement(
    job_id: uuid.UUID,
    epoch: int,
    now: datetime,
    events: Sequence[PendingEvent],
    ended: StepEnd | None,
    progress: int | None,
    start: tuple[int, str] | None,
    finish: JobEnd | None,
) -> tuple[str, list[Any]]:
    """The boundary as one PostgreSQL statement: a single round trip, atomic by itself.

    Every part joins the fence ``f``, so nothing is written when the epoch moved on; the next
    step starts only when ``f`` says no cancel was requested. The statements are the same as
    the SQLite path's; a job row is updated once (fence and end in one UPDATE), since
    PostgreSQL does not allow two updates of one row in one statement.
    """
    args: list[Any] = [progress]
    sets = "progress = COALESCE(?::int, progress)"
    if finish is not None:
        sets += (
            ", status = ?, result = ?::json, error = ?, finished_at = ?::timestamptz,"
            " current_step = NULL, lease_owner = NULL, lease_expires_at = NULL"
        )
        args += [finish.status.value, _json(finish.result), finish.error, now]
    else:
        sets += (
            ", current_step = CASE WHEN cancel_requested THEN current_step"
            " ELSE COALESCE(?::varchar, current_step) END"
        )
        args.append(start[1] if start else None)
    parts = [
        f"f AS (UPDATE jobs SET {sets} WHERE id = ? AND lease_epoch = ? AND status = "
        f"'{_RUNNING}' RETURNING id, device_id, cancel_requested)"
    ]
    args += [job_id, epoch]
    if events:
        parts.append(
            "ev AS (INSERT INTO job_events (job_id, at, level, step, device, message, data)"
            " SELECT f.id, e.at, e.level, e.step, e.device, e.message, e.data::json"
            " FROM f, unnest(?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::text[],"
            " ?::text[]) WITH ORDINALITY AS e(at, level, step, device, message, data, n)"
            " ORDER BY e.n)"
        )
        args += [
            [e.at for e in events],
            [e.level.value for e in events],
            [e.step for e in events],
            [e.device for e in events],
            [e.message for e in events],
            [json.dumps(dict(e.data)) for e in events],
        ]
    if ended is not None:
        parts.append(
            "se AS (UPDATE job_steps s SET status = ?, finished_at = ?::timestamptz, error = ?,"
            " output = COALESCE(?::json, s.output),"
            " started_at = COALESCE(s.started_at, ?::timestamptz)"
            " FROM f WHERE s.job_id = f.id AND s.idx = ?)"
        )
        args += [ended.status.value, now, ended.error, _json(ended.output), now, ended.idx]
    if start is not None and finish is None:
        parts.append(
            f"ss AS (UPDATE job_steps s SET status = '{StepStatus.RUNNING.value}',"
            f" started_at = {_FIRST_START.format(s='s.').replace('?', '?::timestamptz')},"
            " finished_at = NULL, runs = s.runs + 1, error = NULL"
            " FROM f WHERE s.job_id = f.id AND s.idx = ? AND NOT f.cancel_requested"
            " RETURNING s.started_at)"
        )
        args += [now, start[0]]
    if finish is not None:
        parts.append(
            "rl AS (DELETE FROM device_locks l USING f"
            " WHERE l.device_id = f.device_id AND l.job_id = f.id)"
        )
    started = "(SELECT started_at FROM ss)" if start is not None and finish is None else "NULL"
    select = f" SELECT device_id, cancel_requested, {started} FROM f"
    return "WITH " + ", ".join(parts) + select, args


class Journal:
    def __init__(self, connector: Connector, clock: Clock) -> None:
        self.connector = connector
        self.clock = clock

    async def boundary(
        self,
        job_id: uuid.UUID,
        epoch: int,
        *,
        events: Sequence[PendingEvent] = (),
        ended: StepEnd | None = None,
        progress: int | None = None,
        start: tuple[int, str] | None = None,
        finish: JobEnd | None = None,
    ) -> Fenced:
        """One fenced transaction; raises ``LeaseLost`` (writing nothing) when ``epoch`` no
        longer holds the lease. ``start`` is skipped when a cancel was requested."""
        now = self.clock()
        if finish is not None and finish.status is JobStatus.SUCCEEDED:
            progress = 100
        if self.connector.postgres:
            sql, args = _one_statement(job_id, epoch, now, events, ended, progress, start, finish)
            found = await self.connector.fetchone(sql, args)
            if found is None:
                raise LeaseLost(f"job {job_id}: lease epoch {epoch} is no longer current")
            return Fenced(
                job_id=job_id,
                device_id=uuid.UUID(str(found[0])),
                cancel_requested=bool(found[1]),
                step_started_at=as_utc(found[2]),
            )

        def body() -> Generator[Query, Any, Fenced]:
            row = yield from fence(
                job_id, epoch, progress=progress, step=start[1] if start else None
            )
            yield from add_events(job_id, events)
            if ended is not None:
                output = _json(ended.output)
                yield Query(
                    END_STEP,
                    (ended.status.value, now, ended.error, output, now, job_id, ended.idx),
                )
            if start is not None and not row.cancel_requested:
                started = yield Query(START_STEP, (now, job_id, start[0]), fetch=True)
                row = replace(row, step_started_at=as_utc(started[0]) if started else None)
            if finish is not None:
                yield from end_job(job_id, finish, now)
            return row

        return await self.connector.transaction(body)

    async def undo_steps(
        self, job_id: uuid.UUID, epoch: int, *, names: Sequence[str], events: Sequence[PendingEvent]
    ) -> Fenced:
        """Mark the steps among ``names`` that succeeded as rolled back, fenced, with the
        buffered log lines: an undo leaves the record of what it reversed."""
        marks = ", ".join("?" for _ in names)

        def body() -> Generator[Query, Any, Fenced]:
            row = yield from fence(job_id, epoch)
            yield from add_events(job_id, events)
            if names:
                yield Query(
                    f"UPDATE job_steps SET status = ? WHERE job_id = ? AND status = ?"
                    f" AND name IN ({marks})",
                    (StepStatus.ROLLED_BACK.value, job_id, StepStatus.SUCCEEDED.value, *names),
                )
            return row

        return await self.connector.transaction(body)

    async def device_status(self, device_id: uuid.UUID) -> str:
        row = await self.connector.fetchone(DEVICE_STATUS, (device_id,))
        if row is None:
            raise LookupError(f"device {device_id} does not exist")
        return str(row[0])

    async def last_step_output(
        self, device_id: uuid.UUID, job_type: JobType, step: str
    ) -> tuple[uuid.UUID, dict[str, Any]] | None:
        """The id of the device's last succeeded ``job_type`` job (test runs aside) and the
        output of its step ``step``; None when there is none."""
        row = await self.connector.fetchone(LAST_STEP_OUTPUT, (step, device_id, job_type.value))
        if row is None:
            return None
        output = row[1]
        if isinstance(output, str | bytes):
            output = json.loads(output)
        return uuid.UUID(str(row[0])), dict(output or {})
