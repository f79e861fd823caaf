"""Campaigns: plan (offline validation, stores nothing), create, list, show (status table,
progress and ETA), start, pause, resume, abort, rollback, approve, and the campaign log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from pitstop.api.deps import ActorDep, Operator, StoreDep, ViaDep
from pitstop.domain.campaign_records import Campaign, CampaignDevice
from pitstop.domain.campaign_window import campaign_progress
from pitstop.domain.limits import MAX_INT64
from pitstop.engine.campaigns import CampaignService, plan_document

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

Definition = Annotated[dict[str, Any], Body(description="A campaign definition (see the docs)")]
# The definition is free-form (checked by the planner), so its reference to a fabric is declared.
NAMES_A_FABRIC: dict[int | str, dict[str, Any]] = {
    404: {"description": "The fabric the definition names does not exist"}
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def device_view(d: CampaignDevice, now: datetime) -> dict[str, Any]:
    duration = d.duration_s(now)
    return {
        "position": d.position,
        "device": d.name,
        "role": d.role,
        "wave": d.wave,
        "canary": d.canary,
        "state": d.state.value,
        "step": d.step,
        "job_id": str(d.job_id) if d.job_id else None,
        "started_at": _iso(d.started_at),
        "finished_at": _iso(d.finished_at),
        "duration_s": round(duration, 1) if duration is not None else None,
        "result": d.result,
        "error": d.error,
        "approved_by": d.approved_by,
        "pace": round(d.pace, 3) if d.pace is not None else None,
    }


def campaign_view(
    c: Campaign, devices: list[CampaignDevice] | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    out: dict[str, Any] = {
        "id": str(c.id),
        "name": c.name,
        "fabric": c.fabric,
        "state": c.state.value,
        "error": c.error,
        "created_by": c.created_by,
        "created_at": _iso(c.created_at),
        "started_at": _iso(c.started_at),
        "finished_at": _iso(c.finished_at),
        "driver": c.lease_owner,
        "definition": dict(c.spec),
        "plan": dict(c.plan),
    }
    if devices is not None:
        p = campaign_progress(c.spec, devices, now=now)
        out["progress"] = {
            "total": p.total,
            "done": p.done,
            "failed": p.failed,
            "skipped": p.skipped,
            "in_flight": p.in_flight,
            "pending": p.pending,
            "percent": p.percent,
            "eta_s": round(p.eta_s, 1) if p.eta_s is not None else None,
        }
        out["devices"] = [device_view(d, now) for d in devices]
    return out


@router.post("/plan", responses=NAMES_A_FABRIC)
async def plan_campaign(body: Definition, store: StoreDep, actor: ActorDep) -> dict[str, Any]:
    """Plan a definition against the fleet as it is now; nothing is stored."""
    resolved = await CampaignService(store).preview(body, actor=actor)
    return plan_document(resolved)


@router.post("", status_code=status.HTTP_201_CREATED, responses=NAMES_A_FABRIC)
async def create_campaign(
    body: Definition, store: StoreDep, actor: Operator, via: ViaDep
) -> dict[str, Any]:
    return campaign_view(await CampaignService(store).create(body, actor=actor, via=via))


@router.get("")
async def list_campaigns(store: StoreDep, _: ActorDep) -> dict[str, Any]:
    return {"items": [campaign_view(c) for c in await CampaignService(store).all()]}


@router.get("/{ref}")
async def show_campaign(ref: str, store: StoreDep, _: ActorDep) -> dict[str, Any]:
    campaign, devices = await CampaignService(store).get(ref)
    return campaign_view(campaign, devices, now=store.clock())


@router.get("/{ref}/events")
async def campaign_events(
    ref: str,
    store: StoreDep,
    _: ActorDep,
    after: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    async with store.unit() as u:
        campaign = await u.campaigns.get(ref)
        events = await u.campaigns.events(campaign.id, after=after, limit=limit)
    return {
        "items": [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "level": e.level.value,
                "device": e.device,
                "message": e.message,
                "data": dict(e.data),
            }
            for e in events
        ]
    }


async def _control(verb: str, ref: str, store: Any, actor: Any, via: Any) -> dict[str, Any]:
    service = CampaignService(store)
    await getattr(service, verb)(ref, actor=actor, via=via)
    campaign, devices = await service.get(ref)
    return campaign_view(campaign, devices, now=store.clock())


@router.post("/{ref}/start")
async def start_campaign(ref: str, store: StoreDep, actor: Operator, via: ViaDep) -> dict[str, Any]:
    return await _control("start", ref, store, actor, via)


@router.post("/{ref}/pause")
async def pause_campaign(ref: str, store: StoreDep, actor: Operator, via: ViaDep) -> dict[str, Any]:
    return await _control("pause", ref, store, actor, via)


@router.post("/{ref}/resume")
async def resume_campaign(
    ref: str, store: StoreDep, actor: Operator, via: ViaDep
) -> dict[str, Any]:
    return await _control("resume", ref, store, actor, via)


@router.post("/{ref}/abort")
async def abort_campaign(ref: str, store: StoreDep, actor: Operator, via: ViaDep) -> dict[str, Any]:
    return await _control("abort", ref, store, actor, via)


@router.post("/{ref}/rollback")
async def rollback_campaign(
    ref: str, store: StoreDep, actor: Operator, via: ViaDep
) -> dict[str, Any]:
    return await _control("rollback", ref, store, actor, via)


@router.post("/{ref}/devices/{device}/approve")
async def approve_device(
    ref: str, device: str, store: StoreDep, actor: Operator, via: ViaDep
) -> dict[str, Any]:
    approved = await CampaignService(store).approve(ref, device, actor=actor, via=via)
    return device_view(approved, store.clock())
