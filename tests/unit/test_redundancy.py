"""The redundancy check: never the last activated device of a role, and never past a redundancy
group's ``max_unavailable``, counting whoever already holds its slots."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitstop.domain.health import CheckStatus
from pitstop.domain.inventory import Budget
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus
from pitstop.domain.redundancy import GroupState, Member, check_redundancy

A, D, M, U, E, PEND = (
    DeviceStatus.ACTIVATED,
    DeviceStatus.DRAINING,
    DeviceStatus.MAINTENANCE,
    DeviceStatus.UNDRAINING,
    DeviceStatus.ERROR,
    DeviceStatus.PENDING,
)


def spines(*statuses: DeviceStatus) -> list[Member]:
    return [Member(f"spine{i + 1}", s) for i, s in enumerate(statuses)]


def test_a_spine_with_an_activated_sibling_may_leave() -> None:
    [role] = check_redundancy(device="spine1", role="spine", same_role=spines(A, A), groups=[])
    assert role.check == "redundancy"
    assert role.status is CheckStatus.PASS
    assert role.message == "another activated spine stays in service: spine2"
    assert (role.observed, role.threshold) == (1, ">= 1")


def test_the_last_activated_spine_is_refused() -> None:
    [role] = check_redundancy(device="spine1", role="spine", same_role=spines(A), groups=[])
    assert role.status is CheckStatus.FAIL
    assert "spine1 is the only spine" in role.message
    assert role.observed == 0


@pytest.mark.parametrize("other", [M, D, U, E, PEND])
def test_a_spine_whose_sibling_is_not_activated_is_refused(other: DeviceStatus) -> None:
    [role] = check_redundancy(device="spine1", role="spine", same_role=spines(A, other), groups=[])
    assert role.status is CheckStatus.FAIL
    assert f"spine2 ({other.value})" in role.message
    assert role.observed == 0


def test_the_device_is_never_its_own_spare() -> None:
    # spine1 is activated, but it is the one leaving.
    [role] = check_redundancy(device="spine1", role="spine", same_role=spines(A, M, M), groups=[])
    assert role.status is CheckStatus.FAIL
    assert "spine1" not in role.message.split(":", 1)[1]


def test_the_device_need_not_be_listed_in_its_role() -> None:
    [role] = check_redundancy(device="spine9", role="spine", same_role=spines(A, M), groups=[])
    assert role.status is CheckStatus.PASS
    assert role.observed == 1


def group(name: str, budget: Budget, *members: tuple[str, DeviceStatus]) -> GroupState:
    return GroupState(name, budget, tuple(Member(n, s) for n, s in members))


def test_a_group_of_budget_one_with_another_member_draining_is_refused_naming_it() -> None:
    rack = group("rack-a", Budget(1), ("leaf1", A), ("leaf2", D), ("leaf3", A))
    role, result = check_redundancy(
        device="leaf1", role="leaf", same_role=[Member("leaf3", A)], groups=[rack]
    )
    assert role.status is CheckStatus.PASS
    assert result.check == "redundancy"
    assert result.status is CheckStatus.FAIL
    assert result.message == (
        "group rack-a (max_unavailable 1) has no room for leaf1: its slot is held by "
        "leaf2 (draining)"
    )
    assert (result.observed, result.threshold) == (("leaf2",), 1)
    assert result.as_dict()["observed"] == ["leaf2"]


def test_a_group_with_room_passes() -> None:
    rack = group("rack-a", Budget(2), ("leaf1", A), ("leaf2", M), ("leaf3", A))
    _, result = check_redundancy(device="leaf1", role="leaf", same_role=[], groups=[rack])
    assert result.status is CheckStatus.PASS
    assert "1 of 2 taken by leaf2 (maintenance)" in result.message


def test_a_group_of_budget_zero_allows_nobody() -> None:
    rack = group("rack-a", Budget(0), ("leaf1", A), ("leaf2", A))
    _, result = check_redundancy(device="leaf1", role="leaf", same_role=[], groups=[rack])
    assert result.status is CheckStatus.FAIL
    assert "allows none" in result.message


def test_the_device_itself_already_unavailable_is_not_counted_twice() -> None:
    # A retried drain: leaf1 is already draining and takes the one slot it needs.
    rack = group("rack-a", Budget(1), ("leaf1", D), ("leaf2", A))
    _, result = check_redundancy(device="leaf1", role="leaf", same_role=[], groups=[rack])
    assert result.status is CheckStatus.PASS


@pytest.mark.parametrize(
    ("members", "busy", "status"),
    [
        (8, 0, CheckStatus.PASS),  # 25 % of 8 = 2 slots
        (8, 1, CheckStatus.PASS),
        (8, 2, CheckStatus.FAIL),
        (3, 0, CheckStatus.PASS),  # rounds down to 0, but a non-empty group always allows one
        (3, 1, CheckStatus.FAIL),
    ],
)
def test_a_percentage_budget(members: int, busy: int, status: CheckStatus) -> None:
    statuses = [M] * busy + [A] * (members - busy - 1)
    rows = [("me", A), *((f"leaf{i}", s) for i, s in enumerate(statuses))]
    rack = group("pod-1", Budget(25, percent=True), *rows)
    _, result = check_redundancy(device="me", role="leaf", same_role=[], groups=[rack])
    assert result.status is status
    allowed = Budget(25, percent=True).slots(members)
    assert result.threshold == allowed
    assert f"max_unavailable 25% of {members} members = {allowed}" in result.message


def test_one_result_per_group_in_order() -> None:
    groups = [
        group("rack-a", Budget(1), ("leaf1", A), ("leaf2", A)),
        group("pod-1", Budget(1), ("leaf1", A), ("leaf7", E)),
    ]
    results = check_redundancy(device="leaf1", role="leaf", same_role=[], groups=groups)
    assert [r.status for r in results] == [CheckStatus.FAIL, CheckStatus.PASS, CheckStatus.FAIL]
    assert "rack-a" in results[1].message
    assert "pod-1" in results[2].message
    assert "leaf7 (error)" in results[2].message


members = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.sampled_from(list(DeviceStatus))),
    max_size=8,
    unique_by=lambda m: m[0],
)


@given(members, st.integers(0, 5))
def test_a_group_fails_exactly_when_the_device_would_exceed_its_budget(
    rows: list[tuple[str, DeviceStatus]], budget: int
) -> None:
    rack = group("g", Budget(budget), ("me", A), *rows)
    _, result = check_redundancy(device="me", role="r", same_role=[], groups=[rack])
    busy = sum(1 for _, s in rows if s in UNAVAILABLE)
    assert (result.status is CheckStatus.FAIL) == (busy + 1 > budget)
    assert sorted(result.observed or ()) == sorted(n for n, s in rows if s in UNAVAILABLE)
