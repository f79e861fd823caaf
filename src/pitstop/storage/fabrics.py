"""Fabrics and their redundancy groups."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.errors import Conflict, NotFound
from pitstop.domain.inventory import Budget, Fabric, RedundancyGroup
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.refs import as_uuid
from pitstop.storage.tables import DeviceGroupRow, DeviceRow, FabricRow, GroupRow


def _fabric(row: FabricRow) -> Fabric:
    created, updated = as_utc(row.created_at), as_utc(row.updated_at)
    assert created and updated
    return Fabric(
        row.id,
        row.name,
        row.description,
        dict(row.labels or {}),
        created,
        updated,
        dict(row.parameters or {}),
    )


def _group(row: GroupRow) -> RedundancyGroup:
    created = as_utc(row.created_at)
    assert created
    return RedundancyGroup(
        row.id, row.fabric_id, row.name, Budget.parse(row.max_unavailable), row.description, created
    )


class FabricRepository:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    async def row(self, ref: str) -> FabricRow:
        key = as_uuid(ref)
        row = await self._s.scalar(select(FabricRow).where(FabricRow.id == key)) if key else None
        if row is None:  # a name may look like a UUID too
            row = await self._s.scalar(select(FabricRow).where(FabricRow.name == ref))
        if row is None:
            raise NotFound(f"fabric {ref!r} does not exist", kind="fabric", ref=ref)
        return row

    async def lock(self, fabric_id: uuid.UUID) -> None:
        """Serialise changes that depend on the fabric's devices as a whole (redundancy):
        a row lock on PostgreSQL; SQLite's transactions already hold the write lock."""
        await self._s.execute(
            select(FabricRow.id).where(FabricRow.id == fabric_id).with_for_update(key_share=True)
        )

    async def get(self, ref: str) -> Fabric:
        return _fabric(await self.row(ref))

    async def all(self) -> list[Fabric]:
        rows = await self._s.scalars(select(FabricRow).order_by(FabricRow.name))
        return [_fabric(r) for r in rows]

    async def create(
        self,
        *,
        name: str,
        description: str,
        labels: dict[str, str],
        parameters: dict[str, Any] | None = None,
    ) -> Fabric:
        now = self._clock()
        if await self._s.scalar(select(FabricRow.id).where(FabricRow.name == name)):
            raise Conflict(f"fabric {name!r} already exists", kind="fabric", name=name)
        row = FabricRow(
            id=uuid.uuid4(),
            name=name,
            description=description,
            labels=labels,
            parameters=dict(parameters or {}),
            created_at=now,
            updated_at=now,
        )
        self._s.add(row)
        await self._flush(f"fabric {name!r} already exists")
        return _fabric(row)

    async def update(
        self,
        ref: str,
        *,
        description: str | None,
        labels: dict[str, str] | None,
        parameters: dict[str, Any] | None = None,
    ) -> Fabric:
        row = await self.row(ref)
        if description is not None:
            row.description = description
        if labels is not None:
            row.labels = labels
        if parameters is not None:
            row.parameters = parameters
        row.updated_at = self._clock()
        await self._s.flush()
        return _fabric(row)

    async def delete(self, ref: str) -> Fabric:
        row = await self.row(ref)
        count = await self._s.scalar(
            select(func.count()).select_from(DeviceRow).where(DeviceRow.fabric_id == row.id)
        )
        if count:
            raise Conflict(
                f"fabric {row.name!r} still has {count} devices; remove them first",
                devices=count,
            )
        fabric = _fabric(row)
        await self._s.delete(row)
        await self._s.flush()
        return fabric

    # Groups ----------------------------------------------------------------------------

    async def group_row(self, fabric_id: uuid.UUID, ref: str) -> GroupRow:
        key = as_uuid(ref)
        q = select(GroupRow).where(GroupRow.fabric_id == fabric_id)
        row = await self._s.scalar(q.where(GroupRow.id == key)) if key else None
        if row is None:
            row = await self._s.scalar(q.where(GroupRow.name == ref))
        if row is None:
            raise NotFound(f"group {ref!r} does not exist in this fabric", kind="group", ref=ref)
        return row

    async def groups(self, fabric_id: uuid.UUID) -> list[tuple[RedundancyGroup, int]]:
        """Each group of the fabric with its member count."""
        members = (
            select(DeviceGroupRow.group_id, func.count().label("n"))
            .group_by(DeviceGroupRow.group_id)
            .subquery()
        )
        q = (
            select(GroupRow, func.coalesce(members.c.n, 0))
            .outerjoin(members, members.c.group_id == GroupRow.id)
            .where(GroupRow.fabric_id == fabric_id)
            .order_by(GroupRow.name)
        )
        return [(_group(g), int(n)) for g, n in (await self._s.execute(q)).all()]

    async def group_names(self, fabric_id: uuid.UUID) -> dict[str, uuid.UUID]:
        rows = await self._s.execute(
            select(GroupRow.name, GroupRow.id).where(GroupRow.fabric_id == fabric_id)
        )
        return dict(rows.all())

    async def create_group(
        self, fabric_id: uuid.UUID, *, name: str, max_unavailable: Budget, description: str
    ) -> RedundancyGroup:
        if await self._s.scalar(
            select(GroupRow.id).where(GroupRow.fabric_id == fabric_id, GroupRow.name == name)
        ):
            raise Conflict(f"group {name!r} already exists in this fabric", kind="group", name=name)
        row = GroupRow(
            id=uuid.uuid4(),
            fabric_id=fabric_id,
            name=name,
            max_unavailable=str(max_unavailable),
            description=description,
            created_at=self._clock(),
        )
        self._s.add(row)
        await self._flush(f"group {name!r} already exists")
        return _group(row)

    async def update_group(
        self,
        fabric_id: uuid.UUID,
        ref: str,
        *,
        max_unavailable: Budget | None,
        description: str | None,
    ) -> RedundancyGroup:
        row = await self.group_row(fabric_id, ref)
        if max_unavailable is not None:
            row.max_unavailable = str(max_unavailable)
        if description is not None:
            row.description = description
        await self._s.flush()
        return _group(row)

    async def delete_group(self, fabric_id: uuid.UUID, ref: str) -> RedundancyGroup:
        row = await self.group_row(fabric_id, ref)
        group = _group(row)
        await self._s.delete(row)
        await self._s.flush()
        return group

    async def _flush(self, message: str, **extra: Any) -> None:
        # The existence checks above give the friendly error; this catches the race.
        try:
            await self._s.flush()
        except IntegrityError as exc:
            raise Conflict(message, **extra) from exc
