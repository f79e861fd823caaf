"""What the driver contract runs against: a ``DriverHarness`` wrapping one opened driver, the
fake clock a simulator runs on, and a ``Device`` to open drivers for.

A harness hides the one thing that differs between a simulator and a real device: time. A
simulated driver runs on a ``ManualClock`` that ``advance`` moves; a real driver's ``advance``
sleeps. ``settle_s`` is how long a drain (or its undoing) may take on that kind, and ``poll_s``
how often the contract looks while it waits, as the engine would.

Test-only: imports pytest (the ``dev`` extra), and nothing of pitstop's runtime imports it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from pitstop.domain.inventory import Connection, Device, MaintenanceInfo
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.drivers.base import Driver

T = TypeVar("T")

START = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


class ManualClock:
    """Aware UTC time that stands still until ``advance`` moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_device(
    name: str = "leaf1",
    *,
    role: str = "leaf",
    labels: dict[str, str] | None = None,
    driver: str = "simulated",
    fabric: str = "dc1",
    connection: Connection | None = None,
) -> Device:
    """An activated device of ``driver``, as the inventory would hand it to a factory."""
    return Device(
        id=uuid.uuid4(),
        fabric_id=uuid.uuid4(),
        fabric=fabric,
        name=name,
        role=role,
        driver=driver,
        connection=connection or Connection(),
        labels=dict(labels or {}),
        groups=(),
        status=DeviceStatus.ACTIVATED,
        status_reason=None,
        status_changed_by=None,
        status_changed_at=None,
        maintenance=MaintenanceInfo(),
        needs_attention=False,
        attention_reason=None,
        version=1,
        created_at=START,
        updated_at=START,
    )


@dataclass
class DriverHarness:
    """One driver under the contract, and how to wait for it."""

    kind: str
    driver: Driver
    advance: Callable[[float], Awaitable[None]]
    settle_s: float
    poll_s: float
    # Opens a driver whose device cannot be reached. None when the kind cannot make one (a
    # real device that would have to be unplugged); ``no_unreachable_because`` says why.
    open_unreachable: Callable[[], Driver] | None = None
    no_unreachable_because: str = ""
    # Changes the device's running configuration out of band, harmlessly, as a person or a
    # maintenance action's command would; a second call changes it again. None for a driver
    # that cannot restore a configuration.
    drift: Callable[[], Awaitable[None]] | None = None
    # ``ConfigRestorer`` is optional in the protocol; a kind that claims it must pass its
    # tests, and one that does not skips them.
    restores_config: bool = True
    # Whether a healthy device of this kind reports BGP peers (a router does; a load
    # balancer or a host need not).
    reports_bgp: bool = True
    opened: list[Driver] = field(default_factory=list)

    def unreachable(self) -> Driver:
        if self.open_unreachable is None:
            pytest.skip(self.no_unreachable_because or f"{self.kind} has no unreachable device")
        driver = self.open_unreachable()
        self.opened.append(driver)
        return driver

    async def eventually(
        self, probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within: float
    ) -> T:
        """Probe every ``poll_s`` until ``ok`` or ``within`` seconds have passed; returns
        the last value either way, for the test to assert on."""
        waited = 0.0
        while True:
            value = await probe()
            if ok(value) or waited >= within:
                return value
            await self.advance(self.poll_s)
            waited += self.poll_s
