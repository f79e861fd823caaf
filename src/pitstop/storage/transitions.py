"""Every device status change, by hand (API, CLI, web) or by a job: one transaction of named
SQL on the raw connection (``connector.py``), audited in the same hash chain as every other
change, fenced by the job's lease when a job makes it.

The rules, in the order they are applied: the lifecycle table (``check_transition``, first, so
a refusal lists what is allowed from here), the caller's role and fabric scope, the version
the caller read, then, leaving service (activated to draining), the caller's ``judge`` (the
engine's redundancy check), the fabric's policy and a free slot in every budget pool (ADR
0008). The columns written come from ``device_rows.status_values``; the device row is guarded
by its version, so two changes never both apply on top of one version.

Locks are taken fabric, then device, then audit head: the order every writer keeps. The
fabric's lock is taken for every move to an unavailable status, error included: a device going
to error takes a slot too, and a reservation made beside it must see it.

Labels, groups and connection details do not change with a status, so the device comes back
as the caller's copy with the new status columns, without reading it again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pitstop.domain.audit import AuditEntry, entry_hash
from pitstop.domain.budgets import refusal, reservation
from pitstop.domain.errors import Conflict, NotFound
from pitstop.domain.inventory import Device, MaintenanceInfo
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus, check_transition
from pitstop.domain.policy import FabricPolicy, check_allowed, stored_role_budgets
from pitstop.domain.redundancy import Member
from pitstop.domain.roles import Actor, Via
from pitstop.domain.standing import Judge, Standing
from pitstop.storage.audit_log import HEAD_ID
from pitstop.storage.budgets import group_pools
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.connector import Connector, Query
from pitstop.storage.device_rows import check_version, status_values
from pitstop.storage.journal import JobEnd, PendingEvent, add_events, end_job, fence

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
SELECT {", ".join("d." + c for c in _COLUMNS)}, d.name, f.name, d.role
FROM devices d JOIN fabrics f ON f.id = d.fabric_id
WHERE d.id = ?
"""
# Taken FOR UPDATE: the fabric's lock, and its policy with it.
FABRIC_POLICY = "SELECT maintenance_allowed, role_budgets FROM fabrics WHERE id = ?"
# Every group of the device with its members (group columns set), then every device of its
# role in the fabric (group columns NULL): all its pools in one statement.
DEVICE_POOLS = """
SELECT g.name, g.max_unavailable, d.name, d.status
FROM device_groups mine
JOIN groups g ON g.id = mine.group_id
JOIN device_groups dg ON dg.group_id = g.id
JOIN devices d ON d.id = dg.device_id
WHERE mine.device_id = ?
UNION ALL
SELECT NULL, NULL, d.name, d.status FROM devices d WHERE d.fabric_id = ? AND d.role = ?
"""
AUDIT_HEAD = "SELECT seq, hash FROM audit_head WHERE id = ?"
ADD_AUDIT = """
INSERT INTO audit_log (seq, at, actor, action, via, fabric, device, device_id, from_status,
  to_status, reason, ticket, job_id, details, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
MOVE_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = ?"
_TIMES = {"status_changed_at", "mnt_entered_at", "mnt_expected_end", "updated_at"}
MANUAL = {"manual": True, "note": "set by hand; pitstop did not touch the device"}


def _policy(row: Sequence[Any]) -> FabricPolicy:
    budgets = row[1]
    if isinstance(budgets, str | bytes):
        budgets = json.loads(budgets)
    return FabricPolicy(
        maintenance_allowed=bool(row[0]), role_overrides=stored_role_budgets(budgets)
    )


def _standing(
    rows: Sequence[Sequence[Any]], *, device: str, role: str, fabric: str, policy: FabricPolicy
) -> Standing:
    same_role = tuple(Member(str(r[2]), DeviceStatus(r[3])) for r in rows if r[0] is None)
    groups = group_pools((r[0], r[1], r[2], r[3]) for r in rows if r[0] is not None)
    return Standing(device, role, fabric, policy, tuple(groups), same_role)


def _value(column: str, raw: Any) -> Any:
    if column in _TIMES:
        return as_utc(raw)
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


def _audit_args(entry: AuditEntry) -> tuple[Any, ...]:
    return (
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
    )


class Transitions:
    """Status changes and the standing they judge, on the raw connection."""

    def __init__(self, connector: Connector, clock: Clock) -> None:
        self._connector = connector
        self._clock = clock

    async def standing(self, device: Device) -> Standing:
        """The device's standing as it is now, without locks: what a validation step judges
        before the change itself judges it again under the locks."""

        def body() -> Generator[Query, Any, Standing]:
            found = yield Query(FABRIC_POLICY, (device.fabric_id,), fetch=True)
            if found is None:
                raise NotFound(f"fabric {device.fabric_id} does not exist", kind="fabric")
            rows = yield Query(
                DEVICE_POOLS, (device.id, device.fabric_id, device.role), fetch_all=True
            )
            return _standing(
                rows,
                device=device.name,
                role=device.role,
                fabric=device.fabric,
                policy=_policy(found),
            )

        return await self._connector.read(body)

    async def change_status(
        self,
        *,
        device: Device,
        target: DeviceStatus,
        actor: Actor,
        via: Via,
        reason: str | None = None,
        ticket: str | None = None,
        expected_end: datetime | None = None,
        attention_reason: str | None = None,
        forced: str | None = None,
        judge: Judge | None = None,
        expected_version: int | None = None,
        if_needed: bool = False,
        job_id: uuid.UUID | None = None,
        epoch: int | None = None,
        events: Sequence[PendingEvent] = (),
        finish: JobEnd | None = None,
    ) -> Device:
        """Move ``device`` to ``target``. With ``epoch``, the change is the job ``job_id``'s and
        fenced by its lease (``LeaseLost`` writes nothing), with its buffered log lines
        ``events``, and ``finish`` ends the job in the same transaction. With ``if_needed`` (a
        job repeating a step) a device already at ``target`` is left as is.

        Leaving service reserves a slot in every pool of the device under the fabric's lock and
        obeys the fabric's policy (``forced``: an admin's forced start), refusing with
        ``MAINTENANCE_DISALLOWED`` or ``BUDGET_EXCEEDED``; ``judge`` sees the same rows first and
        may refuse too. A change made by hand (``via`` other than the engine) says so in the
        audit details: pitstop did not touch the device."""
        if epoch is None and (events or finish is not None):
            raise ValueError("log lines and a job end are written only under a job's fence")
        now = self._clock()

        def body() -> Generator[Query, Any, Device]:
            if epoch is not None:
                assert job_id is not None
                yield from fence(job_id, epoch)
                yield from add_events(job_id, events)
            policy: FabricPolicy | None = None
            if target in UNAVAILABLE:
                # Fabric, then device, then audit head: the order every writer keeps (ADR 0008).
                locked = yield Query(
                    FABRIC_POLICY, (device.fabric_id,), fetch=True, lock="FOR NO KEY UPDATE"
                )
                if locked is None:
                    raise NotFound(f"fabric {device.fabric_id} does not exist", kind="fabric")
                policy = _policy(locked)
            found = yield Query(DEVICE_ROW, (device.id,), fetch=True, lock="FOR UPDATE OF d")
            if found is None:
                raise NotFound(f"device {device.id} does not exist", kind="device")
            row = {c: _value(c, v) for c, v in zip(_COLUMNS, found, strict=False)}
            n = len(_COLUMNS)
            name, fabric, role = found[n], found[n + 1], found[n + 2]
            current = DeviceStatus(row["status"])
            if if_needed and current is target:
                if finish is not None:
                    assert job_id is not None
                    yield from end_job(job_id, finish, now)
                return _moved(device, row)
            check_transition(current, target, actor.role)
            actor.ensure_may_write(fabric)
            check_version(name, row["version"], expected_version)
            details: dict[str, Any] = dict(MANUAL) if via is not Via.ENGINE else {}
            # Error is a fact, never refused; every other way out of service takes a slot.
            leaving = current not in UNAVAILABLE and target in UNAVAILABLE
            if leaving and target is not DeviceStatus.ERROR:
                assert policy is not None
                pools = yield Query(
                    DEVICE_POOLS, (device.id, device.fabric_id, role), fetch_all=True
                )
                judged = _standing(pools, device=name, role=role, fabric=fabric, policy=policy)
                if judge is not None:
                    judge(judged)
                check_allowed(policy, fabric=fabric, device=name, forced=forced)
                taken = judged.pools()
                refused = refusal(name, taken)
                if refused is not None:
                    raise refused
                details.update(reservation(taken, forced=forced))
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
                via=via.value,
                fabric=fabric,
                device=name,
                device_id=device.id,
                from_status=current.value,
                to_status=target.value,
                reason=reason,
                ticket=ticket,
                job_id=job_id,
                details=details,
                prev_hash=str(head[1]),
            )
            entry = replace(entry, hash=entry_hash(entry))
            yield Query(ADD_AUDIT, _audit_args(entry))
            yield Query(MOVE_HEAD, (entry.seq, entry.hash, HEAD_ID))
            if finish is not None:
                assert job_id is not None
                yield from end_job(job_id, finish, now)
            return _moved(device, {**row, **values})

        return await self._connector.transaction(body)
