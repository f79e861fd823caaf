"""Within one process, workers and the campaign driver wake when there is news (a job queued,
a job or command ended) instead of at their next poll. Both poll once an hour here, so
only the signals can finish the work within the test's limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from campaign_support import definition
from engine_support import ALICE, Engine, build_engine

from pitstop.domain.campaigns import FINISHED, CampaignState
from pitstop.domain.jobs import JobStatus, JobType
from pitstop.domain.roles import Via
from pitstop.engine.campaign_runner import CampaignDriver, CampaignDriverConfig
from pitstop.engine.campaigns import CampaignService
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.storage.store import Store

HOUR = 3600.0
LIMIT_S = 20.0  # far above what the work takes, far below one poll


@asynccontextmanager
async def running(*loops: Any) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop.run_forever(stop)) for loop in loops]
    await asyncio.sleep(0.05)  # each has polled once and is waiting now
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def until(done: Callable[[], Awaitable[bool]]) -> None:
    """Look every 20 ms; fail after ``LIMIT_S``."""
    for _ in range(int(LIMIT_S / 0.02)):
        if await done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not done after {LIMIT_S:g} s: only a poll would have got there")


async def campaign_story(store: Store, service: CampaignService) -> str:
    """What the campaign and its jobs say, for a failure's message."""
    campaign, devices = await service.get("roll")
    async with store.unit() as u:
        events = await u.campaigns.events(campaign.id, limit=50)
        jobs = (await u.jobs.page(limit=20)).items
    return "\n".join(
        [f"campaign {campaign.state.value}"]
        + [f"  {d.name} {d.state.value} step={d.step} job={d.job_id}" for d in devices]
        + [f"  event: {e.message}" for e in events]
        + [f"  job {j.id} {j.type.value} {j.status.value} {j.device}" for j in jobs]
    )


def idle_worker(engine: Engine) -> Worker:
    return Worker(
        store=engine.store,
        drivers=engine.registry,
        clock=engine.clock,
        sleep=engine.fake_sleep,
        config=EngineConfig(lease_ttl_s=30, poll_interval_s=HOUR),
        name="idle",
    )


async def test_a_job_queued_in_the_process_wakes_an_idle_worker(store: Store, clock: Any) -> None:
    engine = await build_engine(store, clock)
    async with running(idle_worker(engine)):
        job = await engine.submit("leaf1", JobType.HEALTHCHECK)

        async def finished() -> bool:
            return (await engine.job(job.id)).status.finished

        await until(finished)
    assert (await engine.job(job.id)).status is JobStatus.SUCCEEDED


async def test_a_campaign_moves_on_as_its_jobs_end_not_at_its_polls(
    store: Store, clock: Any
) -> None:
    engine = await build_engine(store, clock)
    driver = CampaignDriver(
        store=store,
        clock=clock,
        config=CampaignDriverConfig(lease_ttl_s=HOUR, poll_interval_s=HOUR),
        name="idle-driver",
    )
    service = CampaignService(store)
    spec = definition(selector={"roles": ["leaf"], "labels": "rack=r1"}, concurrency=1)
    await service.create(spec, actor=ALICE, via=Via.API)
    async with running(idle_worker(engine), driver):
        await service.start("roll", actor=ALICE, via=Via.API)

        async def finished() -> bool:
            return (await service.get("roll"))[0].state in FINISHED

        try:
            await until(finished)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await campaign_story(store, service)}") from None
    assert (await service.get("roll"))[0].state is CampaignState.SUCCEEDED
    assert {d.state.value for d in (await service.get("roll"))[1]} == {"done"}
