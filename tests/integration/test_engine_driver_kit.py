"""The engine runs a driver that is not a router, from the shipped kit, with no edit to the
domain or the engine: the checks and step time limits it declares are the ones applied, and
each driver error code leads to what ``drivers/base.py`` says it does."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import Engine, build_engine, step, steps, transitions

from pitstop.domain.errors import DeviceUnreachable, DriverError, DriverTimeout, PitstopError
from pitstop.domain.jobs import Job, JobStatus, JobType
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.profile import DriverProfile
from pitstop.drivers.registry import DriverRegistry
from pitstop.drivers.testing import FAKE_PROFILE, FakeDriverFactory
from pitstop.engine.runner import Worker
from pitstop.storage.store import Store


class Kit:
    """The demo fleet, every device served by the kit's fake driver."""

    def __init__(self, engine: Engine, profile: DriverProfile = FAKE_PROFILE) -> None:
        self.engine = engine
        # Registered under the demo fleet's driver name, so its devices open fakes.
        self.factory = FakeDriverFactory(name="simulated", clock=engine.clock, profile=profile)
        registry = DriverRegistry()
        registry.register("simulated", self.factory)
        self.worker: Worker = engine.make_worker(registry, "kit")

    async def run_job(self, device: str, job_type: JobType = JobType.ACTIVATE) -> Job:
        job = await self.engine.submit(device, job_type)
        assert await self.engine.run(self.worker) == 1
        return await self.engine.job(job.id)


@pytest.fixture
async def kit(store: Store, clock: Any) -> Kit:
    return Kit(await build_engine(store, clock))


def by_check(job: Job, step_name: str = "health") -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in step(job, step_name).output["checks"]}


async def test_a_device_is_judged_by_the_checks_its_driver_declares(kit: Kit) -> None:
    job = await kit.run_job("spine1", JobType.HEALTHCHECK)

    assert job.status is JobStatus.SUCCEEDED, job.error
    checks = by_check(job)
    for name in ("bgp_down_peers", "bgp_flaps", "interface_errors", "daemons"):
        assert (checks[name]["status"], checks[name]["message"]) == (
            "skip",
            "not reported by this driver",
        )
    assert checks["cpu_idle"]["status"] == "pass"
    assert checks["backends_in_service"] == {
        "check": "backends_in_service",
        "status": "pass",
        "observed": 4,
        "threshold": 4,
        "message": "4 of 4 backends in service",
    }
    assert list(checks)[-1] == "backends_in_service"


async def test_a_failing_check_of_the_drivers_own_stops_activation_before_any_change(
    kit: Kit,
) -> None:
    kit.factory.device("spine1").backends_up = 2
    job = await kit.run_job("spine1")

    assert job.status is JobStatus.FAILED
    assert steps(job)["health"] == "failed"
    assert "backends_in_service" in (job.error or "")
    assert by_check(job)["backends_in_service"]["message"] == "2 of 4 backends in service"
    assert (await kit.engine.device("spine1")).status is DeviceStatus.ACTIVATED
    assert "apply_maintenance" not in kit.factory.device("spine1").calls


async def test_the_fake_goes_into_maintenance_and_back_through_the_engine(kit: Kit) -> None:
    entered = await kit.run_job("leaf3")
    assert entered.status is JobStatus.SUCCEEDED, entered.error
    assert kit.factory.device("leaf3").diverted == "pool-drain"
    assert (await kit.engine.device("leaf3")).status is DeviceStatus.MAINTENANCE

    left = await kit.run_job("leaf3", JobType.DEACTIVATE)
    assert left.status is JobStatus.SUCCEEDED, left.error
    assert kit.factory.device("leaf3").diverted is None
    assert (await kit.engine.device("leaf3")).status is DeviceStatus.ACTIVATED


async def test_a_step_gets_the_time_limit_its_driver_declares(store: Store, clock: Any) -> None:
    # The engine's default for ``divert`` is 120 s; this driver says 0.2 s is plenty.
    quick = DriverProfile(checks=FAKE_PROFILE.checks, step_timeouts={"divert": 0.2})
    kit = Kit(await build_engine(store, clock), profile=quick)
    kit.factory.device("leaf5").hang.add("apply_maintenance")

    job = await kit.run_job("leaf5")

    assert job.status is JobStatus.FAILED
    assert steps(job)["divert"] == "failed"
    assert "step divert timed out after 0.2 s" in (job.error or "")
    assert (await kit.engine.device("leaf5")).status is DeviceStatus.ACTIVATED


CODES = [
    pytest.param(DeviceUnreachable("no answer"), id="DEVICE_UNREACHABLE"),
    pytest.param(DriverTimeout("no answer in time"), id="DRIVER_TIMEOUT"),
    pytest.param(DriverError("commit refused"), id="DRIVER_ERROR"),
]


@pytest.mark.parametrize("error", CODES)
async def test_each_driver_error_fails_the_step_once_and_the_job_rolls_back(
    kit: Kit, error: PitstopError
) -> None:
    leaf = kit.factory.device("leaf6")
    leaf.faults["apply_maintenance"] = error
    job = await kit.run_job("leaf6")

    assert job.status is JobStatus.FAILED
    assert steps(job)["divert"] == "failed"
    assert (job.error or "").startswith(f"{error.code}: ")
    # Not retried by the engine: the step ran the call once, then the job was undone.
    assert leaf.calls.count("apply_maintenance") == 1
    assert "remove_maintenance" in leaf.calls
    device = await kit.engine.device("leaf6")
    assert device.status is DeviceStatus.ACTIVATED
    assert not device.needs_attention
    assert transitions(await kit.engine.audit("leaf6")) == [
        ("activated", "draining"),
        ("draining", "activated"),
    ]


@pytest.mark.parametrize("error", CODES)
async def test_each_driver_error_in_the_rollback_leaves_the_device_for_attention(
    kit: Kit, error: PitstopError
) -> None:
    leaf = kit.factory.device("leaf6")
    leaf.faults["apply_maintenance"] = DriverError("commit refused")
    leaf.faults["remove_maintenance"] = error
    job = await kit.run_job("leaf6")

    assert job.status is JobStatus.FAILED
    device = await kit.engine.device("leaf6")
    assert device.status is DeviceStatus.ERROR
    assert device.needs_attention
    assert error.code in (device.attention_reason or "")
