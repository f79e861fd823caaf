"""The campaign driver: moves every running campaign forward, one reconciling tick at a time.

Every ``pitstop serve`` and ``pitstop worker`` runs one. A driver claims a campaign with a
lease (like a job's) so that exactly one replica drives it; every transaction it writes in
starts by renewing that lease under the epoch it claimed (``fence``), so a driver that lost
the campaign changes nothing. All state lives in the database, so a restarted or different
driver simply carries on from it.

A device enters and leaves maintenance through ordinary ``maintenance.activate`` and
``maintenance.deactivate`` jobs submitted through ``JobService``: locks, the redundancy check
made again atomically when the device starts draining, and a job's own rollback all apply.
Submitting is two-phase because a job is queued in a transaction of its own: the intent is
written first (the device's new state without a job id), then the job is submitted, then its
id recorded. A driver that died in between finds the job by device and time, or submits again.

Commands run at least once: one cut off by a restart runs again (as a job step would). A
driver that stops gracefully kills its commands and releases its campaigns' leases, so another
driver carries on at once instead of waiting out the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pitstop.domain.campaign_records import Campaign, CampaignDevice
from pitstop.domain.campaigns import DRIVEN, CampaignState, DeviceState, parse_spec
from pitstop.domain.errors import BudgetExceeded, DeviceBusy, PitstopError
from pitstop.domain.jobs import Job, JobType, Level, Mode
from pitstop.domain.parameters import merge
from pitstop.domain.roles import Actor, Role, Via
from pitstop.engine.campaign_actions import ActionResult
from pitstop.engine.campaign_flow import decide
from pitstop.engine.campaign_tick import Submission, Tick, role_slots
from pitstop.engine.service import JobService
from pitstop.storage.campaigns import CampaignLeaseLost
from pitstop.storage.devices import DeviceFilter
from pitstop.storage.store import Store, Unit

log = logging.getLogger("pitstop.campaigns")
C = CampaignState
_KIND = {
    "test_run": (JobType.ACTIVATE, Mode.TEST_RUN),
    "activate": (JobType.ACTIVATE, Mode.ACTIVATE),
    "deactivate": (JobType.DEACTIVATE, None),
}
FLEET_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class CampaignDriverConfig:
    lease_ttl_s: float = 15.0
    poll_interval_s: float = 0.5


@dataclass
class CampaignDriver:
    store: Store
    config: CampaignDriverConfig = field(default_factory=CampaignDriverConfig)
    clock: Callable[[], datetime] | None = None
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    _owned: dict[uuid.UUID, int] = field(default_factory=dict)
    _actions: dict[tuple[uuid.UUID, int], asyncio.Task[ActionResult]] = field(default_factory=dict)
    _nudge: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = self.store.clock
        self._jobs = JobService(self.store)

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.config.lease_ttl_s)

    def _now(self) -> datetime:
        assert self.clock is not None
        return self.clock()

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Tick every poll interval, and at once when a job of this process ends, one of its
        commands does, or a campaign is started, paused, approved... (``storage.signals``), here or
        in another process (``storage.notices``)."""
        stop = stop or asyncio.Event()
        ended = self.store.job_ended.subscribe()
        changed = self.store.campaign_changed.subscribe()
        try:
            async with self.store.notices.listening():  # other processes' news too
                while not stop.is_set():
                    for event in (ended, changed, self._nudge):
                        event.clear()
                    await self.step_all()
                    waiters = {
                        asyncio.ensure_future(e.wait()) for e in (stop, ended, changed, self._nudge)
                    }
                    try:
                        await asyncio.wait(
                            waiters,
                            timeout=self.config.poll_interval_s,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    finally:
                        for waiter in waiters:
                            waiter.cancel()
        finally:
            self.store.job_ended.unsubscribe(ended)
            self.store.campaign_changed.unsubscribe(changed)
            for task in self._actions.values():
                task.cancel()
            for task in list(self._actions.values()):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._actions.clear()
            await self._release_all()

    async def _release_all(self) -> None:
        """Give back every campaign this driver holds (it is stopping)."""
        for campaign_id, epoch in list(self._owned.items()):
            try:
                async with self.store.unit() as u:
                    await u.campaigns.fence(campaign_id, epoch=epoch, lease_ttl=self.ttl)
                    await u.campaigns.release(campaign_id, epoch=epoch)
                    await u.campaigns.add_event(
                        campaign_id,
                        level=Level.INFO,
                        message=f"released by {self.name}: it is shutting down",
                    )
            except CampaignLeaseLost:
                pass  # driven elsewhere already
            except Exception:  # the database may be gone too: then the lease expires
                log.exception("campaign driver %s: releasing %s failed", self.name, campaign_id)
        self._owned.clear()

    async def step_all(self) -> None:
        """Claim campaigns that need a driver, then tick each one this driver holds."""
        try:
            async with self.store.unit() as u:
                for campaign_id, epoch in await u.campaigns.claim(
                    worker=self.name, lease_ttl=self.ttl
                ):
                    self._owned[campaign_id] = epoch
                    await u.campaigns.add_event(
                        campaign_id, level=Level.INFO, message=f"driven by {self.name}"
                    )
        except Exception:  # the database may be briefly unavailable
            log.exception("campaign driver %s: claiming failed", self.name)
        for campaign_id, epoch in list(self._owned.items()):
            try:
                alive = await self.tick(campaign_id, epoch)
            except CampaignLeaseLost:
                alive = False
                log.warning("campaign %s is driven elsewhere now", campaign_id)
            except Exception:  # one broken campaign must not stop the others
                log.exception("campaign %s: tick failed", campaign_id)
                continue
            if not alive:
                self._drop(campaign_id)
                with contextlib.suppress(Exception):
                    async with self.store.unit() as u:
                        await u.campaigns.release(campaign_id, epoch=epoch)

    def _drop(self, campaign_id: uuid.UUID) -> None:
        self._owned.pop(campaign_id, None)
        for key in [k for k in self._actions if k[0] == campaign_id]:
            self._actions.pop(key).cancel()

    async def _fenced(self, u: Unit, campaign_id: uuid.UUID, epoch: int) -> None:
        await u.campaigns.fence(campaign_id, epoch=epoch, lease_ttl=self.ttl)

    async def tick(self, campaign_id: uuid.UUID, epoch: int) -> bool:
        """One reconciling pass; False once the campaign needs no more driving."""
        now = self._now()
        async with self.store.unit() as u:
            await self._fenced(u, campaign_id, epoch)
            campaign = await u.campaigns.get(str(campaign_id))
            if campaign.state not in DRIVEN:
                return False
            devices = await u.campaigns.devices(campaign_id)
            jobs: dict[uuid.UUID | None, Job] = {
                d.job_id: await u.jobs.get(d.job_id) for d in devices if d.job_id
            }
            fleet = (
                await u.devices.page(DeviceFilter(fabric_id=campaign.fabric_id), limit=FLEET_LIMIT)
            ).items
            devices = await self._recover(u, campaign_id, devices, jobs)
            budgets = {
                g.name: g.max_unavailable.slots(n)
                for g, n in await u.fabrics.groups(campaign.fabric_id)
            }
            budgets.update(
                role_slots(await u.budgets.policy(campaign.fabric_id), [d.role for d in fleet])
            )
            tick = decide(
                campaign=campaign,
                spec=parse_spec(campaign.spec, stored=True),
                devices=devices,
                jobs=jobs,
                fleet=fleet,
                budgets=budgets,
                actions=self._action_states(campaign_id),
                now=now,
            )
            await self._write(u, campaign, tick)
        self._start_actions(campaign, tick)
        await self._submit(campaign, epoch, tick.submissions)
        if tick.state is not None:
            # A new campaign state (test runs passed: running) is acted on by the next tick;
            # nothing else would announce it.
            self._nudge.set()
        return tick.state is None or tick.state in DRIVEN

    async def _recover(
        self,
        u: Unit,
        campaign_id: uuid.UUID,
        devices: list[CampaignDevice],
        jobs: dict[uuid.UUID | None, Job],
    ) -> list[CampaignDevice]:
        """An intent without a job id: adopt the job submitted just before a crash, if any;
        if there is none, the crash came between the intent and the submission, and the
        intent is dropped so this tick submits again.

        A tick writes its intents, commits, and only then submits (``_submit``), which
        records each job's id; the next tick of this driver comes after that. So an intent
        still without a job id at the start of a tick was left by a driver that died in
        between. Keeping it would wait for a job that never comes: the campaign would hang.
        """
        out: list[CampaignDevice] = []
        for d in devices:
            kind = (d.step or "").removeprefix("submitting ")
            if d.job_id is None and (d.step or "").startswith("submitting ") and kind in _KIND:
                job_type, mode = _KIND[kind]
                newest = await u.jobs.page(device_id=d.device_id, job_type=job_type, limit=1)
                found = newest.items[0] if newest.items else None
                since = d.phase_started_at
                if found and found.mode is mode and since and found.created_at >= since:
                    await u.campaigns.update_device(
                        campaign_id, d.position, job_id=found.id, step=kind
                    )
                    jobs[found.id] = await u.jobs.get(found.id)
                    d = replace(d, job_id=found.id, step=kind)
                else:
                    d = replace(d, step=None)
            out.append(d)
        return out

    def _action_states(self, campaign_id: uuid.UUID) -> dict[int, ActionResult | None]:
        """Per position: None while its command runs, its result once it ended."""
        out: dict[int, ActionResult | None] = {}
        for (cid, position), task in self._actions.items():
            if cid != campaign_id:
                continue
            if not task.done():
                out[position] = None
            elif task.cancelled():
                continue
            else:
                exc = task.exception()
                out[position] = (
                    ActionResult(False, None, "", f"{type(exc).__name__}: {exc}")
                    if exc
                    else task.result()
                )
        return out

    async def _write(self, u: Unit, campaign: Campaign, tick: Tick) -> None:
        for position, values in tick.updates.items():
            await u.campaigns.update_device(campaign.id, position, **values)
        for event in tick.events:
            await u.campaigns.add_event(campaign.id, **event)
        if tick.state is not None:
            await u.campaigns.set_state(
                campaign.id,
                expected={campaign.state},
                state=tick.state,
                error=tick.error,
                finished=tick.state not in DRIVEN,
            )

    def _start_actions(self, campaign: Campaign, tick: Tick) -> None:
        for position in tick.forget_actions:
            task = self._actions.pop((campaign.id, position), None)
            if task is not None:
                task.cancel()
        for position, coro in tick.start_actions.items():
            key = (campaign.id, position)
            if key not in self._actions:
                task = asyncio.create_task(coro)
                # A command's end is this driver's news: tick now, not at the next poll.
                task.add_done_callback(lambda _: self._nudge.set())
                self._actions[key] = task
            else:
                coro.close()

    async def _submit(self, campaign: Campaign, epoch: int, todo: list[Submission]) -> None:
        actor = Actor(campaign.created_by, Role.OPERATOR)
        spec = parse_spec(campaign.spec, stored=True)
        for sub in todo:
            values: dict[str, Any]
            event: dict[str, Any] | None = None
            try:
                if sub.kind == "cancel":
                    assert sub.job_id is not None
                    await self._jobs.cancel(sub.job_id, actor=actor, via=Via.ENGINE)
                    values = {"step": "cancel requested"}
                else:
                    job_type, mode = _KIND[sub.kind]
                    params = spec.advanced_parameters
                    if sub.revert_config:
                        params = merge(params, {"undrain": {"revert_config": True}})
                    job = await self._jobs.submit(
                        job_type=job_type,
                        device=str(sub.device_id),
                        fabric=None,
                        mode=mode,
                        advanced_parameters=params,
                        reason=f"campaign {campaign.name}: {spec.reason}",
                        ticket=None,
                        expected_end=None,
                        actor=actor,
                        via=Via.ENGINE,
                    )
                    values = {"job_id": job.id, "step": sub.kind}
            except (DeviceBusy, BudgetExceeded) as exc:
                # Someone else's work holds the device or its group: try again later.
                values = {"state": sub.retry_state, "job_id": None, "step": None}
                event = {"level": Level.WARNING, "device": sub.device, "message": str(exc)}
            except PitstopError as exc:
                values = {"state": DeviceState.FAILED, "step": None, "error": str(exc)}
                values["finished_at"] = self._now()
                event = {"level": Level.ERROR, "device": sub.device, "message": str(exc)}
            async with self.store.unit() as u:
                await self._fenced(u, campaign.id, epoch)
                await u.campaigns.update_device(campaign.id, sub.position, **values)
                if event:
                    await u.campaigns.add_event(campaign.id, **event)
