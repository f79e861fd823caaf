"""Every driver pitstop ships keeps the driver contract (``pitstop.drivers.testing``), and
so does the kit's own fake, a device that is not a router.

Each class runs the shipped ``DriverContract`` over one harness, exactly as a driver from
another distribution would run it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from frr_lab import FrrLab, frr_harness

from pitstop.drivers.testing import (
    DriverContract,
    DriverHarness,
    fake_harness,
    simulated_harness,
)


class TestSimulated(DriverContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[DriverHarness]:
        async with simulated_harness() as h:
            yield h


class TestSimulatedStateDir(DriverContract):
    """The same driver keeping its state in files, as the crash tests run it."""

    @pytest.fixture
    async def harness(self, tmp_path: Path) -> AsyncIterator[DriverHarness]:
        async with simulated_harness(state_dir=tmp_path / "sim-state") as h:
            yield h


class TestFake(DriverContract):
    """The kit's fake load balancer: no BGP peers, its own check, its own time limits."""

    @pytest.fixture
    async def harness(self) -> AsyncIterator[DriverHarness]:
        async with fake_harness() as h:
            yield h


@pytest.mark.lab
class TestFrr(DriverContract):
    """A real FRR router in a network-namespace lab (root and FRR; required in CI)."""

    @pytest.fixture
    async def harness(self, frr_contract_lab: FrrLab) -> AsyncIterator[DriverHarness]:
        async with frr_harness(frr_contract_lab) as h:
            yield h
