"""The planner: every plan honours every constraint, never beats its lower bound, and an
impossible campaign is refused with its reasons."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.domain.errors import CampaignInvalid
from pitstop.domain.planner import Plan, PlanDevice, PlanRequest, plan

ROLES = ("leaf", "spine", "border")


@st.composite
def requests(draw: st.DrawFn) -> PlanRequest:
    n = draw(st.integers(min_value=0, max_value=30))
    group_names = [f"g{i}" for i in range(draw(st.integers(min_value=0, max_value=6)))]
    capacities = {g: draw(st.integers(min_value=1, max_value=3)) for g in group_names}
    devices = [
        PlanDevice(
            f"d{i}",
            draw(st.sampled_from(ROLES)),
            tuple(sorted(draw(st.sets(st.sampled_from(group_names))))) if group_names else (),
        )
        for i in range(n)
    ]
    role_order = draw(
        st.sampled_from([(), (("leaf", "spine"),), (("leaf", "spine"), ("spine", "border"))])
    )
    rank = {r: ROLES.index(r) if role_order else 0 for r in ROLES}
    deps: list[tuple[str, str]] = []
    if n >= 2:
        # Edges from a lower to a higher index cannot form a cycle.
        pairs = draw(
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n)
        )
        # ... and one never runs against the role order.
        deps = [
            (f"d{min(a, b)}", f"d{max(a, b)}")
            for a, b in pairs
            if a != b and rank[devices[min(a, b)].role] <= rank[devices[max(a, b)].role]
        ]
    return PlanRequest(
        devices=devices,
        capacities=capacities,
        dependencies=deps,
        role_order=role_order,
        concurrency=draw(st.integers(min_value=1, max_value=6)),
        canary=draw(st.integers(min_value=0, max_value=3)),
    )


def _check(req: PlanRequest, result: Plan) -> None:
    wave_of = result.wave_of()
    names = [d.name for d in req.devices]
    # Every device exactly once, in the waves and in the dispatch order.
    assert sorted(wave_of) == sorted(names)
    assert sum(len(w) for w in result.waves) == len(names)
    assert sorted(result.order) == sorted(names)
    assert [wave_of[d] for d in result.order] == sorted(wave_of[d] for d in result.order)
    by_name = {d.name: d for d in req.devices}
    for wave in result.waves:
        assert 0 < len(wave) <= req.concurrency
        for g, k in req.capacities.items():
            assert sum(g in by_name[d].groups for d in wave) <= k, (g, wave)
    for before, after in req.dependencies:
        assert wave_of[before] < wave_of[after]
    for before, after in req.role_order:
        earlier = [wave_of[d.name] for d in req.devices if d.role == before]
        later = [wave_of[d.name] for d in req.devices if d.role == after]
        if earlier and later:
            assert max(earlier) < min(later)
    others = [wave_of[d] for d in names if d not in result.canary]
    if result.canary and others:
        assert max(wave_of[c] for c in result.canary) < min(others)
    assert len(result.canary) <= req.canary
    # No plan is shorter than a lower bound.
    assert result.wave_count >= result.lower_bound.value


@settings(max_examples=300, deadline=None)
@given(requests())
def test_every_plan_satisfies_every_constraint(req: PlanRequest) -> None:
    _check(req, plan(req))


def test_lower_bound_terms() -> None:
    devices = [PlanDevice(f"d{i}", "leaf", ("rack",)) for i in range(7)]
    req = PlanRequest(
        devices=devices,
        capacities={"rack": 2},
        dependencies=[("d0", "d1"), ("d1", "d2"), ("d2", "d3")],
        concurrency=3,
    )
    result = plan(req)
    lb = result.lower_bound
    assert (lb.groups, lb.chain, lb.concurrency, lb.value) == (4, 4, 3, 4)
    assert lb.tightest_group == "rack"
    assert result.wave_count == 4
    _check(req, result)


def test_role_order_puts_leaves_before_spines_and_chains_through_an_empty_role() -> None:
    devices = [PlanDevice("s1", "spine"), PlanDevice("l1", "leaf"), PlanDevice("b1", "border")]
    req = PlanRequest(
        devices=devices,
        capacities={},
        role_order=[("leaf", "middle"), ("middle", "spine"), ("spine", "border")],
        concurrency=10,
    )
    result = plan(req)
    assert result.waves == (("l1",), ("s1",), ("b1",))
    assert result.roles_before["border"] == ("leaf", "middle", "spine")
    assert result.warnings == ("role middle in the ordering has no device in the campaign",)


def test_canary_goes_alone_first() -> None:
    devices = [PlanDevice(f"d{i}", "leaf") for i in range(5)]
    result = plan(PlanRequest(devices=devices, capacities={}, concurrency=5, canary=1))
    assert result.canary == ("d0",)
    assert result.waves == (("d0",), ("d1", "d2", "d3", "d4"))


def _reasons(req: PlanRequest) -> list[str]:
    with pytest.raises(CampaignInvalid) as info:
        plan(req)
    assert info.value.code == "CAMPAIGN_INVALID"
    return info.value.reasons


def test_a_cycle_is_refused_and_named() -> None:
    devices = [PlanDevice(n, "leaf") for n in ("a", "b", "c")]
    req = PlanRequest(
        devices=devices, capacities={}, dependencies=[("a", "b"), ("b", "c"), ("c", "a")]
    )
    (reason,) = _reasons(req)
    assert reason.startswith("dependency cycle: ")
    path = reason.removeprefix("dependency cycle: ").split(" -> ")
    assert path[0] == path[-1] and set(path) == {"a", "b", "c"}


def test_a_role_order_cycle_is_refused() -> None:
    devices = [PlanDevice("l", "leaf"), PlanDevice("s", "spine")]
    req = PlanRequest(
        devices=devices, capacities={}, role_order=[("leaf", "spine"), ("spine", "leaf")]
    )
    (reason,) = _reasons(req)
    assert "role leaf" in reason and "role spine" in reason


def test_every_offline_problem_is_reported_at_once() -> None:
    devices = [
        PlanDevice("a", "leaf", ("frozen",)),
        PlanDevice("b", "leaf", ("nowhere",)),
        PlanDevice("a", "leaf"),
    ]
    req = PlanRequest(
        devices=devices,
        capacities={"frozen": 0},
        dependencies=[("a", "ghost"), ("b", "b")],
        concurrency=0,
    )
    reasons = _reasons(req)
    assert "device a is listed twice" in reasons
    assert "concurrency must be at least 1, not 0" in reasons
    assert any(r.startswith("group frozen allows no device out of service") for r in reasons)
    assert "device b is in group nowhere, which has no capacity" in reasons
    assert "dependency a before ghost: unknown device ghost" in reasons
    assert "dependency b before b: a device cannot precede itself" in reasons


def test_an_empty_campaign_has_an_empty_plan() -> None:
    result = plan(PlanRequest(devices=[], capacities={}))
    assert result.waves == () and result.lower_bound.value == 0
