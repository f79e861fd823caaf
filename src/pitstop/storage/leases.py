"""Worker leases on the raw connection (``connector.py``): claiming a job, renewing the lease
by heartbeat, and reading what a worker needs to start the job it claimed.

A claim takes the lease of the oldest claimable job (queued, or running with an expired lease
because its worker died) and bumps ``lease_epoch``; every later write of that worker is fenced
by the epoch (``journal.fence``). On PostgreSQL the candidates are read ``FOR UPDATE SKIP
LOCKED``, so workers do not queue behind each other, under a transaction-scoped advisory lock
so that concurrency limits are counted exactly. On SQLite the single writer already
serialises claims.

A worker that shuts down gracefully *releases* its leases (``release``): owner and expiry are
cleared while the job stays running, so another worker claims it at once instead of waiting
out the TTL, and resumes it at the step that was interrupted. The heartbeat also brings back
whether a cancel was requested, so a worker in another process learns of it within a beat.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import JSON, Boolean, DateTime, Table, Uuid

from pitstop.domain.errors import NotFound
from pitstop.domain.inventory import Device
from pitstop.domain.jobs import Job, JobStatus
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.connector import Connector, Query
from pitstop.storage.device_rows import device_from_row
from pitstop.storage.jobs import CLAIM_LOCK_KEY, job_from_row
from pitstop.storage.journal import LeaseLost, PendingEvent, add_events, fence
from pitstop.storage.tables import DeviceRow, FabricRow, JobRow, JobStepRow

_RUNNING = JobStatus.RUNNING.value
_QUEUED = JobStatus.QUEUED.value

ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(?)"
RUNNING_PER_FABRIC = f"""
SELECT fabric_id, count(*) FROM jobs
WHERE status = '{_RUNNING}' AND lease_expires_at >= ?
GROUP BY fabric_id
"""
# A running job is claimable when its lease expired or was released (no expiry).
_CLAIMABLE = (
    f"status = '{_QUEUED}' OR (status = '{_RUNNING}'"
    " AND (lease_expires_at IS NULL OR lease_expires_at < ?))"
)
CLAIMABLE = f"""
SELECT id, fabric_id, lease_epoch FROM jobs
WHERE {_CLAIMABLE}
ORDER BY created_at, id
LIMIT ?
"""
ANY_CLAIMABLE = f"""
SELECT 1 FROM jobs
WHERE {_CLAIMABLE}
LIMIT 1
"""
TAKE = f"""
UPDATE jobs SET lease_owner = ?, lease_epoch = ?, lease_expires_at = ?, status = '{_RUNNING}',
  started_at = COALESCE(started_at, ?)
WHERE id = ?
"""
HEARTBEAT = f"""
UPDATE jobs SET lease_expires_at = ?
WHERE id = ? AND lease_epoch = ? AND status = '{_RUNNING}'
RETURNING cancel_requested
"""
RELEASE = f"""
UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = ? AND lease_epoch = ? AND status = '{_RUNNING}'
"""


@dataclass(frozen=True, slots=True)
class Beat:
    """A heartbeat's answer: whether the lease is still ours, and whether a cancel of the
    job was requested."""

    ours: bool
    cancel_requested: bool = False


def _columns(table: Any) -> list[Any]:
    return list(cast(Table, table).columns)


_JOB = _columns(JobRow.__table__)
_STEP = _columns(JobStepRow.__table__)
_DEVICE = _columns(DeviceRow.__table__)
JOB_ROW = f"""
SELECT {", ".join("j." + c.name for c in _JOB)}, d.name, f.name
FROM jobs j JOIN devices d ON d.id = j.device_id JOIN fabrics f ON f.id = j.fabric_id
WHERE j.id = ?
"""
STEP_ROWS = f"SELECT {', '.join(c.name for c in _STEP)} FROM job_steps WHERE job_id = ?"
DEVICE_ROW = f"""
SELECT {", ".join("d." + c.name for c in _DEVICE)}, f.name, f.parameters
FROM devices d JOIN fabrics f ON f.id = d.fabric_id
WHERE d.id = ?
"""
LABELS = 'SELECT "key", value FROM device_labels WHERE device_id = ?'
GROUPS = """
SELECT g.name FROM device_groups dg JOIN groups g ON g.id = dg.group_id
WHERE dg.device_id = ? ORDER BY g.name
"""
_FABRIC_PARAMETERS = cast(Table, FabricRow.__table__).c.parameters


def _decode(column: Any, value: Any) -> Any:
    """A raw driver value as SQLAlchemy would hand it back for ``column``."""
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, JSON):
        return json.loads(value) if isinstance(value, str | bytes) else value
    if isinstance(kind, Uuid):
        return uuid.UUID(str(value))
    if isinstance(kind, Boolean):
        return bool(value)
    if isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime):
        return as_utc(value)
    return value


def _record(columns: list[Any], values: tuple[Any, ...]) -> Any:
    return SimpleNamespace(**{c.key: _decode(c, v) for c, v in zip(columns, values, strict=False)})


class Leases:
    def __init__(self, connector: Connector, clock: Clock) -> None:
        self._c = connector
        self._clock = clock

    async def claim(
        self,
        *,
        worker: str,
        lease_ttl: timedelta,
        max_running: int | None = None,
        max_running_per_fabric: int | None = None,
    ) -> tuple[uuid.UUID, int] | None:
        """Take the lease of the oldest claimable job. Returns its id and the new epoch."""
        now = self._clock()
        # Idle workers poll: a read first, so that finding nothing takes no write lock (SQLite)
        # and no claim lock (PostgreSQL) from the workers that are busy.
        if await self._c.fetchone(ANY_CLAIMABLE, (now,)) is None:
            return None
        pg = self._c.postgres
        limited = max_running is not None or max_running_per_fabric is not None

        def body() -> Generator[Query, Any, tuple[uuid.UUID, int] | None]:
            if pg:
                yield Query(ADVISORY_LOCK, (CLAIM_LOCK_KEY,), fetch=True)
            running: dict[str, int] = {}
            if limited:
                counts = yield Query(RUNNING_PER_FABRIC, (now,), fetch_all=True)
                running = {str(f): int(n) for f, n in counts}
            if max_running is not None and sum(running.values()) >= max_running:
                return None
            # Without a per-fabric limit the oldest candidate is always the one taken.
            limit = 50 if max_running_per_fabric is not None else 1
            lock = "FOR UPDATE SKIP LOCKED"
            rows = yield Query(CLAIMABLE, (now, limit), fetch_all=True, lock=lock)
            for job_id, fabric_id, epoch in rows:
                if (
                    max_running_per_fabric is not None
                    and running.get(str(fabric_id), 0) >= max_running_per_fabric
                ):
                    continue
                yield Query(TAKE, (worker, epoch + 1, now + lease_ttl, now, job_id))
                return uuid.UUID(str(job_id)), int(epoch) + 1
            return None

        return await self._c.transaction(body)

    async def heartbeat(self, job_id: uuid.UUID, *, epoch: int, lease_ttl: timedelta) -> Beat:
        """Extend the lease; ``ours`` is False when it is no longer ours."""
        expires = self._clock() + lease_ttl

        def body() -> Generator[Query, Any, Beat]:
            row = yield Query(HEARTBEAT, (expires, job_id, epoch), fetch=True)
            return Beat(False) if row is None else Beat(True, bool(row[0]))

        return await self._c.transaction(body)

    async def release(
        self, job_id: uuid.UUID, *, epoch: int, events: Sequence[PendingEvent] = ()
    ) -> bool:
        """Give the lease up (a graceful shutdown), with the buffered log lines; the job stays
        running and the next claim takes it. False when the lease was no longer ours."""

        def body() -> Generator[Query, Any, bool]:
            yield from fence(job_id, epoch)
            yield from add_events(job_id, events)
            changed = yield Query(RELEASE, (job_id, epoch))
            return bool(changed == 1)

        try:
            return await self._c.transaction(body)
        except LeaseLost:
            return False

    async def start(self, job_id: uuid.UUID) -> tuple[Job, Device, Mapping[str, Any]]:
        """The claimed job with its steps, its device, and the fabric's default parameters,
        in one read."""

        def body() -> Generator[Query, Any, tuple[Job, Device, Mapping[str, Any]]]:
            found = yield Query(JOB_ROW, (job_id,), fetch=True)
            if found is None:
                raise NotFound(f"job {job_id} does not exist", kind="job")
            job = _record(_JOB, found)
            steps = yield Query(STEP_ROWS, (job_id,), fetch_all=True)
            dev = yield Query(DEVICE_ROW, (job.device_id,), fetch=True)
            if dev is None:
                raise NotFound(f"device {job.device_id} does not exist", kind="device")
            labels = yield Query(LABELS, (job.device_id,), fetch_all=True)
            groups = yield Query(GROUPS, (job.device_id,), fetch_all=True)
            n = len(_JOB)
            loaded = job_from_row(job, found[n], found[n + 1], [_record(_STEP, s) for s in steps])
            m = len(_DEVICE)
            device = device_from_row(
                _record(_DEVICE, dev), dev[m], dict(labels), [g for (g,) in groups]
            )
            parameters = _decode(_FABRIC_PARAMETERS, dev[m + 1]) or {}
            return loaded, device, parameters

        return await self._c.read(body)
