"""The audit log: query it, and verify its hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pitstop.api.deps import ActorDep, StoreDep
from pitstop.api.schemas import (
    AuditOut,
    AuditProblemOut,
    AuditVerifyOut,
    Page,
    TransitionOut,
    UtcDatetime,
)
from pitstop.domain.lifecycle import TRANSITIONS
from pitstop.domain.roles import Role
from pitstop.storage.refs import as_uuid

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit")
async def query_audit(
    store: StoreDep,
    _: ActorDep,
    device: Annotated[str | None, Query(description="Device name or id")] = None,
    actor: str | None = None,
    action: str | None = None,
    fabric: str | None = None,
    since: UtcDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[AuditOut]:
    """Newest first. ``device`` matches the device's id or its name."""
    async with store.unit() as u:
        device_id, name = None, None
        if device:
            device_id = as_uuid(device)
            name = None if device_id else device
        page = await u.audit.query(
            device_id=device_id,
            device=name,
            actor=actor,
            action=action,
            fabric=fabric,
            since=since,
            limit=limit,
            cursor=cursor,
        )
    return Page[AuditOut](items=[AuditOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/audit/verify")
async def verify_audit(store: StoreDep, _: ActorDep) -> AuditVerifyOut:
    async with store.unit() as u:
        checked, problems = await u.audit.verify()
    return AuditVerifyOut(
        ok=not problems,
        checked=checked,
        problems=[AuditProblemOut(seq=p.seq, problem=p.problem) for p in problems],
    )


@router.get("/lifecycle")
async def lifecycle(_: ActorDep) -> list[TransitionOut]:
    """The device status table: every allowed move and the roles that may make it."""
    order = list(Role)
    return [
        TransitionOut(from_status=f, to_status=t, roles=sorted(roles, key=order.index))
        for (f, t), roles in TRANSITIONS.items()
    ]
