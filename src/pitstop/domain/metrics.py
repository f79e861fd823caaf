"""What drivers report about a device: typed samples that the pure health checks, the drain
verification and the snapshot diff work on. Drivers fill these; nothing here does I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pitstop.domain.profile import DriverProfile


@dataclass(frozen=True, slots=True)
class BgpPeer:
    peer: str
    state: str  # "Established", "Idle", "Active", ... as the routing software says it
    uptime_s: float = 0.0
    established: int = 0  # sessions established since the daemon started
    dropped: int = 0  # sessions dropped since the daemon started (flaps)
    prefixes_received: int = 0
    prefixes_sent: int = 0
    admin_down: bool = False

    @property
    def up(self) -> bool:
        return self.state.lower() == "established"


@dataclass(frozen=True, slots=True)
class InterfaceCounters:
    name: str
    oper_up: bool
    rx_packets: int = 0
    tx_packets: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_drops: int = 0
    tx_drops: int = 0
    carrier_transitions: int = 0


@dataclass(frozen=True, slots=True)
class Alarm:
    severity: str  # critical | major | minor
    message: str


@dataclass(frozen=True, slots=True)
class ReportedCheck:
    """A check the driver judged itself (one of its profile's ``own_checks``): a load
    balancer's backends in service, a host's services running. ``status`` is ``pass``,
    ``warn`` or ``fail``; ``message`` names what is at fault, for the job log."""

    name: str
    status: str
    message: str
    observed: int | float | str | None = None
    threshold: int | float | str | None = None


@dataclass(frozen=True, slots=True)
class HealthSample:
    """One reading of a device's health. ``None`` means the driver cannot measure it."""

    at: datetime
    bgp_peers: tuple[BgpPeer, ...] = ()
    interfaces: tuple[InterfaceCounters, ...] = ()
    cpu_idle_pct: float | None = None
    memory_used_pct: float | None = None
    alarms: tuple[Alarm, ...] = ()
    daemons: Mapping[str, bool] = field(default_factory=dict)
    routes: tuple[str, ...] | None = None  # prefixes in the device's table, when known
    extra: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[ReportedCheck, ...] = ()  # the driver's own checks, judged by the driver


@dataclass(frozen=True, slots=True)
class TrafficSample:
    """Transit traffic through the device (control-plane packets excluded)."""

    at: datetime
    transit_pps: float
    drained: bool | None = None  # the driver's own verdict, when it has one


@dataclass(frozen=True, slots=True)
class Facts:
    hostname: str
    vendor: str = ""
    model: str = ""
    os_version: str = ""
    serial: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Capabilities:
    diversions: tuple[str, ...]  # the diversion methods the driver can apply; first is default
    measures_traffic: bool = True
    drained_signal: bool = False
    config_backup: bool = True
    # The checks and step time limits of this driver's devices (a router's by default).
    profile: DriverProfile = field(default_factory=DriverProfile)


@dataclass(frozen=True, slots=True)
class InterfaceRates:
    """Counter deltas over a window, per second: what health checks and diffs compare."""

    name: str
    errors_per_s: float
    drops_per_s: float
    carrier_transitions_per_s: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Taken before a device leaves service, compared after it returns. ``rates`` come from
    the two samples of the health check that preceded it."""

    at: datetime
    config: str
    health: HealthSample
    rates: tuple[InterfaceRates, ...] = ()
