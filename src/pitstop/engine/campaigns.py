"""Campaign requests: plan (a preview), create, start, pause, resume, abort, roll back, approve.

A campaign's selector is resolved when it starts, against the fleet as it is then: the
devices that are ``activated`` and match. The planner sees each redundancy group's capacity
as its ``max_unavailable`` slots (of all its members) minus the members already out of
service, and one more group per role, ``role:<name>``, with room for all but one activated
device of the role: the engine's own redundancy check refuses to take the last one out, and
the plan must never count on it.

Nothing here runs devices: ``start`` stores the plan and hands the campaign to the driver
(``engine.campaign_runner``), which every ``pitstop serve`` and ``pitstop worker`` runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pitstop.domain.campaign_pace import paces
from pitstop.domain.campaign_records import Campaign, CampaignDevice, CampaignEvent
from pitstop.domain.campaigns import (
    ActionKind,
    CampaignSpec,
    CampaignState,
    DeviceState,
    parse_spec,
    spec_document,
)
from pitstop.domain.errors import CampaignInvalid, CampaignStateConflict, Forbidden, NotFound
from pitstop.domain.inventory import Device
from pitstop.domain.jobs import Level
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus
from pitstop.domain.named_actions import action_reasons, snapshot
from pitstop.domain.planner import Plan, PlanDevice, PlanRequest, plan
from pitstop.domain.roles import Actor, Role, Via
from pitstop.engine.campaign_tick import role_slots
from pitstop.storage.devices import DeviceFilter
from pitstop.storage.store import Store, Unit

C = CampaignState
ROLE_GROUP = "role:"
FLEET_LIMIT = 1_000_000
EVENT_PAGE = 1000

# The states each control may be used in (the pages offer a control only in these).
CONTROLS: Mapping[str, frozenset[CampaignState]] = {
    "start": frozenset({C.CREATED}),
    "pause": frozenset({C.RUNNING}),
    "resume": frozenset({C.PAUSED}),
    "abort": frozenset({C.CREATED, C.VALIDATING, C.RUNNING, C.PAUSED, C.STOPPING}),
    "rollback": frozenset({C.PAUSED, C.FAILED, C.ABORTED}),
}


@dataclass(frozen=True, slots=True)
class Resolved:
    """A campaign's devices as the fleet stands, and the plan for them."""

    spec: CampaignSpec
    devices: list[Device]
    excluded: list[tuple[str, str]]  # (device, why) matched the selector but cannot take part
    capacities: dict[str, int]
    plan: Plan


def plan_document(resolved: Resolved) -> dict[str, Any]:
    p, lb = resolved.plan, resolved.plan.lower_bound
    return {
        "devices": len(resolved.devices),
        "waves": [list(w) for w in p.waves],
        "wave_count": p.wave_count,
        "lower_bound": {
            "value": lb.value,
            "groups": lb.groups,
            "tightest_group": lb.tightest_group,
            "chain": lb.chain,
            "concurrency": lb.concurrency,
            "role_layers": lb.role_layers,
        },
        "canary": list(p.canary),
        "roles_before": {k: list(v) for k, v in p.roles_before.items()},
        "capacities": resolved.capacities,
        "excluded": [{"device": d, "reason": r} for d, r in resolved.excluded],
        "warnings": list(p.warnings),
    }


async def resolve(u: Unit, spec: CampaignSpec) -> Resolved:
    """Select, measure capacities and plan; ``CampaignInvalid`` when it cannot be planned."""
    fabric = await u.fabrics.row(spec.fabric)
    fleet = (await u.devices.page(DeviceFilter(fabric_id=fabric.id), limit=FLEET_LIMIT)).items
    chosen: list[Device] = []
    excluded: list[tuple[str, str]] = []
    for d in fleet:
        if not spec.selector.matches(role=d.role, groups=d.groups, labels=d.labels):
            continue
        if d.status is DeviceStatus.ACTIVATED:
            chosen.append(d)
        else:
            excluded.append((d.name, f"status {d.status.value}"))
    budgets = {g.name: (g.max_unavailable, n) for g, n in await u.fabrics.groups(fabric.id)}
    out_now: dict[str, int] = {}
    for d in fleet:
        if d.status in UNAVAILABLE:
            for g in d.groups:
                out_now[g] = out_now.get(g, 0) + 1
    capacities = {
        g: max(0, budget.slots(members) - out_now.get(g, 0))
        for g, (budget, members) in budgets.items()
    }
    active_by_role: dict[str, int] = {}
    for d in fleet:
        if d.status is DeviceStatus.ACTIVATED:
            active_by_role[d.role] = active_by_role.get(d.role, 0) + 1
    # A role keeps one activated device, and stays within the fabric's role budget.
    roles = role_slots(await u.budgets.policy(fabric.id), [d.role for d in fleet])
    for role, count in active_by_role.items():
        g = ROLE_GROUP + role
        out = sum(1 for d in fleet if d.role == role and d.status in UNAVAILABLE)
        capacities[g] = min(count - 1, max(0, roles.get(g, count) - out))
    request = PlanRequest(
        devices=[PlanDevice(d.name, d.role, (*d.groups, ROLE_GROUP + d.role)) for d in chosen],
        capacities=capacities,
        dependencies=spec.dependencies,
        role_order=spec.order,
        concurrency=spec.concurrency,
        canary=spec.canary,
    )
    used = {g for d in request.devices for g in d.groups}
    result = plan(request)
    return Resolved(spec, chosen, excluded, {g: capacities[g] for g in sorted(used)}, result)


async def with_action(u: Unit, spec: CampaignSpec) -> CampaignSpec:
    """The definition with its named action copied in, as it stands now; ``CampaignInvalid``
    when the campaign may not use the action it names (none by that name, not allowed on its
    fabric, or a command of its own)."""
    run = spec.action.kind is ActionKind.RUN and not spec.action.inline
    defined = await u.actions.find(spec.action.name) if run else None
    reasons = action_reasons(spec.action, fabric=spec.fabric, defined=defined)
    if reasons:
        raise CampaignInvalid(f"campaign {spec.name} cannot use its action", reasons=reasons)
    return replace(spec, action=snapshot(spec.action, defined)) if defined else spec


class CampaignService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def preview(self, raw: Mapping[str, Any], *, actor: Actor) -> Resolved:
        """Offline validation: plan a definition against the fleet as it is; stores nothing."""
        spec = parse_spec(raw)
        async with self._store.unit() as u:
            return await resolve(u, await with_action(u, spec))

    async def create(self, raw: Mapping[str, Any], *, actor: Actor, via: Via) -> Campaign:
        spec = parse_spec(raw)
        self._may_write(actor, spec.fabric)
        async with self._store.unit() as u:
            # Refuses an impossible campaign, or one whose action it may not use, before
            # storing it; what is stored names the action, and start copies it in.
            await resolve(u, await with_action(u, spec))
            fabric = await u.fabrics.row(spec.fabric)
            campaign = await u.campaigns.create(
                name=spec.name,
                fabric_id=fabric.id,
                spec=spec_document(spec),
                created_by=actor.name,
            )
            await u.campaigns.add_event(
                campaign.id, level=Level.INFO, message=f"campaign created by {actor.name}"
            )
            await self._audit(u, campaign, actor, via, "campaign.create")
            return campaign

    async def get(self, ref: str) -> tuple[Campaign, list[CampaignDevice]]:
        async with self._store.unit() as u:
            campaign = await u.campaigns.get(ref)
            return campaign, await u.campaigns.devices(campaign.id)

    async def all(self) -> list[Campaign]:
        async with self._store.unit() as u:
            return await u.campaigns.all()

    async def overview(self) -> list[tuple[Campaign, list[CampaignDevice]]]:
        """Every campaign, newest first, with its devices, read in one transaction."""
        async with self._store.unit() as u:
            campaigns = await u.campaigns.all()
            return [(c, await u.campaigns.devices(c.id)) for c in reversed(campaigns)]

    async def show(
        self, ref: str, *, after: int = 0
    ) -> tuple[Campaign, list[CampaignDevice], list[CampaignEvent]]:
        """A campaign, its devices and every log line after ``after``, read together."""
        async with self._store.unit() as u:
            campaign = await u.campaigns.get(ref)
            devices = await u.campaigns.devices(campaign.id)
            events: list[CampaignEvent] = []
            while True:
                batch = await u.campaigns.events(campaign.id, after=after, limit=EVENT_PAGE)
                events += batch
                if len(batch) < EVENT_PAGE:
                    return campaign, devices, events
                after = batch[-1].id

    async def start(self, ref: str, *, actor: Actor, via: Via) -> Campaign:
        async with self._store.unit() as u:
            campaign = await u.campaigns.get(ref)
            self._may_write(actor, campaign.fabric)
            if campaign.state not in CONTROLS["start"]:
                raise CampaignStateConflict(
                    f"campaign {campaign.name} is {campaign.state.value}; only a created "
                    "campaign can start",
                    state=campaign.state.value,
                )
            # The action is resolved again (it may have changed or gone since the campaign was
            # created) and copied into the campaign: later edits do not change a running one.
            spec = await with_action(u, parse_spec(campaign.spec, stored=True))
            resolved = await resolve(u, spec)
            wave_of = resolved.plan.wave_of()
            by_name = {d.name: d for d in resolved.devices}
            after: dict[str, list[str]] = {}
            for before, later in resolved.spec.dependencies:
                after.setdefault(later, []).append(before)
            canary = set(resolved.plan.canary)
            pace = paces(await u.campaigns.past_runs(campaign.fabric_id, other_than=campaign.id))
            await u.campaigns.add_devices(
                campaign.id,
                [
                    CampaignDevice(
                        position=i,
                        device_id=by_name[name].id,
                        name=name,
                        role=by_name[name].role,
                        groups=(*by_name[name].groups, ROLE_GROUP + by_name[name].role),
                        after=tuple(after.get(name, ())),
                        wave=wave_of[name],
                        canary=name in canary,
                        state=DeviceState.PENDING,
                        pace=pace.get(name),
                    )
                    for i, name in enumerate(resolved.plan.order)
                ],
            )
            await u.campaigns.set_plan(
                campaign.id, plan_document(resolved), spec=spec_document(spec)
            )
            await u.campaigns.set_state(
                campaign.id, expected={C.CREATED}, state=C.VALIDATING, started=True
            )
            p = resolved.plan
            await u.campaigns.add_event(
                campaign.id,
                level=Level.INFO,
                message=(
                    f"started by {actor.name}: {len(resolved.devices)} devices, {p.wave_count} "
                    f"waves planned (lower bound {p.lower_bound.value}); pace known from "
                    f"earlier campaigns for {sum(n in pace for n in p.order)}; test runs first"
                ),
            )
            if spec.action.kind is ActionKind.RUN:
                a = spec.action
                await u.campaigns.add_event(
                    campaign.id,
                    level=Level.INFO,
                    message=(
                        f"action {a.name}: {' '.join(a.command)} (timeout {a.timeout_s:g} s"
                        + (f"; undo: {' '.join(a.undo)})" if a.undo else ")")
                    ),
                    data={"command": list(a.command), "undo": list(a.undo)},
                )
            await self._audit(u, campaign, actor, via, "campaign.start")
            started = await u.campaigns.get(str(campaign.id))
        self._store.campaign_changed.fire()
        return started

    async def pause(self, ref: str, *, actor: Actor, via: Via) -> Campaign:
        return await self._move(ref, actor, via, "pause", C.PAUSED)

    async def resume(self, ref: str, *, actor: Actor, via: Via) -> Campaign:
        return await self._move(ref, actor, via, "resume", C.RUNNING)

    async def abort(self, ref: str, *, actor: Actor, via: Via) -> Campaign:
        return await self._move(ref, actor, via, "abort", C.ABORTING)

    async def rollback(self, ref: str, *, actor: Actor, via: Via) -> Campaign:
        return await self._move(ref, actor, via, "rollback", C.ROLLING_BACK)

    async def approve(self, ref: str, device: str, *, actor: Actor, via: Via) -> CampaignDevice:
        async with self._store.unit() as u:
            campaign = await u.campaigns.get(ref)
            self._may_write(actor, campaign.fabric)
            found = [d for d in await u.campaigns.devices(campaign.id) if d.name == device]
            if not found:
                raise NotFound(f"device {device!r} is not in campaign {campaign.name}")
            d = found[0]
            if d.state is not DeviceState.AWAITING_APPROVAL or d.approved_by:
                raise CampaignStateConflict(
                    f"{device} is {d.state.value}, not awaiting approval", state=d.state.value
                )
            await u.campaigns.update_device(campaign.id, d.position, approved_by=actor.name)
            await u.campaigns.add_event(
                campaign.id, level=Level.INFO, device=device, message=f"approved by {actor.name}"
            )
            await self._audit(u, campaign, actor, via, "campaign.approve", device=device)
            approved = (await u.campaigns.devices(campaign.id))[d.position]
        self._store.campaign_changed.fire()
        return approved

    async def _move(
        self,
        ref: str,
        actor: Actor,
        via: Via,
        verb: str,
        state: CampaignState,
    ) -> Campaign:
        expected = CONTROLS[verb]
        async with self._store.unit() as u:
            campaign = await u.campaigns.get(ref)
            self._may_write(actor, campaign.fabric)
            # A campaign aborted before it started has nothing in flight: it ends at once.
            target = C.ABORTED if state is C.ABORTING and campaign.state is C.CREATED else state
            moved = await u.campaigns.set_state(
                campaign.id, expected=expected, state=target, finished=target is C.ABORTED
            )
            if not moved:
                allowed = ", ".join(sorted(s.value for s in expected))
                raise CampaignStateConflict(
                    f"campaign {campaign.name} is {campaign.state.value}; {verb} needs {allowed}",
                    state=campaign.state.value,
                )
            await u.campaigns.add_event(
                campaign.id, level=Level.WARNING, message=f"{verb} requested by {actor.name}"
            )
            await self._audit(u, campaign, actor, via, f"campaign.{verb}")
            moved_to = await u.campaigns.get(str(campaign.id))
        self._store.campaign_changed.fire()
        return moved_to

    @staticmethod
    def _may_write(actor: Actor, fabric: str) -> None:
        if actor.role is Role.VIEWER:
            raise Forbidden("viewers may not run campaigns")
        actor.ensure_may_write(fabric)

    @staticmethod
    async def _audit(
        u: Unit,
        campaign: Campaign,
        actor: Actor,
        via: Via,
        action: str,
        *,
        device: str | None = None,
    ) -> None:
        await u.audit.append(
            actor=actor.name,
            action=action,
            via=via.value,
            fabric=campaign.fabric,
            device=device,
            details={"campaign": campaign.name, "campaign_id": str(campaign.id)},
        )
