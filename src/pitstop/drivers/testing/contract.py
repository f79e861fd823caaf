"""The contract every driver keeps, because the engine relies on it, as a base test class.

``DriverContract`` is written against the ``Driver`` protocol only. A driver joins it, in
pitstop or in another distribution, by subclassing it in a test module and overriding the
``harness`` fixture to yield a ``DriverHarness`` around one opened driver::

    from pitstop.drivers.testing import DriverContract, DriverHarness

    class TestMyDriver(DriverContract):
        @pytest.fixture
        async def harness(self) -> AsyncIterator[DriverHarness]:
            factory = MyDriverFactory(clock=clock)
            yield DriverHarness(kind="mine", driver=factory.open(device), ...)
            await factory.aclose()

It needs pytest and pytest-asyncio (the test methods are coroutines; run them with
``asyncio_mode = "auto"`` or mark the subclass ``pytest.mark.asyncio``). The numbers are the
engine's defaults: a drain is verified when transit traffic is at most ``max_residual_pps``
(10 pps), and traffic that came back is well above that.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Protocol, cast

import pytest

from pitstop.domain.errors import DeviceUnreachable, DriverError
from pitstop.domain.metrics import TrafficSample
from pitstop.domain.parameters import Drain
from pitstop.drivers.base import ConfigRestorer, Driver, Restoration
from pitstop.drivers.testing.harness import DriverHarness

MAX_RESIDUAL_PPS = Drain().max_residual_pps


class RestoringDriver(Driver, ConfigRestorer, Protocol):
    """A driver that also puts a whole configuration back."""


NO_OPTIONS: dict[str, object] = {}


class DriverContract:
    """The driver contract. Subclass it and override ``harness``; every test here then runs
    against your driver."""

    @pytest.fixture
    async def harness(self) -> AsyncIterator[DriverHarness]:
        pytest.fail(f"{type(self).__name__} must override the harness fixture")
        yield  # pragma: no cover

    @pytest.fixture
    async def contract_driver(self, harness: DriverHarness) -> AsyncIterator[DriverHarness]:
        try:
            yield harness
        finally:
            # Leave a real device as it was found, whatever the test did to it.
            # (The test may have left it unreachable or closed.)
            with contextlib.suppress(Exception):
                await harness.driver.remove_maintenance(method=None, options=NO_OPTIONS)
            for driver in [harness.driver, *harness.opened]:
                await driver.close()

    async def test_the_default_residual_is_what_the_contract_assumes(self) -> None:
        assert MAX_RESIDUAL_PPS == 10.0

    async def test_the_driver_satisfies_the_protocol(self, contract_driver: DriverHarness) -> None:
        assert isinstance(contract_driver.driver, Driver)

    async def test_capabilities_name_at_least_one_diversion(
        self, contract_driver: DriverHarness
    ) -> None:
        caps = contract_driver.driver.capabilities
        assert caps.diversions, "a driver must offer at least one diversion method"
        assert all(isinstance(m, str) and m for m in caps.diversions)

    async def test_facts_name_the_host(self, contract_driver: DriverHarness) -> None:
        facts = await contract_driver.driver.facts()
        assert facts.hostname.strip()

    async def test_health_is_an_aware_timestamped_sample(
        self, contract_driver: DriverHarness
    ) -> None:
        sample = await contract_driver.driver.health()
        assert sample.at.tzinfo is not None
        assert sample.at.utcoffset() == timedelta(0)
        if contract_driver.reports_bgp:
            assert sample.bgp_peers, "a healthy router reports its BGP peers"
            assert all(p.up for p in sample.bgp_peers)

    async def test_health_reports_only_the_checks_it_declares(
        self, contract_driver: DriverHarness
    ) -> None:
        profile = contract_driver.driver.capabilities.profile
        sample = await contract_driver.driver.health()
        undeclared = {c.name for c in sample.checks} - set(profile.own_checks)
        assert not undeclared, f"checks reported but not declared: {sorted(undeclared)}"
        if sample.bgp_peers:
            assert "bgp_down_peers" in profile.checks, "BGP peers reported, BGP checks off"

    async def test_backup_config_is_restored_exactly(self, contract_driver: DriverHarness) -> None:
        driver = contract_driver.driver
        before = await driver.backup_config()
        assert before.strip()
        applied = await driver.apply_maintenance(method=None, options=NO_OPTIONS)
        assert applied.changed
        await driver.remove_maintenance(method=None, options=NO_OPTIONS)
        assert await driver.backup_config() == before

    async def test_applying_twice_changes_the_device_once(
        self, contract_driver: DriverHarness
    ) -> None:
        driver = contract_driver.driver
        first = await driver.apply_maintenance(method=None, options=NO_OPTIONS)
        during = await driver.backup_config()
        second = await driver.apply_maintenance(method=None, options=NO_OPTIONS)
        assert (first.changed, second.changed) == (True, False)
        assert first.method == second.method == driver.capabilities.diversions[0]
        assert await driver.backup_config() == during

    async def test_removing_from_a_clean_device_changes_nothing(
        self, contract_driver: DriverHarness
    ) -> None:
        driver = contract_driver.driver
        before = await driver.backup_config()
        result = await driver.remove_maintenance(method=None, options=NO_OPTIONS)
        assert result.changed is False
        assert await driver.backup_config() == before

    async def test_removing_twice_changes_the_device_once(
        self, contract_driver: DriverHarness
    ) -> None:
        driver = contract_driver.driver
        await driver.apply_maintenance(method=None, options=NO_OPTIONS)
        first = await driver.remove_maintenance(method=None, options=NO_OPTIONS)
        second = await driver.remove_maintenance(method=None, options=NO_OPTIONS)
        assert (first.changed, second.changed) == (True, False)

    async def test_every_advertised_method_applies_and_restores(
        self, contract_driver: DriverHarness
    ) -> None:
        driver = contract_driver.driver
        before = await driver.backup_config()
        for method in driver.capabilities.diversions:
            applied = await driver.apply_maintenance(method=method, options=NO_OPTIONS)
            assert (applied.changed, applied.method) == (True, method)
            removed = await driver.remove_maintenance(method=method, options=NO_OPTIONS)
            assert removed.changed
            assert await driver.backup_config() == before, method

    async def test_an_unknown_method_is_a_driver_error(
        self, contract_driver: DriverHarness
    ) -> None:
        driver = contract_driver.driver
        before = await driver.backup_config()
        with pytest.raises(DriverError):
            await driver.apply_maintenance(method="no-such-diversion", options=NO_OPTIONS)
        assert await driver.backup_config() == before

    async def test_traffic_drains_below_the_residual_within_settle_time(
        self, contract_driver: DriverHarness
    ) -> None:
        h = contract_driver
        if not h.driver.capabilities.measures_traffic:
            pytest.skip(f"{h.kind} does not measure traffic")
        before = await h.driver.traffic()
        assert before.transit_pps > 10 * MAX_RESIDUAL_PPS, "the device must carry traffic first"
        await h.driver.apply_maintenance(method=None, options=NO_OPTIONS)

        drained = await h.eventually(
            h.driver.traffic, lambda t: t.transit_pps <= MAX_RESIDUAL_PPS, within=h.settle_s
        )
        assert isinstance(drained, TrafficSample)
        assert drained.transit_pps <= MAX_RESIDUAL_PPS
        assert drained.at.tzinfo is not None

    async def test_after_removal_the_device_is_restored_and_carries_traffic(
        self, contract_driver: DriverHarness
    ) -> None:
        h = contract_driver
        await h.driver.apply_maintenance(method=None, options=NO_OPTIONS)
        await h.eventually(
            h.driver.traffic, lambda t: t.transit_pps <= MAX_RESIDUAL_PPS, within=h.settle_s
        )
        await h.driver.remove_maintenance(method=None, options=NO_OPTIONS)

        restored = await h.eventually(h.driver.verify_restored, lambda r: r.ok, within=h.settle_s)
        assert isinstance(restored, Restoration)
        assert restored.ok, restored.detail
        if h.driver.capabilities.measures_traffic:
            traffic = await h.eventually(
                h.driver.traffic,
                lambda t: t.transit_pps > 10 * MAX_RESIDUAL_PPS,
                within=h.settle_s,
            )
            assert traffic.transit_pps > 10 * MAX_RESIDUAL_PPS

    async def test_a_diverted_device_is_not_restored(self, contract_driver: DriverHarness) -> None:
        h = contract_driver
        await h.driver.apply_maintenance(method=None, options=NO_OPTIONS)
        await h.advance(h.settle_s)
        assert (await h.driver.verify_restored()).ok is False

    async def test_an_unreachable_device_raises_device_unreachable(
        self, contract_driver: DriverHarness
    ) -> None:
        driver = contract_driver.unreachable()
        with pytest.raises(DeviceUnreachable):
            await driver.health()
        with pytest.raises(DeviceUnreachable):
            await driver.apply_maintenance(method=None, options=NO_OPTIONS)
        await driver.close()  # closing a dead device never raises

    async def test_close_is_idempotent(self, contract_driver: DriverHarness) -> None:
        await contract_driver.driver.close()
        await contract_driver.driver.close()

    # --- putting a configuration back (``ConfigRestorer``) ---------------------------------
    # Optional in the protocol; a campaign's rollback and ``maintenance exit --revert-config``
    # depend on it, and every driver pitstop ships implements it.

    @staticmethod
    def _restorer(harness: DriverHarness) -> RestoringDriver:
        if not harness.restores_config:
            pytest.skip(f"{harness.kind} does not restore configurations")
        driver = harness.driver
        assert isinstance(driver, ConfigRestorer), f"{harness.kind} cannot restore a config"
        assert harness.drift is not None, f"the {harness.kind} harness cannot change a config"
        return cast(RestoringDriver, driver)

    async def test_a_changed_config_is_put_back_exactly(
        self, contract_driver: DriverHarness
    ) -> None:
        driver = self._restorer(contract_driver)
        before = await driver.backup_config()
        assert contract_driver.drift is not None
        await contract_driver.drift()
        assert await driver.backup_config() != before
        restored = await driver.restore_config(before)
        assert restored.changed and restored.detail
        assert await driver.backup_config() == before
        again = await driver.restore_config(before)
        assert not again.changed, "restoring the config it already has must change nothing"
        assert await driver.backup_config() == before

    async def test_a_change_made_in_maintenance_is_reverted_keeping_the_diversion(
        self, contract_driver: DriverHarness
    ) -> None:
        """What the engine does when it reverts an action's change: back to the configuration
        right after the diversion, still diverted; removing the diversion then gives the
        pre-maintenance configuration."""
        driver = self._restorer(contract_driver)
        before = await driver.backup_config()
        await driver.apply_maintenance(method=None, options=NO_OPTIONS)
        diverted = await driver.backup_config()
        assert contract_driver.drift is not None
        await contract_driver.drift()
        assert (await driver.restore_config(diverted)).changed
        assert await driver.backup_config() == diverted
        drained = await contract_driver.eventually(
            driver.traffic, lambda s: s.transit_pps <= MAX_RESIDUAL_PPS, contract_driver.settle_s
        )
        assert drained.transit_pps <= MAX_RESIDUAL_PPS, "the restore removed the diversion"
        assert (await driver.remove_maintenance(method=None, options=NO_OPTIONS)).changed
        assert await driver.backup_config() == before
