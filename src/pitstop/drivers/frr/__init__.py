"""The ``frr`` driver: FRRouting routers through vtysh, locally or over SSH.

``transport`` runs commands (``ssh`` is the SSH flavour and the only importer of asyncssh),
``parsing`` reads FRR's JSON and the kernel's counters, ``diversion`` turns a diversion method
into configuration, and ``driver`` keeps the driver contract with them.
"""

from pitstop.drivers.frr.driver import FrrDriver, FrrDriverFactory

__all__ = ["FrrDriver", "FrrDriverFactory"]
