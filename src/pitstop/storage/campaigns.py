"""The campaign repository: campaigns, their devices in plan order, their log, and the lease
that lets exactly one driver (in any replica) drive a campaign.

The driver's writes are fenced by the lease epoch it claimed with (``fence``); a person's
requests (pause, resume, abort, approve) change only the state they expect to find
(``set_state(expected=...)``), so neither side overwrites the other's decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.campaign_pace import PastRun
from pitstop.domain.campaign_records import Campaign, CampaignDevice, CampaignEvent
from pitstop.domain.campaigns import DRIVEN, FINISHED, ActionKind, CampaignState, DeviceState
from pitstop.domain.errors import Conflict, NotFound
from pitstop.domain.jobs import Level
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.refs import as_uuid
from pitstop.storage.tables import CampaignDeviceRow, CampaignEventRow, CampaignRow, FabricRow

_DEVICE_FIELDS = {c.name for c in CampaignDeviceRow.__table__.columns} - {
    "campaign_id",
    "position",
}


# How many earlier campaigns of a fabric the devices' paces are learned from.
PAST_CAMPAIGNS = 10


class CampaignLeaseLost(Exception):
    """Another driver took the campaign over: this one must stop writing."""


def _campaign(row: CampaignRow, fabric: str) -> Campaign:
    return Campaign(
        id=row.id,
        name=row.name,
        fabric_id=row.fabric_id,
        fabric=fabric,
        spec=dict(row.spec or {}),
        state=CampaignState(row.state),
        plan=dict(row.plan or {}),
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
        lease_owner=row.lease_owner,
        lease_epoch=row.lease_epoch,
        lease_expires_at=as_utc(row.lease_expires_at),
    )


def _device(row: CampaignDeviceRow) -> CampaignDevice:
    return CampaignDevice(
        position=row.position,
        device_id=row.device_id,
        name=row.name,
        role=row.role,
        groups=tuple(row.groups or ()),
        after=tuple(row.after or ()),
        wave=row.wave,
        canary=row.canary,
        state=DeviceState(row.state),
        step=row.step,
        job_id=row.job_id,
        started_at=as_utc(row.started_at),
        phase_started_at=as_utc(row.phase_started_at),
        finished_at=as_utc(row.finished_at),
        soak_until=as_utc(row.soak_until),
        hang_warned=row.hang_warned,
        approved_by=row.approved_by,
        pace=row.pace,
        action_ran=row.action_ran,
        result=row.result,
        error=row.error,
    )


class CampaignRepository:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    # Campaigns ---------------------------------------------------------------------------

    async def create(
        self, *, name: str, fabric_id: uuid.UUID, spec: Mapping[str, Any], created_by: str
    ) -> Campaign:
        now = self._clock()
        campaign_id = uuid.uuid4()
        self._s.add(
            CampaignRow(
                id=campaign_id,
                name=name,
                fabric_id=fabric_id,
                spec=dict(spec),
                state=CampaignState.CREATED.value,
                plan={},
                created_by=created_by,
                created_at=now,
                updated_at=now,
                lease_epoch=0,
            )
        )
        try:
            await self._s.flush()
        except IntegrityError as exc:
            raise Conflict(f"a campaign named {name!r} already exists", name=name) from exc
        return await self.get(str(campaign_id))

    async def get(self, ref: str) -> Campaign:
        q = select(CampaignRow, FabricRow.name).join(FabricRow)
        key = as_uuid(ref)
        found = None
        if key is not None:
            found = (await self._s.execute(q.where(CampaignRow.id == key))).one_or_none()
        if found is None:
            found = (await self._s.execute(q.where(CampaignRow.name == ref))).one_or_none()
        if found is None:
            raise NotFound(f"campaign {ref!r} does not exist", kind="campaign", ref=ref)
        row, fabric = found
        await self._s.refresh(row)
        return _campaign(row, fabric)

    async def all(self) -> list[Campaign]:
        q = select(CampaignRow, FabricRow.name).join(FabricRow).order_by(CampaignRow.created_at)
        return [_campaign(r, f) for r, f in (await self._s.execute(q)).all()]

    async def set_state(
        self,
        campaign_id: uuid.UUID,
        *,
        expected: Collection[CampaignState],
        state: CampaignState,
        error: str | None = None,
        started: bool = False,
        finished: bool = False,
    ) -> bool:
        """Move to ``state`` only from one of ``expected``; False when it was elsewhere."""
        now = self._clock()
        values: dict[str, Any] = {"state": state.value, "updated_at": now}
        if error is not None:
            values["error"] = error
        if started:
            values["started_at"] = now
        if finished:
            values["finished_at"] = now
        result = await self._s.execute(
            update(CampaignRow)
            .where(CampaignRow.id == campaign_id)
            .where(CampaignRow.state.in_([s.value for s in expected]))
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0))

    async def set_plan(
        self, campaign_id: uuid.UUID, plan: Mapping[str, Any], *, spec: Mapping[str, Any]
    ) -> None:
        """Store the plan made at start, with the definition as it runs (its action's
        snapshot in it)."""
        await self._s.execute(
            update(CampaignRow)
            .where(CampaignRow.id == campaign_id)
            .values(plan=dict(plan), spec=dict(spec))
        )

    # Devices -----------------------------------------------------------------------------

    async def add_devices(self, campaign_id: uuid.UUID, devices: Sequence[CampaignDevice]) -> None:
        self._s.add_all(
            CampaignDeviceRow(
                campaign_id=campaign_id,
                position=d.position,
                device_id=d.device_id,
                name=d.name,
                role=d.role,
                groups=list(d.groups),
                after=list(d.after),
                wave=d.wave,
                canary=d.canary,
                pace=d.pace,
                state=d.state.value,
                hang_warned=False,
                action_ran=False,
            )
            for d in devices
        )
        await self._s.flush()

    async def past_runs(
        self, fabric_id: uuid.UUID, *, other_than: uuid.UUID, campaigns: int = PAST_CAMPAIGNS
    ) -> list[PastRun]:
        """The finished devices of the fabric's last ``campaigns`` finished campaigns (other
        than ``other_than``), the most recent campaign first: what each device took from
        entering to done, without the campaign's soak. Campaigns that wait for approvals are
        left out: their durations are a person's, not the device's."""
        q = (
            select(CampaignRow)
            .where(
                CampaignRow.fabric_id == fabric_id,
                CampaignRow.id != other_than,
                CampaignRow.state.in_([s.value for s in FINISHED]),
                CampaignRow.started_at.is_not(None),
            )
            .order_by(CampaignRow.started_at.desc(), CampaignRow.created_at.desc())
            # Enough to find ``campaigns`` once approval campaigns are left out, but bounded:
            # a fabric's history grows without end.
            .limit(max(50, 5 * campaigns))
        )
        chosen = [
            c
            for c in await self._s.scalars(q)
            if (c.spec or {}).get("action", {}).get("type") != ActionKind.AWAIT_APPROVAL.value
        ][:campaigns]
        if not chosen:
            return []
        soak = {c.id: float((c.spec or {}).get("soak_s") or 0.0) for c in chosen}
        rows = await self._s.execute(
            select(
                CampaignDeviceRow.campaign_id,
                CampaignDeviceRow.name,
                CampaignDeviceRow.started_at,
                CampaignDeviceRow.finished_at,
            ).where(
                CampaignDeviceRow.campaign_id.in_(list(soak)),
                CampaignDeviceRow.state == DeviceState.DONE.value,
                CampaignDeviceRow.started_at.is_not(None),
                CampaignDeviceRow.finished_at.is_not(None),
            )
        )
        rank = {str(c.id): i for i, c in enumerate(chosen)}
        runs = [
            PastRun(str(cid), name, (end - start).total_seconds() - soak[cid])
            for cid, name, start, end in rows.all()
            if start is not None and end is not None  # filtered above; for the type checker
        ]
        return sorted(runs, key=lambda r: rank[r.campaign])

    async def devices(self, campaign_id: uuid.UUID) -> list[CampaignDevice]:
        rows = await self._s.scalars(
            select(CampaignDeviceRow)
            .where(CampaignDeviceRow.campaign_id == campaign_id)
            .order_by(CampaignDeviceRow.position)
            .execution_options(populate_existing=True)
        )
        return [_device(r) for r in rows]

    async def update_device(self, campaign_id: uuid.UUID, position: int, **values: Any) -> None:
        unknown = set(values) - _DEVICE_FIELDS
        assert not unknown, unknown
        if isinstance(values.get("state"), DeviceState):
            values["state"] = values["state"].value
        await self._s.execute(
            update(CampaignDeviceRow)
            .where(CampaignDeviceRow.campaign_id == campaign_id)
            .where(CampaignDeviceRow.position == position)
            .values(**values)
        )

    # Log ---------------------------------------------------------------------------------

    async def add_event(
        self,
        campaign_id: uuid.UUID,
        *,
        level: Level,
        message: str,
        device: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self._s.add(
            CampaignEventRow(
                campaign_id=campaign_id,
                at=self._clock(),
                level=level.value,
                device=device,
                message=message,
                data=dict(data or {}),
            )
        )
        await self._s.flush()

    async def events(
        self, campaign_id: uuid.UUID, *, after: int = 0, limit: int = 500
    ) -> list[CampaignEvent]:
        rows = await self._s.scalars(
            select(CampaignEventRow)
            .where(CampaignEventRow.campaign_id == campaign_id, CampaignEventRow.id > after)
            .order_by(CampaignEventRow.id)
            .limit(limit)
        )
        return [
            CampaignEvent(
                r.id,
                r.campaign_id,
                as_utc(r.at) or r.at,
                Level(r.level),
                r.device,
                r.message,
                dict(r.data or {}),
            )
            for r in rows
        ]

    # Lease -------------------------------------------------------------------------------

    async def claim(self, *, worker: str, lease_ttl: timedelta) -> list[tuple[uuid.UUID, int]]:
        """Take every campaign that needs driving and has no live lease; each claim bumps the
        epoch (compare-and-set on the old one, so two claimers never both win)."""
        now = self._clock()
        rows = (
            await self._s.execute(
                select(CampaignRow.id, CampaignRow.lease_epoch).where(
                    CampaignRow.state.in_([s.value for s in DRIVEN]),
                    or_(
                        CampaignRow.lease_expires_at.is_(None),
                        CampaignRow.lease_expires_at < now,
                    ),
                )
            )
        ).all()
        won: list[tuple[uuid.UUID, int]] = []
        for campaign_id, epoch in rows:
            result = await self._s.execute(
                update(CampaignRow)
                .where(CampaignRow.id == campaign_id, CampaignRow.lease_epoch == epoch)
                .values(lease_owner=worker, lease_epoch=epoch + 1, lease_expires_at=now + lease_ttl)
            )
            if getattr(result, "rowcount", 0):
                won.append((campaign_id, epoch + 1))
        return won

    async def fence(self, campaign_id: uuid.UUID, *, epoch: int, lease_ttl: timedelta) -> None:
        """Renew the lease, or raise ``CampaignLeaseLost``: the first write of every driver
        transaction, so a driver that lost its lease changes nothing."""
        result = await self._s.execute(
            update(CampaignRow)
            .where(CampaignRow.id == campaign_id, CampaignRow.lease_epoch == epoch)
            .values(lease_expires_at=self._clock() + lease_ttl)
        )
        if not getattr(result, "rowcount", 0):
            raise CampaignLeaseLost(f"campaign {campaign_id} is driven elsewhere now")

    async def release(self, campaign_id: uuid.UUID, *, epoch: int) -> None:
        await self._s.execute(
            update(CampaignRow)
            .where(CampaignRow.id == campaign_id, CampaignRow.lease_epoch == epoch)
            .values(lease_owner=None, lease_expires_at=None)
        )
