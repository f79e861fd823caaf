"""Campaigns: the list, and a page per campaign with its progress and ETA, its definition, the
per-device status table (as ``pitstop campaign show`` prints it) and the campaign log.

The page offers the controls the signed-in user may use in the campaign's state (start,
pause, resume, abort, roll back) and an *Approve* button on each device that waits for a
person (``action: await_approval``). Every control is a POST form with the CSRF token; the
server checks the role again and ``CampaignService`` checks the state, whatever the page
showed. While the campaign is driven, the page follows it over SSE like the job page: the
progress, the device table and the controls are swapped when they change, and new log lines
are appended.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from pitstop.domain.campaign_records import Campaign, CampaignDevice, CampaignEvent
from pitstop.domain.campaign_window import Progress, campaign_progress
from pitstop.domain.campaigns import DRIVEN, DeviceState
from pitstop.domain.errors import NotFound
from pitstop.domain.limits import event_id
from pitstop.domain.roles import Actor, Role, Via
from pitstop.engine.campaigns import CONTROLS, CampaignService
from pitstop.web import live
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
from pitstop.web.filters import seconds

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)

POLL_S = 1.0
FRAGMENTS = ("controls", "progress", "devices")


@dataclass(frozen=True, slots=True)
class Control:
    """A campaign control as a button: its POST path, label, style and confirmation."""

    verb: str
    label: str
    style: str
    confirm: str = ""


def _controls(name: str) -> tuple[Control, ...]:
    return (
        Control(
            "start",
            "Start",
            "btn-primary",
            f"Start campaign {name}? Every device gets a test run first; then, one after "
            "another within the budgets, traffic is diverted from each device.",
        ),
        Control("pause", "Pause", ""),
        Control("resume", "Resume", "btn-primary"),
        Control(
            "abort",
            "Abort",
            "btn-danger",
            f"Abort campaign {name}? Pending devices are skipped and nothing new starts; "
            "devices under way come back into service.",
        ),
        Control(
            "rollback",
            "Roll back",
            "btn-danger",
            f"Roll back campaign {name}? Every device still in maintenance is brought back, "
            "the last in first, running the action's undo where it ran.",
        ),
    )


@dataclass(frozen=True, slots=True)
class Offer:
    """What the signed-in user is offered on a campaign's page; the server checks again."""

    controls: tuple[Control, ...]
    approve: frozenset[str]  # devices awaiting an approval nobody has given yet
    may_write: bool


def awaiting(devices: Sequence[CampaignDevice]) -> list[str]:
    """The devices in maintenance that wait for a person's approval, in plan order."""
    return [
        d.name for d in devices if d.state is DeviceState.AWAITING_APPROVAL and not d.approved_by
    ]


def offered(who: Viewer, campaign: Campaign, devices: Sequence[CampaignDevice]) -> Offer:
    if not who.may_write(campaign.fabric):
        return Offer((), frozenset(), False)
    controls = tuple(c for c in _controls(campaign.name) if campaign.state in CONTROLS[c.verb])
    return Offer(controls, frozenset(awaiting(devices)), True)


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of the progress bar and its legend entry."""

    key: str
    label: str
    count: int
    share: float  # percent of the bar's width


def segments(p: Progress) -> list[Segment]:
    parts = (
        ("done", "done", p.done),
        ("in_flight", "in flight", p.in_flight),
        ("pending", "pending", p.pending),
        ("failed", "failed", p.failed),
        ("skipped", "skipped", p.skipped),
    )
    total = p.total or 1
    return [Segment(k, label, n, round(100 * n / total, 2)) for k, label, n in parts]


def _words(values: Any) -> list[str]:
    if isinstance(values, str):
        return [values] if values else []
    return [str(v) for v in values or ()]


def _action(action: Mapping[str, Any]) -> str:
    kind = str(action.get("type", "none"))
    if kind == "await_approval":
        return "await_approval: each device waits in maintenance until a person approves it"
    if kind not in ("run", "command"):
        return f"{kind}: each device enters maintenance and comes back"
    # Before it starts, a campaign names its action; from the start on, it holds a copy.
    if kind == "run" and not action.get("command"):
        return f"run {action.get('name')} (copied from its definition when the campaign starts)"
    command = " ".join(_words(action.get("command")))
    text = f"run {action.get('name')}: {command}" if kind == "run" else f"command: {command}"
    if action.get("timeout_s") is not None:
        text += f" · timeout {seconds(float(action['timeout_s']))}"
    if action.get("undo"):
        text += f" · undo: {' '.join(_words(action.get('undo')))}"
    return text


def definition_facts(spec: Mapping[str, Any], plan: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The definition as label and value pairs, in the order the page shows them."""
    selector = spec.get("selector") or {}
    chosen = [
        f"{key} {', '.join(_words(selector.get(key)))}"
        for key in ("roles", "groups", "labels")
        if selector.get(key)
    ]
    canary = int(spec.get("canary") or 0)
    soak = float(spec.get("soak_s") or 0)
    facts = [
        ("Selector", " · ".join(chosen) or "—"),
        ("Concurrency", str(spec.get("concurrency", 1))),
        ("Action", _action(spec.get("action") or {})),
        ("Failure policy", str(spec.get("failure_policy") or "stop")),
        ("Canary", f"{canary} first, alone" if canary else "none"),
        ("Soak", f"{seconds(soak)} per device" if soak else "none"),
    ]
    if spec.get("order"):
        facts.append(("Role order", ", ".join(_words(spec["order"]))))
    if spec.get("dependencies"):
        facts.append(("Dependencies", ", ".join(_words(spec["dependencies"]))))
    expected = spec.get("expected_durations") or {}
    if expected:
        facts.append(
            (
                "Expected",
                " · ".join(
                    f"{key.removesuffix('_s')} {seconds(float(value))}"
                    for key, value in expected.items()
                ),
            )
        )
    if spec.get("advanced_parameters"):
        facts.append(("Parameters", json.dumps(spec["advanced_parameters"], sort_keys=True)))
    if plan.get("wave_count") is not None:
        bound = (plan.get("lower_bound") or {}).get("value")
        waves = f"{plan['wave_count']} waves" + (f" (lower bound {bound})" if bound else "")
        facts.append(("Plan", waves))
    if spec.get("reason"):
        facts.append(("Reason", str(spec["reason"])))
    return facts


def campaign_context(
    who: Viewer,
    campaign: Campaign,
    devices: list[CampaignDevice],
    events: list[CampaignEvent],
    *,
    now: datetime,
) -> dict[str, Any]:
    """Everything the campaign page shows; the same dict renders each live fragment."""
    p = campaign_progress(campaign.spec, devices, now=now)
    return {
        "viewer": who,
        "campaign": campaign,
        "devices": devices,
        "events": events,
        "last_event": events[-1].id if events else 0,
        "progress": p,
        "segments": segments(p),
        "now": now,
        "definition": definition_facts(campaign.spec, campaign.plan),
        "offer": offered(who, campaign, devices),
        "awaiting": awaiting(devices),
        "driven": campaign.state in DRIVEN,
    }


def fragments(request: Request, ctx: Mapping[str, Any]) -> dict[str, str]:
    return {name: fragment(request, f"_campaign_{name}.html", ctx) for name in FRAGMENTS}


def page_url(name: str) -> str:
    return f"{PREFIX}/campaigns/{quote(name, safe='')}"


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns_page(request: Request) -> HTMLResponse:
    who = await viewer(request)
    store = store_of(request)
    now = store.clock()
    rows = [
        (c, campaign_progress(c.spec, devices, now=now) if devices else None)
        for c, devices in await CampaignService(store).overview()
    ]
    return render(request, "campaigns.html", {"viewer": who, "rows": rows})


@router.get("/campaigns/{name}", response_class=HTMLResponse)
async def campaign_page(request: Request, name: str) -> HTMLResponse:
    who = await viewer(request)
    store = store_of(request)
    campaign, devices, events = await CampaignService(store).show(name)
    ctx = campaign_context(who, campaign, devices, events, now=store.clock())
    parts = fragments(request, ctx)
    # The page embeds the fragments as rendered (and escaped) here, and tells its stream
    # which ones it shows, so the stream's first poll sends only what changed since.
    return render(request, "campaign.html", {**ctx, "parts": parts, "seen": live.seen_param(parts)})


@router.get("/campaigns/{name}/live")
async def campaign_live(request: Request, name: str) -> StreamingResponse:
    """New log lines (resumable with Last-Event-ID) and each fragment when it changes, until
    the campaign is no longer driven."""
    who = await viewer(request)
    after_text = request.headers.get("last-event-id") or request.query_params.get("after", "0")
    state = {"after": event_id(after_text, field="after")}
    changes = live.Changes(live.parse_seen(request.query_params.get("seen", "")))
    store = store_of(request)
    service = CampaignService(store)
    # Read before the stream starts, so a missing campaign is an error page, not a stream.
    first = [await service.show(name, after=state["after"])]
    key = str(first[0][0].id)

    async def poll() -> tuple[list[tuple[str, str, int | None]], bool]:
        campaign, devices, fresh = (
            first.pop() if first else await service.show(key, after=state["after"])
        )
        ctx = campaign_context(who, campaign, devices, fresh, now=store.clock())
        out: list[tuple[str, str, int | None]] = []
        if fresh:
            state["after"] = fresh[-1].id
            lines = fragment(request, "_campaign_log_lines.html", ctx)
            out.append(("log", lines, fresh[-1].id))
        out += changes.diff(fragments(request, ctx))
        return out, campaign.state not in DRIVEN and not fresh

    return live.stream(request, poll, poll_s=POLL_S)


Act = Callable[..., Awaitable[Campaign]]


@router.post("/campaigns/{name}/{verb}", response_model=None)
async def control_campaign(request: Request, name: str, verb: str) -> Response:
    who = await viewer(request)
    actor: Actor = who.require(Role.OPERATOR)
    service = CampaignService(store_of(request))
    acts: dict[str, Act] = {
        "start": service.start,
        "pause": service.pause,
        "resume": service.resume,
        "abort": service.abort,
        "rollback": service.rollback,
    }
    act = acts.get(verb)
    if act is None:
        raise NotFound(f"a campaign has no {verb!r} control")
    campaign = await act(name, actor=actor, via=Via.WEB)
    return redirect(page_url(campaign.name))


@router.post("/campaigns/{name}/devices/{device}/approve", response_model=None)
async def approve_device(request: Request, name: str, device: str) -> Response:
    who = await viewer(request)
    actor = who.require(Role.OPERATOR)
    await CampaignService(store_of(request)).approve(name, device, actor=actor, via=Via.WEB)
    return redirect(page_url(name) + f"#device-{quote(device, safe='')}")
