"""Devices: listing with filters and cursors, CRUD, and status changes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from pitstop.api.deps import ActorDep, Admin, Operator, StoreDep, ViaDep
from pitstop.api.schemas import DeviceCreate, DeviceOut, DevicePatch, Page, StatusChange
from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.policy import check_force
from pitstop.domain.selectors import parse_selector
from pitstop.storage.devices import DeviceFilter
from pitstop.storage.store import Unit

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

FabricQuery = Annotated[
    str | None, Query(description="Fabric name or id; needed when a device name is in several")
]


def _statuses(text: str | None) -> tuple[DeviceStatus, ...]:
    if not text:
        return ()
    out = []
    for part in (p.strip() for p in text.split(",")):
        try:
            out.append(DeviceStatus(part))
        except ValueError:
            choices = ", ".join(s.value for s in DeviceStatus)
            raise ValidationFailed(
                f"unknown status {part!r}",
                [FieldError("status", f"unknown status {part!r}; one of {choices}")],
            ) from None
    return tuple(out)


async def _device_id(u: Unit, ref: str, fabric: str | None) -> uuid.UUID:
    fabric_id = (await u.fabrics.row(fabric)).id if fabric else None
    return await u.devices.resolve(ref, fabric_id=fabric_id)


async def _group_ids(u: Unit, fabric_id: uuid.UUID, groups: list[str]) -> dict[str, uuid.UUID]:
    known = await u.fabrics.group_names(fabric_id)
    missing = [g for g in groups if g not in known]
    if missing:
        raise ValidationFailed(
            f"unknown groups: {', '.join(missing)}",
            [FieldError("groups", f"group {g!r} does not exist in this fabric") for g in missing],
        )
    return {g: known[g] for g in groups}


@router.get("")
async def list_devices(
    store: StoreDep,
    actor: ActorDep,
    fabric: FabricQuery = None,
    status_: Annotated[
        str | None, Query(alias="status", description="One status or several, comma-separated")
    ] = None,
    role: str | None = None,
    group: str | None = None,
    name: str | None = None,
    q: Annotated[str | None, Query(description="Part of the device name")] = None,
    selector: Annotated[str | None, Query(description="Label selector: k=v,k2!=v,k3,!k4")] = None,
    needs_attention: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Page[DeviceOut]:
    terms = tuple(parse_selector(selector)) if selector else ()
    async with store.unit() as u:
        fabric_id = (await u.fabrics.row(fabric)).id if fabric else None
        flt = DeviceFilter(
            fabric_id=fabric_id,
            statuses=_statuses(status_),
            role=role,
            name=name,
            search=q,
            group=group,
            selector=terms,
            needs_attention=needs_attention,
        )
        page = await u.devices.page(flt, limit=limit, cursor=cursor)
    return Page[DeviceOut](
        items=[DeviceOut.of(d, actor.role) for d in page.items], next_cursor=page.next_cursor
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_device(
    body: DeviceCreate, store: StoreDep, actor: Admin, via: ViaDep
) -> DeviceOut:
    async with store.unit() as u:
        f = await u.fabrics.row(body.fabric)
        actor.ensure_may_write(f.name)
        if body.name in await u.devices.names_in_fabric(f.id):
            raise ValidationFailed(
                f"device {body.name!r} already exists in fabric {f.name!r}",
                [FieldError("name", "already exists in this fabric")],
            )
        groups = await _group_ids(u, f.id, body.groups)
        dev_id = await u.devices.create(
            fabric_id=f.id,
            fabric=f.name,
            spec=body.to_spec(),
            group_ids=groups,
            actor=actor,
            via=via,
        )
        return DeviceOut.of(await u.devices.get(dev_id), actor.role)


@router.get("/{device}")
async def get_device(
    device: str, store: StoreDep, actor: ActorDep, fabric: FabricQuery = None
) -> DeviceOut:
    async with store.unit() as u:
        return DeviceOut.of(await u.devices.get(await _device_id(u, device, fabric)), actor.role)


@router.patch("/{device}")
async def update_device(
    device: str,
    body: DevicePatch,
    store: StoreDep,
    actor: Admin,
    via: ViaDep,
    fabric: FabricQuery = None,
) -> DeviceOut:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "version"}
    if "connection" in changes:
        assert body.connection is not None
        changes["connection"] = body.connection.to_domain()
    if not changes:
        raise ValidationFailed("nothing to change")
    async with store.unit() as u:
        dev_id = await _device_id(u, device, fabric)
        current = await u.devices.get(dev_id)
        group_ids = (
            await _group_ids(u, current.fabric_id, changes["groups"])
            if "groups" in changes
            else None
        )
        out = await u.devices.update(
            dev_id,
            changes=changes,
            group_ids=group_ids,
            expected_version=body.version,
            actor=actor,
            via=via,
        )
        return DeviceOut.of(out, actor.role)


@router.delete("/{device}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_device(
    device: str, store: StoreDep, actor: Admin, via: ViaDep, fabric: FabricQuery = None
) -> None:
    async with store.unit() as u:
        await u.devices.delete(await _device_id(u, device, fabric), actor=actor, via=via)


@router.post("/{device}/status")
async def set_status(
    device: str,
    body: StatusChange,
    store: StoreDep,
    actor: Operator,
    via: ViaDep,
    fabric: FabricQuery = None,
) -> DeviceOut:
    """Set a device's status by hand. Checked against the lifecycle table, then the caller's
    role, then ``version``; audited in the same transaction. Nothing is sent to the device.
    Leaving service reserves a budget slot and obeys the fabric's policy, like a job does."""
    forced = check_force(role=actor.role, force=body.force, force_reason=body.force_reason)
    async with store.unit() as u:
        found = await u.devices.get(await _device_id(u, device, fabric))
    # The one status change (``storage/writes.py``): it reads the device again under its lock.
    out = await store.writes.change_status(
        device=found,
        target=body.status,
        actor=actor,
        via=via,
        reason=body.reason,
        ticket=body.ticket,
        expected_version=body.version,
        forced=forced,
    )
    return DeviceOut.of(out, actor.role)
