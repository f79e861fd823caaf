"""The dispatch order: online estimates from measured durations, urgency from remaining paths
and group load; it only reorders, so the window's rules still hold."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.domain.campaign_estimates import dispatch_order, estimates
from pitstop.domain.campaign_window import WindowDevice, next_devices
from pitstop.domain.campaigns import DeviceState

S = DeviceState


def dev(
    name: str, groups: tuple[str, ...] = (), state: S = S.PENDING, after: tuple = ()
) -> WindowDevice:
    return WindowDevice(name, "leaf", groups, state, after)


def test_without_measurements_every_estimate_is_the_expected_duration() -> None:
    devices = [dev("a", ("r1",)), dev("b", ("r2",))]
    assert estimates(devices, measured={}, expected_s=60.0) == {"a": 60.0, "b": 60.0}
    order = dispatch_order(devices, measured={}, expected_s=60.0)
    assert [d.name for d in order] == ["a", "b"]  # the plan's order


def test_a_slow_rack_is_estimated_slow_and_goes_first() -> None:
    devices = [
        dev("f1", ("fast",), S.DONE),
        dev("s1", ("slow",), S.DONE),
        dev("f2", ("fast",)),
        dev("s2", ("slow",)),
    ]
    measured = {"f1": 10.0, "s1": 90.0}
    est = estimates(devices, measured=measured, expected_s=60.0)
    # Shrunk towards the campaign mean (50): one sample weighs against three of the prior.
    assert est["s2"] == (90.0 + 3 * 50.0) / 4
    assert est["f2"] == (10.0 + 3 * 50.0) / 4
    order = dispatch_order(devices, measured=measured, expected_s=60.0)
    assert [d.name for d in order[:2]] == ["s2", "f2"]


def test_a_long_chain_starts_before_a_lone_device() -> None:
    devices = [dev("lone"), dev("head"), dev("tail", after=("head",))]
    order = dispatch_order(devices, measured={}, expected_s=10.0)
    assert [d.name for d in order] == ["head", "lone", "tail"]


def test_the_most_loaded_tight_group_goes_first() -> None:
    # Rack r2 has three pending members on one slot, r1 one: r2 needs the most time.
    devices = [dev("a", ("r1",)), dev("b", ("r2",)), dev("c", ("r2",)), dev("d", ("r2",))]
    order = dispatch_order(
        devices, measured={}, expected_s=10.0, slots={"r1": 1, "r2": 1}, concurrency=4
    )
    assert order[0].name == "b"
    # A group as wide as the concurrency never binds alone and changes nothing.
    wide = dispatch_order(
        devices, measured={}, expected_s=10.0, slots={"r1": 4, "r2": 4}, concurrency=4
    )
    assert [d.name for d in wide] == ["a", "b", "c", "d"]


states = st.sampled_from([S.PENDING, S.PENDING, S.ENTERING, S.DONE, S.FAILED])


@settings(max_examples=150, deadline=None)
@given(
    spec=st.lists(
        st.tuples(
            st.sets(st.sampled_from(["g1", "g2", "g3"]), max_size=2), states, st.floats(1, 100)
        ),
        min_size=1,
        max_size=12,
    ),
    slots=st.fixed_dictionaries({g: st.integers(1, 3) for g in ("g1", "g2", "g3")}),
    concurrency=st.integers(1, 5),
)
def test_reordering_keeps_every_device_and_every_window_rule(
    spec: list, slots: dict[str, int], concurrency: int
) -> None:
    devices = [
        WindowDevice(f"d{i}", "leaf", tuple(sorted(g)), state, (f"d{i - 1}",) if i % 3 == 2 else ())
        for i, (g, state, _) in enumerate(spec)
    ]
    measured = {d.name: v for d, (_, _, v) in zip(devices, spec, strict=True) if d.state is S.DONE}
    order = dispatch_order(
        devices, measured=measured, expected_s=30.0, slots=slots, concurrency=concurrency
    )
    assert sorted(d.name for d in order) == sorted(d.name for d in devices)
    used: dict[str, int] = {}
    for d in devices:
        if d.state is S.ENTERING:
            for g in d.groups:
                used[g] = used.get(g, 0) + 1
    chosen = next_devices(order, roles_before={}, concurrency=concurrency, slots=slots, used=used)
    by_name = {d.name: d for d in devices}
    assert all(by_name[n].state is S.PENDING for n in chosen)
    in_flight = sum(d.state is S.ENTERING for d in devices)
    assert in_flight + len(chosen) <= max(concurrency, in_flight)
    for g, k in slots.items():
        taken = used.get(g, 0) + sum(g in by_name[n].groups for n in chosen)
        assert taken <= max(k, used.get(g, 0))
    for n in chosen:
        assert all(by_name[a].state is S.DONE for a in by_name[n].after)


def test_a_device_known_to_be_slow_is_estimated_slow_and_goes_first() -> None:
    devices = [dev("a", ("r1",)), dev("b", ("r2",)), dev("slow", ("r3",))]
    est = estimates(devices, measured={}, expected_s=60.0, pace={"slow": 4.0, "a": 0.5})
    assert est == {"a": 30.0, "b": 60.0, "slow": 240.0}
    order = dispatch_order(devices, measured={}, expected_s=60.0, pace={"slow": 4.0})
    assert [d.name for d in order] == ["slow", "a", "b"]


def test_a_slow_device_known_to_be_slow_does_not_make_its_rack_look_slow() -> None:
    devices = [
        dev("slow", ("r1",), S.DONE),
        dev("peer", ("r1",)),
        dev("other", ("r2",), S.DONE),
    ]
    measured = {"slow": 400.0, "other": 100.0}
    known = estimates(devices, measured=measured, expected_s=60.0, pace={"slow": 4.0})
    # Divided by its pace, the slow device measured a typical 100 s, like the other rack.
    assert known["peer"] == pytest.approx(100.0)
    unknown = estimates(devices, measured=measured, expected_s=60.0)
    assert unknown["peer"] > 200.0
