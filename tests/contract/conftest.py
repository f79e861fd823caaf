"""The driver contract's fixtures: one harness per driver kind.

Every driver pitstop ships must pass ``test_driver_contract.py``. The tests never name a driver;
they get a ``DriverHarness`` from the ``contract_driver`` fixture, which is parametrized over
``KINDS``. A new driver joins the contract by adding a builder to ``BUILDERS`` (and its kind to
``KINDS``, with a mark that skips it where its lab is missing).

A harness hides the one thing that differs between a simulator and a real device: time. The
simulated driver runs on a fake clock that ``advance`` moves; a real driver's ``advance``
sleeps. ``settle_s`` is how long a drain (or its undoing) may take on that kind, and
``poll_s`` how often the tests look while they wait, as the engine would.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from pitstop.domain.inventory import Connection, Device, MaintenanceInfo
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.drivers.base import Driver
from pitstop.drivers.simulated import SimulatedDriverFactory

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
) -> Device:
    return Device(
        id=uuid.uuid4(),
        fabric_id=uuid.uuid4(),
        fabric=fabric,
        name=name,
        role=role,
        driver=driver,
        connection=Connection(),
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
    kind: str
    driver: Driver
    advance: Callable[[float], Awaitable[None]]
    settle_s: float
    poll_s: float
    # Opens a driver whose device cannot be reached. None when the kind cannot make one (a
    # real device that would have to be unplugged); ``no_unreachable_because`` says why.
    open_unreachable: Callable[[], Driver] | None = None
    no_unreachable_because: str = ""
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


Builder = Callable[[pytest.FixtureRequest], contextlib.AbstractAsyncContextManager[DriverHarness]]


def _simulated(*, on_disk: bool) -> Builder:
    @contextlib.asynccontextmanager
    async def build(request: pytest.FixtureRequest) -> AsyncIterator[DriverHarness]:
        clock = ManualClock()
        state_dir: Path | None = None
        if on_disk:
            state_dir = request.getfixturevalue("tmp_path") / "sim-state"
        factory = SimulatedDriverFactory(clock=clock, state_dir=state_dir)

        async def advance(seconds: float) -> None:
            clock.advance(seconds)
            await asyncio.sleep(0)  # let anything scheduled meanwhile run, as real time would

        harness = DriverHarness(
            kind="simulated",
            driver=factory.open(make_device("leaf1")),
            advance=advance,
            settle_s=3.0,  # sim.convergence_s, by default
            poll_s=0.5,
            open_unreachable=lambda: factory.open(
                make_device("leaf9", labels={"sim.fault": "unreachable"})
            ),
        )
        try:
            yield harness
        finally:
            await factory.aclose()

    return build


BUILDERS: dict[str, Builder] = {
    "simulated": _simulated(on_disk=False),
    "simulated-state-dir": _simulated(on_disk=True),
}

KINDS = [
    pytest.param("simulated", id="simulated"),
    # The same driver keeping its state in files, as the crash tests run it.
    pytest.param("simulated-state-dir", id="simulated-state-dir"),
]


@pytest.fixture(params=KINDS)
async def contract_driver(request: pytest.FixtureRequest) -> AsyncIterator[DriverHarness]:
    async with BUILDERS[request.param](request) as harness:
        try:
            yield harness
        finally:
            # Leave a real device as it was found, whatever the test did to it.
            with contextlib.suppress(Exception):
                await harness.driver.remove_maintenance(method=None, options={})
            for driver in [harness.driver, *harness.opened]:
                await driver.close()
