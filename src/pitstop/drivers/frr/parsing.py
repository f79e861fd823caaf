"""Reading what FRR and Linux print: ``show bgp summary json``, ``show bgp ipv4 unicast json``
and its per-prefix form, ``show interface json``, ``ip -j -s link``, ``/proc/net/snmp``,
``/proc/stat`` and ``/proc/meminfo``, and the ``router bgp`` block of a running config.

Pure functions from text to values, so that every format FRR has shown us is pinned by a unit
test with the captured output. Anything that does not parse raises ``DriverError`` naming
the command, because a health check built on a half-read answer would be a guess.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pitstop.domain.errors import DriverError
from pitstop.domain.metrics import BgpPeer, InterfaceCounters

GSHUT_COMMUNITY = "graceful-shutdown"  # 65535:0 as FRR prints it
DEFAULT_LOCAL_PREF = 100

_ROUTER_BGP = re.compile(r"^router bgp (\d+)(?:\s+vrf\s+\S+)?\s*$")


def loads(text: str, command: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DriverError(f"{command}: not JSON: {text.strip()[:200]!r}") from exc


def loads_many(text: str, command: str) -> list[Any]:
    """Several JSON documents printed one after another (vtysh with many ``-c``)."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        try:
            value, i = decoder.raw_decode(text, i)
        except ValueError as exc:
            raise DriverError(f"{command}: not JSON at offset {i}: {text[i : i + 80]!r}") from exc
        out.append(value)
    return out


# --- BGP ------------------------------------------------------------------------------------


def bgp_peers(summary: Mapping[str, Any]) -> tuple[BgpPeer, ...]:
    """Peers of ``show bgp summary json`` (all address families merged, IPv4 first)."""
    seen: dict[str, BgpPeer] = {}
    families = summary.get("ipv4Unicast"), summary.get("ipv6Unicast")
    for family in (f for f in families if isinstance(f, Mapping)):
        for address, p in (family.get("peers") or {}).items():
            if address in seen:
                continue
            state = str(p.get("state", "Unknown"))
            seen[address] = BgpPeer(
                peer=address,
                state=state,
                uptime_s=float(p.get("peerUptimeMsec", 0)) / 1000.0,
                established=int(p.get("connectionsEstablished", 0)),
                dropped=int(p.get("connectionsDropped", 0)),
                prefixes_received=_int(p.get("pfxRcd")),
                prefixes_sent=_int(p.get("pfxSnt")),
                admin_down="admin" in state.lower() or p.get("peerState") == "Admin",
            )
    return tuple(seen.values())


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0  # FRR prints "(Policy)" instead of a count when a policy is missing


def table_prefixes(table: Mapping[str, Any]) -> tuple[str, ...]:
    """The prefixes of ``show bgp ipv4 unicast json``, sorted."""
    return tuple(sorted((table.get("routes") or {}).keys()))


def prefixes_from(table: Mapping[str, Any], peer_ids: set[str]) -> tuple[str, ...]:
    """Prefixes for which ``table`` holds a path learned from one of ``peer_ids``."""
    found = [
        prefix
        for prefix, paths in (table.get("routes") or {}).items()
        if any(p.get("peerId") in peer_ids for p in paths)
    ]
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class PathView:
    """One path of ``show bgp ipv4 unicast <prefix> json``, reduced to what preference is."""

    peer: str
    valid: bool
    best: bool
    local_pref: int
    as_path_len: int
    med: int
    gshut: bool


def prefix_paths(detail: Mapping[str, Any]) -> tuple[PathView, ...]:
    views: list[PathView] = []
    for p in detail.get("paths") or []:
        community = (p.get("community") or {}).get("string", "")
        aspath = p.get("aspath") or {}
        views.append(
            PathView(
                peer=str((p.get("peer") or {}).get("peerId", "")),
                valid=bool(p.get("valid", True)),
                best=bool((p.get("bestpath") or {}).get("overall", False)),
                local_pref=int(p.get("locPrf", DEFAULT_LOCAL_PREF)),
                as_path_len=int(aspath.get("length", len(str(aspath.get("string", "")).split()))),
                med=int(p.get("metric", 0)),
                gshut=GSHUT_COMMUNITY in community.split(),
            )
        )
    return tuple(views)


def depreference(paths: tuple[PathView, ...], peer_ids: set[str]) -> str | None:
    """Why the paths from ``peer_ids`` lose to another path on something other than a tie,
    or None when they are valid and as preferred as the best (they need not be best: on a
    tie BGP keeps the older path)."""
    ours = [p for p in paths if p.peer in peer_ids]
    if not ours:
        return "no path from the device"
    mine = max(ours, key=lambda p: (p.valid, p.local_pref, -p.as_path_len, -p.med))
    if not mine.valid:
        return "its path is not valid"
    if mine.gshut:
        return "its path carries the graceful-shutdown community"
    others = [p for p in paths if p.valid and p.peer not in peer_ids]
    if not others:
        return None
    top = max(p.local_pref for p in others)
    if mine.local_pref < top:
        return f"local-preference {mine.local_pref} < {top}"
    rivals = [p for p in others if p.local_pref == mine.local_pref]
    shortest = min(p.as_path_len for p in rivals) if rivals else mine.as_path_len
    if mine.as_path_len > shortest:
        return f"AS path of {mine.as_path_len} hops > {shortest}"
    return None


def router_bgp_asn(config: str) -> int | None:
    """The AS number of the default-VRF ``router bgp`` block of a running config."""
    for line in config.splitlines():
        m = _ROUTER_BGP.match(line.rstrip())
        if m and " vrf " not in line:
            return int(m.group(1))
    return None


def bgp_neighbors(config: str) -> tuple[str, ...]:
    """Neighbors (addresses, interfaces or peer-groups) with a ``remote-as`` in the default
    ``router bgp`` block, in config order."""
    names: list[str] = []
    for line in _bgp_block(config):
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "neighbor" and parts[2] == "remote-as":
            names.append(parts[1])
    return tuple(names)


def _bgp_block(config: str) -> Iterator[str]:
    inside = False
    for line in config.splitlines():
        if _ROUTER_BGP.match(line.rstrip()) and " vrf " not in line:
            inside = True
            continue
        if inside and (line.startswith("exit") or (line and not line.startswith(" "))):
            return
        if inside:
            yield line.strip()


# --- Interfaces -----------------------------------------------------------------------------


def interface_addresses(frr_interfaces: Mapping[str, Any]) -> set[str]:
    """The device's own addresses, from ``show interface json`` (without prefix lengths)."""
    out: set[str] = set()
    for data in frr_interfaces.values():
        for a in data.get("ipAddresses") or []:
            out.add(str(a.get("address", "")).split("/")[0])
    out.discard("")
    return out


def interface_counters(links: list[Mapping[str, Any]]) -> tuple[InterfaceCounters, ...]:
    """``ip -j -s link show``: oper state and kernel counters per interface, loopback left
    out (it carries no traffic anyone maintains)."""
    out: list[InterfaceCounters] = []
    for link in links:
        name = str(link.get("ifname", ""))
        if not name or name == "lo":
            continue
        stats = link.get("stats64") or link.get("stats") or {}
        rx, tx = stats.get("rx") or {}, stats.get("tx") or {}
        flags = link.get("flags") or []
        oper = str(link.get("operstate", "")).upper()
        out.append(
            InterfaceCounters(
                name=name,
                oper_up=oper == "UP" or (oper == "UNKNOWN" and "LOWER_UP" in flags),
                rx_packets=int(rx.get("packets", 0)),
                tx_packets=int(tx.get("packets", 0)),
                rx_errors=int(rx.get("errors", 0)),
                tx_errors=int(tx.get("errors", 0)),
                rx_drops=int(rx.get("dropped", 0)),
                tx_drops=int(tx.get("dropped", 0)),
                # Printed by newer iproute2 only; older ones report no transitions at all.
                carrier_transitions=int(link.get("carrier_changes", tx.get("carrier_changes", 0))),
            )
        )
    return tuple(out)


# --- The kernel -----------------------------------------------------------------------------


def forwarded_datagrams(snmp: str) -> int:
    """IPv4 ``ForwDatagrams`` plus IPv6 ``Ip6OutForwDatagrams`` from ``/proc/net/snmp`` (and
    ``snmp6``): packets the kernel routed *through* the device. Packets addressed to it (BGP,
    ping) or sent by it are never counted, which is what makes this a transit measurement."""
    total = 0
    found = False
    lines = snmp.splitlines()
    for head, values in itertools.pairwise(lines):
        if head.startswith("Ip: ") and values.startswith("Ip: ") and "ForwDatagrams" in head:
            fields = dict(zip(head.split()[1:], values.split()[1:], strict=False))
            if fields.get("ForwDatagrams", "").isdigit():
                total += int(fields["ForwDatagrams"])
                found = True
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "Ip6OutForwDatagrams" and parts[1].isdigit():
            total += int(parts[1])
    if not found:
        raise DriverError("/proc/net/snmp: no Ip ForwDatagrams counter")
    return total


@dataclass(frozen=True, slots=True)
class CpuTimes:
    idle: int
    total: int


def cpu_times(stat: str) -> CpuTimes:
    for line in stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            return CpuTimes(idle, sum(values[:8]))
    raise DriverError("/proc/stat: no cpu line")


def cpu_idle_pct(a: CpuTimes, b: CpuTimes) -> float | None:
    total = b.total - a.total
    if total <= 0:
        return None
    return round(100.0 * (b.idle - a.idle) / total, 1)


def memory_used_pct(meminfo: str) -> float | None:
    values: dict[str, int] = {}
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0])
    total, available = values.get("MemTotal"), values.get("MemAvailable")
    if not total or available is None:
        return None
    return round(100.0 * (total - available) / total, 1)


def vtysh_problem(output: str) -> str | None:
    """The first error vtysh reported for a configuration command, if any: vtysh prints
    ``% ...`` lines and may still exit 0."""
    for line in output.splitlines():
        text = line.strip()
        if text.startswith("%") or (text.startswith("line ") and "%" in text):
            return text
    return None
