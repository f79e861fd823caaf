"""The driver contract: what the engine may ask of a device, and what a device answers.

This module owns the two protocols every driver implements (``Driver`` for one opened device,
``DriverFactory`` for a kind of device) and the small result values of the two operations
that change a device. They are ``typing.Protocol``s rather than base classes so that a driver
shipped in another distribution needs nothing from pitstop but the domain values it returns:
it is found through the ``pitstop.drivers`` entry point group and checked structurally.

Rules every implementation follows, because the engine depends on them:

* Every method is a coroutine (except ``DriverFactory.open``, which must not do I/O: it only
  binds a device to the factory's shared resources; connecting happens on the first call).
* Every failure surfaces as ``DeviceUnreachable``, ``DriverTimeout`` or ``DriverError`` from
  ``pitstop.domain.errors``. The engine treats the three alike and never repeats the call by
  itself: the step fails with the error's code and message (``DRIVER_TIMEOUT: ...``), then
  the job is undone. Before the diversion nothing needs undoing and the device stays
  activated; after it, the diversion is removed (or put back, for a deactivation); when that
  undo fails too, the device goes to ``error`` with ``needs_attention``, the reason naming the
  code. A person then retries the job. Any other exception takes the same path under the code
  ``INTERNAL``, with a traceback in the server log, so an operator cannot tell a device that
  refused from a driver bug: map every failure. (A transport may retry below the driver, as
  the SSH transport reopens a dropped connection once, but only where repeating is safe.)
* ``apply_maintenance`` and ``remove_maintenance`` are idempotent. After a crash the engine
  cannot know whether its last call reached the device, so it repeats it; the repeat must
  report ``changed=False`` and leave the device exactly as the first call left it.
* ``remove_maintenance`` undoes ``apply_maintenance`` exactly: the configuration after removal
  equals the configuration before the diversion, byte for byte, so the before/after snapshot
  diff shows nothing the operator did not do.
* Any call may be cancelled at any await (the step's time limit, a cancel of the job, a
  worker shutting down). A cancelled call stops its work on the device before it returns (a
  local command is killed), so the undo or the re-run that follows never races it.
* Timestamps are aware UTC datetimes read from the injected ``Clock``, never from the wall
  clock directly, so that tests and benchmarks can run on fake time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pitstop.domain.inventory import Device
from pitstop.domain.metrics import Capabilities, Facts, HealthSample, TrafficSample

# Returns the current instant as an aware UTC datetime. Injected everywhere time matters.
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class DiversionResult:
    """What ``apply_maintenance`` or ``remove_maintenance`` did.

    ``changed`` is False when the device was already in the requested state: the engine
    records it, and a crash-recovery test counts the True ones to prove a diversion was
    applied exactly once."""

    changed: bool
    method: str  # the diversion method in effect (the driver's default when none was asked)
    detail: str  # one sentence for the job log, e.g. "added bgp graceful-shutdown"


@dataclass(frozen=True, slots=True)
class Restoration:
    """The driver's own check, after ``remove_maintenance``, that the device carries traffic
    again (or, for drivers that cannot measure traffic, that it is eligible to)."""

    ok: bool
    detail: str


@runtime_checkable
class Driver(Protocol):
    """One device, opened by its factory. Not shared between devices; may hold a session."""

    # A property in the protocol so that implementations may use a plain attribute or a
    # read-only property; the engine only reads it.
    @property
    def capabilities(self) -> Capabilities:
        """What this driver can do; ``diversions[0]`` is the default diversion method."""
        ...

    async def facts(self) -> Facts:
        """Identity of the device: hostname, vendor, model, software version."""
        ...

    async def health(self) -> HealthSample:
        """One health reading, stamped with the injected clock."""
        ...

    async def backup_config(self) -> str:
        """The running configuration as text, for the pre-maintenance snapshot."""
        ...

    async def apply_maintenance(
        self, *, method: str | None, options: Mapping[str, Any]
    ) -> DiversionResult:
        """Divert traffic away from the device. ``method`` None means the driver's default;
        an unknown method raises ``DriverError``. Idempotent."""
        ...

    async def remove_maintenance(
        self, *, method: str | None, options: Mapping[str, Any]
    ) -> DiversionResult:
        """Remove the diversion, restoring the configuration exactly. Idempotent: on a device
        that is not diverted it returns ``changed=False``."""
        ...

    async def traffic(self) -> TrafficSample:
        """Transit traffic now; the engine polls it to verify a drain."""
        ...

    async def verify_restored(self) -> Restoration:
        """After removal: does the device carry traffic again (or may it)?"""
        ...

    async def close(self) -> None:
        """Release what this device holds. Idempotent; never raises for a dead device."""
        ...


@dataclass(frozen=True, slots=True)
class ConfigRestore:
    """What ``restore_config`` did: ``changed`` is False when the running configuration
    already was the one asked for."""

    changed: bool
    detail: str  # one sentence for the job log, e.g. "restored 3 lines with frr-reload"


@runtime_checkable
class ConfigRestorer(Protocol):
    """Optional: a driver that can put a whole configuration back. The engine uses it to
    revert what a maintenance action changed (``maintenance exit --revert-config``, and a
    campaign's rollback) before the diversion is removed; a driver without it can only report
    that the configuration changed."""

    async def restore_config(self, config: str) -> ConfigRestore:
        """Make the running configuration equal ``config``, a text ``backup_config``
        returned earlier. Idempotent: ``changed=False`` when it already is. Raises
        ``DriverError`` when the device refuses, or still differs afterwards."""
        ...


@runtime_checkable
class DriverFactory(Protocol):
    """A kind of driver, registered under ``name``: opens drivers for devices and owns what
    they share (connection pools, a simulated fleet's state)."""

    @property
    def name(self) -> str: ...

    def open(self, device: Device) -> Driver:
        """A driver bound to ``device``. No I/O here; raises ``DriverError`` when the device's
        connection or labels cannot work with this driver."""
        ...

    async def aclose(self) -> None:
        """Release the shared resources. Drivers opened earlier must not be used afterwards."""
        ...
