"""The driver registry: which factory serves a device's ``driver`` name.

This module owns finding driver factories (through the ``pitstop.drivers`` entry point group,
as nornir finds its plugins) and handing out drivers by name. Its state lives in each
``DriverRegistry`` instance, never in the class or the module: the server, a test and a
benchmark each build their own registry with their own clock and state directory, and two of
them in one process (tests running side by side, a server plus an admin tool) must not see
each other's registrations or share a simulated fleet by accident.

Factories take what they need as keyword arguments (``clock``, ``state_dir``, ...). The
registry offers the same keyword arguments to every factory and passes each only those its
signature accepts, so that adding a setting for one driver does not break the others.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any, Protocol

from pitstop.domain.errors import DriverError, PitstopError
from pitstop.domain.inventory import Device
from pitstop.drivers.base import Driver, DriverFactory

GROUP = "pitstop.drivers"


class EntryPointLike(Protocol):
    """What the registry uses of ``importlib.metadata.EntryPoint``; tests pass stand-ins."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> Any: ...


def accepted_kwargs(target: Callable[..., Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``offered`` that ``target`` accepts by keyword: all of it when the
    signature has ``**kwargs``, else those named by keyword-capable parameters."""
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # builtins and C extensions may have no signature
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(offered)
    names = {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    return {k: v for k, v in offered.items() if k in names}


class DriverRegistry:
    """Driver factories by name, per instance. Build one with ``from_entry_points`` in the
    server, or empty plus ``register`` in tests."""

    def __init__(self) -> None:
        self._factories: dict[str, DriverFactory] = {}
        # Where each entry-point factory came from, so a second distribution claiming the same
        # name is reported with both sources instead of silently winning or losing.
        self._sources: dict[str, str] = {}

    # --- building -----------------------------------------------------------------------

    @classmethod
    def from_entry_points(cls, *, group: str = GROUP, **factory_kwargs: Any) -> DriverRegistry:
        """A registry holding one factory per entry point in ``group``, each built with the
        ``factory_kwargs`` it accepts (e.g. ``clock=``, ``state_dir=``)."""
        registry = cls()
        registry.load_entry_points(entry_points(group=group), **factory_kwargs)
        return registry

    def load_entry_points(
        self, points: Iterable[EntryPointLike], **factory_kwargs: Any
    ) -> list[str]:
        """Load and register each entry point (a factory class or callable); returns the names
        registered. A broken plugin raises ``DriverError`` naming it: a server that starts
        without a driver its inventory needs would only fail later, device by device."""
        added: list[str] = []
        for point in points:
            if self._sources.get(point.name) == point.value:
                continue  # the same distribution seen twice on sys.path (editable installs)
            try:
                target = point.load()
            except Exception as exc:
                raise DriverError(
                    f"driver {point.name!r}: cannot load {point.value}: {exc}",
                    driver=point.name,
                ) from exc
            if not callable(target):
                raise DriverError(
                    f"driver {point.name!r}: {point.value} is not a factory class or callable",
                    driver=point.name,
                )
            try:
                factory = target(**accepted_kwargs(target, factory_kwargs))
            except Exception as exc:
                raise DriverError(
                    f"driver {point.name!r}: building {point.value} failed: {exc}",
                    driver=point.name,
                ) from exc
            self.register(point.name, factory)
            self._sources[point.name] = point.value
            added.append(point.name)
        return added

    def register(self, name: str, factory: DriverFactory) -> None:
        """Register ``factory`` under ``name``. A name is taken once: replacing a driver under
        a running engine would hand out drivers of two kinds for one name."""
        if not isinstance(factory, DriverFactory):
            raise DriverError(
                f"driver {name!r}: {type(factory).__name__} is not a driver factory "
                "(it needs name, open() and aclose())",
                driver=name,
            )
        if name in self._factories:
            raise DriverError(f"driver {name!r} is already registered", driver=name)
        self._factories[name] = factory

    # --- using ----------------------------------------------------------------------------

    def names(self) -> tuple[str, ...]:
        """The registered driver names, sorted."""
        return tuple(sorted(self._factories))

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str) -> DriverFactory:
        """The factory registered as ``name``; ``DriverError`` listing the known ones if none."""
        try:
            return self._factories[name]
        except KeyError:
            known = self.names()
            listed = ", ".join(known) if known else "none"
            raise DriverError(
                f"unknown driver {name!r}; known drivers: {listed}",
                driver=name,
                known=list(known),
            ) from None

    def open(self, device: Device) -> Driver:
        """A driver for ``device``, from the factory its ``driver`` field names."""
        return self.get(device.driver).open(device)

    async def aclose(self) -> None:
        """Close every factory. One failing does not keep the others open: all are closed,
        then the first failure is raised."""
        first: Exception | None = None
        for name in self.names():
            try:
                await self._factories[name].aclose()
            except Exception as exc:
                first = first or exc
        if isinstance(first, PitstopError):
            raise first
        if first is not None:
            raise DriverError(f"closing a driver factory failed: {first}") from first
