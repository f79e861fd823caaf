"""``FakeDriverFactory``: an in-memory driver for tests of code that uses drivers, the way
httpx ships ``MockTransport`` beside its transports.

It models a device that is not a router (a load balancer in front of a pool of backends):
it reports no BGP peers, declares only the built-in checks that apply to it plus one of its
own (``backends_in_service``), and declares its own step time limits. So it also shows that a
driver needs no edits to the domain or the engine to be judged and timed its own way.

Every device starts carrying traffic (``FAKE_PPS``) with a small configuration. The default
diversion takes its backends out of the pool at once: traffic drops to zero, and comes back
when the diversion is removed. Tests steer it per device through ``FakeDevice``: ``faults``
makes a method raise a given error (``DeviceUnreachable``, ``DriverTimeout``, ...), ``hang``
makes a method wait until cancelled, and ``calls`` records what the engine asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pitstop.domain.errors import DeviceUnreachable, DriverError, PitstopError
from pitstop.domain.inventory import Device
from pitstop.domain.metrics import (
    Capabilities,
    Facts,
    HealthSample,
    ReportedCheck,
    TrafficSample,
)
from pitstop.domain.profile import DriverProfile
from pitstop.drivers.base import Clock, ConfigRestore, DiversionResult, Restoration

FAKE_PPS = 1000.0
DIVERSIONS = ("pool-drain", "pool-disable")
BACKENDS = 4

# Not a router: no BGP, no interface counters, no routing daemons to judge.
FAKE_PROFILE = DriverProfile(
    checks=("cpu_idle", "memory", "alarms"),
    own_checks=("backends_in_service",),
    step_timeouts={"divert": 15.0, "restore": 15.0},
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeDevice:
    """One fake device's state, shared by every driver opened for it."""

    name: str
    config: str
    diverted: str | None = None  # the diversion method in effect
    backends_up: int = BACKENDS
    faults: dict[str, PitstopError] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)


class FakeDriver:
    """One device of the fake kind."""

    def __init__(self, state: FakeDevice, *, clock: Clock, profile: DriverProfile) -> None:
        self.state = state
        self._clock = clock
        self._caps = Capabilities(diversions=DIVERSIONS, measures_traffic=True, profile=profile)

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    async def _enter(self, op: str) -> None:
        self.state.calls.append(op)
        if op in self.state.hang:
            await asyncio.Event().wait()  # until the caller gives up and cancels
        fault = self.state.faults.get(op)
        if fault is not None:
            raise fault

    async def facts(self) -> Facts:
        await self._enter("facts")
        return Facts(hostname=self.state.name, vendor="pitstop", model="fake load balancer")

    async def health(self) -> HealthSample:
        await self._enter("health")
        up = self.state.backends_up
        check = ReportedCheck(
            "backends_in_service",
            "pass" if up == BACKENDS else "fail",
            f"{up} of {BACKENDS} backends in service",
            observed=up,
            threshold=BACKENDS,
        )
        return HealthSample(
            at=self._clock(), cpu_idle_pct=90.0, memory_used_pct=30.0, checks=(check,)
        )

    async def backup_config(self) -> str:
        await self._enter("backup_config")
        return self.state.config

    def _method(self, method: str | None) -> str:
        chosen = method or DIVERSIONS[0]
        if chosen not in DIVERSIONS:
            raise DriverError(f"{self.state.name}: unknown diversion {chosen!r}")
        return chosen

    async def apply_maintenance(
        self, *, method: str | None, options: Mapping[str, Any]
    ) -> DiversionResult:
        await self._enter("apply_maintenance")
        chosen = self._method(method)
        if self.state.diverted == chosen:
            return DiversionResult(False, chosen, f"{chosen} already in place")
        self.state.diverted = chosen
        return DiversionResult(True, chosen, f"applied {chosen}")

    async def remove_maintenance(
        self, *, method: str | None, options: Mapping[str, Any]
    ) -> DiversionResult:
        await self._enter("remove_maintenance")
        chosen = self._method(method) if method else (self.state.diverted or DIVERSIONS[0])
        if self.state.diverted is None:
            return DiversionResult(False, chosen, "not diverted")
        self.state.diverted = None
        return DiversionResult(True, chosen, f"removed {chosen}")

    async def traffic(self) -> TrafficSample:
        await self._enter("traffic")
        pps = 0.0 if self.state.diverted else FAKE_PPS
        return TrafficSample(at=self._clock(), transit_pps=pps)

    async def verify_restored(self) -> Restoration:
        await self._enter("verify_restored")
        if self.state.diverted:
            return Restoration(False, f"{self.state.diverted} still in place")
        return Restoration(True, f"{FAKE_PPS:g} pps through the pool")

    async def restore_config(self, config: str) -> ConfigRestore:
        await self._enter("restore_config")
        if self.state.config == config:
            return ConfigRestore(False, "the configuration already matches")
        self.state.config = config
        return ConfigRestore(True, f"restored {len(config.splitlines())} lines")

    async def close(self) -> None:
        return None


class FakeDriverFactory:
    """The fake kind: devices by name, held in ``devices``; ``unreachable`` names devices
    that answer nothing (every call raises ``DeviceUnreachable``)."""

    def __init__(
        self,
        *,
        name: str = "fake",
        clock: Clock | None = None,
        profile: DriverProfile = FAKE_PROFILE,
        unreachable: Callable[[Device], bool] | None = None,
    ) -> None:
        self._name = name
        self.clock: Clock = clock or _utcnow
        self.profile = profile
        self.devices: dict[str, FakeDevice] = {}
        self._unreachable = unreachable or (lambda d: d.labels.get("fake.fault") == "unreachable")

    @property
    def name(self) -> str:
        return self._name

    def device(self, name: str) -> FakeDevice:
        """The state of device ``name``, created on first use."""
        if name not in self.devices:
            self.devices[name] = FakeDevice(name, f"hostname {name}\npool web\n")
        return self.devices[name]

    def open(self, device: Device) -> FakeDriver:
        state = self.device(device.name)
        if self._unreachable(device):
            gone = DeviceUnreachable(f"{device.name}: no answer", device=device.name)
            ops = ("health", "facts", "apply_maintenance", "remove_maintenance", "traffic")
            state.faults.update(dict.fromkeys(ops, gone))
        return FakeDriver(state, clock=self.clock, profile=self.profile)

    async def aclose(self) -> None:
        return None
