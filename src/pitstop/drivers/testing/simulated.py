"""Harnesses for the drivers that need no lab: the simulated driver (in memory, or keeping
its state in files as the crash tests run it) and the kit's ``FakeDriverFactory``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from pitstop.drivers.simulated import SimulatedDriverFactory
from pitstop.drivers.testing.fake import FakeDriverFactory
from pitstop.drivers.testing.harness import DriverHarness, ManualClock, make_device


@contextlib.asynccontextmanager
async def simulated_harness(*, state_dir: Path | None = None) -> AsyncIterator[DriverHarness]:
    """A simulated leaf on a fake clock; ``state_dir`` keeps the fleet in files there."""
    clock = ManualClock()
    factory = SimulatedDriverFactory(clock=clock, state_dir=state_dir)

    async def advance(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)  # let anything scheduled meanwhile run, as real time would

    device = make_device("leaf1")
    edits = iter(range(1, 1000))

    async def drift() -> None:
        n = next(edits)
        factory.fleet.edit_config(device.id, lambda c: c + f"! edited by hand ({n})\n")

    harness = DriverHarness(
        kind="simulated",
        driver=factory.open(device),
        advance=advance,
        drift=drift,
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


@contextlib.asynccontextmanager
async def fake_harness() -> AsyncIterator[DriverHarness]:
    """A device of the kit's fake kind (a load balancer, no BGP) on a fake clock."""
    clock = ManualClock()
    factory = FakeDriverFactory(clock=clock)

    async def advance(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    device = make_device("lb1", role="lb", driver="fake")
    edits = iter(range(1, 1000))

    async def drift() -> None:
        factory.device("lb1").config += f"# edited by hand ({next(edits)})\n"

    harness = DriverHarness(
        kind="fake",
        driver=factory.open(device),
        advance=advance,
        drift=drift,
        settle_s=1.0,
        poll_s=0.5,
        reports_bgp=False,
        open_unreachable=lambda: factory.open(
            make_device("lb9", driver="fake", labels={"fake.fault": "unreachable"})
        ),
    )
    try:
        yield harness
    finally:
        await factory.aclose()
