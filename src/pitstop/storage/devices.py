"""Devices: inventory rows, their labels and groups: reads, create, update and delete.

Status changes are not here: every one, by hand or by a job, is ``transitions.change_status``
(listed in ``writes.py``). An update reads the device row ``FOR UPDATE`` (on SQLite the
transaction already holds the write lock) and checks the version the caller read.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, exists, not_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.errors import (
    AmbiguousReference,
    Conflict,
    FieldError,
    NotFound,
    ValidationFailed,
)
from pitstop.domain.inventory import Connection, Device
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Via
from pitstop.domain.selectors import Op, Term
from pitstop.storage.audit_log import AuditLog
from pitstop.storage.clock import Clock
from pitstop.storage.device_rows import check_version, device_from_row
from pitstop.storage.pages import Page, decode_cursor, encode_cursor
from pitstop.storage.refs import as_uuid
from pitstop.storage.tables import DeviceGroupRow, DeviceLabelRow, DeviceRow, FabricRow, GroupRow


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What a caller gives to create or fully describe a device."""

    name: str
    role: str
    driver: str
    connection: Connection
    labels: dict[str, str]
    groups: tuple[str, ...]
    status: DeviceStatus = DeviceStatus.ACTIVATED


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    fabric_id: uuid.UUID | None = None
    statuses: tuple[DeviceStatus, ...] = ()
    role: str | None = None
    name: str | None = None
    search: str | None = None
    group: str | None = None
    selector: tuple[Term, ...] = ()
    needs_attention: bool | None = None


def _label_exists(term: Term) -> Any:
    cond = [DeviceLabelRow.device_id == DeviceRow.id, DeviceLabelRow.key == term.key]
    if term.op is Op.EQ:
        cond.append(DeviceLabelRow.value == term.value)
        return exists().where(*cond)
    if term.op is Op.NE:
        cond.append(DeviceLabelRow.value == term.value)
        return not_(exists().where(*cond))
    if term.op is Op.EXISTS:
        return exists().where(*cond)
    return not_(exists().where(*cond))


class DeviceRepository:
    def __init__(self, session: AsyncSession, clock: Clock, audit: AuditLog) -> None:
        self._s = session
        self._clock = clock
        self._audit = audit

    # Reading -----------------------------------------------------------------------------

    async def _hydrate(self, rows: list[tuple[DeviceRow, str]]) -> list[Device]:
        ids = [r.id for r, _ in rows]
        labels: dict[uuid.UUID, dict[str, str]] = defaultdict(dict)
        groups: dict[uuid.UUID, list[str]] = defaultdict(list)
        if ids:
            for lab in await self._s.scalars(
                select(DeviceLabelRow).where(DeviceLabelRow.device_id.in_(ids))
            ):
                labels[lab.device_id][lab.key] = lab.value
            for dev_id, gname in await self._s.execute(
                select(DeviceGroupRow.device_id, GroupRow.name)
                .join(GroupRow, GroupRow.id == DeviceGroupRow.group_id)
                .where(DeviceGroupRow.device_id.in_(ids))
                .order_by(GroupRow.name)
            ):
                groups[dev_id].append(gname)
        return [device_from_row(r, fabric, labels[r.id], groups[r.id]) for r, fabric in rows]

    def _base(self) -> Select[DeviceRow, str]:
        return select(DeviceRow, FabricRow.name).join(
            FabricRow, FabricRow.id == DeviceRow.fabric_id
        )

    async def resolve(self, ref: str, *, fabric_id: uuid.UUID | None = None) -> uuid.UUID:
        """A device id from a UUID or a name (the fabric disambiguates names)."""
        key = as_uuid(ref)
        # A valid name can look like a UUID (32 hex digits): an id that matches no device is
        # looked up as a name.
        if key is not None and await self._s.scalar(
            select(DeviceRow.id).where(DeviceRow.id == key)
        ):
            return key
        q = select(DeviceRow.id, FabricRow.name).join(FabricRow).where(DeviceRow.name == ref)
        if fabric_id is not None:
            q = q.where(DeviceRow.fabric_id == fabric_id)
        found = (await self._s.execute(q)).all()
        if not found:
            raise NotFound(f"device {ref!r} does not exist", kind="device", ref=ref)
        if len(found) > 1:
            fabrics = sorted(f for _, f in found)
            raise AmbiguousReference(
                f"device name {ref!r} exists in fabrics {', '.join(fabrics)}; name the fabric",
                fabrics=fabrics,
            )
        return uuid.UUID(str(found[0][0]))

    async def get(self, device_id: uuid.UUID) -> Device:
        q = self._base().where(DeviceRow.id == device_id)
        found = (await self._s.execute(q)).one_or_none()
        if found is None:
            raise NotFound(f"device {device_id} does not exist", kind="device")
        return (await self._hydrate([found]))[0]

    async def page(
        self, flt: DeviceFilter, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Device]:
        q = self._base().order_by(DeviceRow.name, DeviceRow.id).limit(limit + 1)
        if flt.fabric_id is not None:
            q = q.where(DeviceRow.fabric_id == flt.fabric_id)
        if flt.statuses:
            q = q.where(DeviceRow.status.in_([s.value for s in flt.statuses]))
        if flt.role is not None:
            q = q.where(DeviceRow.role == flt.role)
        if flt.name is not None:
            q = q.where(DeviceRow.name == flt.name)
        if flt.search:
            q = q.where(DeviceRow.name.contains(flt.search.lower(), autoescape=True))
        if flt.needs_attention is not None:
            q = q.where(DeviceRow.needs_attention.is_(flt.needs_attention))
        if flt.group is not None:
            q = q.where(
                exists().where(
                    DeviceGroupRow.device_id == DeviceRow.id,
                    DeviceGroupRow.group_id == GroupRow.id,
                    GroupRow.name == flt.group,
                )
            )
        for term in flt.selector:
            q = q.where(_label_exists(term))
        if cursor:
            name, dev_id = decode_cursor(cursor, 2)
            last = as_uuid(str(dev_id))
            if last is None or not isinstance(name, str):
                raise ValidationFailed(
                    "bad cursor", [FieldError("cursor", "not a cursor from this listing")]
                )
            q = q.where(tuple_(DeviceRow.name, DeviceRow.id) > tuple_(name, last))
        rows = [(r, f) for r, f in (await self._s.execute(q)).all()]
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = encode_cursor([rows[-1][0].name, str(rows[-1][0].id)]) if more else None
        return Page(await self._hydrate(rows), nxt)

    async def names_in_fabric(self, fabric_id: uuid.UUID) -> set[str]:
        return set(
            await self._s.scalars(select(DeviceRow.name).where(DeviceRow.fabric_id == fabric_id))
        )

    # Writing -----------------------------------------------------------------------------

    async def create(
        self,
        *,
        fabric_id: uuid.UUID,
        fabric: str,
        spec: DeviceSpec,
        group_ids: dict[str, uuid.UUID],
        actor: Actor,
        via: Via,
    ) -> uuid.UUID:
        """Insert one device; ``group_ids`` maps each of its group names to the group's id."""
        if spec.status not in (DeviceStatus.PENDING, DeviceStatus.ACTIVATED):
            raise Conflict("a new device starts as pending or activated")
        now = self._clock()
        dev_id = uuid.uuid4()
        self._s.add(
            DeviceRow(
                id=dev_id,
                fabric_id=fabric_id,
                name=spec.name,
                role=spec.role,
                driver=spec.driver,
                host=spec.connection.host,
                port=spec.connection.port,
                credentials_ref=spec.connection.credentials_ref,
                options=dict(spec.connection.options),
                status=spec.status.value,
                status_changed_by=actor.name,
                status_changed_at=now,
                needs_attention=False,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        try:
            await self._s.flush()
        except IntegrityError as exc:  # a concurrent create won the name
            raise Conflict(
                f"device {spec.name!r} already exists in fabric {fabric!r}", name=spec.name
            ) from exc
        self._s.add_all(
            DeviceLabelRow(device_id=dev_id, key=k, value=v) for k, v in spec.labels.items()
        )
        self._s.add_all(
            DeviceGroupRow(device_id=dev_id, group_id=group_ids[g]) for g in spec.groups
        )
        await self._audit.append(
            actor=actor.name,
            action="device.create",
            via=via.value,
            fabric=fabric,
            device=spec.name,
            device_id=dev_id,
            to_status=spec.status.value,
            details={"role": spec.role, "driver": spec.driver, "groups": list(spec.groups)},
        )
        await self._s.flush()
        return dev_id

    async def _locked(self, device_id: uuid.UUID) -> tuple[DeviceRow, str]:
        q = self._base().where(DeviceRow.id == device_id).with_for_update(of=DeviceRow)
        found = (await self._s.execute(q)).one_or_none()
        if found is None:
            raise NotFound(f"device {device_id} does not exist", kind="device")
        return found

    async def update(
        self,
        device_id: uuid.UUID,
        *,
        changes: dict[str, Any],
        group_ids: dict[str, uuid.UUID] | None,
        expected_version: int | None,
        actor: Actor,
        via: Via,
    ) -> Device:
        """Change inventory fields (never the status). ``changes`` keys: role, driver,
        connection, labels, groups."""
        row, fabric = await self._locked(device_id)
        actor.ensure_may_write(fabric)
        check_version(row.name, row.version, expected_version)
        if "role" in changes:
            row.role = changes["role"]
        if "driver" in changes:
            row.driver = changes["driver"]
        if "connection" in changes:
            conn: Connection = changes["connection"]
            row.host, row.port, row.credentials_ref = conn.host, conn.port, conn.credentials_ref
            row.options = dict(conn.options)
        if "labels" in changes:
            await self._s.execute(
                delete(DeviceLabelRow).where(DeviceLabelRow.device_id == device_id)
            )
            self._s.add_all(
                DeviceLabelRow(device_id=device_id, key=k, value=v)
                for k, v in changes["labels"].items()
            )
        if "groups" in changes:
            assert group_ids is not None
            await self._s.execute(
                delete(DeviceGroupRow).where(DeviceGroupRow.device_id == device_id)
            )
            self._s.add_all(
                DeviceGroupRow(device_id=device_id, group_id=group_ids[g])
                for g in changes["groups"]
            )
        await self._bump(row)
        await self._audit.append(
            actor=actor.name,
            action="device.update",
            via=via.value,
            fabric=fabric,
            device=row.name,
            device_id=row.id,
            details={"fields": sorted(changes)},
        )
        return await self.get(device_id)

    async def delete(self, device_id: uuid.UUID, *, actor: Actor, via: Via) -> Device:
        row, fabric = await self._locked(device_id)
        actor.ensure_may_write(fabric)
        status = DeviceStatus(row.status)
        if status not in (DeviceStatus.PENDING, DeviceStatus.DECOMMISSIONED):
            raise Conflict(
                f"device {row.name!r} is {status.value}; only pending or decommissioned devices "
                "can be deleted (decommission it first)",
                current_status=status.value,
            )
        device = await self.get(device_id)
        await self._s.delete(row)
        await self._audit.append(
            actor=actor.name,
            action="device.delete",
            via=via.value,
            fabric=fabric,
            device=row.name,
            device_id=row.id,
            from_status=status.value,
        )
        await self._s.flush()
        return device

    async def _bump(self, row: DeviceRow) -> None:
        row.version += 1
        row.updated_at = self._clock()
        await self._s.flush()
