"""The driver contract's fixtures: one harness per driver kind.

Every driver pitstop ships must pass ``test_driver_contract.py``. The tests never name a driver;
they get a ``DriverHarness`` from the ``contract_driver`` fixture, which is parametrized over
``KINDS``. A new driver joins the contract by adding a builder to ``BUILDERS`` (and its kind to
``KINDS``, with a mark that skips it where its lab is missing).

The ``frr`` kind runs against a real FRR spine of a small lab fabric (``pitstop.lab``), built
once per module, with UDP flows crossing it so that a drain has traffic to move. It needs
root and FRR; elsewhere it skips, except under ``CI=true``, where a missing lab is an error.

A harness hides the one thing that differs between a simulator and a real device: time. The
simulated driver runs on a fake clock that ``advance`` moves; a real driver's ``advance``
sleeps. ``settle_s`` is how long a drain (or its undoing) may take on that kind, and
``poll_s`` how often the tests look while they wait, as the engine would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import random
import string
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

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
    # Changes the device's running configuration out of band, harmlessly, as a person or a
    # maintenance action's command would; a second call changes it again.
    drift: Callable[[], Awaitable[None]] | None = None
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

    return build


# --- frr: a real router in a lab ----------------------------------------------------------


@dataclass
class FrrLab:
    topology: Any
    flows: Any


@pytest.fixture(scope="module")
def frr_contract_lab() -> Iterator[FrrLab]:
    """Two spines, two leaves, and 32 flows at 500 pps from host1 to host2, for the contract
    module only: the rest of the suite should not run beside a busy lab."""
    from pitstop.lab.fabric import running
    from pitstop.lab.flows import UdpFlows
    from pitstop.lab.host import unavailable

    why = unavailable()
    if why:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the FRR lab must run in CI: {why}")
        pytest.skip(f"no FRR lab here: {why}")
    fabric = "c" + "".join(random.choices(string.ascii_lowercase, k=5))
    with running(fabric=fabric, spines=2, leaves=2) as topo:
        src, dst = topo.hosts[0], topo.hosts[1]
        flows = UdpFlows(
            src_ns=src.netns, src_addr=src.address, dst_ns=dst.netns, dst_addr=dst.address
        ).start()
        try:
            yield FrrLab(topo, flows)
        finally:
            flows.stop(settle_s=0)


_FRR_DRIFTS = itertools.count(1)


def _frr_builder() -> Builder:
    @contextlib.asynccontextmanager
    async def build(request: pytest.FixtureRequest) -> AsyncIterator[DriverHarness]:
        from pitstop.drivers.frr import FrrDriverFactory
        from pitstop.drivers.frr.transport import LocalTransport, vtysh
        from pitstop.lab.inventory import inventory

        lab: FrrLab = request.getfixturevalue("frr_contract_lab")
        spec = inventory(lab.topology)["fabrics"][0]["devices"][0]  # spine1
        factory = FrrDriverFactory()
        device = dataclasses.replace(
            make_device("spine1", role="spine", driver="frr"),
            connection=Connection(options=spec["connection"]["options"]),
        )
        options = device.connection.options

        async def drift() -> None:
            # A prefix-list nothing uses: a change by hand that moves no traffic. Numbered
            # across the module, so that one a failed test left behind cannot hide the next.
            n = next(_FRR_DRIFTS)
            await vtysh(
                LocalTransport(netns=options["netns"]),
                options["pathspace"],
                [
                    "configure terminal",
                    f"ip prefix-list psl-drift-{n} seq 5 permit 10.255.{n}.0/24",
                ],
            )

        harness = DriverHarness(
            kind="frr",
            driver=factory.open(device),
            advance=asyncio.sleep,
            drift=drift,
            settle_s=8.0,
            poll_s=0.5,
            open_unreachable=lambda: factory.open(
                dataclasses.replace(
                    device,
                    name="gone1",
                    connection=Connection(
                        options={"netns": "psl-gone-netns", "pathspace": "psl-gone-netns"}
                    ),
                )
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
    "frr": _frr_builder(),
}

KINDS = [
    pytest.param("simulated", id="simulated"),
    # The same driver keeping its state in files, as the crash tests run it.
    pytest.param("simulated-state-dir", id="simulated-state-dir"),
    # A real FRR router in a network-namespace lab (root and FRR; required in CI).
    pytest.param("frr", id="frr", marks=pytest.mark.lab),
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
