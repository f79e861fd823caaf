"""Across processes on PostgreSQL, workers and campaign conductors wake on another process's
news (``storage/notices.py``): each test runs two stores on two connections to one database,
as two replicas would, and everything polls once an hour, so only a notice can get the work
done within the limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from campaign_support import definition
from engine_support import ALICE, HookedFactory, build_engine
from test_engine_signals import HOUR, idle_worker, running, until

from pitstop.domain.campaigns import FINISHED, CampaignState
from pitstop.domain.jobs import JobStatus, JobType
from pitstop.domain.roles import Via
from pitstop.drivers.registry import DriverRegistry
from pitstop.engine.campaign_runner import CampaignDriver, CampaignDriverConfig
from pitstop.engine.campaigns import CampaignService
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.service import JobService
from pitstop.storage.database import Database
from pitstop.storage.store import Store

pytestmark = pytest.mark.postgres

READY_S = 10.0


@pytest.fixture
async def other(pg_database: str, clock: Any) -> AsyncIterator[Store]:
    """The second replica: its own connections to the same database."""
    db = Database.from_url(pg_database)
    try:
        yield Store(db, clock=clock)
    finally:
        await db.close()


async def listening(store: Store) -> None:
    await asyncio.wait_for(store.notices.ready.wait(), READY_S)


async def test_a_job_queued_on_one_replica_starts_on_another(
    pg_database: str, clock: Any, other: Store
) -> None:
    db = Database.from_url(pg_database)
    try:
        here = Store(db, clock=clock)
        engine = await build_engine(here, clock)
        async with running(idle_worker(engine)):
            await listening(here)
            job = await JobService(other).submit(
                job_type=JobType.HEALTHCHECK,
                device="leaf1",
                fabric=None,
                mode=None,
                advanced_parameters={"sample_interval_s": 1},
                reason="check",
                ticket=None,
                expected_end=None,
                actor=ALICE,
                via=Via.API,
            )

            async def finished() -> bool:
                return (await engine.job(job.id)).status.finished

            await until(finished)
        assert (await engine.job(job.id)).status is JobStatus.SUCCEEDED
    finally:
        await db.close()


async def test_a_campaign_started_on_one_replica_is_conducted_on_another(
    pg_database: str, clock: Any, other: Store
) -> None:
    db = Database.from_url(pg_database)
    try:
        here = Store(db, clock=clock)
        engine = await build_engine(here, clock)
        conductor = CampaignDriver(
            store=here,
            clock=clock,
            config=CampaignDriverConfig(lease_ttl_s=HOUR, poll_interval_s=HOUR),
            name="idle-conductor",
        )
        service = CampaignService(other)
        spec = definition(selector={"roles": ["leaf"], "labels": "rack=r1"}, concurrency=1)
        await service.create(spec, actor=ALICE, via=Via.API)
        async with running(idle_worker(engine), conductor):
            await listening(here)
            await service.start("roll", actor=ALICE, via=Via.API)

            async def finished() -> bool:
                return (await service.get("roll"))[0].state in FINISHED

            await until(finished)
        assert (await service.get("roll"))[0].state is CampaignState.SUCCEEDED
    finally:
        await db.close()


async def test_a_cancel_on_one_replica_interrupts_the_step_running_on_another(
    pg_database: str, clock: Any, other: Store
) -> None:
    """The worker's heartbeat beats once in twenty minutes here (a third of its lease)."""
    db = Database.from_url(pg_database)
    try:
        here = Store(db, clock=clock)
        engine = await build_engine(here, clock)
        reached = asyncio.Event()
        registry = DriverRegistry()
        registry.register("simulated", HookedFactory(engine.factory, {"traffic": stall(reached)}))
        worker = Worker(
            store=here,
            drivers=registry,
            clock=clock,
            sleep=engine.fake_sleep,
            config=EngineConfig(lease_ttl_s=HOUR, poll_interval_s=HOUR),
            name="hooked",
        )
        job = await engine.submit("leaf2")
        async with running(worker):
            await listening(here)
            await asyncio.wait_for(reached.wait(), READY_S)
            await JobService(other).cancel(job.id, actor=ALICE, via=Via.API)

            async def finished() -> bool:
                return (await engine.job(job.id)).status.finished

            await until(finished)
        assert (await engine.job(job.id)).status is JobStatus.CANCELLED
    finally:
        await db.close()


def stall(reached: asyncio.Event) -> Any:
    """A traffic hook that holds the first sample for ever; the others pass."""
    seen = 0

    async def hook(call: Any) -> Any:
        nonlocal seen
        seen += 1
        if seen == 1:
            reached.set()
            await asyncio.Event().wait()
        return await call()

    return hook


async def test_a_store_ignores_its_own_notices(pg_database: str, clock: Any, other: Store) -> None:
    """Its subscribers were woken directly; its own notice coming back must not wake them
    a second time (a worker would claim again for nothing). The other store's show that the
    notice went round."""
    db = Database.from_url(pg_database)
    try:
        here = Store(db, clock=clock)
        woken, told = here.job_queued.subscribe(), other.job_queued.subscribe()
        async with here.notices.listening(), other.notices.listening():
            await listening(here)
            await listening(other)
            woken.clear()  # listening wakes everyone once, for what it may have missed
            told.clear()
            here.job_queued.fire()
            assert woken.is_set()
            woken.clear()
            await asyncio.wait_for(told.wait(), READY_S)
            await asyncio.sleep(0.2)  # both listeners got the same notice at once
            assert not woken.is_set()
    finally:
        await db.close()


async def listener_pids(store: Store) -> set[int]:
    rows = await store.db.connector.fetchone(
        "SELECT array_agg(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        (),
    )
    return set(rows[0] or []) if rows else set()


async def test_a_listener_that_lost_its_connection_listens_again(
    pg_database: str, clock: Any, other: Store
) -> None:
    """Notices sent while nobody listened are gone: on listening again, every subscriber
    wakes once to look, and the notices after that arrive as before."""
    db = Database.from_url(pg_database)
    try:
        here = Store(db, clock=clock)
        woken = here.job_queued.subscribe()
        async with here.notices.listening():
            await listening(here)
            (old,) = await listener_pids(other)
            woken.clear()
            await other.db.connector.fetchone("SELECT pg_terminate_backend(?)", (old,))
            await asyncio.wait_for(woken.wait(), READY_S)  # the reconnect's look
            for _ in range(int(READY_S / 0.05)):
                pids = await listener_pids(other)
                if pids and old not in pids:
                    break
                await asyncio.sleep(0.05)
            assert pids and old not in pids
            await asyncio.sleep(0.2)
            woken.clear()
            other.job_queued.fire()
            await asyncio.wait_for(woken.wait(), READY_S)
            await other.notices.close()
    finally:
        await db.close()
