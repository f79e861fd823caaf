"""The diversions the ``frr`` driver can apply, as configuration: how to tell from a running
config whether each is in place, and the vtysh commands that add or remove it.

* ``graceful-shutdown`` (the default, RFC 8326): ``bgp graceful-shutdown`` under ``router
  bgp``. Every route the device advertises carries GRACEFUL_SHUTDOWN (65535:0) and receivers
  set LOCAL_PREF 0, so they move to any other path before the device goes away.
* ``max-med``: ``bgp max-med administrative``. Only peers that compare MED (same neighbouring
  AS, or ``always-compare-med``) move away: choose it where GSHUT is filtered but MED is not.
* ``as-path-prepend``: an outbound route-map ``PSL-MAINT-PREPEND`` on every neighbor that
  prepends the device's own AS (``frr.prepend_count`` times, 3 by default). Works on any BGP
  speaker, including ones that strip communities; it refuses a neighbor that already has an
  outbound route-map, rather than replace the operator's policy.
* ``isis-overload`` and ``ospf-max-metric``: ``set-overload-bit`` under ``router isis`` and
  ``max-metric router-lsa administrative`` under ``router ospf``, for IGP fabrics. Offered
  only when the device's ``frr.igp`` label names the IGP, and applied only when the block
  exists.

Removal issues the inverse commands of exactly what is present, so the running config after
removal equals the one before the diversion (the driver checks it against its backup).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pitstop.domain.errors import DriverError
from pitstop.drivers.frr.parsing import bgp_neighbors, router_bgp_asn

DEFAULT = "graceful-shutdown"
BGP_METHODS = ("graceful-shutdown", "max-med", "as-path-prepend")
IGP_METHODS = {"isis": "isis-overload", "ospf": "ospf-max-metric"}
METHODS = (*BGP_METHODS, *IGP_METHODS.values())
PREPEND_MAP = "PSL-MAINT-PREPEND"
DEFAULT_PREPEND = 3

_LINES = {
    "graceful-shutdown": "bgp graceful-shutdown",
    "max-med": "bgp max-med administrative",
}
_ISIS = re.compile(r"^router isis (\S+)\s*$", re.MULTILINE)
_OSPF = re.compile(r"^router ospf\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Plan:
    """What applying or removing one method means on one config."""

    method: str
    present: bool
    commands: tuple[str, ...]  # for vtysh after "configure terminal"; empty when nothing to do
    detail: str


def methods_for(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The methods a device offers: the BGP ones, plus its IGP's when ``frr.igp`` names one."""
    igps = [g.strip() for g in labels.get("frr.igp", "").split(",") if g.strip()]
    return BGP_METHODS + tuple(IGP_METHODS[g] for g in igps if g in IGP_METHODS)


def _block_has(config: str, header: re.Pattern[str] | str, line: str) -> bool:
    inside = False
    for raw in config.splitlines():
        if isinstance(header, str):
            starts = raw.rstrip() == header
        else:
            starts = bool(header.match(raw.rstrip()))
        if starts:
            inside = True
            continue
        if inside and (raw.startswith("exit") or (raw and not raw.startswith(" "))):
            inside = False
        if inside and raw.strip() == line:
            return True
    return False


def _asn(config: str, device: str) -> int:
    asn = router_bgp_asn(config)
    if asn is None:
        raise DriverError(f"{device}: no 'router bgp' in the running config to divert")
    return asn


def _outbound_maps(config: str) -> dict[str, str]:
    """neighbor -> outbound route-map in the IPv4 unicast family of ``router bgp``."""
    maps: dict[str, str] = {}
    for line in config.splitlines():
        parts = line.split()
        if (
            len(parts) == 5
            and parts[0] == "neighbor"
            and parts[2] == "route-map"
            and parts[4] == "out"
            and line.startswith("  ")
        ):
            maps[parts[1]] = parts[3]
    return maps


def present(config: str, method: str) -> bool:
    if method == "graceful-shutdown":
        return _block_has(config, re.compile(r"^router bgp \d+$"), "bgp graceful-shutdown")
    if method == "max-med":
        return _block_has(config, re.compile(r"^router bgp \d+$"), "bgp max-med administrative")
    if method == "as-path-prepend":
        return f"route-map {PREPEND_MAP} permit 10" in config.splitlines()
    if method == "isis-overload":
        return _block_has(config, _ISIS, "set-overload-bit")
    if method == "ospf-max-metric":
        return _block_has(config, _OSPF, "max-metric router-lsa administrative")
    raise DriverError(f"unknown diversion method {method!r}", method=method)


def apply_plan(config: str, method: str, *, device: str, prepend: int = DEFAULT_PREPEND) -> Plan:
    if present(config, method):
        return Plan(method, True, (), "already in place")
    if method in ("graceful-shutdown", "max-med"):
        asn = _asn(config, device)
        line = _LINES[method]
        return Plan(method, False, (f"router bgp {asn}", line), f"added '{line}'")
    if method == "as-path-prepend":
        asn = _asn(config, device)
        neighbors = bgp_neighbors(config)
        if not neighbors:
            raise DriverError(f"{device}: 'router bgp {asn}' has no neighbors to prepend to")
        taken = {n: m for n, m in _outbound_maps(config).items() if n in neighbors}
        if taken:
            listed = ", ".join(f"{n} ({m})" for n, m in sorted(taken.items()))
            raise DriverError(
                f"{device}: as-path-prepend would replace the outbound route-maps of {listed}; "
                "add the prepend to those route-maps or use graceful-shutdown",
                method=method,
            )
        prepends = " ".join([str(asn)] * prepend)
        commands = [
            f"route-map {PREPEND_MAP} permit 10",
            f"set as-path prepend {prepends}",
            "exit",
            f"router bgp {asn}",
            "address-family ipv4 unicast",
            *(f"neighbor {n} route-map {PREPEND_MAP} out" for n in neighbors),
        ]
        return Plan(
            method, False, tuple(commands),
            f"prepended AS {asn} x{prepend} towards {len(neighbors)} neighbors",
        )  # fmt: skip
    if method == "isis-overload":
        m = _ISIS.search(config)
        if m is None:
            raise DriverError(f"{device}: no 'router isis' to set the overload bit in")
        return Plan(method, False, (f"router isis {m.group(1)}", "set-overload-bit"),
                    "set the IS-IS overload bit")  # fmt: skip
    if method == "ospf-max-metric":
        if _OSPF.search(config) is None:
            raise DriverError(f"{device}: no 'router ospf' to set max-metric in")
        return Plan(method, False, ("router ospf", "max-metric router-lsa administrative"),
                    "set OSPF max-metric router-lsa administrative")  # fmt: skip
    raise DriverError(f"{device}: unknown diversion method {method!r}", method=method)


def remove_plan(config: str, method: str, *, device: str) -> Plan:
    if not present(config, method):
        return Plan(method, False, (), "not in place")
    if method in ("graceful-shutdown", "max-med"):
        asn = _asn(config, device)
        line = _LINES[method]
        return Plan(method, True, (f"router bgp {asn}", f"no {line}"), f"removed '{line}'")
    if method == "as-path-prepend":
        commands: list[str] = []
        users = [n for n, m in _outbound_maps(config).items() if m == PREPEND_MAP]
        bgp_asn = router_bgp_asn(config)
        if users and bgp_asn is not None:
            commands += [f"router bgp {bgp_asn}", "address-family ipv4 unicast"]
            commands += [f"no neighbor {n} route-map {PREPEND_MAP} out" for n in users]
            commands += ["exit-address-family", "exit"]
        commands.append(f"no route-map {PREPEND_MAP}")
        return Plan(method, True, tuple(commands), f"removed route-map {PREPEND_MAP}")
    if method == "isis-overload":
        m = _ISIS.search(config)
        tag = m.group(1) if m else ""
        return Plan(method, True, (f"router isis {tag}", "no set-overload-bit"),
                    "cleared the IS-IS overload bit")  # fmt: skip
    if method == "ospf-max-metric":
        return Plan(method, True, ("router ospf", "no max-metric router-lsa administrative"),
                    "removed OSPF max-metric")  # fmt: skip
    raise DriverError(f"{device}: unknown diversion method {method!r}", method=method)
