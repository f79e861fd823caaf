"""The engine's device status changes (draining, maintenance, undraining, activated, error),
each one fenced transaction of named SQL on the raw connection (``connector.py``), audited in
the same hash chain as every other change.

The rules are the ones ``DeviceRepository.change_status`` applies (``check_transition``, the
columns from ``device_rows.status_values``, the version bump, the audit entry); only the path to the
database differs, because a workflow makes several of these per job. Labels, groups and
connection details do not change with a status, so the device comes back as the caller's
copy with the new status columns, without reading it again.

Leaving service (activated to draining) reserves budget slots as ADR 0008 says, in the same
transaction: the fabric's row is locked before the device's (then the audit head, the order
every writer keeps), the policy comes with the fabric lock and the device's pools in one more
statement, and the verdict is the domain's (``check_allowed``, ``refusal``), recorded in the
audit row as ``BudgetRepository.reserve`` records it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pitstop.domain.audit import AuditEntry, entry_hash
from pitstop.domain.budgets import Pool, refusal, reservation, role_pool
from pitstop.domain.errors import Conflict, NotFound
from pitstop.domain.inventory import Device, MaintenanceInfo
from pitstop.domain.lifecycle import TRANSITIONS, UNAVAILABLE, DeviceStatus, check_transition
from pitstop.domain.policy import FabricPolicy, check_allowed, stored_role_budgets
from pitstop.domain.redundancy import Member
from pitstop.domain.roles import Actor, Via
from pitstop.storage.audit_log import HEAD_ID
from pitstop.storage.budgets import group_pools
from pitstop.storage.connector import Query
from pitstop.storage.device_rows import status_values
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
# The targets reachable from an available status other than error: the ones that reserve
# slots, and so take the fabric's lock first (today only draining).
RESERVING = frozenset(
    to
    for frm, to in TRANSITIONS
    if frm not in UNAVAILABLE and to in UNAVAILABLE and to is not DeviceStatus.ERROR
)


@dataclass(frozen=True, slots=True)
class Standing:
    """What leaving service is judged on, read under the fabric's and the device's locks,
    before anything changes: the policy, the device's groups and every device of its role."""

    device: str
    role: str
    fabric: str
    policy: FabricPolicy
    groups: tuple[Pool, ...]  # by name
    same_role: tuple[Member, ...]  # the device included

    def pools(self) -> list[Pool]:
        """Every pool the device takes a slot in: its groups, then its role if capped."""
        cap = self.policy.role_budget(self.role)
        role = [role_pool(self.role, cap, self.same_role)] if cap is not None else []
        return [*self.groups, *role]


# A caller's own rule on leaving service (the engine's redundancy check); raises to refuse.
Judge = Callable[[Standing], None]


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
    forced: str | None = None,
    judge: Judge | None = None,
) -> Device:
    """Move ``device`` to ``target`` for the job holding lease ``epoch``, with its buffered log
    lines. A device already at ``target`` (an earlier run of the step) is left as is.

    Leaving service reserves a slot in every pool of the device under the fabric's lock and
    obeys the fabric's policy (``forced``: an admin's forced start), refusing with
    ``MAINTENANCE_DISALLOWED`` or ``BUDGET_EXCEEDED``; ``judge`` sees the same rows first and
    may refuse too."""
    now = journal.clock()

    def body() -> Generator[Query, Any, Device]:
        yield from fence(job_id, epoch)
        yield from add_events(job_id, events)
        policy: FabricPolicy | None = None
        if target in RESERVING:
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
        if current is target:
            return _moved(device, row)
        details: dict[str, Any] = {}
        # Error is a fact, never refused; every other way out of service takes a slot.
        if current not in UNAVAILABLE and policy is not None:
            pools = yield Query(DEVICE_POOLS, (device.id, device.fabric_id, role), fetch_all=True)
            standing = _standing(pools, device=name, role=role, fabric=fabric, policy=policy)
            if judge is not None:
                judge(standing)
            check_transition(current, target, actor.role)
            actor.ensure_may_write(fabric)
            check_allowed(policy, fabric=fabric, device=name, forced=forced)
            taken = standing.pools()
            refused = refusal(name, taken)
            if refused is not None:
                raise refused
            details = reservation(taken, forced=forced)
        else:
            check_transition(current, target, actor.role)
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
            details=details,
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
