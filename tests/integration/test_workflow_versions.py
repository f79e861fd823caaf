"""A job keeps the plan it was queued with: its steps are matched to the workflow by name, so
a pitstop whose workflow gained or lost a step since runs an older job to its end or fails it
cleanly, never raising on every claim. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from engine_support import Engine, build_engine, step
from sqlalchemy import delete, insert

from pitstop.domain.jobs import JobStatus, JobType, StepStatus
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.storage.store import Store
from pitstop.storage.tables import JobStepRow


@pytest.fixture
async def engine(store: Store, clock: Any) -> Engine:
    return await build_engine(store, clock)


async def plan_as(engine: Engine, job_id: uuid.UUID, names: list[str]) -> None:
    """Rewrite a queued job's steps as a workflow with these steps would have queued them."""
    async with engine.store.db.transaction() as session:
        await session.execute(delete(JobStepRow).where(JobStepRow.job_id == job_id))
        await session.execute(
            insert(JobStepRow),
            [
                {
                    "job_id": job_id,
                    "idx": i,
                    "name": name,
                    "status": StepStatus.PENDING.value,
                    "expected_s": 1.0,
                    "timeout_s": 120.0,
                    "runs": 0,
                    "output": {},
                }
                for i, name in enumerate(names)
            ],
        )


async def test_a_job_queued_before_a_step_was_added_runs_its_own_plan_to_the_end(
    engine: Engine,
) -> None:
    job = await engine.submit("leaf1", JobType.HEALTHCHECK)
    # An older healthcheck that had no verdict step.
    await plan_as(engine, job.id, ["health"])
    assert await engine.run() == 1

    done = await engine.job(job.id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert [(s.name, s.status) for s in done.steps] == [("health", StepStatus.SUCCEEDED)]
    assert await engine.lock_holder("leaf1") is None


async def test_an_activation_queued_without_a_later_step_still_takes_the_device_out(
    engine: Engine,
) -> None:
    job = await engine.submit("leaf1")
    names = [s.name for s in job.steps if s.name != "snapshot"]
    await plan_as(engine, job.id, names)
    assert await engine.run() == 1

    done = await engine.job(job.id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert [s.name for s in done.steps] == names
    assert (await engine.device("leaf1")).status is DeviceStatus.MAINTENANCE


async def test_a_job_with_a_step_the_workflow_no_longer_has_fails_cleanly_once(
    engine: Engine,
) -> None:
    job = await engine.submit("leaf1")
    names = [s.name for s in job.steps]
    # An older activation with a step that has since been removed, after the diversion.
    await plan_as(engine, job.id, [*names[:5], "settle", *names[5:]])
    assert await engine.run() == 1

    done = await engine.job(job.id)
    assert done.status is JobStatus.FAILED
    assert done.error is not None and done.error.startswith("WORKFLOW_CHANGED")
    assert "settle" in done.error
    # It failed before running anything of the changed plan: the device was never touched.
    assert step(done, "validate").status is StepStatus.FAILED
    assert all(s.status is StepStatus.PENDING for s in done.steps[1:])
    assert (await engine.device("leaf1")).status is DeviceStatus.ACTIVATED
    assert await engine.ops("leaf1") == []
    assert await engine.lock_holder("leaf1") is None
    # Finished, not re-claimed.
    assert await engine.run() == 0
