"""The pure fleet rules: budget verdicts, the fabric policy and the fleet-map mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitstop.domain.budgets import Pool, refusal, role_pool
from pitstop.domain.errors import Forbidden, MaintenanceDisallowed, ValidationFailed
from pitstop.domain.fleetmap import STATE_OF, FleetMap, MapState, build, digest, tick_due
from pitstop.domain.inventory import Budget
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus
from pitstop.domain.policy import (
    FabricPolicy,
    check_allowed,
    check_force,
    parse_role_budgets,
)
from pitstop.domain.redundancy import Member
from pitstop.domain.roles import Role

S = DeviceStatus
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _pool(name: str, budget: str, **members: DeviceStatus) -> Pool:
    return Pool(name, Budget.parse(budget), tuple(Member(n, s) for n, s in members.items()))


def test_a_device_fits_while_its_pools_have_room() -> None:
    rack = _pool("rack", "2", a=S.MAINTENANCE, b=S.ACTIVATED, c=S.ACTIVATED)
    assert refusal("b", [rack]) is None


def test_the_first_full_pool_is_named_with_its_holders() -> None:
    rack = _pool("rack", "2", a=S.MAINTENANCE, b=S.ACTIVATED, c=S.ACTIVATED)
    pair = _pool("pair", "1", b=S.ACTIVATED, d=S.ERROR)
    spines = role_pool(
        "spine", Budget(50, percent=True), [Member("b", S.ACTIVATED), Member("x", S.UNDRAINING)]
    )
    err = refusal("b", [rack, pair, spines])
    assert err is not None
    assert err.code == "BUDGET_EXCEEDED"
    assert err.extra["group"] == "pair"
    assert err.extra["holders"] == ["d"]
    assert [p["name"] for p in err.extra["full"]] == ["pair", "role:spine"]
    assert (
        err.detail
        == "group pair (max_unavailable 1) has no room for b: its 1 slot(s) are held by d (error)"
    )


def test_a_zero_budget_allows_none_and_says_so() -> None:
    err = refusal("a", [_pool("frozen", "0", a=S.ACTIVATED)])
    assert err is not None and "it allows none out of service" in err.detail


def test_the_device_itself_never_counts_as_a_holder() -> None:
    # A device re-checked while already draining (an engine step run twice) still fits.
    assert refusal("a", [_pool("pair", "1", a=S.DRAINING, b=S.ACTIVATED)]) is None


@given(
    st.lists(st.sampled_from(list(DeviceStatus)), min_size=1, max_size=12),
    st.integers(min_value=0, max_value=5),
)
def test_admission_is_exactly_when_holders_plus_one_fit(
    statuses: list[DeviceStatus], k: int
) -> None:
    members = {f"d{i}": s for i, s in enumerate(statuses)}
    pool = _pool("g", str(k), **members, new=S.ACTIVATED)
    held = sum(1 for s in statuses if s in UNAVAILABLE)
    assert (refusal("new", [pool]) is None) == (held + 1 <= k)


def test_policy_defaults_and_overrides() -> None:
    assert FabricPolicy().role_budgets == {"spine": Budget(50, percent=True)}
    p = FabricPolicy(role_overrides={"spine": Budget(1), "leaf": Budget(25, percent=True)})
    assert p.as_dict()["role_budgets"] == {"leaf": "25%", "spine": "1"}
    assert p.role_budget("border") is None


def test_bad_role_budgets_are_refused_by_field() -> None:
    with pytest.raises(ValidationFailed) as bad:
        parse_role_budgets({"spine": "half", "Bad Role": 1, "leaf": -1, "ok": "10%"})
    assert sorted(e.field for e in bad.value.errors) == [
        "role_budgets.Bad Role",
        "role_budgets.leaf",
        "role_budgets.spine",
    ]


def test_only_admins_force_and_always_with_a_reason() -> None:
    assert check_force(role=Role.OPERATOR, force=False, force_reason=None) is None
    assert check_force(role=Role.ADMIN, force=True, force_reason=" fire ") == "fire"
    with pytest.raises(Forbidden):
        check_force(role=Role.OPERATOR, force=True, force_reason="fire")
    with pytest.raises(ValidationFailed) as missing:
        check_force(role=Role.ADMIN, force=True, force_reason="  ")
    assert [e.field for e in missing.value.errors] == ["force_reason"]
    with pytest.raises(ValidationFailed):
        check_force(role=Role.ADMIN, force=False, force_reason="why")


def test_disallowed_maintenance_is_refused_unless_forced() -> None:
    closed = FabricPolicy(maintenance_allowed=False)
    with pytest.raises(MaintenanceDisallowed):
        check_allowed(closed, fabric="dc1", device="leaf1", forced=None)
    check_allowed(closed, fabric="dc1", device="leaf1", forced="reason")
    check_allowed(FabricPolicy(), fabric="dc1", device="leaf1", forced=None)


def test_every_status_has_a_map_state_and_unavailable_ones_are_never_online() -> None:
    assert set(STATE_OF) == set(DeviceStatus)
    for status in UNAVAILABLE:
        assert STATE_OF[status] is not MapState.ONLINE
    assert [s.number for s in (MapState.ONLINE, MapState.OFFLINE, MapState.MAINTENANCE)] == [
        1,
        2,
        3,
    ]


def test_maps_are_sorted_and_their_digest_depends_on_content_only() -> None:
    m = build({"b": S.ACTIVATED, "a": S.MAINTENANCE})
    assert list(m) == ["a", "b"]
    assert digest(m) == digest({"b": MapState.ONLINE, "a": MapState.MAINTENANCE})
    assert digest(m) != digest(build({"b": S.ACTIVATED, "a": S.ACTIVATED}))
    fm = FleetMap("dc1", 7, T0, "t", m, digest(m))
    assert fm.etag == f'"7-{digest(m)[:16]}"'
    assert fm.counts() == {"ONLINE": 1, "OFFLINE": 0, "MAINTENANCE": 1}


def test_a_tick_is_due_after_one_interval() -> None:
    assert tick_due(None, T0, 30)
    assert not tick_due(T0, T0 + timedelta(seconds=29.9), 30)
    assert tick_due(T0, T0 + timedelta(seconds=30), 30)
