"""The engine's device status changes (draining, maintenance, undraining, activated, error),
each one fenced transaction of named SQL on the raw connection (``connector.py``), audited in
the same hash chain as every other change.

The rules are the ones ``DeviceRepository.change_status`` applies (``check_transition``, the
columns from ``status_values``, the version bump, the audit entry); only the path to the
database differs, because a workflow makes several of these per job. Labels, groups and
connection details do not change with a status, so the device comes back as the caller's
copy with the new status columns, without reading it again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pitstop.domain.audit import AuditEntry, entry_hash
from pitstop.domain.errors import Conflict, NotFound
from pitstop.domain.inventory import Device, MaintenanceInfo
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus, check_transition
from pitstop.domain.roles import Actor, Via
from pitstop.storage.audit_log import HEAD_ID
from pitstop.storage.connector import Query
from pitstop.storage.devices import status_values
from pitstop.storage.jobs import PendingEvent
from pitstop.storage.journal import Journal, add_events, fence

# The columns a status change reads and may write, in this order.
_COLUMNS = (
    "status",
    "status_reason",
    "status_changed_by",
    "status_changed_at",
    "mnt_reason",
    "mnt_ticket",
    "mnt_requested_by",
    "mnt_entered_at",
    "mnt_expected_end",
    "needs_attention",
    "attention_reason",
    "version",
    "updated_at",
)
DEVICE_ROW = f"""
SELECT {", ".join("d." + c for c in _COLUMNS)}, d.name, f.name
FROM devices d JOIN fabrics f ON f.id = d.fabric_id
WHERE d.id = ?
"""
AUDIT_HEAD = "SELECT seq, hash FROM audit_head WHERE id = ?"
ADD_AUDIT = """
INSERT INTO audit_log (seq, at, actor, action, via, fabric, device, device_id, from_status,
  to_status, reason, ticket, job_id, details, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
MOVE_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = ?"
_TIMES = {"status_changed_at", "mnt_entered_at", "mnt_expected_end", "updated_at"}


def _value(column: str, raw: Any) -> Any:
    if column in _TIMES and raw is not None:
        when = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if column == "needs_attention":
        return bool(raw)
    return raw


def _moved(base: Device, row: dict[str, Any]) -> Device:
    return replace(
        base,
        status=DeviceStatus(row["status"]),
        status_reason=row["status_reason"],
        status_changed_by=row["status_changed_by"],
        status_changed_at=row["status_changed_at"],
        maintenance=MaintenanceInfo(
            row["mnt_reason"],
            row["mnt_ticket"],
            row["mnt_requested_by"],
            row["mnt_entered_at"],
            row["mnt_expected_end"],
        ),
        needs_attention=row["needs_attention"],
        attention_reason=row["attention_reason"],
        version=row["version"],
        updated_at=row["updated_at"],
    )


async def change_status(
    journal: Journal,
    *,
    job_id: uuid.UUID,
    epoch: int,
    events: Sequence[PendingEvent],
    device: Device,
    target: DeviceStatus,
    actor: Actor,
    reason: str | None,
    ticket: str | None,
    expected_end: datetime | None,
    attention_reason: str | None = None,
) -> Device:
    """Move ``device`` to ``target`` for the job holding lease ``epoch``, with its buffered log
    lines. A device already at ``target`` (an earlier run of the step) is left as is.
    Leaving service is not taken here: it reserves budget slots under the fabric's lock, which
    only ``DeviceRepository.change_status`` does."""
    now = journal.clock()

    def body() -> Generator[Query, Any, Device]:
        yield from fence(job_id, epoch)
        yield from add_events(job_id, events)
        found = yield Query(DEVICE_ROW, (device.id,), fetch=True, lock="FOR UPDATE OF d")
        if found is None:
            raise NotFound(f"device {device.id} does not exist", kind="device")
        row = {c: _value(c, v) for c, v in zip(_COLUMNS, found, strict=False)}
        name, fabric = found[len(_COLUMNS)], found[len(_COLUMNS) + 1]
        current = DeviceStatus(row["status"])
        if current is target:
            return _moved(device, row)
        check_transition(current, target, actor.role)
        if (
            current not in UNAVAILABLE
            and target in UNAVAILABLE
            and target is not DeviceStatus.ERROR
        ):
            raise RuntimeError(f"{current.value} -> {target.value} must reserve budget slots")
        actor.ensure_may_write(fabric)
        values = status_values(
            current,
            target,
            now=now,
            actor=actor.name,
            reason=reason,
            ticket=ticket,
            expected_end=expected_end,
            attention_reason=attention_reason,
            version=row["version"],
            entered_at=row["mnt_entered_at"],
        )
        sets = ", ".join(f"{c} = ?" for c in values)
        changed = yield Query(
            f"UPDATE devices SET {sets} WHERE id = ? AND version = ?",
            (*values.values(), device.id, row["version"]),
        )
        if changed != 1:
            raise Conflict(f"device {name!r} changed concurrently; read it again")
        head = yield Query(AUDIT_HEAD, (HEAD_ID,), fetch=True, lock="FOR UPDATE")
        if head is None:
            raise RuntimeError("the audit_head row is missing; run `pitstop db upgrade`")
        entry = AuditEntry(
            seq=int(head[0]) + 1,
            at=now,
            actor=actor.name,
            action="device.status",
            via=Via.ENGINE.value,
            fabric=fabric,
            device=name,
            device_id=device.id,
            from_status=current.value,
            to_status=target.value,
            reason=reason,
            ticket=ticket,
            job_id=job_id,
            details={},
            prev_hash=str(head[1]),
        )
        entry = replace(entry, hash=entry_hash(entry))
        yield Query(
            ADD_AUDIT,
            (
                entry.seq,
                entry.at,
                entry.actor,
                entry.action,
                entry.via,
                entry.fabric,
                entry.device,
                entry.device_id,
                entry.from_status,
                entry.to_status,
                entry.reason,
                entry.ticket,
                entry.job_id,
                json.dumps(dict(entry.details)),
                entry.prev_hash,
                entry.hash,
            ),
        )
        yield Query(MOVE_HEAD, (entry.seq, entry.hash, HEAD_ID))
        return _moved(device, {**row, **values})

    return await journal.connector.transaction(body)
