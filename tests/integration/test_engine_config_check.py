"""The deactivation's config check, on SQLite and PostgreSQL: a configuration changed in
maintenance is reported and kept by default; with ``undrain.revert_config`` it is put back
before the diversion is removed; a revert the device refuses keeps it in maintenance."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import ADMIN, Engine, build_engine, step, steps
from status_support import set_status

from pitstop.domain.errors import DriverError
from pitstop.domain.jobs import JobStatus, JobType
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Via
from pitstop.storage.store import Store

REVERT = {"undrain": {"revert_config": True}}
EDIT = "ip prefix-list upgraded seq 5 permit 10.9.0.0/16"


@pytest.fixture
async def engine(store: Store, clock: Any) -> Engine:
    return await build_engine(store, clock)


async def test_an_unchanged_config_is_only_looked_at(engine: Engine) -> None:
    await engine.activated("leaf1")
    job = await engine.run_job("leaf1", JobType.DEACTIVATE)

    assert job.status is JobStatus.SUCCEEDED, job.error
    assert step(job, "config_check").output == {
        "compared": True,
        "changed": False,
        "reverted": False,
    }
    assert await engine.calls("leaf1", "restore_config") == []


async def test_a_change_made_in_maintenance_is_reported_and_kept_by_default(
    engine: Engine,
) -> None:
    activation = await engine.activated("leaf1")
    before = step(activation, "snapshot").output["config"]
    await engine.edit_config("leaf1", EDIT)
    job = await engine.run_job("leaf1", JobType.DEACTIVATE)

    assert job.status is JobStatus.SUCCEEDED, job.error
    check = step(job, "config_check").output
    assert (check["changed"], check["reverted"]) == (True, False)
    assert check["diff"] == [f"+{EDIT}"]
    warnings = [e.message for e in await engine.events(job.id) if e.level.value == "warning"]
    assert any("configuration changed in maintenance (1 lines); kept" in m for m in warnings)
    assert step(job, "compare").output["config_changed"] is True
    assert await engine.config("leaf1") == before + EDIT + "\n"
    assert await engine.calls("leaf1", "restore_config") == []


async def test_revert_config_puts_back_what_the_diversion_left_before_removing_it(
    engine: Engine,
) -> None:
    activation = await engine.activated("leaf1")
    before = step(activation, "snapshot").output["config"]
    await engine.edit_config("leaf1", EDIT)
    job = await engine.run_job("leaf1", JobType.DEACTIVATE, params=REVERT)

    assert job.status is JobStatus.SUCCEEDED, job.error
    check = step(job, "config_check").output
    assert (check["changed"], check["reverted"]) == (True, True)
    assert check["diff"] == [f"+{EDIT}"]
    compare = step(job, "compare").output
    assert compare["config_changed"] is False and compare["clean"] is True
    assert await engine.config("leaf1") == before
    # Reverted while still diverted: the restore came before the diversion's removal.
    ops = [op for op in await engine.ops("leaf1") if op in ("restore_config", "remove_maintenance")]
    assert ops == ["restore_config", "remove_maintenance"]
    assert [c["changed"] for c in await engine.calls("leaf1", "restore_config")] == [True]


async def test_a_revert_the_device_refuses_keeps_it_in_maintenance_diverted(
    engine: Engine,
) -> None:
    await engine.activated("leaf1")
    await engine.edit_config("leaf1", EDIT)
    await engine.inject("leaf1", "restore-fails")
    job = await engine.run_job("leaf1", JobType.DEACTIVATE, params=REVERT)

    assert job.status is JobStatus.FAILED
    assert "restore-fails" in (job.error or "")
    assert steps(job)["config_check"] == "failed"
    assert steps(job)["mark_undraining"] == "pending"
    assert (await engine.device("leaf1")).status is DeviceStatus.MAINTENANCE
    assert await engine.diverted("leaf1")
    assert EDIT in await engine.config("leaf1")


async def test_an_earlier_maintenances_record_is_never_used(engine: Engine) -> None:
    """Activated by a job once, back in service, then put in maintenance by hand: the old
    activation's configuration says nothing of the device now, so nothing is reverted to
    it and the snapshot comparison does not use it either."""
    await engine.activated("leaf1")
    assert (await engine.run_job("leaf1", JobType.DEACTIVATE)).status is JobStatus.SUCCEEDED
    engine.clock.advance(seconds=60)
    device_id = await engine.device_id("leaf1")
    for target in (DeviceStatus.DRAINING, DeviceStatus.MAINTENANCE):
        await set_status(
            engine.store, device_id, target=target, actor=ADMIN, via=Via.API, reason="by hand"
        )
    await engine.edit_config("leaf1", EDIT)
    # Asked to revert, with nothing of this maintenance to revert to: it stays out.
    refused = await engine.run_job("leaf1", JobType.DEACTIVATE, params=REVERT)
    assert refused.status is JobStatus.FAILED
    assert "no configuration was recorded when this maintenance began" in (refused.error or "")
    assert (await engine.device("leaf1")).status is DeviceStatus.MAINTENANCE

    job = await engine.run_job("leaf1", JobType.DEACTIVATE)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert step(job, "config_check").output == {"compared": False}
    assert step(job, "compare").output["compared"] is False
    assert await engine.calls("leaf1", "restore_config") == []
    assert EDIT in await engine.config("leaf1")


async def test_a_config_unreadable_after_the_diversion_does_not_undo_the_activation(
    engine: Engine,
) -> None:
    """The diversion is in place when the config is read again: a failed read only leaves
    the record out, it does not roll back a drain nobody verified."""
    reads = 0

    async def second_read_fails(call: Any) -> Any:
        nonlocal reads
        reads += 1
        if reads == 2:  # the snapshot's read is the first, the divert step's the second
            raise DriverError("leaf1: the session dropped (test)")
        return await call()

    submitted = await engine.submit("leaf1")
    assert await engine.run(engine.hooked_worker(backup_config=second_read_fails)) == 1
    job = await engine.job(submitted.id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert step(job, "divert").output["config"] is None
    assert (await engine.device("leaf1")).status is DeviceStatus.MAINTENANCE
    exit_job = await engine.run_job("leaf1", JobType.DEACTIVATE)
    assert exit_job.status is JobStatus.SUCCEEDED, exit_job.error
    assert step(exit_job, "config_check").output == {"compared": False}
