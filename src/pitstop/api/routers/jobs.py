"""Jobs: submit, list, follow (SSE), cancel, retry; and the advanced_parameters schema."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import StreamingResponse

from pitstop.api.deps import (
    ActorDep,
    Operator,
    StoreDep,
    StreamGuardDep,
    ViaDep,
    refused_event,
)
from pitstop.api.job_schemas import EventOut, JobIn, JobOut
from pitstop.api.schemas import Page
from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.jobs import JobStatus, JobType
from pitstop.domain.limits import MAX_INT64, event_id
from pitstop.domain.parameters import AdvancedParameters, json_schema
from pitstop.engine.service import JobService
from pitstop.engine.stream_guard import StreamGuard
from pitstop.storage.refs import as_uuid
from pitstop.storage.store import Store

router = APIRouter(prefix="/api/v1", tags=["jobs"])

POLL_S = 0.25
KEEPALIVE_S = 15.0
# Two bodies: the stream (the default), or a JSON list with follow=false.
EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": list[EventOut],
        "description": "The events as a stream (text/event-stream), or a list with follow=false",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def _job_id(ref: str) -> uuid.UUID:
    key = as_uuid(ref)
    if key is None:
        raise ValidationFailed("not a job id", [FieldError("job", f"{ref!r} is not a UUID")])
    return key


@router.get("/parameters/schema")
async def parameters_schema(_: ActorDep) -> dict[str, Any]:
    """The JSON schema of advanced_parameters, with every default filled in."""
    return {"schema": json_schema(), "defaults": AdvancedParameters().model_dump(mode="json")}


@router.post("/jobs", status_code=status.HTTP_201_CREATED)
async def submit_job(body: JobIn, store: StoreDep, actor: Operator, via: ViaDep) -> JobOut:
    job = await JobService(store).submit(
        job_type=body.type,
        device=body.device,
        fabric=body.fabric,
        mode=body.mode,
        advanced_parameters=body.advanced_parameters,
        reason=body.reason,
        ticket=body.ticket,
        expected_end=body.expected_end,
        actor=actor,
        via=via,
        force=body.force,
        force_reason=body.force_reason,
    )
    return JobOut.of(job)


@router.get("/jobs")
async def list_jobs(
    store: StoreDep,
    _: ActorDep,
    device: Annotated[str | None, Query(description="Device name or id")] = None,
    fabric: str | None = None,
    status_: Annotated[str | None, Query(alias="status", description="Comma-separated")] = None,
    type_: Annotated[JobType | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Page[JobOut]:
    statuses = []
    for part in (status_ or "").split(","):
        if part.strip():
            try:
                statuses.append(JobStatus(part.strip()))
            except ValueError:
                raise ValidationFailed(
                    f"unknown job status {part!r}",
                    [FieldError("status", ", ".join(s.value for s in JobStatus))],
                ) from None
    async with store.unit() as u:
        device_id = None
        if device:
            fabric_id = (await u.fabrics.row(fabric)).id if fabric else None
            device_id = await u.devices.resolve(device, fabric_id=fabric_id)
        page = await u.jobs.page(
            device_id=device_id, statuses=statuses, job_type=type_, limit=limit, cursor=cursor
        )
    return Page[JobOut](items=[JobOut.of(j) for j in page.items], next_cursor=page.next_cursor)


@router.get("/jobs/{job}")
async def get_job(
    job: str, store: StoreDep, _: ActorDep, outputs: bool = Query(default=False)
) -> JobOut:
    """``outputs=true`` adds each step's output (checks, drain samples, diff)."""
    async with store.unit() as u:
        return JobOut.of(await u.jobs.get(_job_id(job)), with_output=outputs)


@router.post("/jobs/{job}/cancel")
async def cancel_job(job: str, store: StoreDep, actor: Operator, via: ViaDep) -> JobOut:
    """Cancel: the running step is interrupted and a diversion already applied is rolled back."""
    return JobOut.of(await JobService(store).cancel(_job_id(job), actor=actor, via=via))


@router.post("/jobs/{job}/retry")
async def retry_job(job: str, store: StoreDep, actor: Operator, via: ViaDep) -> JobOut:
    """Queue a failed job again from its failed step (validation runs again first)."""
    return JobOut.of(await JobService(store).retry(_job_id(job), actor=actor, via=via))


@router.get("/jobs/{job}/events", response_model=None, responses=EVENTS_RESPONSES)
async def job_events(
    job: str,
    request: Request,
    store: StoreDep,
    guard: StreamGuardDep,
    after: Annotated[int, Query(ge=0, le=MAX_INT64, description="Only events after this id")] = 0,
    follow: Annotated[bool, Query(description="Stream until the job ends (SSE)")] = True,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse | list[EventOut]:
    """Server-sent events: ``log`` for each line, ``job`` when status or progress change,
    ``end`` when the job has finished, and ``error`` (then the stream ends) when the token is
    revoked or expires meanwhile. Resumable with ``Last-Event-ID``. With ``follow=false``, a
    JSON list of the events so far."""
    job_id = _job_id(job)
    after = max(after, event_id(last_event_id))
    async with store.unit() as u:
        await u.jobs.get(job_id)  # 404 before any stream starts
        if not follow:
            return [EventOut.of(e) for e in await u.jobs.events(job_id, after=after)]
    return StreamingResponse(
        _stream(store, job_id, after, request, guard),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    store: Store, job_id: uuid.UUID, after: int, request: Request, guard: StreamGuard
) -> AsyncIterator[str]:
    last_state: tuple[str, int, str | None] | None = None
    idle = 0.0
    while True:
        if not await guard.allows():
            yield refused_event(guard)
            return
        async with store.unit() as u:
            events = await u.jobs.events(job_id, after=after)
            job = await u.jobs.get(job_id)
        for e in events:
            after = e.id
            yield _sse("log", EventOut.of(e).model_dump_json(), e.id)
        state = (job.status.value, job.progress, job.current_step)
        if state != last_state:
            last_state = state
            body = {"status": state[0], "progress": state[1], "current_step": state[2]}
            yield _sse("job", json.dumps(body), None)
        if job.status.finished and not events:
            yield _sse("end", JobOut.of(job).model_dump_json(), None)
            return
        if await request.is_disconnected():
            return
        idle = 0.0 if events else idle + POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(POLL_S)


def _sse(event: str, data: str, event_id: int | None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"
