"""The ``frr`` driver: FRRouting routers through vtysh, locally or over SSH.

``transport`` builds vtysh commands for the shared ``pitstop.drivers.transports`` (local or SSH),
``parsing`` reads FRR's JSON and the kernel's counters, ``diversion`` turns a diversion method
into configuration, ``restore`` puts a whole configuration back with frr-reload, ``driver``
keeps the driver contract with them, and ``factory`` opens a driver for a device's connection.
"""

from pitstop.drivers.frr.driver import FrrDriver
from pitstop.drivers.frr.factory import FrrDriverFactory

__all__ = ["FrrDriver", "FrrDriverFactory"]
