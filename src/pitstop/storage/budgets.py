"""Fabric policy and the fabric's budget pools, read and written in the caller's transaction.

A reservation is the status change itself: a device holds a slot in each of its pools while its
status is unavailable. ``transitions.change_status`` judges and reserves in the transaction that
changes the status, after the fabric's row lock is held (taken before the device's own row,
always in that order), so on PostgreSQL every activation in a fabric is serialised and reads the
statuses its predecessors committed; SQLite has one writer. See ADR 0008.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.budgets import Pool, role_pool
from pitstop.domain.errors import NotFound
from pitstop.domain.inventory import Budget
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.policy import FabricPolicy, stored_role_budgets
from pitstop.domain.redundancy import Member
from pitstop.storage.tables import DeviceGroupRow, DeviceRow, FabricRow, GroupRow


def group_pools(rows: Iterable[tuple[str, str, str, str]]) -> list[Pool]:
    """The group pools of one device from ``(group, max_unavailable, member, status)`` rows:
    by group name, members by name (``transitions`` reads them)."""
    groups: dict[str, tuple[str, list[Member]]] = {}
    for gname, budget, member, status in rows:
        groups.setdefault(gname, (budget, []))[1].append(Member(member, DeviceStatus(status)))
    return [
        Pool(g, Budget.parse(b), tuple(sorted(m, key=lambda x: x.name)))
        for g, (b, m) in sorted(groups.items())
    ]


async def lock_fabric(session: AsyncSession, fabric_id: uuid.UUID) -> None:
    """The fabric's row lock: the one serialisation point for budgets (a no-op on SQLite,
    whose transactions already hold the write lock)."""
    await session.execute(
        select(FabricRow.id).where(FabricRow.id == fabric_id).with_for_update(key_share=True)
    )


class BudgetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    # Policy ------------------------------------------------------------------------------

    async def _fabric(self, fabric_id: uuid.UUID) -> FabricRow:
        row = await self._s.get(FabricRow, fabric_id)
        if row is None:
            raise NotFound(f"fabric {fabric_id} does not exist", kind="fabric")
        return row

    async def policy(self, fabric_id: uuid.UUID) -> FabricPolicy:
        row = await self._fabric(fabric_id)
        return FabricPolicy(
            maintenance_allowed=bool(row.maintenance_allowed),
            role_overrides=stored_role_budgets(row.role_budgets),
        )

    async def set_policy(
        self,
        fabric_id: uuid.UUID,
        *,
        maintenance_allowed: bool | None,
        role_overrides: dict[str, Budget] | None,
    ) -> FabricPolicy:
        """Change the policy. Not retroactive: nothing already out of service is touched."""
        await lock_fabric(self._s, fabric_id)
        row = await self._fabric(fabric_id)
        if maintenance_allowed is not None:
            row.maintenance_allowed = maintenance_allowed
        if role_overrides is not None:
            row.role_budgets = {r: str(b) for r, b in sorted(role_overrides.items())}
        await self._s.flush()
        return await self.policy(fabric_id)

    # Pools -------------------------------------------------------------------------------

    async def _role_members(self, fabric_id: uuid.UUID, role: str) -> list[Member]:
        rows = await self._s.execute(
            select(DeviceRow.name, DeviceRow.status).where(
                DeviceRow.fabric_id == fabric_id, DeviceRow.role == role
            )
        )
        return [Member(n, DeviceStatus(s)) for n, s in rows.all()]

    async def fabric_pools(self, fabric_id: uuid.UUID) -> list[Pool]:
        """Every group of the fabric and every capped role that has devices."""
        policy = await self.policy(fabric_id)
        groups = {
            g.id: (g.name, Budget.parse(g.max_unavailable))
            for g in await self._s.scalars(select(GroupRow).where(GroupRow.fabric_id == fabric_id))
        }
        members: dict[uuid.UUID, list[Member]] = {gid: [] for gid in groups}
        rows = await self._s.execute(
            select(DeviceGroupRow.group_id, DeviceRow.name, DeviceRow.status)
            .join(DeviceRow, DeviceRow.id == DeviceGroupRow.device_id)
            .where(DeviceRow.fabric_id == fabric_id)
        )
        for gid, name, status in rows.all():
            members.setdefault(gid, []).append(Member(name, DeviceStatus(status)))
        pools = [
            Pool(name, budget, tuple(sorted(members[gid], key=lambda m: m.name)))
            for gid, (name, budget) in sorted(groups.items(), key=lambda kv: kv[1][0])
        ]
        for role, cap in sorted(policy.role_budgets.items()):
            found = await self._role_members(fabric_id, role)
            if found:
                pools.append(role_pool(role, cap, sorted(found, key=lambda m: m.name)))
        return pools
