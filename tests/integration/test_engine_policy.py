"""The engine and fabric policy: a job queued before maintenance was disallowed is refused
when it would start draining, and a forced job goes through with its reason in the audit."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import ADMIN, Engine, build_engine, step

from pitstop.domain.jobs import JobStatus, JobType, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Via
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
