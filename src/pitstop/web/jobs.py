"""Jobs: the list, a page per job (steps, durations, progress, logs, cancel and retry), and the
live stream that every job view (job page, wizard screens 2 to 4) listens to."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.jobs import Event, Job, JobStatus, JobType, Mode
from pitstop.domain.limits import event_id
from pitstop.domain.roles import Role, Via
from pitstop.engine.service import JobService, newer_job
from pitstop.storage.refs import as_uuid
from pitstop.storage.store import Unit
from pitstop.web import live, views
from pitstop.web.context import (
    PREFIX,
    Viewer,
    WebRoute,
    fragment,
    redirect,
    render,
    store_of,
    viewer,
)

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)

VIEWS = ("job", "test", "progress")


def job_id(ref: str) -> uuid.UUID:
    key = as_uuid(ref)
    if key is None:
        raise ValidationFailed("not a job id", [FieldError("job", f"{ref!r} is not a UUID")])
    return key


async def all_events(u: Unit, key: uuid.UUID, *, after: int = 0) -> list[Event]:
    """Every log event of a job after ``after``, however many there are."""
    out: list[Event] = []
    while True:
        batch = await u.jobs.events(key, after=after, limit=1000)
        out += batch
        if len(batch) < 1000:
            return out
        after = batch[-1].id


async def job_context(
    request: Request,
    u: Unit,
    who: Viewer,
    job: Job,
    *,
    view: str,
    events: list[Event] | None = None,
) -> dict[str, Any]:
    """Everything a job view shows; the same dict renders the page and each live fragment."""
    if events is None:
        events = await all_events(u, job.id)
    device = await u.devices.get(job.device_id)
    drain = views.drain_of(job, events)
    if drain is not None and drain.limit is None:
        drain = views.Drain(drain.samples, views.drain_limit(job), drain.done)
    may_control = who.may(Role.OPERATOR) and who.actor.may_write_fabric(job.fabric)
    is_test_run = job.type is JobType.ACTIVATE and job.mode is Mode.TEST_RUN
    stale = is_test_run and await newer_job(u, job) is not None
    return {
        "viewer": who,
        "job": job,
        "device": device,
        "events": events,
        "last_event": events[-1].id if events else 0,
        "transitions": await views.job_transitions(u, job),
        "health": views.health_of(job),
        "drain": drain,
        "effective_parameters": (
            job.request.effective.model_dump(mode="json") if job.request.effective else None
        ),
        "diff": views.diff_of(job),
        "problems": views.summarise_problems(job),
        "view": view,
        "is_test_run": is_test_run,
        "stale": stale,
        "may_cancel": may_control and not job.status.finished and not job.cancel_requested,
        "may_retry": may_control and job.status is JobStatus.FAILED,
        "may_activate": may_control and job.status is JobStatus.SUCCEEDED and not stale,
        "may_override": who.may(Role.ADMIN)
        and may_control
        and (stale or job.status in (JobStatus.FAILED, JobStatus.CANCELLED)),
    }


def fragments(request: Request, ctx: dict[str, Any]) -> dict[str, str]:
    names = ["panel", "device", "checks"]
    if ctx["view"] == "progress":
        names += ["drain", "diff"]
    if ctx["view"] in ("test", "progress"):
        names.append("nav")
    if ctx["view"] == "job":
        names.append("controls")
    return {n: fragment(request, f"_job_{n}.html", ctx) for n in names}


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(request: Request) -> HTMLResponse:
    who = await viewer(request)
    q = {k: request.query_params.get(k, "").strip() for k in ("status", "type", "device")}
    statuses = []
    if q["status"]:
        try:
            statuses.append(JobStatus(q["status"]))
        except ValueError:
            raise ValidationFailed(f"unknown job status {q['status']!r}") from None
    job_type = None
    if q["type"]:
        try:
            job_type = JobType(q["type"])
        except ValueError:
            raise ValidationFailed(f"unknown job type {q['type']!r}") from None
    cursor = request.query_params.get("cursor") or None
    async with store_of(request).unit() as u:
        device_id = await u.devices.resolve(q["device"]) if q["device"] else None
        page = await u.jobs.page(
            device_id=device_id, statuses=statuses, job_type=job_type, limit=50, cursor=cursor
        )
    return render(
        request,
        "jobs.html",
        {
            "viewer": who,
            "jobs": page.items,
            "next_cursor": page.next_cursor,
            "query": q,
            "statuses": [s.value for s in JobStatus],
            "types": [t.value for t in JobType],
        },
    )


@router.get("/jobs/{job_ref}", response_class=HTMLResponse)
async def job_page(request: Request, job_ref: str) -> HTMLResponse:
    who = await viewer(request)
    async with store_of(request).unit() as u:
        job = await u.jobs.get(job_id(job_ref))
        ctx = await job_context(request, u, who, job, view="job")
    return render(request, "job.html", ctx)


@router.get("/jobs/{job_ref}/live")
async def job_live(request: Request, job_ref: str) -> StreamingResponse:
    """Log lines as they come (resumable with Last-Event-ID) and each panel when it changes."""
    who = await viewer(request)
    view = request.query_params.get("view", "job")
    if view not in VIEWS:
        raise ValidationFailed(f"view must be one of {', '.join(VIEWS)}")
    key = job_id(job_ref)
    after_text = request.headers.get("last-event-id") or request.query_params.get("after", "0")
    after = event_id(after_text, field="after")
    changes = live.Changes()
    store = store_of(request)
    async with store.unit() as u:
        job = await u.jobs.get(key)
        # Read once; later polls read only what is new.
        seen = await all_events(u, key)
        # What the page was rendered with counts as sent.
        changes.diff(
            fragments(request, await job_context(request, u, who, job, view=view, events=seen))
        )
    state = {"after": max([after, *(e.id for e in seen if e.id <= after)])}

    async def poll() -> tuple[list[tuple[str, str, int | None]], bool]:
        async with store.unit() as u:
            job = await u.jobs.get(key)
            newer = await all_events(u, key, after=seen[-1].id if seen else 0)
            seen.extend(newer)
            ctx = await job_context(request, u, who, job, view=view, events=seen)
        out: list[tuple[str, str, int | None]] = []
        fresh = [e for e in seen if e.id > state["after"]]
        if fresh:
            state["after"] = fresh[-1].id
            html = fragment(request, "_log_lines.html", {**ctx, "events": fresh})
            out.append(("log", html, fresh[-1].id))
        out += changes.diff(fragments(request, ctx))
        return out, job.status.finished and not fresh

    return live.stream(request, poll)


@router.post("/jobs/{job_ref}/cancel", response_model=None)
async def cancel_job(request: Request, job_ref: str) -> Response:
    who = await viewer(request)
    actor = who.require(Role.OPERATOR)
    job = await JobService(store_of(request)).cancel(job_id(job_ref), actor=actor, via=Via.WEB)
    return redirect(f"{PREFIX}/jobs/{job.id}")


@router.post("/jobs/{job_ref}/retry", response_model=None)
async def retry_job(request: Request, job_ref: str) -> Response:
    who = await viewer(request)
    actor = who.require(Role.OPERATOR)
    job = await JobService(store_of(request)).retry(job_id(job_ref), actor=actor, via=Via.WEB)
    return redirect(f"{PREFIX}/jobs/{job.id}")
