"""Helpers for the job-engine workflow tests (``test_engine_workflows.py``); no tests here.

``Engine`` bundles what a workflow test needs: the per-test store and fake clock, the demo
fleet, a ``SimulatedDriverFactory`` on that clock, a ``Worker`` whose ``sleep`` moves the fake
clock (so drains converge instantly in real time), and ``JobService`` to submit and control
jobs as an operator would. Everything a user notices is read back through ``store.unit()``.

``HookedFactory`` wraps the simulated factory so that a test can intercept one driver call
(make it slow, cancel the job from inside it, simulate a worker dying right after it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pitstop.api.startup import seed_demo
from pitstop.domain.audit import AuditEntry
from pitstop.domain.inventory import Device
from pitstop.domain.jobs import Event, Job, JobStatus, JobType, Mode
from pitstop.domain.roles import Actor, Role, Via
from pitstop.drivers.registry import DriverRegistry
from pitstop.drivers.simulated import SimulatedDriverFactory
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.service import JobService
from pitstop.storage.store import Store

ALICE = Actor("alice", Role.OPERATOR)
ADMIN = Actor("root", Role.ADMIN)

RUN_ONCE_LIMIT_S = 60

# Health samples one (fake) second apart, so interface rates have a window.
FAST = {"sample_interval_s": 1}

ACTIVATE_STEPS = [
    "validate",
    "health",
    "snapshot",
    "mark_draining",
    "divert",
    "verify_drain",
    "mark_maintenance",
]
TEST_RUN_STEPS = ["validate", "health", "verdict"]
DEACTIVATE_STEPS = [
    "validate",
    "config_check",
    "mark_undraining",
    "restore",
    "verify_restored",
    "post_health",
    "compare",
    "mark_activated",
]
HEALTH_CHECKS = [
    "bgp_down_peers",
    "bgp_flaps",
    "cpu_idle",
    "memory",
    "interface_errors",
    "interface_drops",
    "alarms",
    "daemons",
]

# A hook receives a zero-argument callable that makes the real driver call, and returns what
# the call should return (or raises).
Hook = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class WorkerDied(BaseException):
    """Raised by a hook to stop a worker dead, as a crash would: not an ``Exception``, so the
    engine neither fails the job nor rolls anything back; its lease simply stops being
    renewed."""


class HookedDriver:
    """A simulated driver whose calls go through ``hooks`` (by method name) when present."""

    def __init__(self, inner: Any, hooks: Mapping[str, Hook]) -> None:
        self._inner = inner
        self._hooks = hooks

    @property
    def capabilities(self) -> Any:
        return self._inner.capabilities

    async def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self._inner, op)
        hook = self._hooks.get(op)
        if hook is None:
            return await method(*args, **kwargs)
        return await hook(lambda: method(*args, **kwargs))

    async def facts(self) -> Any:
        return await self._call("facts")

    async def health(self) -> Any:
        return await self._call("health")

    async def backup_config(self) -> Any:
        return await self._call("backup_config")

    async def apply_maintenance(self, *, method: str | None, options: Mapping[str, Any]) -> Any:
        return await self._call("apply_maintenance", method=method, options=options)

    async def remove_maintenance(self, *, method: str | None, options: Mapping[str, Any]) -> Any:
        return await self._call("remove_maintenance", method=method, options=options)

    async def traffic(self) -> Any:
        return await self._call("traffic")

    async def restore_config(self, config: str) -> Any:
        return await self._call("restore_config", config)

    async def verify_restored(self) -> Any:
        return await self._call("verify_restored")

    async def close(self) -> None:
        await self._inner.close()


class HookedFactory:
    """The ``simulated`` driver kind with hooks; shares the wrapped factory's fleet."""

    name = "simulated"

    def __init__(self, inner: SimulatedDriverFactory, hooks: Mapping[str, Hook]) -> None:
        self._inner = inner
        self._hooks = hooks

    def open(self, device: Device) -> HookedDriver:
        return HookedDriver(self._inner.open(device), self._hooks)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Engine:
    store: Store
    clock: Any
    factory: SimulatedDriverFactory
    registry: DriverRegistry
    worker: Worker = field(init=False)
    service: JobService = field(init=False)

    def __post_init__(self) -> None:
        self.worker = self.make_worker()
        self.service = JobService(self.store)

    async def fake_sleep(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)

    def make_worker(self, registry: DriverRegistry | None = None, name: str = "w") -> Worker:
        return Worker(
            store=self.store,
            drivers=registry or self.registry,
            clock=self.clock,
            sleep=self.fake_sleep,
            config=EngineConfig(lease_ttl_s=30),
            name=name,
        )

    def hooked_worker(self, name: str = "hooked", **hooks: Hook) -> Worker:
        """A worker whose simulated drivers pass the named calls through ``hooks``."""
        registry = DriverRegistry()
        registry.register("simulated", HookedFactory(self.factory, hooks))
        return self.make_worker(registry, name)

    # Submitting and running -----------------------------------------------------------------

    async def submit(
        self,
        device: str,
        job_type: JobType = JobType.ACTIVATE,
        *,
        mode: Mode | None = None,
        params: Mapping[str, Any] | None = None,
        reason: str | None = "replace optics",
        ticket: str | None = "CHG-1",
        expected_end: datetime | None = None,
        actor: Actor = ALICE,
    ) -> Job:
        return await self.service.submit(
            job_type=job_type,
            device=device,
            fabric=None,
            mode=mode,
            advanced_parameters={**FAST, **(params or {})},
            reason=reason,
            ticket=ticket,
            expected_end=expected_end,
            actor=actor,
            via=Via.API,
        )

    async def run(self, worker: Worker | None = None, *, limit: int = 20) -> int:
        """Run jobs until none is left; returns how many ran."""
        worker = worker or self.worker
        ran = 0
        # A hung engine (a deadlock, a step waiting forever) fails the test instead of the run.
        while await asyncio.wait_for(worker.run_once(), RUN_ONCE_LIMIT_S):
            ran += 1
            assert ran < limit, "the worker keeps finding jobs"
        return ran

    async def run_job(self, device: str, job_type: JobType = JobType.ACTIVATE, **kw: Any) -> Job:
        """Submit one job, run it to its end, and return it as stored."""
        job = await self.submit(device, job_type, **kw)
        assert await self.run() == 1
        return await self.job(job.id)

    async def activated(self, device: str, **kw: Any) -> Job:
        """Put ``device`` in maintenance through a real activation job."""
        job = await self.run_job(device, JobType.ACTIVATE, **kw)
        assert job.status is JobStatus.SUCCEEDED, (job.error, job.result)
        return job

    # Reading back -----------------------------------------------------------------------------

    async def job(self, job_id: uuid.UUID) -> Job:
        async with self.store.unit() as u:
            return await u.jobs.get(job_id)

    async def device(self, name: str) -> Device:
        async with self.store.unit() as u:
            return await u.devices.get(await u.devices.resolve(name))

    async def device_id(self, name: str) -> uuid.UUID:
        return (await self.device(name)).id

    async def events(self, job_id: uuid.UUID) -> list[Event]:
        async with self.store.unit() as u:
            return await u.jobs.events(job_id)

    async def audit(self, device: str, action: str | None = "device.status") -> list[AuditEntry]:
        """The device's audit rows, oldest first."""
        async with self.store.unit() as u:
            page = await u.audit.query(device=device, action=action, limit=500)
        return list(reversed(page.items))

    async def lock_holder(self, device: str) -> uuid.UUID | None:
        async with self.store.unit() as u:
            return await u.jobs.lock_holder(await u.devices.resolve(device))

    async def calls(self, device: str, op: str | None = None) -> list[dict[str, Any]]:
        """The simulated device's call log, optionally only one operation."""
        calls = self.factory.fleet.calls(await self.device_id(device))
        return [c for c in calls if op is None or c["op"] == op]

    async def ops(self, device: str) -> list[str]:
        return [c["op"] for c in await self.calls(device)]

    async def inject(self, device: str, fault: str) -> None:
        self.factory.fleet.inject(await self.device_id(device), fault)

    async def clear(self, device: str, fault: str | None = None) -> None:
        self.factory.fleet.clear(await self.device_id(device), fault)

    async def edit_config(self, device: str, line: str) -> None:
        """Change the simulated device's configuration by hand: append ``line``."""
        self.factory.fleet.edit_config(await self.device_id(device), lambda c: c + line + "\n")

    async def config(self, device: str) -> str:
        return str(self.factory.fleet.state(await self.device_id(device))["config"])

    async def diverted(self, device: str) -> bool:
        return bool(self.factory.fleet.state(await self.device_id(device))["diverted"])


async def build_engine(store: Store, clock: Any) -> Engine:
    await seed_demo(store)
    factory = SimulatedDriverFactory(clock=clock)
    registry = DriverRegistry()
    registry.register("simulated", factory)
    return Engine(store, clock, factory, registry)


def steps(job: Job) -> dict[str, str]:
    """Step name -> status value."""
    return {s.name: s.status.value for s in job.steps}


def step(job: Job, name: str) -> Any:
    found = [s for s in job.steps if s.name == name]
    assert found, f"no step {name!r} in {[s.name for s in job.steps]}"
    return found[0]


def transitions(entries: list[AuditEntry]) -> list[tuple[str | None, str | None]]:
    return [(e.from_status, e.to_status) for e in entries]
