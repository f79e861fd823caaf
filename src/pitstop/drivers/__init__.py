"""Drivers: how pitstop talks to devices.

The package owns the driver contract (``base``), the registry that finds drivers through the
``pitstop.drivers`` entry point group (``registry``) and the simulated driver (``simulated``
with its model and state store). It may import only ``pitstop.domain``: an import-linter
contract keeps storage, the engine, the API and the CLI out, so a driver can be written,
tested and shipped without the rest of pitstop.
"""

from pitstop.drivers.base import (
    Clock,
    DiversionResult,
    Driver,
    DriverFactory,
    Restoration,
)
from pitstop.drivers.registry import DriverRegistry

__all__ = [
    "Clock",
    "DiversionResult",
    "Driver",
    "DriverFactory",
    "DriverRegistry",
    "Restoration",
]
