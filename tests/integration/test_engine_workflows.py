"""The job engine's workflows end to end: ``JobService`` queues a job, a ``Worker`` runs it
against the simulated driver on a fake clock, and the tests read back what a user notices —
the device's status and maintenance record, the job and its steps, the job log, the audit
trail, and what was done to the (simulated) device.

Every path of ``pitstop.engine.workflows``: test runs, activation, deactivation, health checks,
the refusals at submission, failures before and after the diversion with their rollbacks,
cancellation, retry, step time limits, a driver that cannot be opened, and a worker taking
over the job of one that died.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest
from engine_support import (
    ACTIVATE_STEPS,
    ADMIN,
    ALICE,
    DEACTIVATE_STEPS,
    HEALTH_CHECKS,
    TEST_RUN_STEPS,
    Engine,
    WorkerDied,
    build_engine,
    step,
    steps,
    transitions,
)

from pitstop.domain.errors import Conflict, DeviceBusy, DeviceUnderMaintenance
from pitstop.domain.inventory import Budget
from pitstop.domain.jobs import JobStatus, JobType, Level, Mode, StepStatus
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Via
from pitstop.engine import runner, workflows
from pitstop.storage.store import Store


@pytest.fixture
async def engine(store: Store, clock: Any) -> Engine:
    return await build_engine(store, clock)


def all_succeeded(job: Any, names: list[str]) -> None:
    assert [s.name for s in job.steps] == names
    assert steps(job) == dict.fromkeys(names, "succeeded"), job.error


# 1-2. Test runs ---------------------------------------------------------------------------------


async def test_test_run_on_a_healthy_device_passes_and_changes_nothing(engine: Engine) -> None:
    before = await engine.device("spine1")
    job = await engine.run_job("spine1", mode=Mode.TEST_RUN)

    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.mode is Mode.TEST_RUN
    all_succeeded(job, TEST_RUN_STEPS)
    assert job.progress == 100
    assert job.error is None

    checks = job.result["checks"]
    assert [c["check"] for c in checks] == HEALTH_CHECKS
    for c in checks:
        assert {"observed", "threshold", "status", "message"} <= set(c), c
        assert c["status"] == "pass", c
    by_name = {c["check"]: c for c in checks}
    assert by_name["cpu_idle"]["threshold"] == 60
    assert by_name["cpu_idle"]["observed"] > 60
    # Two samples a fake second apart: the rates were measured, not skipped.
    assert by_name["interface_errors"]["observed"] == 0
    assert by_name["interface_errors"]["threshold"] == 1.0
    assert job.result["overall"] == "pass"
    assert job.result["verdict"] == {"problems": [], "warnings": [], "passed": True}
    assert {r["status"] for r in job.result["redundancy"]} == {"pass"}

    after = await engine.device("spine1")
    assert after.status is DeviceStatus.ACTIVATED
    assert after.version == before.version
    assert after.maintenance == before.maintenance
    assert await engine.ops("spine1") == ["health", "health"]
    assert not await engine.diverted("spine1")
    assert await engine.audit("spine1") == []
    assert await engine.lock_holder("spine1") is None


@pytest.mark.parametrize(
    ("fault", "check"),
    [("bgp-peer-down", "bgp_down_peers"), ("high-cpu", "cpu_idle"), ("daemon-down", "daemons")],
)
async def test_test_run_with_a_fault_fails_its_verdict_naming_the_check(
    engine: Engine, fault: str, check: str
) -> None:
    await engine.inject("leaf1", fault)
    before = await engine.device("leaf1")
    job = await engine.run_job("leaf1", mode=Mode.TEST_RUN)

    assert job.status is JobStatus.FAILED
    assert steps(job) == {"validate": "succeeded", "health": "succeeded", "verdict": "failed"}
    assert f"health checks failed: {check}" in (job.error or "")
    verdict = step(job, "verdict")
    assert verdict.output["passed"] is False
    assert check in verdict.error
    assert job.result["failed_step"] == "verdict"
    failing = [c["check"] for c in job.result["checks"] if c["status"] == "fail"]
    assert failing == [check]

    after = await engine.device("leaf1")
    assert (after.status, after.version) == (DeviceStatus.ACTIVATED, before.version)
    assert set(await engine.ops("leaf1")) == {"health"}
    assert await engine.audit("leaf1") == []
    assert await engine.lock_holder("leaf1") is None


async def test_test_run_reports_a_redundancy_problem_in_its_verdict(engine: Engine) -> None:
    await engine.activated("spine2")
    job = await engine.run_job("spine1", mode=Mode.TEST_RUN)

    assert job.status is JobStatus.FAILED
    # A test run does not stop at validation: it measures health too, then judges.
    assert steps(job) == {"validate": "succeeded", "health": "succeeded", "verdict": "failed"}
    assert "group spines" in (job.error or "")
    assert "no other activated spine" in (job.error or "")
    assert (await engine.device("spine1")).status is DeviceStatus.ACTIVATED
    assert set(await engine.ops("spine1")) == {"health"}


# 3-4. Activation and deactivation ------------------------------------------------------------


async def test_activation_drains_the_device_into_maintenance(engine: Engine) -> None:
    end = engine.clock() + timedelta(hours=4)
    job = await engine.run_job(
        "leaf3", reason="swap PSU", ticket="CHG-77", expected_end=end, params={}
    )

    assert job.status is JobStatus.SUCCEEDED, job.error
    all_succeeded(job, ACTIVATE_STEPS)
    assert job.progress == 100
    assert job.current_step is None

    device = await engine.device("leaf3")
    assert device.status is DeviceStatus.MAINTENANCE
    assert device.maintenance.reason == "swap PSU"
    assert device.maintenance.ticket == "CHG-77"
    assert device.maintenance.requested_by == "alice"
    assert device.maintenance.expected_end == end
    assert device.maintenance.entered_at is not None
    assert not device.needs_attention

    drain = step(job, "verify_drain").output
    assert drain["seconds"] > 0
    assert drain["residual_pps"] <= 10
    assert drain["limit_pps"] == 10
    assert job.result["drain"]["residual_pps"] <= 10
    assert step(job, "divert").output["changed"] is True
    snapshot = step(job, "snapshot").output
    assert "router bgp" in snapshot["config"]
    assert "graceful-shutdown" not in snapshot["config"]

    applied = await engine.calls("leaf3", "apply_maintenance")
    assert [c["changed"] for c in applied] == [True]
    assert await engine.calls("leaf3", "remove_maintenance") == []
    assert await engine.diverted("leaf3")

    rows = await engine.audit("leaf3")
    assert transitions(rows) == [("activated", "draining"), ("draining", "maintenance")]
    for row in rows:
        assert (row.via, row.job_id, row.actor) == ("engine", job.id, "alice")
    assert {(r.reason, r.ticket) for r in rows} == {("swap PSU", "CHG-77")}
    assert device.status_reason == "swap PSU"
    submitted = await engine.audit("leaf3", "job.submit")
    assert [(r.actor, r.via, r.job_id) for r in submitted] == [("alice", "api", job.id)]
    assert await engine.lock_holder("leaf3") is None


async def test_deactivation_restores_the_device(engine: Engine) -> None:
    activation = await engine.activated("leaf2")
    job = await engine.run_job("leaf2", JobType.DEACTIVATE, reason="done")

    assert job.status is JobStatus.SUCCEEDED, job.error
    all_succeeded(job, DEACTIVATE_STEPS)
    assert job.progress == 100

    compare = step(job, "compare").output
    assert compare["compared"] is True
    assert compare["clean"] is True, compare
    assert compare["config_changed"] is False
    assert compare["snapshot_job"] == str(activation.id)
    assert step(job, "verify_restored").output["transit_pps"] > 1000
    assert step(job, "restore").output["changed"] is True
    assert step(job, "post_health").output["overall"] == "pass"

    device = await engine.device("leaf2")
    assert device.status is DeviceStatus.ACTIVATED
    assert device.maintenance.reason is None
    assert device.maintenance.requested_by is None
    removed = await engine.calls("leaf2", "remove_maintenance")
    assert [c["changed"] for c in removed] == [True]
    assert not await engine.diverted("leaf2")

    rows = [r for r in await engine.audit("leaf2") if r.job_id == job.id]
    assert transitions(rows) == [("maintenance", "undraining"), ("undraining", "activated")]
    assert {(r.via, r.actor) for r in rows} == {("engine", "alice")}
    assert await engine.lock_holder("leaf2") is None


# 5. What submission refuses -----------------------------------------------------------------


async def test_a_device_in_maintenance_accepts_only_deactivation_and_health_checks(
    engine: Engine,
) -> None:
    await engine.activated("leaf5")

    for mode in (Mode.ACTIVATE, Mode.TEST_RUN):
        with pytest.raises(DeviceUnderMaintenance) as refused:
            await engine.submit("leaf5", JobType.ACTIVATE, mode=mode)
        assert refused.value.code == "DEVICE_UNDER_MAINTENANCE"
        assert "leaf5 is in maintenance" in refused.value.detail

    before = len(await engine.calls("leaf5"))
    job = await engine.run_job("leaf5", JobType.HEALTHCHECK)
    assert job.status is JobStatus.SUCCEEDED, job.error
    all_succeeded(job, ["health", "verdict"])
    assert (await engine.device("leaf5")).status is DeviceStatus.MAINTENANCE
    during = [c["op"] for c in (await engine.calls("leaf5"))[before:]]
    assert during == ["health", "health"]
    assert await engine.diverted("leaf5")


async def test_a_second_job_on_a_busy_device_is_refused(engine: Engine) -> None:
    first = await engine.submit("leaf1")
    for job_type in (JobType.ACTIVATE, JobType.HEALTHCHECK):
        with pytest.raises(DeviceBusy) as refused:
            await engine.submit("leaf1", job_type)
        assert refused.value.code == "DEVICE_BUSY"
        assert str(first.id) in refused.value.detail
    assert await engine.lock_holder("leaf1") == first.id
    # The other device of the pair is not locked by it.
    await engine.submit("leaf2", JobType.HEALTHCHECK)


async def test_deactivating_an_activated_device_is_a_conflict(engine: Engine) -> None:
    with pytest.raises(Conflict) as refused:
        await engine.submit("leaf1", JobType.DEACTIVATE)
    assert refused.value.code == "CONFLICT"
    assert "leaf1 is activated" in refused.value.detail
    assert await engine.lock_holder("leaf1") is None


async def test_a_healthcheck_on_a_faulty_device_fails(engine: Engine) -> None:
    await engine.inject("border1", "critical-alarm")
    job = await engine.run_job("border1", JobType.HEALTHCHECK)
    assert job.status is JobStatus.FAILED
    assert steps(job) == {"health": "succeeded", "verdict": "failed"}
    assert job.error == "STEP_FAILED: health checks failed: alarms"
    assert job.result["failed_step"] == "verdict"
    assert step(job, "health").output["overall"] == "fail"
    assert step(job, "verdict").output["passed"] is False
    assert (await engine.device("border1")).status is DeviceStatus.ACTIVATED


# 6. Failures before the diversion -------------------------------------------------------------


async def test_a_failed_health_check_stops_activation_before_anything_changes(
    engine: Engine,
) -> None:
    await engine.inject("leaf4", "high-cpu")
    job = await engine.run_job("leaf4")

    assert job.status is JobStatus.FAILED
    assert steps(job) == {
        "validate": "succeeded",
        "health": "failed",
        **dict.fromkeys(ACTIVATE_STEPS[2:], "pending"),
    }
    assert job.error == "STEP_FAILED: health checks failed: cpu_idle"
    assert step(job, "health").error == job.error
    assert step(job, "health").output["overall"] == "fail"
    assert job.result["failed_step"] == "health"
    assert job.result["undo"] == "nothing to undo: the device is activated"
    assert job.progress < 100

    device = await engine.device("leaf4")
    assert (device.status, device.version) == (DeviceStatus.ACTIVATED, 1)
    assert await engine.calls("leaf4", "apply_maintenance") == []
    assert await engine.audit("leaf4") == []
    assert await engine.lock_holder("leaf4") is None


async def test_without_health_check_abort_activation_goes_ahead_despite_a_failed_check(
    engine: Engine,
) -> None:
    await engine.inject("leaf4", "high-cpu")
    job = await engine.run_job("leaf4", params={"health_check_abort": False})

    assert job.status is JobStatus.SUCCEEDED, job.error
    all_succeeded(job, ACTIVATE_STEPS)
    assert job.result["overall"] == "fail"
    assert (await engine.device("leaf4")).status is DeviceStatus.MAINTENANCE
    failed_checks = [
        e
        for e in await engine.events(job.id)
        if e.step == "health" and e.level is Level.ERROR and e.message.startswith("cpu_idle fail")
    ]
    assert len(failed_checks) == 1, "the failed check is still in the job log"
    assert "below the minimum of 60 %" in failed_checks[0].message


async def test_an_unreachable_device_fails_activation_before_anything_changes(
    engine: Engine,
) -> None:
    await engine.inject("leaf4", "unreachable")
    job = await engine.run_job("leaf4")

    assert job.status is JobStatus.FAILED
    assert steps(job)["health"] == "failed"
    assert job.error == "DEVICE_UNREACHABLE: leaf4: no route to host (simulated)"
    assert (await engine.device("leaf4")).status is DeviceStatus.ACTIVATED
    assert await engine.audit("leaf4") == []
    assert await engine.lock_holder("leaf4") is None


@pytest.mark.parametrize("job_type", [JobType.HEALTHCHECK, JobType.ACTIVATE])
async def test_a_failed_health_check_shows_its_checks_in_the_job_result(
    engine: Engine, job_type: JobType
) -> None:
    # What the failed step measured is what an operator looks for first.
    await engine.inject("border1", "high-memory")
    job = await engine.run_job("border1", job_type)
    assert job.status is JobStatus.FAILED
    assert job.result.get("overall") == "fail"
    failing = [c for c in job.result.get("checks", []) if c["status"] == "fail"]
    assert [(c["check"], c["observed"], c["threshold"]) for c in failing] == [("memory", 92.0, 80)]


# 7. Redundancy ----------------------------------------------------------------------------------


async def test_activation_keeps_redundancy(engine: Engine) -> None:
    await engine.activated("spine2")
    job = await engine.run_job("spine1")

    assert job.status is JobStatus.FAILED
    assert steps(job)["validate"] == "failed"
    assert set(steps(job).values()) == {"failed", "pending"}
    error = job.error or ""
    assert "group spines" in error
    assert "spine2 (maintenance)" in error
    assert "no other activated spine" in error
    # The role rule, the group, and the fabric's role budget (half the spines).
    assert "group role:spine" in error
    failed = [r for r in step(job, "validate").output["redundancy"] if r["status"] == "fail"]
    assert len(failed) == 3
    assert (await engine.device("spine1")).status is DeviceStatus.ACTIVATED
    assert await engine.ops("spine1") == []
    refusals = [e for e in await engine.events(job.id) if e.message.startswith("redundancy fail")]
    assert len(refusals) == 3


async def test_with_redundancy_switched_off_the_budgets_still_hold(engine: Engine) -> None:
    # The switch turns off the checks at validation; the budget slot is still reserved when
    # the device starts draining.
    await engine.activated("spine2")
    off = {"checks": {"redundancy": {"enabled": False}}}
    refused = await engine.run_job("spine1", params=off)
    assert refused.status is JobStatus.FAILED
    assert refused.result["failed_step"] == "mark_draining"
    assert (refused.error or "").startswith("BUDGET_EXCEEDED: group spines")
    assert (await engine.device("spine1")).status is DeviceStatus.ACTIVATED

    # Budgets with room: now only the switched-off role rule stood in the way.
    async with engine.store.unit() as u:
        fabric = await u.fabrics.row("dc1")
        await u.fabrics.update_group(
            fabric.id, "spines", max_unavailable=Budget(2), description=None
        )
        await u.budgets.set_policy(
            fabric.id, maintenance_allowed=None, role_overrides={"spine": Budget(2)}
        )
    job = await engine.run_job("spine1", params=off)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert step(job, "validate").output["redundancy"] == []
    assert (await engine.device("spine1")).status is DeviceStatus.MAINTENANCE


async def test_concurrent_activations_never_take_both_spines_out(engine: Engine) -> None:
    # Validation alone cannot keep this promise: redundancy is checked again, under the
    # fabric's lock, in the transaction that marks the device draining.
    first = await engine.submit("spine1")
    second = await engine.submit("spine2")
    # Both jobs get past validation before either starts to drain, as two workers racing do.
    both_validated = asyncio.Barrier(2)

    async def meet(call: Any) -> Any:
        with contextlib.suppress(asyncio.BrokenBarrierError, TimeoutError):
            await asyncio.wait_for(both_validated.wait(), 5)
        return await call()

    workers = [engine.hooked_worker(f"w{i}", health=meet) for i in (1, 2)]
    assert await asyncio.gather(*(w.run_once() for w in workers)) == [True, True]

    jobs = [await engine.job(j.id) for j in (first, second)]
    assert sorted(j.status.value for j in jobs) == ["failed", "succeeded"]
    statuses = {(await engine.device(n)).status for n in ("spine1", "spine2")}
    assert statuses == {DeviceStatus.ACTIVATED, DeviceStatus.MAINTENANCE}
    # The loser is stopped when it would start draining, before touching its device.
    (loser,) = [j for j in jobs if j.status is JobStatus.FAILED]
    assert steps(loser)["validate"] == "succeeded"
    assert loser.result["failed_step"] == "mark_draining"
    assert "group spines" in (loser.error or "")
    assert await engine.calls(loser.device, "apply_maintenance") == []
    assert (await engine.device(loser.device)).status is DeviceStatus.ACTIVATED


# 8-10. Failures after the diversion began --------------------------------------------------------


async def test_a_refused_diversion_returns_the_device_to_activated(engine: Engine) -> None:
    await engine.inject("leaf6", "apply-fails")
    job = await engine.run_job("leaf6")

    assert job.status is JobStatus.FAILED
    assert steps(job)["divert"] == "failed"
    assert steps(job)["mark_draining"] == "rolled_back"
    assert "DRIVER_ERROR" in (job.error or "")
    assert "commit failed" in (job.error or "")
    assert job.result["failed_step"] == "divert"

    device = await engine.device("leaf6")
    assert device.status is DeviceStatus.ACTIVATED
    assert not device.needs_attention
    assert device.maintenance.reason is None
    assert not await engine.diverted("leaf6")
    rows = await engine.audit("leaf6")
    assert transitions(rows) == [("activated", "draining"), ("draining", "activated")]
    assert rows[-1].reason == "activation rolled back"
    assert await engine.lock_holder("leaf6") is None

    # Nothing is left behind: the device takes a new job at once.
    await engine.clear("leaf6")
    again = await engine.run_job("leaf6")
    assert again.status is JobStatus.SUCCEEDED, again.error


async def test_a_stuck_drain_is_rolled_back(engine: Engine) -> None:
    await engine.inject("leaf1", "drain-stuck")
    job = await engine.run_job("leaf1", params={"drain": {"timeout_s": 5}})

    assert job.status is JobStatus.FAILED
    assert "did not converge" in (job.error or "")
    assert steps(job) == {
        "validate": "succeeded",
        "health": "succeeded",
        "snapshot": "succeeded",
        "mark_draining": "rolled_back",
        "divert": "rolled_back",
        "verify_drain": "failed",
        "mark_maintenance": "pending",
    }
    failed = step(job, "verify_drain")
    assert failed.output["residual_pps"] > 10
    assert failed.output["samples"][-1]["t"] >= 5
    assert job.result["failed_step"] == "verify_drain"
    assert job.result["undo"].startswith("rolled back")

    device = await engine.device("leaf1")
    assert device.status is DeviceStatus.ACTIVATED
    assert not device.needs_attention
    assert [c["changed"] for c in await engine.calls("leaf1", "remove_maintenance")] == [True]
    assert not await engine.diverted("leaf1")
    assert transitions(await engine.audit("leaf1")) == [
        ("activated", "draining"),
        ("draining", "activated"),
    ]
    rollback = [e for e in await engine.events(job.id) if e.step == "rollback"]
    assert any("removing the diversion" in e.message for e in rollback)
    assert await engine.lock_holder("leaf1") is None


async def test_a_stuck_drain_without_rollback_leaves_the_device_in_error(engine: Engine) -> None:
    await engine.inject("leaf1", "drain-stuck")
    job = await engine.run_job(
        "leaf1", params={"drain": {"timeout_s": 5}, "rollback_on_failure": False}
    )

    assert job.status is JobStatus.FAILED
    assert "did not converge" in (job.error or "")
    device = await engine.device("leaf1")
    assert device.status is DeviceStatus.ERROR
    assert device.needs_attention
    assert "diversion is still in place" in (device.attention_reason or "")
    assert await engine.diverted("leaf1")
    assert await engine.calls("leaf1", "remove_maintenance") == []
    # Nothing was undone, so nothing is marked as such.
    assert StepStatus.ROLLED_BACK.value not in steps(job).values()
    assert transitions(await engine.audit("leaf1")) == [
        ("activated", "draining"),
        ("draining", "error"),
    ]
    assert await engine.lock_holder("leaf1") is None


async def test_a_failed_rollback_leaves_the_device_in_error(engine: Engine) -> None:
    await engine.inject("leaf1", "drain-stuck")
    await engine.inject("leaf1", "remove-fails")
    job = await engine.run_job("leaf1", params={"drain": {"timeout_s": 5}})

    assert job.status is JobStatus.FAILED
    assert "did not converge" in (job.error or "")
    assert job.result["undo"].startswith("device set to error: rollback failed")
    device = await engine.device("leaf1")
    assert device.status is DeviceStatus.ERROR
    assert device.needs_attention
    assert "rollback failed" in (device.attention_reason or "")
    assert "commit failed" in (device.attention_reason or "")
    assert await engine.diverted("leaf1")
    removal = await engine.calls("leaf1", "remove_maintenance")
    assert [(c["changed"], c.get("error")) for c in removal] == [(False, "DRIVER_ERROR")]
    assert steps(job)["divert"] == "succeeded", "a failed rollback undid nothing"
    assert await engine.lock_holder("leaf1") is None


async def test_a_rollback_whose_traffic_never_returns_leaves_the_device_in_error(
    engine: Engine,
) -> None:
    await engine.inject("leaf1", "drain-stuck")
    await engine.inject("leaf1", "undrain-fails")
    job = await engine.run_job(
        "leaf1", params={"drain": {"timeout_s": 5}, "undrain": {"timeout_s": 3}}
    )

    assert job.status is JobStatus.FAILED
    assert "did not converge" in (job.error or "")
    device = await engine.device("leaf1")
    assert device.status is DeviceStatus.ERROR
    assert device.needs_attention
    assert "rollback failed" in (device.attention_reason or "")
    assert "device not restored" in (device.attention_reason or "")
    # The diversion did come off; the device just does not carry traffic again.
    assert [c["changed"] for c in await engine.calls("leaf1", "remove_maintenance")] == [True]
    assert transitions(await engine.audit("leaf1")) == [
        ("activated", "draining"),
        ("draining", "error"),
    ]


# 11. Deactivation failures ---------------------------------------------------------------------


async def test_a_failed_undrain_puts_the_diversion_back(engine: Engine) -> None:
    await engine.activated("leaf3", reason="swap PSU")
    await engine.inject("leaf3", "undrain-fails")
    job = await engine.run_job("leaf3", JobType.DEACTIVATE, params={"undrain": {"timeout_s": 3}})

    assert job.status is JobStatus.FAILED
    assert "device not restored" in (job.error or "")
    assert steps(job) == {
        "validate": "succeeded",
        "config_check": "succeeded",  # it only looked: nothing to put back
        "mark_undraining": "rolled_back",
        "restore": "rolled_back",
        "verify_restored": "failed",
        "post_health": "pending",
        "compare": "pending",
        "mark_activated": "pending",
    }
    assert job.result["undo"] == "the diversion is back in place and the device is in maintenance"

    device = await engine.device("leaf3")
    assert device.status is DeviceStatus.MAINTENANCE
    assert not device.needs_attention
    assert device.maintenance.reason == "swap PSU", "the maintenance record is kept"
    assert await engine.diverted("leaf3")
    applied = await engine.calls("leaf3", "apply_maintenance")
    assert [c["changed"] for c in applied] == [True, True]
    rows = [r for r in await engine.audit("leaf3") if r.job_id == job.id]
    assert transitions(rows) == [("maintenance", "undraining"), ("undraining", "maintenance")]
    assert all(r.to_status != "activated" for r in rows)
    assert await engine.lock_holder("leaf3") is None


async def test_a_failed_post_maintenance_health_check_returns_the_device_to_maintenance(
    engine: Engine,
) -> None:
    await engine.activated("leaf3")
    await engine.inject("leaf3", "high-cpu")
    job = await engine.run_job("leaf3", JobType.DEACTIVATE)

    assert job.status is JobStatus.FAILED
    assert steps(job)["post_health"] == "failed"
    assert job.error == "STEP_FAILED: health checks failed: cpu_idle"
    assert steps(job)["verify_restored"] == "rolled_back"
    assert (await engine.device("leaf3")).status is DeviceStatus.MAINTENANCE
    assert await engine.diverted("leaf3")
    rows = [r for r in await engine.audit("leaf3") if r.job_id == job.id]
    assert transitions(rows) == [("maintenance", "undraining"), ("undraining", "maintenance")]


async def test_differences_after_maintenance_are_reported_by_compare(engine: Engine) -> None:
    await engine.activated("leaf1")
    await engine.inject("leaf1", "bgp-peer-down")
    job = await engine.run_job("leaf1", JobType.DEACTIVATE, params={"health_check_abort": False})

    assert job.status is JobStatus.SUCCEEDED, job.error
    compare = step(job, "compare").output
    assert compare["compared"] is True
    assert compare["clean"] is False
    assert len(compare["diff"]["peers_down"]) == 1
    assert job.result["diff"]["clean"] is False
    warned = [e for e in await engine.events(job.id) if e.level is Level.WARNING]
    assert any(
        e.step == "compare" and e.message.startswith("differences from the snapshot")
        for e in warned
    )
    assert (await engine.device("leaf1")).status is DeviceStatus.ACTIVATED


# 12. Cancel ---------------------------------------------------------------------------------------


async def test_cancelling_a_queued_job_releases_the_device(engine: Engine) -> None:
    job = await engine.submit("leaf2")
    await engine.service.cancel(job.id, actor=ALICE, via=Via.API)
    stored = await engine.job(job.id)
    assert (stored.status, stored.error) == (JobStatus.CANCELLED, "cancelled")
    assert stored.finished_at is not None
    assert await engine.lock_holder("leaf2") is None

    assert await engine.run() == 0
    assert (await engine.job(job.id)).status is JobStatus.CANCELLED
    assert set(steps(await engine.job(job.id)).values()) == {"pending"}
    assert await engine.ops("leaf2") == []
    assert (await engine.device("leaf2")).status is DeviceStatus.ACTIVATED
    audit = await engine.audit("leaf2", "job.cancel")
    assert [(r.actor, r.job_id) for r in audit] == [("alice", job.id)]
    with pytest.raises(Conflict):
        await engine.service.cancel(job.id, actor=ALICE, via=Via.API)
    # The device is free again.
    await engine.submit("leaf2")


async def test_cancel_answers_with_the_cancelled_job(engine: Engine) -> None:
    job = await engine.submit("leaf2")
    answer = await engine.service.cancel(job.id, actor=ALICE, via=Via.API)
    assert (answer.status, answer.error) == (JobStatus.CANCELLED, "cancelled")


async def test_cancelling_a_running_job_rolls_back_between_steps(engine: Engine) -> None:
    job = await engine.submit("leaf2")

    async def cancel_then_apply(apply: Any) -> Any:
        await engine.service.cancel(job.id, actor=ALICE, via=Via.API)
        return await apply()

    worker = engine.hooked_worker(apply_maintenance=cancel_then_apply)
    assert await engine.run(worker) == 1
    job = await engine.job(job.id)

    assert job.status is JobStatus.CANCELLED
    assert job.error == "cancelled"
    assert job.result["failed_step"] == "verify_drain"
    assert steps(job) == {
        "validate": "succeeded",
        "health": "succeeded",
        "snapshot": "succeeded",
        "mark_draining": "rolled_back",
        "divert": "rolled_back",
        "verify_drain": "pending",
        "mark_maintenance": "pending",
    }
    assert (await engine.device("leaf2")).status is DeviceStatus.ACTIVATED
    assert not await engine.diverted("leaf2")
    changes = [(c["op"], c["changed"]) for c in await engine.calls("leaf2") if c["changed"]]
    assert changes == [("apply_maintenance", True), ("remove_maintenance", True)]
    assert transitions(await engine.audit("leaf2")) == [
        ("activated", "draining"),
        ("draining", "activated"),
    ]
    warnings = [e for e in await engine.events(job.id) if e.level is Level.WARNING]
    assert any(e.message.startswith("rolled back") for e in warnings)
    assert await engine.lock_holder("leaf2") is None


async def test_cancelling_a_running_deactivation_puts_the_diversion_back(
    engine: Engine,
) -> None:
    await engine.activated("leaf2")
    job = await engine.submit("leaf2", JobType.DEACTIVATE)

    async def cancel_then_remove(remove: Any) -> Any:
        await engine.service.cancel(job.id, actor=ALICE, via=Via.API)
        return await remove()

    assert await engine.run(engine.hooked_worker(remove_maintenance=cancel_then_remove)) == 1
    job = await engine.job(job.id)

    assert job.status is JobStatus.CANCELLED
    assert steps(job)["mark_undraining"] == "rolled_back"
    assert steps(job)["restore"] == "rolled_back"
    assert steps(job)["verify_restored"] == "pending"
    assert (await engine.device("leaf2")).status is DeviceStatus.MAINTENANCE
    assert await engine.diverted("leaf2")
    rows = [r for r in await engine.audit("leaf2") if r.job_id == job.id]
    assert transitions(rows) == [("maintenance", "undraining"), ("undraining", "maintenance")]


# 13. Retry ----------------------------------------------------------------------------------------


async def test_retrying_a_rolled_back_activation_completes_it(engine: Engine) -> None:
    await engine.inject("leaf1", "drain-stuck")
    failed = await engine.run_job("leaf1", params={"drain": {"timeout_s": 5}})
    assert failed.status is JobStatus.FAILED
    assert (await engine.device("leaf1")).status is DeviceStatus.ACTIVATED

    await engine.clear("leaf1", "drain-stuck")
    queued = await engine.service.retry(failed.id, actor=ALICE, via=Via.API)
    assert (queued.status, queued.attempt) == (JobStatus.QUEUED, 2)
    assert await engine.lock_holder("leaf1") == failed.id
    assert await engine.run() == 1

    job = await engine.job(failed.id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.attempt == 2
    assert job.error is None
    all_succeeded(job, ACTIVATE_STEPS)
    # Validation ran again; the health measurement and snapshot of attempt 1 were kept.
    runs = {s.name: s.runs for s in job.steps}
    assert runs["validate"] == 2
    assert runs["health"] == 1
    assert runs["verify_drain"] == 2
    assert (await engine.device("leaf1")).status is DeviceStatus.MAINTENANCE
    applied = await engine.calls("leaf1", "apply_maintenance")
    assert [c["changed"] for c in applied] == [True, True]
    assert await engine.diverted("leaf1")
    assert transitions(await engine.audit("leaf1")) == [
        ("activated", "draining"),
        ("draining", "activated"),
        ("activated", "draining"),
        ("draining", "maintenance"),
    ]
    retried = await engine.audit("leaf1", "job.retry")
    assert [(r.actor, r.details) for r in retried] == [("alice", {"attempt": 2})]


async def test_only_a_failed_job_can_be_retried(engine: Engine) -> None:
    job = await engine.activated("leaf1")
    with pytest.raises(Conflict) as refused:
        await engine.service.retry(job.id, actor=ALICE, via=Via.API)
    assert "only a failed job" in refused.value.detail
    assert (await engine.job(job.id)).attempt == 1


async def test_a_failed_job_cannot_be_retried_while_another_holds_the_device(
    engine: Engine,
) -> None:
    await engine.inject("leaf1", "high-cpu")
    failed = await engine.run_job("leaf1")
    assert failed.status is JobStatus.FAILED
    other = await engine.submit("leaf1", JobType.HEALTHCHECK)
    with pytest.raises(DeviceBusy):
        await engine.service.retry(failed.id, actor=ALICE, via=Via.API)
    after = await engine.job(failed.id)
    assert (after.status, after.attempt) == (JobStatus.FAILED, 1)
    assert await engine.lock_holder("leaf1") == other.id


# 14. Step time limits ---------------------------------------------------------------------------


def _tight_health(monkeypatch: pytest.MonkeyPatch, expected_s: float, timeout_s: float) -> None:
    """The runner sees a ``health`` step expected to take ``expected_s`` (real) seconds and
    allowed ``timeout_s``."""
    real = runner.steps_for

    def patched(job_type: JobType, mode: Mode | None) -> tuple[workflows.StepDef, ...]:
        return tuple(
            workflows.StepDef(d.name, d.run, expected_s, timeout_s) if d.name == "health" else d
            for d in real(job_type, mode)
        )

    monkeypatch.setattr(runner, "steps_for", patched)


def _slow(seconds: float) -> Any:
    async def hook(call: Any) -> Any:
        await asyncio.sleep(seconds)  # real time: step limits are wall-clock
        return await call()

    return hook


async def test_a_step_past_its_timeout_fails_the_job(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tight_health(monkeypatch, expected_s=0.05, timeout_s=0.3)
    job = await engine.submit("leaf5")
    assert await engine.run(engine.hooked_worker(health=_slow(5))) == 1
    job = await engine.job(job.id)

    assert job.status is JobStatus.FAILED
    assert job.error == "STEP_FAILED: step health timed out after 0.3 s"
    assert steps(job)["health"] == "failed"
    assert (await engine.device("leaf5")).status is DeviceStatus.ACTIVATED
    assert await engine.ops("leaf5") == []
    messages = [(e.level, e.step, e.message) for e in await engine.events(job.id)]
    assert (Level.ERROR, "health", "health failed: step health timed out after 0.3 s") in messages


async def test_a_slow_step_is_warned_about(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _tight_health(monkeypatch, expected_s=0.02, timeout_s=30)
    job = await engine.submit("leaf5", mode=Mode.TEST_RUN)
    assert await engine.run(engine.hooked_worker(health=_slow(0.05))) == 1
    job = await engine.job(job.id)

    slow = [e for e in await engine.events(job.id) if "taking longer than twice" in e.message]
    assert [(e.level, e.step) for e in slow] == [(Level.WARNING, "health")]
    assert slow[0].message == "step health is taking longer than twice its expected 0.02 s"


async def test_a_slow_step_within_its_timeout_still_succeeds(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tight_health(monkeypatch, expected_s=0.02, timeout_s=30)
    job = await engine.submit("leaf5", mode=Mode.TEST_RUN)
    assert await engine.run(engine.hooked_worker(health=_slow(0.05))) == 1
    job = await engine.job(job.id)

    assert job.status is JobStatus.SUCCEEDED, job.error
    assert steps(job) == dict.fromkeys(TEST_RUN_STEPS, "succeeded")


# 15. A driver that cannot be opened --------------------------------------------------------------


async def test_an_unknown_driver_fails_the_job_and_leaves_the_device_alone(
    engine: Engine,
) -> None:
    device_id = await engine.device_id("border2")
    async with engine.store.unit() as u:
        await u.devices.update(
            device_id,
            changes={"driver": "nonesuch"},
            group_ids=None,
            expected_version=None,
            actor=ADMIN,
            via=Via.API,
        )
    before = await engine.device("border2")
    job = await engine.run_job("border2")

    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.startswith("DRIVER_ERROR: cannot start:")
    assert "unknown driver 'nonesuch'" in job.error
    assert "simulated" in job.error, "the error lists the drivers there are"
    assert set(steps(job).values()) == {"pending"}
    after = await engine.device("border2")
    assert (after.status, after.version) == (DeviceStatus.ACTIVATED, before.version)
    assert await engine.audit("border2") == []
    assert await engine.lock_holder("border2") is None
    errors = [e for e in await engine.events(job.id) if e.level is Level.ERROR]
    assert [(e.device, e.message) for e in errors] == [("border2", job.error)]


# 16. The job log ----------------------------------------------------------------------------------


async def test_the_job_log_names_steps_and_the_device_in_order(engine: Engine) -> None:
    job = await engine.activated("leaf4")
    events = await engine.events(job.id)

    assert events[0].message == "maintenance.activate started on leaf4"
    assert events[0].step is None
    assert events[-1].message == "maintenance.activate succeeded"
    assert {e.device for e in events} == {"leaf4"}
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    # Steps log in the order they run; every step line carries its step.
    seen: list[str] = []
    for e in events[1:-1]:
        assert e.step in ACTIVATE_STEPS, e
        if not seen or seen[-1] != e.step:
            seen.append(e.step)
    assert seen == [s for s in ACTIVATE_STEPS if s in seen]
    assert {"validate", "health", "snapshot", "divert", "verify_drain"} <= set(seen)
    assert any(e.message == "status draining" and e.step == "mark_draining" for e in events)
    assert any(e.message.startswith("drained in") for e in events)
    assert job.progress == 100


# Takeover --------------------------------------------------------------------------------------


async def test_a_worker_that_died_after_diverting_is_taken_over_without_a_second_change(
    engine: Engine,
) -> None:
    job = await engine.submit("leaf6")

    async def divert_then_die(apply: Any) -> Any:
        await apply()
        raise WorkerDied

    with pytest.raises(WorkerDied):
        await engine.hooked_worker("dead", apply_maintenance=divert_then_die).run_once()
    stuck = await engine.job(job.id)
    assert (stuck.status, stuck.current_step, stuck.lease_owner) == (
        JobStatus.RUNNING,
        "divert",
        "dead",
    )
    assert (await engine.device("leaf6")).status is DeviceStatus.DRAINING

    # Nobody takes a live lease; once it has run out, another worker does.
    assert await engine.run() == 0
    engine.clock.advance(seconds=31)
    assert await engine.run() == 1

    done = await engine.job(job.id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert step(done, "divert").runs == 2
    assert step(done, "divert").output["changed"] is False
    assert [c["changed"] for c in await engine.calls("leaf6", "apply_maintenance")] == [
        True,
        False,
    ]
    assert (await engine.device("leaf6")).status is DeviceStatus.MAINTENANCE
    resumed = [e for e in await engine.events(job.id) if e.message.startswith("resumed by")]
    assert len(resumed) == 1


async def test_a_takeover_that_cannot_open_the_driver_puts_a_draining_device_in_error(
    engine: Engine,
) -> None:
    job = await engine.submit("leaf6")

    async def divert_then_die(apply: Any) -> Any:
        await apply()
        raise WorkerDied

    with pytest.raises(WorkerDied):
        await engine.hooked_worker("dead", apply_maintenance=divert_then_die).run_once()
    device_id = await engine.device_id("leaf6")
    async with engine.store.unit() as u:
        await u.devices.update(
            device_id,
            changes={"driver": "nonesuch"},
            group_ids=None,
            expected_version=None,
            actor=ADMIN,
            via=Via.API,
        )
    engine.clock.advance(seconds=31)
    assert await engine.run() == 1

    done = await engine.job(job.id)
    assert done.status is JobStatus.FAILED
    assert "unknown driver 'nonesuch'" in (done.error or "")
    device = await engine.device("leaf6")
    assert device.status is DeviceStatus.ERROR, "never left draining without a job"
    assert device.needs_attention
    assert "cannot start" in (device.attention_reason or "")
    assert await engine.lock_holder("leaf6") is None
    # The job's own audited change, made under its fence with the job's end.
    async with engine.store.unit() as u:
        last = (await u.audit.query(device_id=device_id, action="device.status", limit=1)).items
        events = await u.jobs.events(job.id)
    assert [(a.to_status, a.via, a.job_id, dict(a.details)) for a in last] == [
        ("error", "engine", job.id, {})
    ]
    assert any(e.message.startswith("DRIVER_ERROR: cannot start") for e in events)
