"""Helpers for the campaign tests; no tests here.

``Rollout`` drives a campaign in process on the per-test database and fake clock: the
campaign driver ticks, then a worker runs every queued job (its sleeps move the fake clock),
until the campaign needs no more driving. What a user notices is read back through
``CampaignService`` and the audit log.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine_support import ALICE, FAST, Engine

from pitstop.domain.campaign_records import Campaign, CampaignDevice, CampaignEvent
from pitstop.domain.campaigns import DRIVEN, CampaignState
from pitstop.domain.named_actions import NamedAction, check_action
from pitstop.domain.roles import Via
from pitstop.engine.campaign_runner import CampaignDriver, CampaignDriverConfig
from pitstop.engine.campaigns import CampaignService


def definition(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "roll",
        "fabric": "dc1",
        "selector": {"roles": ["leaf"]},
        "concurrency": 3,
        "advanced_parameters": FAST,
    }
    base.update(over)
    return base


@dataclass
class Rollout:
    engine: Engine
    service: CampaignService = field(init=False)
    driver: CampaignDriver = field(init=False)

    def __post_init__(self) -> None:
        self.service = CampaignService(self.engine.store)
        self.driver = self.new_driver("d1")

    def new_driver(self, name: str) -> CampaignDriver:
        return CampaignDriver(
            store=self.engine.store,
            clock=self.engine.clock,
            config=CampaignDriverConfig(lease_ttl_s=3600, poll_interval_s=0),
            name=name,
        )

    async def define(
        self,
        name: str,
        command: list[str],
        *,
        undo: list[str] | None = None,
        timeout_s: float = 600,
        fabrics: tuple[str, ...] = (),
    ) -> NamedAction:
        """Define a named action, as an admin does (``POST /api/v1/actions``)."""
        action = NamedAction(
            name=name,
            command=tuple(command),
            undo=tuple(undo or ()),
            timeout_s=timeout_s,
            fabrics=fabrics,
        )
        async with self.engine.store.unit() as u:
            return await u.actions.create(check_action(action), actor="root")

    async def create(self, **over: Any) -> Campaign:
        return await self.service.create(definition(**over), actor=ALICE, via=Via.API)

    async def start(self, name: str = "roll") -> Campaign:
        return await self.service.start(name, actor=ALICE, via=Via.API)

    async def drive(
        self, name: str = "roll", *, until: set[CampaignState] | None = None, limit: int = 400
    ) -> Campaign:
        """Tick and run jobs until the campaign leaves the driven states (or reaches one of
        ``until``)."""
        for _ in range(limit):
            campaign = await self.campaign(name)
            if until and campaign.state in until:
                return campaign
            if campaign.state not in DRIVEN:
                return campaign
            await self.driver.step_all()
            ran = await self.engine.run(limit=100)
            if not ran:
                await asyncio.sleep(0.01)  # a command may be running in a subprocess
                self.engine.clock.advance(seconds=1)
        raise AssertionError(f"campaign {name} still {campaign.state.value} after {limit} ticks")

    async def campaign(self, name: str = "roll") -> Campaign:
        return (await self.service.get(name))[0]

    async def devices(self, name: str = "roll") -> list[CampaignDevice]:
        return (await self.service.get(name))[1]

    async def states(self, name: str = "roll") -> dict[str, str]:
        return {d.name: d.state.value for d in await self.devices(name)}

    async def events(self, name: str = "roll") -> list[CampaignEvent]:
        campaign = await self.campaign(name)
        async with self.engine.store.unit() as u:
            return await u.campaigns.events(campaign.id, limit=10_000)

    async def max_out_at_once(self, names: list[str]) -> int:
        """From the audit log: the most of ``names`` that were out of service at one moment."""
        async with self.engine.store.unit() as u:
            page = await u.audit.query(action="device.status", limit=10_000)
        out: set[str] = set()
        peak = 0
        for e in reversed(page.items):
            if e.device not in names:
                continue
            if e.to_status == "activated":
                out.discard(e.device)
            elif e.to_status in ("draining", "maintenance", "undraining", "error"):
                out.add(e.device)
            peak = max(peak, len(out))
        return peak


def counts(states: dict[str, str]) -> Counter[str]:
    return Counter(states.values())
