"""The device lifecycle: every (from, to, role) triple against an independently written table.

EXPECTED below is transcribed from the specification by hand; it deliberately does not read
``lifecycle.TRANSITIONS`` so that a wrong edge or role in the source makes these tests fail.
"""

from __future__ import annotations

import itertools

import pytest

from pitstop.domain.errors import Forbidden, PitstopError, TransitionNotAllowed
from pitstop.domain.lifecycle import (
    DeviceStatus,
    Transition,
    allowed_targets,
    check_transition,
    targets_from,
)
from pitstop.domain.roles import Role

STATUSES = [
    "pending",
    "activated",
    "draining",
    "maintenance",
    "undraining",
    "error",
    "decommissioned",
]
ROLES = ["viewer", "operator", "admin", "engine"]

ADMIN = frozenset({"admin"})
OPS = frozenset({"operator", "admin", "engine"})
ENGINE_OR_ADMIN = frozenset({"admin", "engine"})

EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("pending", "activated"): ADMIN,
    ("activated", "draining"): OPS,
    ("draining", "maintenance"): OPS,
    ("draining", "activated"): OPS,
    ("maintenance", "undraining"): OPS,
    ("undraining", "activated"): OPS,
    ("undraining", "maintenance"): OPS,
    ("pending", "error"): ENGINE_OR_ADMIN,
    ("activated", "error"): ENGINE_OR_ADMIN,
    ("draining", "error"): ENGINE_OR_ADMIN,
    ("maintenance", "error"): ENGINE_OR_ADMIN,
    ("undraining", "error"): ENGINE_OR_ADMIN,
    ("error", "activated"): ADMIN,
    ("error", "maintenance"): ADMIN,
    ("activated", "decommissioned"): ADMIN,
    ("maintenance", "decommissioned"): ADMIN,
    ("error", "decommissioned"): ADMIN,
}


def expected_allowed(current: str, role: str) -> list[str]:
    """Targets ``role`` may reach from ``current``, per the literal table, sorted."""
    return sorted(to for (frm, to), roles in EXPECTED.items() if frm == current and role in roles)


def test_status_and_role_sets_match_the_spec() -> None:
    # If a status or role is added, the expected table above must be revisited.
    assert sorted(s.value for s in DeviceStatus) == sorted(STATUSES)
    assert sorted(r.value for r in Role) == sorted(ROLES)


def test_expected_table_has_no_self_transitions() -> None:
    # Guard on the test data itself.
    assert all(frm != to for frm, to in EXPECTED)


@pytest.mark.parametrize(
    ("frm", "to", "role"),
    list(itertools.product(STATUSES, STATUSES, ROLES)),
    ids=lambda v: str(v),
)
def test_check_transition_every_triple(frm: str, to: str, role: str) -> None:
    current, target, who = DeviceStatus(frm), DeviceStatus(to), Role(role)
    roles = EXPECTED.get((frm, to))

    if roles is not None and role in roles:
        assert check_transition(current, target, who) == Transition(current, target)
        return

    expected_type = TransitionNotAllowed if roles is None else Forbidden
    with pytest.raises(PitstopError) as excinfo:
        check_transition(current, target, who)
    err = excinfo.value
    # Exact type: Forbidden and TransitionNotAllowed must not be confused.
    assert type(err) is expected_type
    assert err.code == ("TRANSITION_NOT_ALLOWED" if roles is None else "FORBIDDEN")
    assert err.extra["current"] == frm
    assert err.extra["requested"] == to
    allowed = err.extra["allowed"]
    assert len(allowed) == len(set(allowed))
    assert sorted(allowed) == expected_allowed(frm, role)
    assert all(isinstance(a, str) for a in allowed)


def test_self_transitions_are_refused_as_no_edge() -> None:
    for status, role in itertools.product(DeviceStatus, Role):
        with pytest.raises(TransitionNotAllowed):
            check_transition(status, status, role)


def test_viewer_may_do_nothing() -> None:
    for frm, to in itertools.product(DeviceStatus, DeviceStatus):
        with pytest.raises((TransitionNotAllowed, Forbidden)) as excinfo:
            check_transition(frm, to, Role.VIEWER)
        assert excinfo.value.extra["allowed"] == []


@pytest.mark.parametrize(
    ("frm", "role", "allowed"),
    [
        ("activated", "operator", ["draining"]),
        ("activated", "admin", ["decommissioned", "draining", "error"]),
        ("activated", "engine", ["draining", "error"]),
        ("pending", "operator", []),
        ("pending", "admin", ["activated", "error"]),
        ("undraining", "operator", ["activated", "maintenance"]),
        ("error", "engine", []),
        ("error", "admin", ["activated", "decommissioned", "maintenance"]),
        ("maintenance", "operator", ["undraining"]),
    ],
)
def test_refusal_lists_allowed_targets_explicit(frm: str, role: str, allowed: list[str]) -> None:
    # Cross-check the literal table helper on a few hand-computed cases.
    assert expected_allowed(frm, role) == allowed
    # Pick a target that is refused for this role so check_transition raises.
    refused = next(
        s for s in STATUSES if (frm, s) not in EXPECTED or role not in EXPECTED[(frm, s)]
    )
    with pytest.raises((TransitionNotAllowed, Forbidden)) as excinfo:
        check_transition(DeviceStatus(frm), DeviceStatus(refused), Role(role))
    assert sorted(excinfo.value.extra["allowed"]) == allowed


def test_transition_not_allowed_exposes_allowed_attribute() -> None:
    with pytest.raises(TransitionNotAllowed) as excinfo:
        check_transition(DeviceStatus.ACTIVATED, DeviceStatus.MAINTENANCE, Role.OPERATOR)
    assert excinfo.value.allowed == ["draining"]
    assert str(excinfo.value).startswith("TRANSITION_NOT_ALLOWED: ")


def test_forbidden_names_role_and_allowed() -> None:
    with pytest.raises(Forbidden) as excinfo:
        check_transition(DeviceStatus.ACTIVATED, DeviceStatus.DECOMMISSIONED, Role.OPERATOR)
    err = excinfo.value
    assert err.code == "FORBIDDEN"
    assert err.extra["allowed"] == ["draining"]
    assert "operator" in err.detail


def test_maintenance_cannot_go_straight_to_activated() -> None:
    # Coming back into service must go through undraining.
    for role in Role:
        with pytest.raises(TransitionNotAllowed):
            check_transition(DeviceStatus.MAINTENANCE, DeviceStatus.ACTIVATED, role)


def test_decommissioned_has_no_way_out() -> None:
    assert targets_from(DeviceStatus.DECOMMISSIONED) == []
    for target, role in itertools.product(DeviceStatus, Role):
        assert allowed_targets(DeviceStatus.DECOMMISSIONED, role) == []
        with pytest.raises(TransitionNotAllowed) as excinfo:
            check_transition(DeviceStatus.DECOMMISSIONED, target, role)
        assert excinfo.value.allowed == []
        assert "none" in excinfo.value.detail


@pytest.mark.parametrize("frm", STATUSES)
def test_targets_from_matches_expected_table(frm: str) -> None:
    got = [t.value for t in targets_from(DeviceStatus(frm))]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(to for (f, to) in EXPECTED if f == frm)


@pytest.mark.parametrize(("frm", "role"), list(itertools.product(STATUSES, ROLES)))
def test_allowed_targets_matches_expected_table(frm: str, role: str) -> None:
    got = [t.value for t in allowed_targets(DeviceStatus(frm), Role(role))]
    assert sorted(got) == expected_allowed(frm, role)
