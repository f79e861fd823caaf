"""The fleet map: a fabric's published map by epoch (with ETag), a live SSE feed of new epochs
for consumers, and a manual tick.

``GET /api/v1/fabrics/{f}/map`` answers the latest epoch (``?epoch=N`` an older one still kept)
with ``ETag``; a client sending ``If-None-Match`` with the tag it holds gets ``304``.
``GET /api/v1/fabrics/{f}/map/watch`` sends the current map at once (unless ``Last-Event-ID``
says the client has it) and then each new epoch as an SSE ``map`` event whose id is the epoch.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from pitstop.api.deps import ActorDep, Operator, StoreDep, StreamGuardDep, ViaDep, refused_event
from pitstop.api.schemas import EventStream
from pitstop.domain.errors import NotFound
from pitstop.domain.fleetmap import FleetMap
from pitstop.domain.limits import MAX_INT64, event_id
from pitstop.engine.stream_guard import StreamGuard
from pitstop.storage.store import Store

router = APIRouter(prefix="/api/v1/fabrics", tags=["fleet map"])

POLL_S = 0.5
KEEPALIVE_S = 15.0


def _body(m: FleetMap) -> dict[str, Any]:
    return {**m.as_dict(), "etag": m.etag}


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


@router.get(
    "/{fabric}/map",
    response_model=None,
    responses={304: {"description": "Not modified: If-None-Match names the current ETag"}},
)
async def get_map(
    fabric: str,
    store: StoreDep,
    _: ActorDep,
    epoch: Annotated[
        int | None, Query(ge=1, le=MAX_INT64, description="An older epoch still kept")
    ] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        found = await u.epochs.latest(f.id) if epoch is None else await u.epochs.at(f.id, epoch)
        if found is None:
            if epoch is None:
                raise NotFound(
                    f"fabric {f.name} has no published map yet; the next epoch tick makes one "
                    f"(or run: pitstop epoch tick --fabric {f.name})",
                    kind="map",
                    fabric=f.name,
                )
            oldest = await u.epochs.oldest_kept(f.id)
            latest = await u.epochs.latest(f.id)
            raise NotFound(
                f"epoch {epoch} of fabric {f.name} is not kept",
                kind="map",
                fabric=f.name,
                oldest_kept=oldest,
                latest=latest.epoch if latest else None,
            )
    headers = {"ETag": found.etag, "Cache-Control": "no-cache"}
    if _matches(if_none_match, found.etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(_body(found), headers=headers)


@router.post("/{fabric}/epochs/tick")
async def tick(fabric: str, store: StoreDep, actor: Operator, via: ViaDep) -> dict[str, Any]:
    """Publish the next epoch now, from the devices' statuses as they are."""
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        actor.ensure_may_write(f.name)
        made = await u.epochs.tick(f.id, by=actor.name)
        assert made is not None  # no interval given: always ticks
        await u.audit.append(
            actor=actor.name,
            action="fabric.epoch_tick",
            via=via.value,
            fabric=f.name,
            details={"epoch": made.epoch, "counts": made.counts()},
        )
        return _body(made)


@router.get("/{fabric}/map/watch", response_class=EventStream)
async def watch_map(
    fabric: str,
    request: Request,
    store: StoreDep,
    guard: StreamGuardDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStream:
    """Server-sent events: ``map`` with each new epoch (id = epoch). Resumable. Ends with
    ``error`` when the token is revoked or expires meanwhile."""
    seen = event_id(last_event_id)
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)  # 404 before any stream starts
    return EventStream(
        _stream(store, f.id, seen, request, guard),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    store: Store, fabric_id: uuid.UUID, seen: int, request: Request, guard: StreamGuard
) -> AsyncIterator[str]:
    idle = 0.0
    yield ": watching\n\n"  # headers out at once, so clients know they are connected
    while True:
        if not await guard.allows():
            yield refused_event(guard)
            return
        async with store.unit() as u:
            latest = await u.epochs.latest(fabric_id)
        if latest is not None and latest.epoch > seen:
            seen = latest.epoch
            idle = 0.0
            yield f"id: {latest.epoch}\nevent: map\ndata: {json.dumps(_body(latest))}\n\n"
        if await request.is_disconnected():
            return
        idle += POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(POLL_S)
