"""The driver registry: discovery through entry points, state per instance, errors that name
the known drivers, and keyword arguments passed only to the factories that take them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pitstop.domain.errors import DriverError
from pitstop.domain.inventory import Device
from pitstop.drivers import DriverRegistry
from pitstop.drivers.base import Driver, DriverFactory
from pitstop.drivers.registry import GROUP, accepted_kwargs
from pitstop.drivers.simulated import SimulatedDriver, SimulatedDriverFactory
from pitstop.drivers.testing import make_device

START = datetime(2030, 1, 2, tzinfo=UTC)


def fixed_clock() -> datetime:
    return START


class StubFactory:
    """A factory that records how it was built and closed."""

    name = "stub"

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.closed = False

    def open(self, device: Device) -> Driver:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True


class ClockOnlyFactory(StubFactory):
    def __init__(self, *, clock: Any = None) -> None:
        super().__init__(clock=clock)


class FailingCloseFactory(StubFactory):
    async def aclose(self) -> None:
        self.closed = True
        raise DriverError("pool would not close")


@dataclass
class FakeEntryPoint:
    name: str
    value: str
    target: Any = None
    error: Exception | None = None

    def load(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.target


# --- discovery ------------------------------------------------------------------------------------


def test_entry_points_find_the_simulated_driver(tmp_path: Path) -> None:
    registry = DriverRegistry.from_entry_points(
        clock=fixed_clock, state_dir=tmp_path, unheard_of=42
    )
    assert "simulated" in registry.names()
    factory = registry.get("simulated")
    assert isinstance(factory, SimulatedDriverFactory)
    assert isinstance(factory, DriverFactory)
    # Passed what it accepts, spared what it does not (unheard_of would be a TypeError).
    assert factory.clock is fixed_clock
    assert factory.fleet.state_dir == tmp_path


def test_an_empty_group_gives_an_empty_registry() -> None:
    assert DriverRegistry.from_entry_points(group="pitstop.no-such-group").names() == ()
    assert GROUP == "pitstop.drivers"


async def test_open_uses_the_devices_driver_field() -> None:
    registry = DriverRegistry.from_entry_points(clock=fixed_clock)
    driver = registry.open(make_device(driver="simulated"))
    assert isinstance(driver, SimulatedDriver)
    assert (await driver.health()).at == START
    # The built-in drivers register through the same entry points as any plugin would.
    assert {"frr", "simulated"} <= set(registry.names())
    with pytest.raises(DriverError, match=r"unknown driver 'no-such'; known drivers: .*simulated"):
        registry.open(make_device(driver="no-such"))


def test_factories_get_only_the_kwargs_they_accept() -> None:
    registry = DriverRegistry()
    added = registry.load_entry_points(
        [
            FakeEntryPoint("clocked", "x:ClockOnlyFactory", ClockOnlyFactory),
            FakeEntryPoint("greedy", "x:StubFactory", StubFactory),
        ],
        clock=fixed_clock,
        state_dir="/tmp/nowhere",
    )
    assert added == ["clocked", "greedy"]
    clocked, greedy = registry.get("clocked"), registry.get("greedy")
    assert isinstance(clocked, StubFactory) and isinstance(greedy, StubFactory)
    assert clocked.kwargs == {"clock": fixed_clock}
    assert greedy.kwargs == {"clock": fixed_clock, "state_dir": "/tmp/nowhere"}


def test_accepted_kwargs_reads_the_signature() -> None:
    def positional_only(clock: Any, /, state_dir: Any = None) -> None: ...

    offered = {"clock": 1, "state_dir": 2, "other": 3}
    assert accepted_kwargs(positional_only, offered) == {"state_dir": 2}
    assert accepted_kwargs(ClockOnlyFactory, offered) == {"clock": 1}
    assert accepted_kwargs(StubFactory, offered) == offered
    assert accepted_kwargs(SimulatedDriverFactory, offered) == {"clock": 1, "state_dir": 2}


def test_a_broken_plugin_is_named() -> None:
    registry = DriverRegistry()
    with pytest.raises(DriverError, match=r"driver 'junos'.*No module named 'junos'"):
        registry.load_entry_points(
            [
                FakeEntryPoint(
                    "junos", "junos:F", error=ModuleNotFoundError("No module named 'junos'")
                )
            ]
        )
    with pytest.raises(DriverError, match="not a factory"):
        registry.load_entry_points([FakeEntryPoint("odd", "x:CONSTANT", 42)])
    with pytest.raises(DriverError, match="not a driver factory"):
        registry.load_entry_points([FakeEntryPoint("bare", "x:object", object)])


def test_the_same_plugin_seen_twice_is_registered_once() -> None:
    registry = DriverRegistry()
    point = FakeEntryPoint("stub", "x:StubFactory", StubFactory)
    registry.load_entry_points([point, point])
    assert registry.names() == ("stub",)
    with pytest.raises(DriverError, match="already registered"):
        registry.load_entry_points([FakeEntryPoint("stub", "y:StubFactory", StubFactory)])


# --- state per instance ---------------------------------------------------------------------------


def test_registries_do_not_share_registrations() -> None:
    one, two = DriverRegistry(), DriverRegistry()
    one.register("stub", StubFactory())
    assert one.names() == ("stub",)
    assert two.names() == ()
    assert "stub" in one and "stub" not in two


def test_registries_from_entry_points_do_not_share_factories() -> None:
    one = DriverRegistry.from_entry_points()
    two = DriverRegistry.from_entry_points()
    a, b = one.get("simulated"), two.get("simulated")
    assert isinstance(a, SimulatedDriverFactory) and isinstance(b, SimulatedDriverFactory)
    assert a is not b and a.fleet is not b.fleet


def test_a_name_is_registered_once_and_must_be_a_factory() -> None:
    registry = DriverRegistry()
    registry.register("stub", StubFactory())
    with pytest.raises(DriverError, match="already registered"):
        registry.register("stub", StubFactory())
    with pytest.raises(DriverError, match="not a driver factory"):
        registry.register("junk", object())  # type: ignore[arg-type]


# --- errors and closing ---------------------------------------------------------------------------


def test_an_unknown_driver_lists_the_known_ones() -> None:
    registry = DriverRegistry()
    with pytest.raises(DriverError, match="known drivers: none"):
        registry.get("frr")
    registry.register("simulated", StubFactory())
    registry.register("eos", StubFactory())
    with pytest.raises(DriverError) as raised:
        registry.get("frr")
    assert raised.value.code == "DRIVER_ERROR"
    assert raised.value.detail == "unknown driver 'frr'; known drivers: eos, simulated"
    assert raised.value.extra == {"driver": "frr", "known": ["eos", "simulated"]}


async def test_aclose_closes_every_factory_even_after_a_failure() -> None:
    registry = DriverRegistry()
    factories = {"a": FailingCloseFactory(), "b": StubFactory(), "c": FailingCloseFactory()}
    for name, factory in factories.items():
        registry.register(name, factory)
    with pytest.raises(DriverError, match="pool would not close"):
        await registry.aclose()
    assert all(f.closed for f in factories.values())


async def test_aclose_wraps_foreign_errors() -> None:
    class Exploding(StubFactory):
        async def aclose(self) -> None:
            raise OSError("socket gone")

    registry = DriverRegistry()
    registry.register("x", Exploding())
    with pytest.raises(DriverError, match="socket gone"):
        await registry.aclose()
