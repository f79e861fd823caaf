"""The audit log page: every change, newest first, filtered by actor, action, device, fabric
and time."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.web.context import PREFIX, WebRoute, render, store_of, viewer

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)

FILTERS = ("actor", "action", "device", "fabric", "since")
ACTIONS = (
    "device.status",
    "device.create",
    "device.update",
    "device.delete",
    "job.submit",
    "job.cancel",
    "job.retry",
    "job.override",
    "campaign.create",
    "campaign.start",
    "campaign.pause",
    "campaign.resume",
    "campaign.abort",
    "campaign.rollback",
    "campaign.approve",
    "token.create",
    "token.revoke",
    "simulated.fault",
)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request) -> HTMLResponse:
    who = await viewer(request)
    q = {k: request.query_params.get(k, "").strip() for k in FILTERS}
    since = None
    if q["since"]:
        try:
            since = datetime.fromisoformat(q["since"])
        except ValueError:
            raise ValidationFailed(
                "since is not a date", [FieldError("since", "enter a date like 2026-12-01")]
            ) from None
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since
    cursor = request.query_params.get("cursor") or None
    async with store_of(request).unit() as u:
        page = await u.audit.query(
            actor=q["actor"] or None,
            action=q["action"] or None,
            device=q["device"] or None,
            fabric=q["fabric"] or None,
            since=since,
            limit=100,
            cursor=cursor,
        )
    return render(
        request,
        "audit.html",
        {
            "viewer": who,
            "entries": page.items,
            "next_cursor": page.next_cursor,
            "query": q,
            "actions": ACTIONS,
        },
    )
