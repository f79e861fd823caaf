"""The job journal: what a worker writes at every step boundary, as one fenced transaction of
named SQL statements on the raw driver connection (``connector.py``).

A boundary records the step that ended, the log lines buffered since the last write, the
job's progress and the start of the next step (or the end of the job), after the fence: the
first statement updates the job row only while ``lease_epoch`` is the one the worker claimed
with, so it both locks the row (no claim can move the epoch until the transaction ends) and
refuses a zombie's write with ``LeaseLost``. A requested cancel stops the next step from
starting; the runner then rolls back.

Claims and heartbeats are in ``leases.py``; the repositories (``jobs.py``) keep the rest:
enqueue, reads, cancel, retry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pitstop.domain.jobs import JobStatus, JobType, Mode, StepStatus
from pitstop.storage.clock import Clock
from pitstop.storage.connector import Connector, Query
from pitstop.storage.jobs import Fenced, LeaseLost, PendingEvent

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
START_STEP = f"""
UPDATE job_steps SET status = '{StepStatus.RUNNING.value}', started_at = ?, finished_at = NULL,
  runs = runs + 1, error = NULL
WHERE job_id = ? AND idx = ?
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
                yield Query(START_STEP, (now, job_id, start[0]))
            if finish is not None:
                result = _json(finish.result)
                yield Query(END_JOB, (finish.status.value, result, finish.error, now, job_id))
                yield Query(RELEASE_DEVICE, (job_id, job_id))
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
