"""Fleet-map epochs: publishing the next map of a fabric, and reading published ones.

A tick is claimed in the database: it runs under the fabric's row lock, re-reads the latest
epoch, and inserts ``epoch + 1``, whose primary key ``(fabric_id, epoch)`` no second replica
could insert again. With ``interval_s`` (the periodic ticker) a tick that another replica has
just made is not repeated: the latest map is read after the lock, and it is no longer due.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.fleetmap import FleetMap, MapState, build, digest, tick_due
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.storage.budgets import lock_fabric
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.tables import DeviceRow, FabricRow, FleetMapRow


def _map(row: FleetMapRow, fabric: str) -> FleetMap:
    at = as_utc(row.published_at)
    assert at is not None
    return FleetMap(
        fabric=fabric,
        epoch=row.epoch,
        published_at=at,
        published_by=row.published_by,
        members={k: MapState(v) for k, v in (row.members or {}).items()},
        digest=row.digest,
    )


class EpochRepository:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    async def _name(self, fabric_id: uuid.UUID) -> str:
        name = await self._s.scalar(select(FabricRow.name).where(FabricRow.id == fabric_id))
        assert name is not None
        return name

    async def latest(self, fabric_id: uuid.UUID) -> FleetMap | None:
        row = await self._s.scalar(
            select(FleetMapRow)
            .where(FleetMapRow.fabric_id == fabric_id)
            .order_by(FleetMapRow.epoch.desc())
            .limit(1)
        )
        return None if row is None else _map(row, await self._name(fabric_id))

    async def at(self, fabric_id: uuid.UUID, epoch: int) -> FleetMap | None:
        row = await self._s.get(FleetMapRow, (fabric_id, epoch))
        return None if row is None else _map(row, await self._name(fabric_id))

    async def oldest_kept(self, fabric_id: uuid.UUID) -> int | None:
        found = await self._s.scalar(
            select(func.min(FleetMapRow.epoch)).where(FleetMapRow.fabric_id == fabric_id)
        )
        return None if found is None else int(found)

    async def tick(
        self,
        fabric_id: uuid.UUID,
        *,
        by: str,
        interval_s: float | None = None,
        keep: int = 1000,
    ) -> FleetMap | None:
        """Publish the next epoch from the devices' statuses now. With ``interval_s``, only if
        one is due (None otherwise). Keeps the newest ``keep`` epochs."""
        await lock_fabric(self._s, fabric_id)
        now = self._clock()
        last = await self._s.scalar(
            select(FleetMapRow)
            .where(FleetMapRow.fabric_id == fabric_id)
            .order_by(FleetMapRow.epoch.desc())
            .limit(1)
        )
        if interval_s is not None and not tick_due(
            as_utc(last.published_at) if last else None, now, interval_s
        ):
            return None
        rows = await self._s.execute(
            select(DeviceRow.name, DeviceRow.status).where(DeviceRow.fabric_id == fabric_id)
        )
        members = build({n: DeviceStatus(s) for n, s in rows.all()})
        epoch = (last.epoch if last else 0) + 1
        row = FleetMapRow(
            fabric_id=fabric_id,
            epoch=epoch,
            published_at=now,
            published_by=by,
            members={k: v.value for k, v in members.items()},
            digest=digest(members),
        )
        self._s.add(row)
        await self._s.flush()
        if epoch > keep:
            await self._s.execute(
                delete(FleetMapRow).where(
                    FleetMapRow.fabric_id == fabric_id, FleetMapRow.epoch <= epoch - keep
                )
            )
        return _map(row, await self._name(fabric_id))

    async def fabric_ids(self) -> list[uuid.UUID]:
        return list(await self._s.scalars(select(FabricRow.id).order_by(FabricRow.name)))
