"""Comparing a device after maintenance with the snapshot taken before it left service.

This module owns what counts as a difference. Peers, routes and interfaces are compared as
sets (what vanished, what appeared, what went down), each category behind its own switch in
``advanced_parameters.compare``. Interface health is compared by *rate* only: raw error and
drop counters keep growing while a device is in maintenance (and reset when it reboots), so
comparing them would report a difference after every maintenance.

A rate counts as worse when it is above both twice its value before and the health check's
own threshold: a link that was already noisy and stays so is no news, and doubling a rate of
0.01/s is noise rather than a fault.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from pitstop.domain.health import fmt, peer_down
from pitstop.domain.metrics import InterfaceRates, Snapshot
from pitstop.domain.parameters import Compare

# How many names a one-line summary shows per category before "+N more".
_SHOWN = 5


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    peers_vanished: tuple[str, ...] = ()
    peers_appeared: tuple[str, ...] = ()
    peers_down: tuple[str, ...] = ()
    routes_vanished: tuple[str, ...] = ()
    routes_appeared: tuple[str, ...] = ()
    interfaces_vanished: tuple[str, ...] = ()
    interfaces_appeared: tuple[str, ...] = ()
    interfaces_down: tuple[str, ...] = ()
    rates_worse: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: list(getattr(self, f.name)) for f in fields(self)}
        out["clean"] = self.clean
        return out

    def summary(self) -> str:
        if self.clean:
            return "no differences"
        parts = [
            _part(self.peers_down, "BGP peer", "down"),
            _part(self.peers_vanished, "BGP peer", "vanished"),
            _part(self.peers_appeared, "BGP peer", "appeared"),
            _part(self.interfaces_down, "interface", "down"),
            _part(self.interfaces_vanished, "interface", "vanished"),
            _part(self.interfaces_appeared, "interface", "appeared"),
            _part(self.routes_vanished, "route", "vanished"),
            _part(self.routes_appeared, "route", "appeared"),
            _part(self.rates_worse, "interface rate", "worse", sep="; "),
        ]
        return "; ".join(p for p in parts if p)


def _part(items: tuple[str, ...], noun: str, what: str, *, sep: str = ", ") -> str:
    if not items:
        return ""
    shown = sep.join(items[:_SHOWN])
    more = f" +{len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    plural = noun if len(items) == 1 else noun + "s"
    return f"{len(items)} {plural} {what} ({shown}{more})"


def _sets(before: Iterable[str], after: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    pre, post = set(before), set(after)
    return tuple(sorted(pre - post)), tuple(sorted(post - pre))


def _rates_worse(
    pre: Iterable[InterfaceRates],
    post: Iterable[InterfaceRates],
    *,
    error_rate_limit: float,
    drop_rate_limit: float,
) -> tuple[str, ...]:
    before = {r.name: r for r in pre}
    worse: list[str] = []
    for after in sorted(post, key=lambda r: r.name):
        # An interface without a rate before is judged against the threshold alone.
        old = before.get(after.name, InterfaceRates(after.name, 0.0, 0.0, 0.0))
        for noun, was, now, limit in (
            ("errors", old.errors_per_s, after.errors_per_s, error_rate_limit),
            ("drops", old.drops_per_s, after.drops_per_s, drop_rate_limit),
        ):
            if now > max(was * 2, limit):
                worse.append(f"{after.name}: {noun} {fmt(now)}/s, was {fmt(was)}/s")
    return tuple(worse)


def diff(
    pre: Snapshot,
    post: Snapshot,
    *,
    compare: Compare,
    error_rate_limit: float,
    drop_rate_limit: float,
) -> SnapshotDiff:
    """What changed between ``pre`` and ``post``, in the categories ``compare`` switches on.
    Routes are compared only when both snapshots know them."""
    found: dict[str, tuple[str, ...]] = {}
    a, b = pre.health, post.health
    if compare.peers:
        found["peers_vanished"], found["peers_appeared"] = _sets(
            (p.peer for p in a.bgp_peers), (p.peer for p in b.bgp_peers)
        )
        was_up = {p.peer for p in a.bgp_peers if not peer_down(p)}
        found["peers_down"] = tuple(
            sorted({p.peer for p in b.bgp_peers if p.peer in was_up and peer_down(p)})
        )
    if compare.routes and a.routes is not None and b.routes is not None:
        found["routes_vanished"], found["routes_appeared"] = _sets(a.routes, b.routes)
    if compare.interfaces:
        found["interfaces_vanished"], found["interfaces_appeared"] = _sets(
            (i.name for i in a.interfaces), (i.name for i in b.interfaces)
        )
        was_oper_up = {i.name for i in a.interfaces if i.oper_up}
        found["interfaces_down"] = tuple(
            sorted({i.name for i in b.interfaces if i.name in was_oper_up and not i.oper_up})
        )
        found["rates_worse"] = _rates_worse(
            pre.rates,
            post.rates,
            error_rate_limit=error_rate_limit,
            drop_rate_limit=drop_rate_limit,
        )
    return SnapshotDiff(**found)
