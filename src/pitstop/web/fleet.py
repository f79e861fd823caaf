"""The fleet page (fabrics, then devices with filters, live over SSE) and the device page."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Role
from pitstop.domain.selectors import parse_selector
from pitstop.storage.devices import DeviceFilter
from pitstop.storage.store import Unit
from pitstop.web import live, views
from pitstop.web.context import PREFIX, Viewer, WebRoute, fragment, render, store_of, viewer

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)

FILTERS = ("fabric", "status", "role", "label", "q")


def _query(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in FILTERS}


async def _fleet(u: Unit, query: dict[str, str]) -> dict[str, Any]:
    fabrics = await u.fabrics.all()
    fabric_id = None
    if query["fabric"]:
        fabric_id = (await u.fabrics.row(query["fabric"])).id
    statuses: tuple[DeviceStatus, ...] = ()
    if query["status"]:
        try:
            statuses = (DeviceStatus(query["status"]),)
        except ValueError:
            raise ValidationFailed(
                f"unknown status {query['status']!r}",
                [FieldError("status", "not a device status")],
            ) from None
    selector = tuple(parse_selector(query["label"])) if query["label"] else ()
    flt = DeviceFilter(
        fabric_id=fabric_id,
        statuses=statuses,
        role=query["role"] or None,
        search=query["q"] or None,
        selector=selector,
    )
    devices = (await u.devices.page(flt, limit=500)).items
    everything = (await u.devices.page(DeviceFilter(), limit=500)).items
    counts: dict[str, Counter[str]] = {f.name: Counter() for f in fabrics}
    attention: Counter[str] = Counter()
    for d in everything:
        counts.setdefault(d.fabric, Counter())[d.status.value] += 1
        attention[d.fabric] += d.needs_attention
    return {
        "fabrics": fabrics,
        "counts": counts,
        "attention": attention,
        "devices": devices,
        "jobs": await views.current_jobs(u),
        "roles": views.distinct(d.role for d in everything),
        "statuses": [s.value for s in DeviceStatus],
        "total": len(everything),
    }


def _live_url(query: dict[str, str]) -> str:
    return f"{PREFIX}/fleet/live?" + urlencode({k: v for k, v in query.items() if v})


@router.get("/", response_class=HTMLResponse)
async def fleet_page(request: Request) -> HTMLResponse:
    who = await viewer(request)
    query = _query(request)
    async with store_of(request).unit() as u:
        data = await _fleet(u, query)
    ctx = {"viewer": who, "query": query, "live_url": _live_url(query), **data}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "devices":
        return HTMLResponse(fragment(request, "_devices.html", ctx))
    return render(request, "fleet.html", ctx)


@router.get("/fleet/live")
async def fleet_live(request: Request) -> StreamingResponse:
    """``rows`` for the filtered devices table, or with ``part=fabrics`` the fabric cards."""
    who = await viewer(request)
    query = _query(request)
    part = "fabrics" if request.query_params.get("part") == "fabrics" else "rows"
    template = "_fabrics.html" if part == "fabrics" else "_device_rows.html"
    changes = live.Changes()

    async def render_now() -> dict[str, str]:
        async with store_of(request).unit() as u:
            data = await _fleet(u, query)
        return {part: fragment(request, template, {"viewer": who, "query": query, **data})}

    # The page already shows the current state; only later changes are sent.
    changes.diff(await render_now())

    async def poll() -> tuple[list[tuple[str, str, int | None]], bool]:
        return changes.diff(await render_now()), False

    return live.stream(request, poll, poll_s=1.0)


def actions(who: Viewer, status: DeviceStatus, fabric: str, busy: bool) -> dict[str, bool]:
    """Which device actions this user is offered; the server checks again on POST."""
    may = who.may_write(fabric) and not busy
    return {
        "activate": may and status is DeviceStatus.ACTIVATED,
        "deactivate": may and status is DeviceStatus.MAINTENANCE,
        "healthcheck": may and status in (DeviceStatus.ACTIVATED, DeviceStatus.MAINTENANCE),
    }


@router.get("/devices/{device_id}", response_class=HTMLResponse)
async def device_page(request: Request, device_id: str) -> HTMLResponse:
    who = await viewer(request)
    async with store_of(request).unit() as u:
        dev = await u.devices.get(await u.devices.resolve(device_id))
        fabric = await u.fabrics.get(str(dev.fabric_id))
        jobs = (await u.jobs.page(device_id=dev.id, limit=10)).items
        current = next((j for j in jobs if j.status in views.ACTIVE), None)
        ctx = {
            "viewer": who,
            "device": dev,
            "fabric": fabric,
            "jobs": jobs,
            "current": current,
            "history": await views.status_history(u, dev.id),
            "health": await views.last_health(u, dev.id),
            "diff": await views.last_diff(u, dev.id),
            "actions": actions(who, dev.status, dev.fabric, current is not None),
            "is_admin": who.may(Role.ADMIN),
        }
    return render(request, "device.html", ctx)
