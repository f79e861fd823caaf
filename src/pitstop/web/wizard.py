"""The maintenance wizard: parameters (screen 1) → test run (screen 2) → activate (screen 3);
deactivation (screen 4) and a standalone health check.

The wizard keeps no server-side state between screens: the test-run job records the
parameters it ran with, so "Previous" rebuilds screen 1 from that job (``?from=<job>``) with
the operator's edits, and "Next" starts the activation with exactly what the test run
checked. Activation after a failed test run is an admin-only override, confirmed in the page
and recorded in the audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from pitstop.domain.errors import Conflict, PitstopError, ValidationFailed
from pitstop.domain.jobs import Job, JobType, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Role, Via
from pitstop.engine.service import JobService
from pitstop.web import forms
from pitstop.web.context import (
    PREFIX,
    Viewer,
    WebRoute,
    read_form,
    redirect,
    render,
    store_of,
    viewer,
)
from pitstop.web.jobs import job_context, job_id

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)


def _expected_end(text: str) -> datetime | None:
    """A ``datetime-local`` value, read as UTC (the page says so)."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("enter a date and time, e.g. 2026-12-01T18:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _screen1(
    request: Request,
    who: Viewer,
    device_ref: str,
    *,
    values: dict[str, Any] | None = None,
    meta: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    async with store_of(request).unit() as u:
        dev = await u.devices.get(await u.devices.resolve(device_ref))
        fabric = await u.fabrics.get(str(dev.fabric_id))
    if values is None:
        values = forms.effective(fabric.parameters, {})
    return render(
        request,
        "wizard_params.html",
        {
            "viewer": who,
            "device": dev,
            "fabric": fabric,
            "form": forms.form_sections(),
            "values": values,
            "defaults": forms.effective(fabric.parameters, {}),
            "meta": meta or {"reason": "", "ticket": "", "expected_end": ""},
            "errors": errors or {},
            "step": 1,
        },
        status_code=status_code,
    )


@router.get("/devices/{device_ref}/activate", response_class=HTMLResponse)
async def parameters_page(request: Request, device_ref: str) -> HTMLResponse:
    """Screen 1. With ``?from=<test-run job>``, the form shows what that run used."""
    who = await viewer(request)
    who.require(Role.OPERATOR)
    source = request.query_params.get("from")
    if not source:
        return await _screen1(request, who, device_ref)
    async with store_of(request).unit() as u:
        job = await u.jobs.get(job_id(source))
        fabric = await u.fabrics.get(str(job.fabric_id))
    asked = job.request
    end = asked.expected_end.isoformat() if asked.expected_end else ""
    meta = {
        "reason": asked.reason or "",
        "ticket": asked.ticket or "",
        "expected_end": end[:16],
    }
    values = forms.effective(fabric.parameters, asked.overrides)
    return await _screen1(request, who, str(job.device_id), values=values, meta=meta)


@router.post("/devices/{device_ref}/activate", response_model=None)
async def start_test_run(request: Request, device_ref: str) -> Response:
    """Screen 1's Next: validate the form and start the test run (it changes nothing)."""
    who = await viewer(request)
    actor = who.require(Role.OPERATOR)
    form = await read_form(request)
    async with store_of(request).unit() as u:
        dev = await u.devices.get(await u.devices.resolve(device_ref))
        fabric = await u.fabrics.get(str(dev.fabric_id))
    parsed = forms.parse(form, fabric.parameters)
    meta = {k: str(form.get(k, "")).strip() for k in ("reason", "ticket", "expected_end")}
    errors = dict(parsed.errors)
    if len(meta["ticket"]) > 127:
        errors["ticket"] = "at most 127 characters"
    expected_end = None
    try:
        expected_end = _expected_end(meta["expected_end"])
    except ValueError as exc:
        errors["expected_end"] = str(exc)
    service = JobService(store_of(request))
    # The request's own rules are the service's; shown here with the form's parse errors.
    for problem in service.request_problems(
        job_type=JobType.ACTIVATE, reason=meta["reason"], expected_end=expected_end
    ):
        errors.setdefault(problem.field, problem.message)
    if errors:
        return await _screen1(
            request,
            who,
            str(dev.id),
            values=parsed.values,
            meta=meta,
            errors=errors,
            status_code=422,
        )
    try:
        job = await service.submit(
            job_type=JobType.ACTIVATE,
            device=str(dev.id),
            fabric=None,
            mode=Mode.TEST_RUN,
            advanced_parameters=parsed.overrides,
            reason=meta["reason"],
            ticket=meta["ticket"] or None,
            expected_end=expected_end,
            actor=actor,
            via=Via.WEB,
        )
    except ValidationFailed as exc:
        return await _screen1(
            request,
            who,
            str(dev.id),
            values=parsed.values,
            meta=meta,
            errors=forms.field_errors(exc),
            status_code=422,
        )
    except PitstopError as exc:
        return await _screen1(
            request,
            who,
            str(dev.id),
            values=parsed.values,
            meta=meta,
            errors={"_form": f"{exc.code}: {exc.detail}"},
            status_code=exc.http_status,
        )
    return redirect(f"{PREFIX}/wizard/{job.id}/test")


def _is_test_run(job: Job) -> bool:
    return job.type is JobType.ACTIVATE and job.mode is Mode.TEST_RUN


@router.get("/wizard/{job_ref}/test", response_class=HTMLResponse)
async def test_run_page(request: Request, job_ref: str) -> HTMLResponse:
    """Screen 2: the test run's live log, the device, and each check's result."""
    who = await viewer(request)
    async with store_of(request).unit() as u:
        job = await u.jobs.get(job_id(job_ref))
        if not _is_test_run(job):
            raise Conflict(f"job {job.id} is not a test run")
        ctx = await job_context(request, u, who, job, view="test")
    return render(request, "wizard_test.html", {**ctx, "step": 2})


@router.post("/wizard/{job_ref}/activate", response_model=None)
async def start_activation(request: Request, job_ref: str) -> Response:
    """Screen 2's Next, after the warning dialog: activate with the test run's parameters."""
    who = await viewer(request)
    actor = who.require(Role.OPERATOR)
    form = await read_form(request)
    job = await JobService(store_of(request)).activate_tested(
        job_id(job_ref), actor=actor, via=Via.WEB, override=form.get("override") == "yes"
    )
    return redirect(f"{PREFIX}/wizard/{job.id}/progress")


@router.get("/wizard/{job_ref}/progress", response_class=HTMLResponse)
async def progress_page(request: Request, job_ref: str) -> HTMLResponse:
    """Screen 3 (activate) and screen 4 (deactivate): live log, status, and the results."""
    who = await viewer(request)
    async with store_of(request).unit() as u:
        job = await u.jobs.get(job_id(job_ref))
        ctx = await job_context(request, u, who, job, view="progress")
    return render(request, "wizard_progress.html", {**ctx, "step": 3})


@router.post("/devices/{device_ref}/deactivate", response_model=None)
async def start_deactivation(request: Request, device_ref: str) -> Response:
    who = await viewer(request)
    actor = who.require(Role.OPERATOR)
    form = await read_form(request)
    store = store_of(request)
    async with store.unit() as u:
        dev = await u.devices.get(await u.devices.resolve(device_ref))
    if dev.status is not DeviceStatus.MAINTENANCE:
        raise Conflict(f"{dev.name} is {dev.status.value}, not in maintenance")
    job = await JobService(store).submit(
        job_type=JobType.DEACTIVATE,
        device=str(dev.id),
        fabric=None,
        mode=None,
        # Unticked, a configuration changed in maintenance is reported and kept.
        advanced_parameters=(
            {"undrain": {"revert_config": True}} if form.get("revert_config") == "on" else {}
        ),
        reason=str(form.get("reason", "")).strip() or "maintenance finished",
        ticket=dev.maintenance.ticket,
        expected_end=None,
        actor=actor,
        via=Via.WEB,
    )
    return redirect(f"{PREFIX}/wizard/{job.id}/progress")


@router.post("/devices/{device_ref}/healthcheck", response_model=None)
async def start_healthcheck(request: Request, device_ref: str) -> Response:
    who = await viewer(request)
    actor = who.require(Role.OPERATOR)
    store = store_of(request)
    async with store.unit() as u:
        dev = await u.devices.get(await u.devices.resolve(device_ref))
    job = await JobService(store).submit(
        job_type=JobType.HEALTHCHECK,
        device=str(dev.id),
        fabric=None,
        mode=None,
        advanced_parameters={},
        reason="health check from the web UI",
        ticket=None,
        expected_end=None,
        actor=actor,
        via=Via.WEB,
    )
    return redirect(f"{PREFIX}/jobs/{job.id}")
