"""The simulated device's physics: who it is, what its configuration says, and how its traffic
and counters move with time. Pure functions of the device, its labels and an instant.

This module owns everything about a simulated device that can be computed rather than stored.
It is kept apart from the driver (``simulated.py``) and the state store
(``simulated_state.py``) so that the model can be read, and tested, as arithmetic: the same
device always gets the same peers, interfaces, routes and configuration (derived from a hash
of its fabric and name, never from ``hash()``, which changes with every process), so a
pre-maintenance snapshot and a post-maintenance one compare clean, and a restarted server
sees the same fleet as before.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pitstop.domain.errors import DriverError
from pitstop.domain.inventory import Device

# Every fault the simulator knows, with what it does; ``inject`` and labels are checked
# against it so a typo fails loudly instead of simulating a healthy device.
FAULTS: Mapping[str, str] = {
    "bgp-peer-down": "one BGP peer is Idle",
    "bgp-flapping": "one BGP peer has dropped its session 9 times",
    "high-cpu": "CPU idle falls to 20 %",
    "high-memory": "memory use rises to 92 %",
    "critical-alarm": "a critical alarm (power supply failed) is raised",
    "daemon-down": "bgpd is not running",
    "interface-errors": "the first interface counts about 50 receive errors a second",
    "drain-stuck": "traffic does not fall after the diversion is applied",
    "undrain-fails": "traffic does not return after the diversion is removed",
    "unreachable": "every call raises DeviceUnreachable",
    "slow": "every call first waits sim.latency_ms (default 200 ms)",
    "apply-fails": "apply_maintenance raises DriverError",
    "remove-fails": "remove_maintenance raises DriverError",
    "restore-fails": "restore_config raises DriverError",
}

# Label values may hold only [A-Za-z0-9._:/@+-], so a list in one label needs a separator from
# that set: '+' and '.' (no fault name has either), plus ',' and ';' for other sources.
_FAULT_SEPARATORS = re.compile(r"[,+;.\s]+")

# The configuration line each diversion method adds under ``router bgp`` while it is applied.
DIVERSION_LINES: Mapping[str, str] = {
    "graceful-shutdown": " bgp graceful-shutdown",
    "max-med": " bgp max-med administrative",
}

DEFAULT_PPS = 20000.0
DEFAULT_CONVERGENCE_S = 3.0
DEFAULT_LATENCY_MS = 200.0
ERRORS_PER_S = 50.0  # the interface-errors fault; the default threshold is 1 per second
ROUTE_COUNT = 20


def parse_faults(text: str) -> frozenset[str]:
    """Fault names from a label value such as ``bgp-peer-down+high-cpu``."""
    names = frozenset(n for n in _FAULT_SEPARATORS.split(text.strip()) if n)
    unknown = sorted(names - FAULTS.keys())
    if unknown:
        raise DriverError(
            f"sim.fault: unknown fault {', '.join(map(repr, unknown))}; "
            f"known faults: {', '.join(sorted(FAULTS))}",
            faults=unknown,
        )
    return names


def _number(labels: Mapping[str, str], key: str, default: float) -> float:
    raw = labels.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DriverError(f"label {key}={raw!r} is not a number", label=key) from None
    if not math.isfinite(value) or value < 0:
        raise DriverError(f"label {key}={raw!r} must be a finite number >= 0", label=key)
    return value


@dataclass(frozen=True, slots=True)
class SimParams:
    """The ``sim.*`` labels of a device, read once when the driver is opened."""

    base_pps: float = DEFAULT_PPS
    convergence_s: float = DEFAULT_CONVERGENCE_S
    latency_s: float = DEFAULT_LATENCY_MS / 1000
    faults: frozenset[str] = frozenset()

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> SimParams:
        return cls(
            base_pps=_number(labels, "sim.pps", DEFAULT_PPS),
            convergence_s=_number(labels, "sim.convergence_s", DEFAULT_CONVERGENCE_S),
            latency_s=_number(labels, "sim.latency_ms", DEFAULT_LATENCY_MS) / 1000,
            faults=parse_faults(labels.get("sim.fault", "")),
        )


def _seed(key: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{key}|{salt}".encode()).digest()[:8], "big")


@dataclass(frozen=True, slots=True)
class Peer:
    address: str
    remote_as: int
    interface: str


# The AS numbering of a believable eBGP Clos: one AS for the spine layer, one per leaf.
_AS_BASE = {"spine": 65100, "leaf": 65200, "border": 65300}


@dataclass(frozen=True, slots=True)
class Profile:
    """What a simulated device is, derived from its fabric and name alone."""

    hostname: str
    role: str
    asn: int
    router_id: str
    peers: tuple[Peer, ...]
    interfaces: tuple[str, ...]
    weights: tuple[float, ...]  # each interface's share of the transit traffic
    routes: tuple[str, ...]
    serial: str
    phase: float  # offsets the daily wobble of traffic and CPU between devices
    base_uptime_s: float  # how long the daemons had been up when the simulator first saw it
    base_packets: float  # the packet counters' value when the simulator first saw it

    @classmethod
    def of(cls, device: Device) -> Profile:
        key = f"{device.fabric}/{device.name}"
        n = 2 + _seed(key, "peers") % 3  # 2 to 4 links, one BGP session on each
        subnet = 1 + _seed(key, "subnet") % 250
        network = device.role in _AS_BASE
        prefix = "swp" if network else "eth"
        interfaces = tuple(f"{prefix}{i + 1}" for i in range(n))
        asn = _AS_BASE.get(device.role, 65400)
        if device.role != "spine":
            asn += 1 + _seed(key, "asn") % 99
        peers = tuple(
            Peer(
                address=f"10.0.{subnet}.{2 * i}",
                remote_as=65100 if device.role != "spine" else 65201 + i,
                interface=interfaces[i],
            )
            for i in range(n)
        )
        raw = [1 + _seed(key, f"weight{i}") % 4 for i in range(n)]
        block = 20 + _seed(key, "routes") % 200
        rid = _seed(key, "rid")
        return cls(
            hostname=device.name,
            role=device.role,
            asn=asn,
            router_id=f"10.255.{rid % 250 + 1}.{(rid >> 8) % 250 + 1}",
            peers=peers,
            interfaces=interfaces,
            weights=tuple(w / sum(raw) for w in raw),
            routes=tuple(f"10.{block}.{j}.0/24" for j in range(ROUTE_COUNT)),
            serial=f"SIM{_seed(key, 'serial') % 16**8:08X}",
            phase=(_seed(key, "phase") % 3600) / 3600 * 2 * math.pi,
            base_uptime_s=86400.0 * (3 + _seed(key, "uptime") % 60),
            base_packets=float(10**9 + _seed(key, "packets") % 10**9),
        )

    def config(self) -> str:
        """The running configuration, in the shape of FRR's ``show running-config``."""
        lines = [
            "frr version 9.1",
            "frr defaults datacenter",
            f"hostname {self.hostname}",
            "log syslog informational",
            "service integrated-vtysh-config",
            "!",
            "interface lo",
            f" ip address {self.router_id}/32",
            "exit",
            "!",
        ]
        for peer in self.peers:
            local = peer.address.rsplit(".", 1)
            lines += [
                f"interface {peer.interface}",
                f" description to AS{peer.remote_as} via {peer.address}",
                f" ip address {local[0]}.{int(local[1]) + 1}/31",
                "exit",
                "!",
            ]
        lines += [
            f"router bgp {self.asn}",
            f" bgp router-id {self.router_id}",
            " bgp bestpath as-path multipath-relax",
        ]
        for peer in self.peers:
            lines += [
                f" neighbor {peer.address} remote-as {peer.remote_as}",
                f" neighbor {peer.address} description {peer.interface}",
            ]
        lines += [
            " !",
            " address-family ipv4 unicast",
            f"  network {self.router_id}/32",
            f"  network {self.routes[0]}",
            "  redistribute connected",
            " exit-address-family",
            "exit",
            "!",
            "line vty",
            "!",
            "end",
        ]
        return "\n".join(lines) + "\n"

    def wobble(self, now: datetime, period_s: float, amplitude: float) -> float:
        """A small, deterministic variation around 1.0, so samples look measured."""
        t = now.timestamp()
        return 1.0 + amplitude * math.sin(2 * math.pi * t / period_s + self.phase)


def with_diversion(config: str, method: str) -> str:
    """``config`` with the diversion line inserted right below ``router bgp``."""
    lines = config.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("router bgp "):
            return "\n".join([*lines[: i + 1], DIVERSION_LINES[method], *lines[i + 1 :]])
    return config + DIVERSION_LINES[method].strip() + "\n"


def diversion_in(config: str) -> str | None:
    """The diversion method whose line ``config`` holds, if any."""
    lines = config.split("\n")
    for method, line in DIVERSION_LINES.items():
        if line in lines or line.strip() in lines:
            return method
    return None


def without_diversion(config: str, method: str) -> str:
    """``config`` with the first diversion line removed: the exact inverse of
    ``with_diversion``, since the generated configuration never holds that line itself."""
    lines = config.split("\n")
    wanted = DIVERSION_LINES[method]
    for candidate in (wanted, wanted.strip()):
        if candidate in lines:
            lines.remove(candidate)
            break
    return "\n".join(lines)


def traffic_level(
    *,
    diverted: bool,
    since: datetime | None,
    start: float,
    now: datetime,
    convergence_s: float,
    stuck: bool,
) -> float:
    """The share (0 to 1) of its usual transit traffic the device carries at ``now``.

    It moves in a straight line at ``1 / convergence_s`` per second from ``start`` (the level
    when the diversion was last applied or removed, at ``since``) towards 0 while diverted and
    towards 1 otherwise; ``stuck`` (drain-stuck, undrain-fails) keeps it at ``start``."""
    if since is None or stuck:
        return start
    elapsed = max(0.0, (now - since).total_seconds())
    step = math.inf if convergence_s <= 0 else elapsed / convergence_s
    return max(0.0, start - step) if diverted else min(1.0, start + step)


def transit_pps(profile: Profile, params: SimParams, level: float, now: datetime) -> float:
    """Packets per second through the device at ``level``: the usual rate with a 2 % wobble,
    and a residual under 1 pps (stray flows, probes) that no diversion removes."""
    usual = params.base_pps * profile.wobble(now, 300.0, 0.02)
    residual = min(usual, 0.5 * profile.wobble(now, 60.0, 0.6))
    return residual + (usual - residual) * level
