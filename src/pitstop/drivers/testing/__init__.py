"""The driver kit: the contract every driver keeps, its harness, and an in-memory fake, for
tests in pitstop and in any distribution that ships a driver (as NAPALM ships its getter
tests in the package).

* ``DriverContract``: a base test class; subclass it and override its ``harness`` fixture.
* ``DriverHarness``, ``ManualClock``, ``make_device``: what a harness is built from.
* ``simulated_harness``, ``fake_harness``: harnesses for drivers that need no lab.
* ``FakeDriverFactory``: a driver of a non-router device, with faults to inject, for tests of
  code that uses drivers.

For tests only: it imports pytest, which comes with the ``dev`` extra
(``pip install 'pitstop[dev]'``); an import-linter contract keeps every runtime module of
pitstop from importing it.
"""

from pitstop.drivers.testing.contract import MAX_RESIDUAL_PPS, DriverContract
from pitstop.drivers.testing.fake import FAKE_PROFILE, FakeDevice, FakeDriver, FakeDriverFactory
from pitstop.drivers.testing.harness import START, DriverHarness, ManualClock, make_device
from pitstop.drivers.testing.simulated import fake_harness, simulated_harness

__all__ = [
    "FAKE_PROFILE",
    "MAX_RESIDUAL_PPS",
    "START",
    "DriverContract",
    "DriverHarness",
    "FakeDevice",
    "FakeDriver",
    "FakeDriverFactory",
    "ManualClock",
    "fake_harness",
    "make_device",
    "simulated_harness",
]
