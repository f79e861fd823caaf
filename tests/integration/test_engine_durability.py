"""The engine survives its own crashes: a killed server's job is taken over and finished, a
zombie worker's late writes are refused, and two worker processes never run one job at once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_server import ServerProcess, child_env, new_token, sqlite_url

from pitstop.api.startup import seed_demo
from pitstop.domain.inventory import Device
from pitstop.domain.jobs import JobStatus, JobType, Mode, StepStatus
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.drivers.base import DiversionResult, Driver
from pitstop.drivers.registry import DriverRegistry
from pitstop.drivers.simulated import SimulatedDriverFactory
from pitstop.drivers.simulated_state import SimulatedFleet
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.service import JobService
from pitstop.storage.store import Store

ALICE = Actor("alice", Role.OPERATOR)
FAST = {"sample_interval_s": 0.2, "drain": {"poll_interval_s": 0.25, "timeout_s": 60}}

LAB = """
fabrics:
  - name: crash
    groups: [{name: spines, max_unavailable: 1}]
    devices:
      - {name: spine1, role: spine, groups: [spines], labels: {sim.convergence_s: "4"}}
      - {name: spine2, role: spine, groups: [spines]}
"""


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Handover:
    """What the second server shows of a job the first was stopped in the middle of."""

    job: dict[str, Any]
    device: dict[str, Any]
    messages: list[str]
    applied: list[dict[str, Any]]  # the simulated device's apply_maintenance calls
    output: str


def _stop_mid_drain_then_restart(
    tmp_path: Path, *, how: signal.Signals, lease_ttl_s: str
) -> Handover:
    """A server activates spine1 and is stopped by ``how`` while it measures the drain; a
    second server on the same database is left to finish the job."""
    token = new_token()
    sim_dir = tmp_path / "sim"
    env = child_env(
        tmp_path,
        PITSTOP_DATABASE_URL=sqlite_url(tmp_path / "handover.db"),
        PITSTOP_BOOTSTRAP_TOKEN=token,
        PITSTOP_SIM_STATE_DIR=str(sim_dir),
        PITSTOP_LEASE_TTL_S=lease_ttl_s,
    )
    headers = {"Authorization": f"Bearer {token}"}
    first = ServerProcess("serve", env=env, log=tmp_path / "first.log")
    with first, httpx.Client(base_url=first.url, headers=headers, timeout=10) as http:
        r = http.post("/api/v1/inventory/import", content=LAB, params={"format": "yaml"})
        assert r.status_code == 200, r.text
        r = http.post(
            "/api/v1/jobs",
            json={
                "type": "maintenance.activate",
                "device": "spine1",
                "advanced_parameters": FAST,
                "reason": f"stopped by {how.name}",
            },
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        device_id = r.json()["device_id"]

        def draining() -> bool:
            job = http.get(f"/api/v1/jobs/{job_id}").json()
            return job["current_step"] == "verify_drain"

        # The diversion is applied and the drain is being measured: stop it there.
        _wait(draining, 30, "the job to reach verify_drain")
        first.proc.send_signal(how)
        first.proc.wait(30)

    second = ServerProcess("serve", env=env, log=tmp_path / "second.log")
    with second, httpx.Client(base_url=second.url, headers=headers, timeout=10) as http:

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}").json()
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        job = _wait(finished, 60, "the handed-over job to finish")
        events = http.get(f"/api/v1/jobs/{job_id}/events", params={"follow": "false"}).json()
        device = http.get("/api/v1/devices/spine1").json()
        output = second.output()
    applied = [
        c
        for c in SimulatedFleet(state_dir=sim_dir).calls(device_id)
        if c["op"] == "apply_maintenance"
    ]
    return Handover(job, device, [e["message"] for e in events], applied, output)


def test_a_server_killed_mid_activation_is_taken_over_and_applies_the_diversion_once(
    tmp_path: Path,
) -> None:
    seen = _stop_mid_drain_then_restart(tmp_path, how=signal.SIGKILL, lease_ttl_s="2")
    assert seen.job["status"] == "succeeded", (seen.job, seen.output)
    steps = {s["name"]: s for s in seen.job["steps"]}
    assert steps["divert"]["runs"] == 1
    assert steps["verify_drain"]["runs"] == 2  # resumed at the interrupted step
    assert seen.device["status"] == "maintenance"
    assert any(m.startswith("resumed by worker") for m in seen.messages)
    assert [c["changed"] for c in seen.applied].count(True) == 1, seen.applied


def test_a_server_stopped_with_sigterm_hands_its_job_to_the_next_server_at_once(
    tmp_path: Path,
) -> None:
    """A lease of ten minutes: the second server can finish the job within the wait only
    because the first one released its lease as it shut down."""
    seen = _stop_mid_drain_then_restart(tmp_path, how=signal.SIGTERM, lease_ttl_s="600")
    assert seen.job["status"] == "succeeded", (seen.job, seen.output)
    steps = {s["name"]: s for s in seen.job["steps"]}
    assert steps["divert"]["runs"] == 1
    assert steps["verify_drain"]["runs"] == 2
    assert any("is shutting down (verify_drain was interrupted)" in m for m in seen.messages)
    assert [c["changed"] for c in seen.applied].count(True) == 1, seen.applied


# Zombie fencing ---------------------------------------------------------------------------


class PausingDriver:
    """Delegates to a real driver, but holds ``apply_maintenance`` until released: a worker
    that stalls (GC pause, frozen VM) past its lease while another worker takes over."""

    def __init__(self, inner: Driver, entered: asyncio.Event, release: asyncio.Event) -> None:
        self._inner = inner
        self._entered = entered
        self._release = release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def apply_maintenance(
        self, *, method: str | None, options: Mapping[str, Any]
    ) -> DiversionResult:
        self._entered.set()
        await self._release.wait()
        return await self._inner.apply_maintenance(method=method, options=options)


class PausingFactory:
    name = "simulated"

    def __init__(self, inner: SimulatedDriverFactory) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def open(self, device: Device) -> Driver:
        return PausingDriver(self.inner.open(device), self.entered, self.release)  # type: ignore[return-value]

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_zombie_worker_cannot_write_after_its_lease_was_taken_over(
    store: Store, clock: Any
) -> None:
    await seed_demo(store)
    shared = SimulatedDriverFactory(clock=clock)
    pausing = PausingFactory(shared)
    zombie_drivers, live_drivers = DriverRegistry(), DriverRegistry()
    zombie_drivers.register("simulated", pausing)  # type: ignore[arg-type]
    live_drivers.register("simulated", shared)

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    # A long lease: the zombie's heartbeat (every ttl/3 of real time) never fires in the test.
    config = EngineConfig(lease_ttl_s=300)
    zombie = Worker(
        store=store,
        drivers=zombie_drivers,
        clock=clock,
        sleep=fake_sleep,
        config=config,
        name="zombie",
    )
    live = Worker(
        store=store, drivers=live_drivers, clock=clock, sleep=fake_sleep, config=config, name="live"
    )
    job = await JobService(store).submit(
        job_type=JobType.ACTIVATE,
        device="spine1",
        fabric="dc1",
        mode=Mode.ACTIVATE,
        advanced_parameters={"sample_interval_s": 1},
        reason="fencing",
        ticket=None,
        expected_end=None,
        actor=ALICE,
        via=Via.API,
    )
    stalled = asyncio.create_task(zombie.run_once())
    await asyncio.wait_for(pausing.entered.wait(), 10)

    clock.advance(seconds=301)  # the zombie's lease has expired
    assert await live.run_once() is True
    async with store.unit() as u:
        taken = await u.jobs.get(job.id)
        events_before = len(await u.jobs.events(job.id))
    assert taken.status is JobStatus.SUCCEEDED
    assert taken.lease_epoch == 2

    pausing.release.set()  # the zombie wakes up and carries on
    assert await asyncio.wait_for(stalled, 10) is True

    async with store.unit() as u:
        after = await u.jobs.get(job.id)
        device = await u.devices.get(job.device_id)
        events_after = await u.jobs.events(job.id)
        audit = (
            await u.audit.query(device_id=job.device_id, action="device.status", limit=50)
        ).items
    assert after.status is JobStatus.SUCCEEDED
    assert all(s.status is StepStatus.SUCCEEDED for s in after.steps)
    assert device.status is DeviceStatus.MAINTENANCE
    assert len(events_after) == events_before  # nothing the zombie tried to log landed
    assert [(a.from_status, a.to_status) for a in reversed(audit)] == [
        ("activated", "draining"),
        ("draining", "maintenance"),
    ]
    applied = [c for c in shared.fleet.calls(job.device_id) if c["op"] == "apply_maintenance"]
    assert [c["changed"] for c in applied].count(True) == 1


async def test_a_fenced_write_with_a_stale_epoch_is_refused(store: Store, clock: Any) -> None:
    from datetime import timedelta

    from pitstop.storage.journal import LeaseLost

    await seed_demo(store)
    job = await JobService(store).submit(
        job_type=JobType.HEALTHCHECK,
        device="leaf1",
        fabric="dc1",
        mode=None,
        advanced_parameters={},
        reason=None,
        ticket=None,
        expected_end=None,
        actor=ALICE,
        via=Via.API,
    )
    claimed = await store.leases.claim(worker="a", lease_ttl=timedelta(seconds=10))
    assert claimed == (job.id, 1)
    clock.advance(seconds=11)
    assert await store.leases.claim(worker="b", lease_ttl=timedelta(seconds=10)) == (job.id, 2)
    with pytest.raises(LeaseLost):
        await store.journal.undo_steps(job.id, 1, names=["validate"], events=[])
    device = await store.journal.device_status(job.device_id)
    with pytest.raises(LeaseLost):
        async with store.unit() as u:
            found = await u.devices.get(job.device_id)
        await store.writes.change_status(
            device=found,
            target=DeviceStatus.ERROR,
            actor=Actor("alice", Role.ENGINE),
            via=Via.ENGINE,
            job_id=job.id,
            epoch=1,
        )
    assert await store.journal.device_status(job.device_id) == device
    with pytest.raises(LeaseLost):
        await store.journal.boundary(job.id, 1)
    events = await store.journal.boundary(job.id, 2)  # the current epoch may still write
    assert events.job_id == job.id
    ttl = timedelta(seconds=10)
    assert (await store.leases.heartbeat(job.id, epoch=1, lease_ttl=ttl)).ours is False
    assert (await store.leases.heartbeat(job.id, epoch=2, lease_ttl=ttl)).ours


# Two worker processes on PostgreSQL --------------------------------------------------------


def test_two_worker_processes_on_postgres_never_run_one_job_twice(
    pg_database: str, tmp_path: Path
) -> None:
    async def seed() -> None:
        from pitstop.storage.database import Database

        db = Database.from_url(pg_database)
        try:
            await seed_demo(Store(db))
        finally:
            await db.close()

    async def submit() -> list[uuid.UUID]:
        from pitstop.storage.database import Database

        db = Database.from_url(pg_database)
        store = Store(db)
        try:
            ids = []
            for name in [f"stor{i:02d}" for i in range(1, 13)] + [f"leaf{i}" for i in range(1, 7)]:
                job = await JobService(store).submit(
                    job_type=JobType.HEALTHCHECK,
                    device=name,
                    fabric=None,
                    mode=None,
                    # Three rounds of a worker's 8 jobs outlast the other's poll interval.
                    advanced_parameters={"sample_interval_s": 1.0},
                    reason=None,
                    ticket=None,
                    expected_end=None,
                    actor=ALICE,
                    via=Via.API,
                )
                ids.append(job.id)
            return ids
        finally:
            await db.close()

    asyncio.run(seed())
    env = child_env(
        tmp_path,
        PITSTOP_DATABASE_URL=pg_database,
        PITSTOP_SIM_STATE_DIR=str(tmp_path / "sim"),
        PITSTOP_LEASE_TTL_S="10",
    )
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pitstop", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        # Both workers are up before the jobs arrive: otherwise, on a busy machine, the first one
        # up can finish every job before the other has imported its modules.
        ready = time.monotonic() + 60
        while not all(log.exists() and b"pitstop worker" in log.read_bytes() for log in logs):
            assert time.monotonic() < ready, [log.read_text() for log in logs if log.exists()]
            assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            time.sleep(0.1)
        job_ids = asyncio.run(submit())

        async def statuses() -> list[Any]:
            from pitstop.storage.database import Database

            db = Database.from_url(pg_database)
            try:
                async with Store(db).unit() as u:
                    return [await u.jobs.get(j) for j in job_ids]
            finally:
                await db.close()

        deadline = time.monotonic() + 90
        jobs = asyncio.run(statuses())
        while not all(j.status.finished for j in jobs):
            assert time.monotonic() < deadline, [j.status for j in jobs]
            assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            time.sleep(0.5)
            jobs = asyncio.run(statuses())
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    async def started_by() -> dict[uuid.UUID, list[str]]:
        from pitstop.storage.database import Database

        db = Database.from_url(pg_database)
        try:
            async with Store(db).unit() as u:
                out = {}
                for j in job_ids:
                    events = await u.jobs.events(j)
                    out[j] = [e.data["worker"] for e in events if "worker" in e.data]
                return out
        finally:
            await db.close()

    workers = asyncio.run(started_by())
    assert all(j.status is JobStatus.SUCCEEDED for j in jobs), [(j.device, j.error) for j in jobs]
    for j in jobs:
        assert all(s.runs == 1 for s in j.steps), (j.device, [(s.name, s.runs) for s in j.steps])
        assert len(workers[j.id]) == 1, (j.device, workers[j.id])
    used = {w[0].rsplit(":", 1)[0] for w in workers.values()}
    assert len(used) == 2, f"both worker processes should have taken jobs: {used}"


class PausingRemoval(PausingDriver):
    """Holds ``remove_maintenance`` instead: a worker that stalls while undoing a failed job."""

    async def apply_maintenance(
        self, *, method: str | None, options: Mapping[str, Any]
    ) -> DiversionResult:
        return await self._inner.apply_maintenance(method=method, options=options)

    async def remove_maintenance(
        self, *, method: str | None, options: Mapping[str, Any]
    ) -> DiversionResult:
        self._entered.set()
        await self._release.wait()
        return await self._inner.remove_maintenance(method=method, options=options)


async def test_a_job_taken_over_during_its_rollback_finishes_the_rollback(
    store: Store, clock: Any
) -> None:
    """The first worker's drain check failed and it was undoing the job when it stalled: the
    worker that takes over finishes the undo and fails the job, it never diverts again."""
    await seed_demo(store)
    shared = SimulatedDriverFactory(clock=clock)
    pausing = PausingFactory(shared)
    pausing.open = lambda device: PausingRemoval(  # type: ignore[method-assign]
        shared.open(device), pausing.entered, pausing.release
    )
    zombie_drivers, live_drivers = DriverRegistry(), DriverRegistry()
    zombie_drivers.register("simulated", pausing)  # type: ignore[arg-type]
    live_drivers.register("simulated", shared)

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    config = EngineConfig(lease_ttl_s=300)
    zombie = Worker(
        store=store, drivers=zombie_drivers, clock=clock, sleep=fake_sleep, config=config
    )
    live = Worker(store=store, drivers=live_drivers, clock=clock, sleep=fake_sleep, config=config)
    job = await JobService(store).submit(
        job_type=JobType.ACTIVATE,
        device="spine1",
        fabric="dc1",
        mode=Mode.ACTIVATE,
        advanced_parameters={"sample_interval_s": 1, "drain": {"timeout_s": 5}},
        reason="rollback takeover",
        ticket=None,
        expected_end=None,
        actor=ALICE,
        via=Via.API,
    )
    shared.fleet.inject(job.device_id, "drain-stuck")
    stalled = asyncio.create_task(zombie.run_once())
    await asyncio.wait_for(pausing.entered.wait(), 10)  # verify_drain failed; undo under way
    # The traffic would leave now: a worker that ran the failed step again would pass it and
    # put the device in maintenance although its activation already failed.
    shared.fleet.clear(job.device_id, "drain-stuck")

    clock.advance(seconds=301)
    assert await live.run_once() is True
    pausing.release.set()
    await asyncio.wait_for(stalled, 10)

    async with store.unit() as u:
        after = await u.jobs.get(job.id)
        device = await u.devices.get(job.device_id)
    assert after.status is JobStatus.FAILED
    assert device.status is DeviceStatus.ACTIVATED
    steps = {s.name: s.status for s in after.steps}
    assert steps["verify_drain"] is StepStatus.FAILED
    assert steps["mark_maintenance"] is not StepStatus.SUCCEEDED
    applied = [c for c in shared.fleet.calls(job.device_id) if c["op"] == "apply_maintenance"]
    assert [c["changed"] for c in applied].count(True) == 1
