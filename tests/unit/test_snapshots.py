"""The snapshot diff: clean when nothing changed, each category of change found, rates compared
rather than raw counters, and the ``compare`` switches obeyed."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pitstop.domain.metrics import (
    BgpPeer,
    HealthSample,
    InterfaceCounters,
    InterfaceRates,
    Snapshot,
)
from pitstop.domain.parameters import Compare
from pitstop.domain.snapshots import SnapshotDiff, diff

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
ALL = Compare()


def snapshot(
    *,
    at: datetime = T0,
    peers: tuple[BgpPeer, ...] = (
        BgpPeer("10.0.0.1", "Established"),
        BgpPeer("10.0.0.2", "Established"),
    ),
    interfaces: tuple[InterfaceCounters, ...] = (
        InterfaceCounters("eth0", True, rx_errors=5),
        InterfaceCounters("eth1", True),
    ),
    routes: tuple[str, ...] | None = ("10.1.0.0/24", "10.2.0.0/24"),
    rates: tuple[InterfaceRates, ...] = (
        InterfaceRates("eth0", 0.1, 1.0, 0.0),
        InterfaceRates("eth1", 0.0, 0.0, 0.0),
    ),
) -> Snapshot:
    health = HealthSample(at=at, bgp_peers=peers, interfaces=interfaces, routes=routes)
    return Snapshot(at=at, config="hostname leaf1\n", health=health, rates=rates)


def compare(pre: Snapshot, post: Snapshot, c: Compare = ALL) -> SnapshotDiff:
    return diff(pre, post, compare=c, error_rate_limit=1.0, drop_rate_limit=10.0)


def test_identical_snapshots_are_clean() -> None:
    d = compare(snapshot(), snapshot(at=T0 + timedelta(hours=2)))
    assert d.clean
    assert d == SnapshotDiff()
    assert d.summary() == "no differences"
    assert d.as_dict()["clean"] is True


def test_peers_vanished_appeared_and_down() -> None:
    post = snapshot(
        peers=(
            BgpPeer("10.0.0.2", "Active"),
            BgpPeer("10.0.0.3", "Established"),
        )
    )
    d = compare(snapshot(), post)
    assert d.peers_vanished == ("10.0.0.1",)
    assert d.peers_appeared == ("10.0.0.3",)
    assert d.peers_down == ("10.0.0.2",)
    assert not d.clean
    assert "1 BGP peer down (10.0.0.2)" in d.summary()


def test_a_peer_shut_after_maintenance_is_down() -> None:
    post = snapshot(
        peers=(BgpPeer("10.0.0.1", "Idle", admin_down=True), BgpPeer("10.0.0.2", "Established"))
    )
    assert compare(snapshot(), post).peers_down == ("10.0.0.1",)


def test_a_peer_down_before_and_after_is_no_news() -> None:
    peers = (BgpPeer("10.0.0.1", "Idle"),)
    assert compare(snapshot(peers=peers), snapshot(peers=peers)).clean


def test_routes_vanished_and_appeared_sorted() -> None:
    post = snapshot(routes=("10.9.0.0/24", "10.2.0.0/24", "10.0.0.0/8"))
    d = compare(snapshot(), post)
    assert d.routes_vanished == ("10.1.0.0/24",)
    assert d.routes_appeared == ("10.0.0.0/8", "10.9.0.0/24")


@pytest.mark.parametrize(("pre", "post"), [(None, ("10.9.0.0/24",)), (("10.1.0.0/24",), None)])
def test_unknown_routes_on_either_side_report_nothing(
    pre: tuple[str, ...] | None, post: tuple[str, ...] | None
) -> None:
    assert compare(snapshot(routes=pre), snapshot(routes=post)).clean


def test_interfaces_vanished_appeared_and_down() -> None:
    post = snapshot(
        interfaces=(InterfaceCounters("eth0", False), InterfaceCounters("eth2", True)),
        rates=(),
    )
    d = compare(snapshot(), post)
    assert d.interfaces_vanished == ("eth1",)
    assert d.interfaces_appeared == ("eth2",)
    assert d.interfaces_down == ("eth0",)
    assert d.rates_worse == ()


def test_an_interface_down_before_and_after_is_no_news() -> None:
    down = (InterfaceCounters("eth0", False),)
    assert compare(snapshot(interfaces=down), snapshot(interfaces=down)).clean


def test_raw_counters_that_grew_with_equal_rates_are_clean() -> None:
    grown = (
        InterfaceCounters("eth0", True, rx_errors=5_000_000, rx_drops=9_000_000),
        InterfaceCounters("eth1", True, tx_errors=123_456, carrier_transitions=50),
    )
    assert compare(snapshot(), snapshot(interfaces=grown)).clean


@pytest.mark.parametrize(
    ("before", "after", "worse"),
    [
        (0.1, 0.15, False),  # under the 1/s limit
        (0.1, 1.0, False),  # at the limit
        (0.1, 1.5, True),  # over the limit and over twice the rate before
        (2.0, 4.0, False),  # twice the rate before exactly
        (2.0, 4.1, True),
        (0.0, 1.01, True),
    ],
)
def test_error_rates_worse_than_twice_before_and_the_limit(
    before: float, after: float, worse: bool
) -> None:
    pre = snapshot(rates=(InterfaceRates("eth0", before, 0.0, 0.0),))
    post = snapshot(rates=(InterfaceRates("eth0", after, 0.0, 0.0),))
    d = compare(pre, post)
    assert bool(d.rates_worse) is worse
    if worse:
        assert d.rates_worse[0].startswith("eth0: errors")


def test_drop_rates_use_the_drop_limit() -> None:
    pre = snapshot(rates=(InterfaceRates("eth1", 0.0, 1.0, 0.0),))
    assert compare(pre, snapshot(rates=(InterfaceRates("eth1", 0.0, 9.0, 0.0),))).clean
    d = compare(pre, snapshot(rates=(InterfaceRates("eth1", 0.0, 12.0, 0.0),)))
    assert d.rates_worse == ("eth1: drops 12/s, was 1/s",)


def test_an_interface_without_a_rate_before_is_judged_by_the_limit() -> None:
    post = snapshot(rates=(InterfaceRates("eth0", 0.1, 1.0, 0.0), InterfaceRates("eth9", 3, 0, 0)))
    assert compare(snapshot(), post).rates_worse == ("eth9: errors 3/s, was 0/s",)


def _everything_changed() -> tuple[Snapshot, Snapshot]:
    post = snapshot(
        peers=(BgpPeer("10.0.0.2", "Idle"), BgpPeer("10.0.0.9", "Established")),
        interfaces=(InterfaceCounters("eth0", False), InterfaceCounters("eth5", True)),
        routes=("10.7.0.0/16",),
        rates=(InterfaceRates("eth0", 50.0, 500.0, 0.0),),
    )
    return snapshot(), post


@pytest.mark.parametrize(
    ("switch", "categories"),
    [
        ("peers", ("peers_vanished", "peers_appeared", "peers_down")),
        ("routes", ("routes_vanished", "routes_appeared")),
        (
            "interfaces",
            ("interfaces_vanished", "interfaces_appeared", "interfaces_down", "rates_worse"),
        ),
    ],
)
def test_compare_switches(switch: str, categories: tuple[str, ...]) -> None:
    pre, post = _everything_changed()
    everything = compare(pre, post)
    assert all(getattr(everything, c) for c in categories)
    off = compare(pre, post, Compare(**{switch: False}))
    assert all(getattr(off, c) == () for c in categories)
    assert not off.clean  # the other categories still report
    assert compare(pre, post, Compare(peers=False, routes=False, interfaces=False)).clean


def test_as_dict_and_summary() -> None:
    pre, post = _everything_changed()
    d = compare(pre, post)
    data = d.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["clean"] is False
    assert data["routes_appeared"] == ["10.7.0.0/16"]
    summary = d.summary()
    assert "\n" not in summary
    for word in ("10.0.0.1", "10.0.0.9", "eth5", "10.7.0.0/16", "eth0: errors 50/s"):
        assert word in summary


def test_a_long_category_is_cut_short_in_the_summary() -> None:
    pre = snapshot(routes=tuple(f"10.{i}.0.0/24" for i in range(12)))
    d = compare(pre, replace(pre, at=T0 + timedelta(1), health=replace(pre.health, routes=())))
    assert len(d.routes_vanished) == 12
    assert d.summary().endswith("+7 more)")
