"""Fabrics and their redundancy groups."""

from __future__ import annotations

from fastapi import APIRouter, status

from pitstop.api.deps import ActorDep, Admin, StoreDep, ViaDep, check_unscoped
from pitstop.api.schemas import FabricIn, FabricOut, FabricPatch, GroupIn, GroupOut, GroupPatch
from pitstop.domain.inventory import Budget

router = APIRouter(prefix="/api/v1/fabrics", tags=["fabrics"])


@router.get("")
async def list_fabrics(store: StoreDep, _: ActorDep) -> list[FabricOut]:
    async with store.unit() as u:
        return [FabricOut.of(f) for f in await u.fabrics.all()]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_fabric(body: FabricIn, store: StoreDep, actor: Admin, via: ViaDep) -> FabricOut:
    check_unscoped(actor, "create fabrics")
    async with store.unit() as u:
        fabric = await u.fabrics.create(
            name=body.name,
            description=body.description,
            labels=body.labels,
            parameters=body.parameters,
        )
        await u.audit.append(actor=actor.name, action="fabric.create", via=via, fabric=fabric.name)
        return FabricOut.of(fabric)


@router.get("/{fabric}")
async def get_fabric(fabric: str, store: StoreDep, _: ActorDep) -> FabricOut:
    async with store.unit() as u:
        return FabricOut.of(await u.fabrics.get(fabric))


@router.patch("/{fabric}")
async def update_fabric(
    fabric: str, body: FabricPatch, store: StoreDep, actor: Admin, via: ViaDep
) -> FabricOut:
    async with store.unit() as u:
        actor.ensure_may_write((await u.fabrics.row(fabric)).name)
        out = await u.fabrics.update(
            fabric,
            description=body.description,
            labels=body.labels,
            parameters=body.parameters,
        )
        await u.audit.append(
            actor=actor.name,
            action="fabric.update",
            via=via,
            fabric=out.name,
            details={"fields": sorted(body.model_fields_set)},
        )
        return FabricOut.of(out)


@router.delete("/{fabric}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_fabric(fabric: str, store: StoreDep, actor: Admin, via: ViaDep) -> None:
    async with store.unit() as u:
        actor.ensure_may_write((await u.fabrics.row(fabric)).name)
        gone = await u.fabrics.delete(fabric)
        await u.audit.append(actor=actor.name, action="fabric.delete", via=via, fabric=gone.name)


@router.get("/{fabric}/groups")
async def list_groups(fabric: str, store: StoreDep, _: ActorDep) -> list[GroupOut]:
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        return [GroupOut.of(g, n) for g, n in await u.fabrics.groups(f.id)]


@router.post("/{fabric}/groups", status_code=status.HTTP_201_CREATED)
async def create_group(
    fabric: str, body: GroupIn, store: StoreDep, actor: Admin, via: ViaDep
) -> GroupOut:
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        actor.ensure_may_write(f.name)
        group = await u.fabrics.create_group(
            f.id,
            name=body.name,
            max_unavailable=Budget.parse(body.max_unavailable),
            description=body.description,
        )
        await u.audit.append(
            actor=actor.name,
            action="group.create",
            via=via,
            fabric=f.name,
            details={"group": group.name, "max_unavailable": str(group.max_unavailable)},
        )
        return GroupOut.of(group, 0)


@router.get("/{fabric}/groups/{group}")
async def get_group(fabric: str, group: str, store: StoreDep, _: ActorDep) -> GroupOut:
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        row = await u.fabrics.group_row(f.id, group)
        for g, n in await u.fabrics.groups(f.id):
            if g.id == row.id:
                return GroupOut.of(g, n)
    raise AssertionError("unreachable: the group row was just read")


@router.patch("/{fabric}/groups/{group}")
async def update_group(
    fabric: str, group: str, body: GroupPatch, store: StoreDep, actor: Admin, via: ViaDep
) -> GroupOut:
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        actor.ensure_may_write(f.name)
        budget = None if body.max_unavailable is None else Budget.parse(body.max_unavailable)
        g = await u.fabrics.update_group(
            f.id, group, max_unavailable=budget, description=body.description
        )
        await u.audit.append(
            actor=actor.name,
            action="group.update",
            via=via,
            fabric=f.name,
            details={"group": g.name, "max_unavailable": str(g.max_unavailable)},
        )
        members = {x.name: n for x, n in await u.fabrics.groups(f.id)}
        return GroupOut.of(g, members.get(g.name, 0))


@router.delete("/{fabric}/groups/{group}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_group(fabric: str, group: str, store: StoreDep, actor: Admin, via: ViaDep) -> None:
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        actor.ensure_may_write(f.name)
        g = await u.fabrics.delete_group(f.id, group)
        await u.audit.append(
            actor=actor.name,
            action="group.delete",
            via=via,
            fabric=f.name,
            details={"group": g.name},
        )
