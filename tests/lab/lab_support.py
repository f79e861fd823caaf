"""Helpers of the lab tests (``conftest.py`` holds the fixtures): the lab handle, the real
engine on a SQLite store with the lab's routers, and a driver factory with hooks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from pitstop.domain.inventory import Connection, Device, MaintenanceInfo
from pitstop.domain.jobs import Job, JobStatus, JobType, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.drivers.frr import FrrDriver, FrrDriverFactory
from pitstop.drivers.registry import DriverRegistry
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.service import JobService
from pitstop.lab.flows import UdpFlows
from pitstop.lab.host import unavailable
from pitstop.lab.inventory import inventory
from pitstop.lab.topology import Topology
from pitstop.storage.store import Store

OPERATOR = Actor("alice", Role.OPERATOR)

# Small and quick, but every check that means something stays on. CPU idle is off because
# the lab shares a small CI machine with the rest of the suite: its idle time says nothing
# about the routers.
LAB_PARAMS: dict[str, Any] = {
    "sample_interval_s": 1,
    "checks": {"cpu_idle": {"enabled": False}},
    "drain": {"timeout_s": 20, "poll_interval_s": 0.5},
    "undrain": {"timeout_s": 20, "poll_interval_s": 0.5},
}


def vtysh(pathspace: str, *commands: str) -> str:
    argv = ["vtysh", "-N", pathspace]
    for c in commands:
        argv += ["-c", c]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@dataclass
class Lab:
    topology: Topology
    flows: UdpFlows

    def ns(self, router: str) -> str:
        return self.topology.router(router).netns

    def device(self, router: str) -> Device:
        """The router as the ``lab up`` inventory registers it, outside any store."""
        devices = inventory(self.topology)["fabrics"][0]["devices"]
        spec = next(d for d in devices if d["name"] == router)
        now = utcnow()
        return Device(
            id=uuid.uuid4(), fabric_id=uuid.uuid4(), fabric=self.topology.fabric, name=router,
            role=spec["role"], driver="frr",
            connection=Connection(options=spec["connection"]["options"]),
            labels=spec["labels"], groups=tuple(spec["groups"]),
            status=DeviceStatus.ACTIVATED, status_reason=None, status_changed_by=None,
            status_changed_at=None, maintenance=MaintenanceInfo(), needs_attention=False,
            attention_reason=None, version=1, created_at=now, updated_at=now,
        )  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(UTC)


Hook = Callable[[FrrDriver, Callable[[], Awaitable[Any]]], Awaitable[Any]]


class HookedFrrFactory(FrrDriverFactory):
    """The ``frr`` driver with hooks around named methods: a test can act on the real
    network at an exact point of a job (kill a daemon right after the diversion is removed)."""

    def __init__(self, hooks: Mapping[str, Hook]) -> None:
        super().__init__()
        self.hooks = dict(hooks)

    def open(self, device: Device) -> FrrDriver:
        driver = super().open(device)
        for name, hook in self.hooks.items():
            inner = getattr(driver, name)

            async def hooked(*a: Any, _inner: Any = inner, _hook: Hook = hook, **kw: Any) -> Any:
                return await _hook(driver, lambda: _inner(*a, **kw))

            setattr(driver, name, hooked)
        return driver


@dataclass
class LabEngine:
    store: Store
    service: JobService
    fabric: str

    def worker(self, factory: FrrDriverFactory | None = None) -> Worker:
        registry = DriverRegistry()
        registry.register("frr", factory or FrrDriverFactory())
        return Worker(
            store=self.store,
            drivers=registry,
            clock=utcnow,
            sleep=asyncio.sleep,
            config=EngineConfig(lease_ttl_s=30),
            name=f"lab-{uuid.uuid4().hex[:6]}",
        )

    async def run_job(
        self,
        device: str,
        job_type: JobType,
        *,
        params: Mapping[str, Any] | None = None,
        factory: FrrDriverFactory | None = None,
    ) -> Job:
        job = await self.service.submit(
            job_type=job_type,
            device=device,
            fabric=self.fabric,
            mode=Mode.ACTIVATE if job_type is JobType.ACTIVATE else None,
            advanced_parameters={**LAB_PARAMS, **(params or {})},
            reason="lab test",
            ticket="LAB-1",
            expected_end=None,
            actor=OPERATOR,
            via=Via.API,
        )
        worker = self.worker(factory)
        ran = await asyncio.wait_for(worker.run_once(), 180)
        assert ran, "the worker found no job"
        async with self.store.unit() as u:
            done = await u.jobs.get(job.id)
        assert done.status in (JobStatus.SUCCEEDED, JobStatus.FAILED), done.status
        return done

    async def device(self, name: str) -> Device:
        async with self.store.unit() as u:
            fabric = next(f for f in await u.fabrics.all() if f.name == self.fabric)
            return await u.devices.get(await u.devices.resolve(name, fabric_id=fabric.id))


def require_lab() -> None:
    why = unavailable()
    if why:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the FRR lab tests must run in CI: {why}")
        pytest.skip(f"no FRR lab here: {why}")
