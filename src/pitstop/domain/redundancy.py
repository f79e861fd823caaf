"""The redundancy check: whether taking one device out of service leaves the fabric enough
capacity, judged from the statuses of its peers before anything is touched.

Two rules, each reported as its own result so that an operator sees which one refused:

* another activated device of the same role stays in service (never the last spine);
* every redundancy group the device belongs to has room in its ``max_unavailable`` budget,
  counting the devices already draining, in maintenance, undraining or in error.

The caller reads the statuses (inside the same transaction that locks the device) and passes
them in; nothing here knows where they came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pitstop.domain.health import CheckResult, CheckStatus
from pitstop.domain.inventory import Budget
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus

CHECK = "redundancy"


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    status: DeviceStatus


@dataclass(frozen=True, slots=True)
class GroupState:
    """A redundancy group as it stands: its budget and all its members, the device included."""

    name: str
    budget: Budget
    members: tuple[Member, ...]


def _named(members: Sequence[Member]) -> str:
    return ", ".join(f"{m.name} ({m.status.value})" for m in members)


def _role_result(device: str, role: str, same_role: Sequence[Member]) -> CheckResult:
    others = sorted((m for m in same_role if m.name != device), key=lambda m: m.name)
    active = [m for m in others if m.status is DeviceStatus.ACTIVATED]
    if active:
        names = ", ".join(m.name for m in active)
        message = f"another activated {role} stays in service: {names}"
        return CheckResult(CHECK, CheckStatus.PASS, len(active), ">= 1", message)
    if others:
        message = (
            f"no other activated {role} would stay in service if {device} left: {_named(others)}"
        )
    else:
        message = f"{device} is the only {role}: no other would stay in service"
    return CheckResult(CHECK, CheckStatus.FAIL, 0, ">= 1", message)


def _budget_text(budget: Budget, members: int, allowed: int) -> str:
    # A percentage means little until it is turned into devices, so show both.
    if budget.percent:
        return f"max_unavailable {budget} of {members} members = {allowed}"
    return f"max_unavailable {budget}"


def _group_result(device: str, group: GroupState) -> CheckResult:
    allowed = group.budget.slots(len(group.members))
    holders = sorted(
        (m for m in group.members if m.name != device and m.status in UNAVAILABLE),
        key=lambda m: m.name,
    )
    observed = tuple(m.name for m in holders)
    budget = _budget_text(group.budget, len(group.members), allowed)
    # The device itself takes one slot on top of those already held.
    if len(holders) + 1 > allowed:
        slots = "its slot is" if allowed == 1 else f"its {allowed} slots are"
        held = f"{slots} held by {_named(holders)}" if holders else "it allows none out of service"
        message = f"group {group.name} ({budget}) has no room for {device}: {held}"
        return CheckResult(CHECK, CheckStatus.FAIL, observed, allowed, message)
    taken = f"{len(holders)} of {allowed} taken" + (f" by {_named(holders)}" if holders else "")
    message = f"group {group.name} ({budget}) has room for {device}: {taken}"
    return CheckResult(CHECK, CheckStatus.PASS, observed, allowed, message)


def check_redundancy(
    *,
    device: str,
    role: str,
    same_role: Sequence[Member],
    groups: Sequence[GroupState],
) -> list[CheckResult]:
    """The role rule first, then one result per group in the order given. ``same_role`` may
    include ``device`` itself; it is never counted as its own spare."""
    return [_role_result(device, role, same_role), *(_group_result(device, g) for g in groups)]
