"""The engine and fabric policy: a job queued before maintenance was disallowed is refused
when it would start draining, and a forced job goes through with its reason in the audit.
The draining step reserves budget slots itself: a full pool refuses the job there, and the
audit row of a job's draining names the pools it took a slot in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from engine_support import ADMIN, Engine, build_engine, step

from pitstop.domain.inventory import Budget
from pitstop.domain.jobs import JobStatus, JobType, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.storage.store import Store


@pytest.fixture
async def engine(store: Store, clock: Any) -> Engine:
    return await build_engine(store, clock)


async def _disallow(engine: Engine) -> None:
    async with engine.store.unit() as u:
        fabric = await u.fabrics.row("dc1")
        await u.budgets.set_policy(fabric.id, maintenance_allowed=False, role_overrides=None)


async def test_a_queued_job_is_refused_when_maintenance_becomes_disallowed(
    engine: Engine,
) -> None:
    queued = await engine.submit("leaf1")
    await _disallow(engine)
    assert await engine.run() == 1
    job = await engine.job(queued.id)
    assert job.status is JobStatus.FAILED
    assert job.result["failed_step"] == "mark_draining"
    assert (job.error or "").startswith("MAINTENANCE_DISALLOWED")
    assert step(job, "mark_draining").status.value == "failed"
    assert (await engine.device("leaf1")).status is DeviceStatus.ACTIVATED
    assert await engine.calls("leaf1", "apply_maintenance") == []


async def test_a_forced_job_enters_maintenance_and_the_audit_says_why(engine: Engine) -> None:
    await _disallow(engine)
    queued = await engine.service.submit(
        job_type=JobType.ACTIVATE,
        device="leaf1",
        fabric=None,
        mode=Mode.ACTIVATE,
        advanced_parameters={"sample_interval_s": 1},
        reason="optics",
        ticket=None,
        expected_end=None,
        actor=ADMIN,
        via=Via.API,
        force=True,
        force_reason="failing optic drops packets",
    )
    assert await engine.run() == 1
    job = await engine.job(queued.id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert (await engine.device("leaf1")).status is DeviceStatus.MAINTENANCE
    draining = [e for e in await engine.audit("leaf1") if e.to_status == "draining"]
    assert draining[0].details["forced"] == "failing optic drops packets"
    assert draining[0].details["reserved"] == ["mlag-1"]


async def test_a_job_is_refused_by_a_full_budget_when_it_would_start_draining(
    engine: Engine,
) -> None:
    # Redundancy off: only the budget reservation in the draining step stands in the way.
    await engine.activated("spine2")
    off = {"checks": {"redundancy": {"enabled": False}}}
    job = await engine.run_job("spine1", params=off)
    assert job.status is JobStatus.FAILED
    assert job.result["failed_step"] == "mark_draining"
    error = job.error or ""
    assert error.startswith("BUDGET_EXCEEDED: group spines")
    assert "has no room for spine1" in error
    assert "spine2 (maintenance)" in error
    assert step(job, "mark_draining").status.value == "failed"
    assert (await engine.device("spine1")).status is DeviceStatus.ACTIVATED
    assert await engine.calls("spine1", "apply_maintenance") == []
    # Refused means unchanged: no status row for spine1 beyond its creation.
    assert await engine.audit("spine1") == []


async def test_a_job_records_the_pools_it_reserved_and_the_chain_still_verifies(
    engine: Engine,
) -> None:
    async with engine.store.unit() as u:
        fabric = await u.fabrics.row("dc1")
        await u.budgets.set_policy(
            fabric.id, maintenance_allowed=None, role_overrides={"leaf": Budget(2)}
        )
    job = await engine.run_job("leaf1")
    assert job.status is JobStatus.SUCCEEDED, job.error
    entries = await engine.audit("leaf1")
    (draining,) = [e for e in entries if e.to_status == "draining"]
    assert draining.from_status == "activated"
    assert draining.via == Via.ENGINE.value
    assert draining.job_id == job.id
    assert dict(draining.details) == {"reserved": ["mlag-1", "role:leaf"]}
    # The steps that stay out of service take no new slot.
    later = [e for e in entries if e.to_status in ("maintenance", "undraining")]
    assert later and all(dict(e.details) == {} for e in later)
    async with engine.store.unit() as u:
        checked, problems = await u.audit.verify()
    assert checked > 0
    assert problems == []


async def test_a_second_run_of_the_draining_transition_leaves_the_device_as_it_is(
    engine: Engine,
) -> None:
    # A worker that died after marking the device draining runs the step again: the device
    # already holds its slot, so nothing is refused, judged or recorded a second time.
    queued = await engine.submit("leaf1")
    claimed = await engine.store.leases.claim(worker="t", lease_ttl=timedelta(seconds=60))
    assert claimed is not None and claimed[0] == queued.id
    device = await engine.device("leaf1")

    async def drain(judge: Any = None) -> Any:
        return await engine.store.writes.change_status(
            job_id=queued.id,
            epoch=claimed[1],
            events=(),
            device=device,
            target=DeviceStatus.DRAINING,
            actor=Actor("alice", Role.ENGINE),
            via=Via.ENGINE,
            if_needed=True,
            reason="optics",
            ticket=None,
            expected_end=None,
            judge=judge,
        )

    first = await drain()
    assert first.status is DeviceStatus.DRAINING
    await _disallow(engine)

    def refuse(_: Any) -> None:
        raise AssertionError("judged twice")

    again = await drain(refuse)
    assert again.status is DeviceStatus.DRAINING
    assert again.version == first.version
    rows = [e for e in await engine.audit("leaf1") if e.to_status == "draining"]
    assert [dict(e.details) for e in rows] == [{"reserved": ["mlag-1"]}]
