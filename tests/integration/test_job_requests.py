"""A job's request: its parameters are resolved once, at submit, and every run of the job uses
them; the rules of a request (a reason, an expected end in the future, a test run that is
not stale) are ``JobService``'s, whoever submits. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from engine_support import ADMIN, ALICE, Engine, build_engine, step
from site_support import open_site, sign_in
from sqlalchemy import update

from pitstop.api.startup import seed_demo
from pitstop.domain.errors import Conflict, Forbidden, ValidationFailed
from pitstop.domain.jobs import JobStatus, JobType, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Via
from pitstop.engine.service import JobService
from pitstop.storage.store import Store
from pitstop.storage.tables import JobRow
from pitstop.web import views


@pytest.fixture
async def engine(store: Store, clock: Any) -> Engine:
    return await build_engine(store, clock)


async def set_fabric_defaults(engine: Engine, parameters: dict[str, Any]) -> None:
    async with engine.store.unit() as u:
        await u.fabrics.update("dc1", description=None, labels=None, parameters=parameters)


async def test_a_queued_job_runs_with_the_fabric_defaults_it_was_submitted_under(
    engine: Engine,
) -> None:
    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 50}})
    job = await engine.submit("leaf1")
    assert job.request.effective is not None
    assert job.request.effective.drain.max_residual_pps == 50
    # Changed while the job waits in the queue: the job keeps what it was submitted with.
    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 5}})
    assert await engine.run() == 1

    done = await engine.job(job.id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert step(done, "verify_drain").output["limit_pps"] == 50
    assert done.result["drain"]["limit_pps"] == 50
    # A job submitted now gets the new default.
    later = await engine.submit("leaf2")
    assert later.request.effective is not None
    assert later.request.effective.drain.max_residual_pps == 5


async def test_a_retry_runs_with_the_parameters_the_job_was_submitted_with(
    engine: Engine,
) -> None:
    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 50, "timeout_s": 5}})
    await engine.inject("leaf1", "drain-stuck")
    failed = await engine.run_job("leaf1")
    assert failed.status is JobStatus.FAILED
    assert step(failed, "verify_drain").output["limit_pps"] == 50

    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 5, "timeout_s": 3600}})
    await engine.clear("leaf1", "drain-stuck")
    await engine.service.retry(failed.id, actor=ALICE, via=Via.API)
    assert await engine.run() == 1
    job = await engine.job(failed.id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert step(job, "verify_drain").output["limit_pps"] == 50
    assert job.request.effective is not None
    assert job.request.effective.drain.timeout_s == 5


async def test_the_request_reads_back_as_it_was_submitted(engine: Engine) -> None:
    end = engine.clock() + timedelta(hours=2)
    job = await engine.submit(
        "leaf1", params={"checks": {"cpu_idle": {"min_pct": 20}}}, expected_end=end
    )
    stored = (await engine.job(job.id)).request
    assert stored.reason == "replace optics"
    assert stored.ticket == "CHG-1"
    assert stored.expected_end == end
    assert stored.via is Via.API
    assert stored.force_reason is None
    assert stored.overrides["checks"] == {"cpu_idle": {"min_pct": 20}}
    assert stored.effective is not None
    assert stored.effective.checks.cpu_idle.min_pct == 20
    # What was not overridden comes from the defaults.
    assert stored.effective.checks.memory.max_pct == 80


@pytest.mark.parametrize("reason", [None, "", "   "])
async def test_an_activation_needs_a_reason(engine: Engine, reason: str | None) -> None:
    for mode in (Mode.TEST_RUN, Mode.ACTIVATE):
        with pytest.raises(ValidationFailed) as caught:
            await engine.submit("leaf1", mode=mode, reason=reason)
        assert [e.field for e in caught.value.errors] == ["reason"]
    # A health check changes nothing and needs none.
    job = await engine.submit("leaf1", JobType.HEALTHCHECK, reason=None)
    assert job.status is JobStatus.QUEUED


async def test_an_expected_end_in_the_past_is_refused(engine: Engine) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await engine.submit("leaf1", expected_end=engine.clock() - timedelta(minutes=1))
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("expected_end", "must be in the future")
    ]
    assert await engine.lock_holder("leaf1") is None


async def test_an_activation_after_a_passed_test_run_uses_exactly_its_parameters(
    engine: Engine,
) -> None:
    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 50}})
    test = await engine.run_job("leaf1", mode=Mode.TEST_RUN)
    assert test.status is JobStatus.SUCCEEDED, test.error
    # Changed between the test run and the activation: the activation runs with what the
    # test run checked.
    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 5}})

    job = await engine.service.activate_tested(test.id, actor=ALICE, via=Via.WEB)
    assert (job.mode, job.request.reason, job.request.ticket) == (
        Mode.ACTIVATE,
        "replace optics",
        "CHG-1",
    )
    assert job.request.effective == test.request.effective
    assert await engine.run() == 1
    done = await engine.job(job.id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert step(done, "verify_drain").output["limit_pps"] == 50
    assert await engine.audit("leaf1", "job.override") == []


async def test_a_stale_test_run_activates_only_on_an_admins_override(engine: Engine) -> None:
    test = await engine.run_job("leaf1", mode=Mode.TEST_RUN)
    assert test.status is JobStatus.SUCCEEDED, test.error
    newer = await engine.run_job("leaf1", JobType.HEALTHCHECK)

    with pytest.raises(Conflict, match="run the test again"):
        await engine.service.activate_tested(test.id, actor=ALICE, via=Via.WEB)
    with pytest.raises(Forbidden):
        await engine.service.activate_tested(test.id, actor=ALICE, via=Via.WEB, override=True)
    assert await engine.lock_holder("leaf1") is None

    job = await engine.service.activate_tested(test.id, actor=ADMIN, via=Via.WEB, override=True)
    assert job.status is JobStatus.QUEUED
    [entry] = await engine.audit("leaf1", "job.override")
    assert entry.details["newer_job"] == str(newer.id)
    assert entry.details["test_run"] == str(test.id)


async def test_a_failed_test_run_does_not_activate(engine: Engine) -> None:
    await engine.inject("leaf1", "high-cpu")
    test = await engine.run_job("leaf1", mode=Mode.TEST_RUN)
    assert test.status is JobStatus.FAILED
    with pytest.raises(Conflict, match="needs a passed test run"):
        await engine.service.activate_tested(test.id, actor=ADMIN, via=Via.WEB)
    assert (await engine.device("leaf1")).status is DeviceStatus.ACTIVATED


async def test_only_a_test_run_can_be_activated_from(engine: Engine) -> None:
    job = await engine.run_job("leaf1", JobType.HEALTHCHECK)
    with pytest.raises(Conflict, match="not a test run"):
        await engine.service.activate_tested(job.id, actor=ADMIN, via=Via.WEB)


async def store_params(engine: Engine, job_id: Any, params: dict[str, Any]) -> None:
    """Rewrite a job's stored request, as an older pitstop wrote it."""
    async with engine.store.db.transaction() as session:
        await session.execute(update(JobRow).where(JobRow.id == job_id).values(params=params))


async def test_a_job_stored_before_its_parameters_were_kept_still_reads_and_runs(
    engine: Engine,
) -> None:
    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 40}})
    job = await engine.submit("leaf1")
    await store_params(
        engine,
        job.id,
        {
            "advanced_parameters": {"sample_interval_s": 1},
            "reason": "replace optics",
            "ticket": "CHG-1",
            "expected_end": None,
            "via": "api",
        },
    )
    old = (await engine.job(job.id)).request
    assert (old.reason, old.ticket, old.via, old.effective) == (
        "replace optics",
        "CHG-1",
        Via.API,
        None,
    )
    assert old.overrides == {"sample_interval_s": 1}
    # Without stored parameters it resolves at run time, as it did when it was queued.
    assert await engine.run() == 1
    done = await engine.job(job.id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert step(done, "verify_drain").output["limit_pps"] == 40


async def test_the_drain_chart_shows_the_limit_the_engine_holds_the_job_to(
    engine: Engine,
) -> None:
    # The limit comes from the fabric's default alone: the job overrides nothing of the drain.
    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 50}})
    queued = await engine.submit("leaf1")
    drain = views.drain_of(queued, [])
    assert drain is not None and drain.limit == 50
    await set_fabric_defaults(engine, {"drain": {"max_residual_pps": 5}})
    assert await engine.run() == 1
    done = await engine.job(queued.id)
    drain = views.drain_of(done, await engine.events(done.id))
    assert drain is not None and drain.done
    assert drain.limit == step(done, "verify_drain").output["limit_pps"] == 50


async def test_the_job_page_shows_the_parameters_the_job_runs_with(store: Store) -> None:
    await seed_demo(store)
    async with store.unit() as u:
        await u.fabrics.update(
            "dc1", description=None, labels=None, parameters={"drain": {"max_residual_pps": 42}}
        )
    job = await JobService(store).submit(
        job_type=JobType.HEALTHCHECK,
        device="leaf1",
        fabric="dc1",
        mode=None,
        advanced_parameters={"sample_interval_s": 2},
        reason=None,
        ticket=None,
        expected_end=None,
        actor=ALICE,
        via=Via.API,
    )
    async with open_site(store) as site:
        c = await site.client()
        assert (await sign_in(c, site.tokens["viewer"])).status_code == 303
        page = await c.get(f"/ui/jobs/{job.id}")
    assert page.status_code == 200, page.text
    shown = re.search(r'data-testid="effective-parameters".*?<code>(.*?)</code>', page.text, re.S)
    assert shown is not None, page.text
    parameters = json.loads(html.unescape(shown.group(1)))
    assert parameters["drain"]["max_residual_pps"] == 42
    assert parameters["sample_interval_s"] == 2
