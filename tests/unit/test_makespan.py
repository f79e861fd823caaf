"""The makespan lower bound is valid: no schedule that keeps the campaign's rules beats it,
neither the sliding window's nor the best one found by exhaustive search."""

from __future__ import annotations

import heapq
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.domain.campaign_window import WindowDevice, next_devices
from pitstop.domain.campaigns import DeviceState
from pitstop.domain.makespan import TimedDevice, makespan_bound, sequence_bound

S = DeviceState
durations = st.lists(st.integers(min_value=1, max_value=50).map(float), min_size=1, max_size=7)


def optimal_on_slots(ds: list[float], slots: int) -> float:
    """The exact least makespan of independent durations on ``slots`` parallel slots."""
    best = float("inf")
    for assignment in itertools.product(range(slots), repeat=len(ds)):
        load = [0.0] * slots
        for d, s in zip(ds, assignment, strict=True):
            load[s] += d
        best = min(best, max(load))
    return best


@settings(max_examples=150, deadline=None)
@given(ds=durations, slots=st.integers(min_value=1, max_value=4))
def test_the_sequence_bound_never_exceeds_the_optimum(ds: list[float], slots: int) -> None:
    assert sequence_bound(ds, slots=slots) <= optimal_on_slots(ds, slots) + 1e-9


def test_the_sequence_bound_counts_the_slot_that_runs_most() -> None:
    # Five devices on two slots: one slot runs three of them, more than the work per slot.
    assert sequence_bound([5, 5, 5, 5, 5], slots=2) == 15.0
    assert sequence_bound([10, 10, 1, 1, 1], slots=2) == 11.5  # here the work per slot
    assert sequence_bound([9, 8, 7], slots=2) == 15.0  # 2nd + 3rd longest share a slot
    assert sequence_bound([], slots=3) == 0.0


@st.composite
def campaigns(draw: st.DrawFn) -> tuple[list[TimedDevice], dict[str, int], list, int]:
    n = draw(st.integers(min_value=1, max_value=14))
    groups = [f"g{i}" for i in range(draw(st.integers(min_value=1, max_value=4)))]
    devices = []
    for i in range(n):
        member = tuple(draw(st.sets(st.sampled_from(groups), max_size=2)))
        role = draw(st.sampled_from(["leaf", "spine"]))
        devices.append(TimedDevice(f"d{i}", role, member, float(draw(st.integers(1, 40)))))
    caps = {g: draw(st.integers(min_value=1, max_value=3)) for g in groups}
    # Dependencies only from lower to higher index, within a role: always acyclic, and never
    # against the role order.
    deps = [
        (a.name, b.name)
        for i, a in enumerate(devices)
        for b in devices[i + 1 :]
        if a.role == b.role and draw(st.integers(0, 9)) == 0
    ]
    return devices, caps, deps, draw(st.integers(min_value=1, max_value=5))


def simulate(devices: list[TimedDevice], caps: dict[str, int], deps: list, conc: int) -> float:
    after: dict[str, list[str]] = {}
    for a, b in deps:
        after.setdefault(b, []).append(a)
    state = {d.name: S.PENDING for d in devices}
    by_name = {d.name: d for d in devices}
    running: list[tuple[float, str]] = []
    now = 0.0
    while True:
        used: dict[str, int] = {}
        for d in devices:
            if state[d.name] is S.ENTERING:
                for g in d.groups:
                    used[g] = used.get(g, 0) + 1
        window = [
            WindowDevice(d.name, d.role, d.groups, state[d.name], tuple(after.get(d.name, ())))
            for d in devices
        ]
        chosen = next_devices(
            window, roles_before={"spine": ["leaf"]}, concurrency=conc, slots=caps, used=used
        )
        for name in chosen:
            state[name] = S.ENTERING
            heapq.heappush(running, (now + by_name[name].duration_s, name))
        if not running:
            assert all(s is S.DONE for s in state.values())
            return now
        now, name = heapq.heappop(running)
        state[name] = S.DONE
        while running and running[0][0] == now:
            state[heapq.heappop(running)[1]] = S.DONE


@settings(max_examples=200, deadline=None)
@given(campaign=campaigns())
def test_no_sliding_window_schedule_beats_the_bound(campaign: tuple) -> None:
    devices, caps, deps, conc = campaign
    bound = makespan_bound(
        devices,
        capacities=caps,
        concurrency=conc,
        dependencies=deps,
        role_order=[("leaf", "spine")],
    )
    makespan = simulate(devices, caps, deps, conc)
    assert makespan >= bound.value - 1e-9
    # Each term on its own is a bound too; the layered sum is at least each layer's.
    assert bound.layers >= max(bound.per_layer.values(), default=0.0)
    assert bound.value >= max(d.duration_s for d in devices)


def test_layers_add_up_along_the_role_order() -> None:
    devices = [
        TimedDevice("l1", "leaf", ("rack",), 10.0),
        TimedDevice("l2", "leaf", ("rack",), 10.0),
        TimedDevice("s1", "spine", (), 7.0),
    ]
    bound = makespan_bound(
        devices, capacities={"rack": 2}, concurrency=10, role_order=[("leaf", "spine")]
    )
    assert (bound.work, bound.layers, bound.value) == (10.0, 17.0, 17.0)
    assert makespan_bound(devices, capacities={"rack": 1}, concurrency=10).value == 20.0
