"""Redundancy budgets: how many members of a pool may be out of service at once, and the
verdict on one more.

A *pool* is either a redundancy group (its own ``max_unavailable``) or every device of one role
in a fabric (the fabric's role-level budget, for example at most half the spines). A device is
unavailable while it is draining, in maintenance, undraining or in error; the status itself is
the slot it holds, so a slot can never outlive or leak from the device's status.

An activation needs a free slot in *every* pool of the device. The storage layer reads the pools
under the fabric's lock, asks :func:`refusal`, and writes the status change in the same
transaction, so the verdict and the reservation are one atomic step (ADR 0008). Nothing here
does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pitstop.domain.errors import BudgetExceeded
from pitstop.domain.inventory import Budget
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus
from pitstop.domain.redundancy import Member

ROLE_PREFIX = "role:"


@dataclass(frozen=True, slots=True)
class Pool:
    """A group or a role as it stands: its budget and every member, the device included."""

    name: str
    budget: Budget
    members: tuple[Member, ...]
    kind: str = "group"  # or "role"

    @property
    def allowed(self) -> int:
        return self.budget.slots(len(self.members))

    def holders(self, *, excluding: str | None = None) -> list[Member]:
        """The members holding a slot now, by name."""
        return sorted(
            (m for m in self.members if m.status in UNAVAILABLE and m.name != excluding),
            key=lambda m: m.name,
        )

    def describe(self) -> dict[str, Any]:
        held = self.holders()
        return {
            "name": self.name,
            "kind": self.kind,
            "max_unavailable": str(self.budget),
            "members": len(self.members),
            "allowed": self.allowed,
            "unavailable": len(held),
            "free": max(0, self.allowed - len(held)),
            "holders": [{"device": m.name, "status": m.status.value} for m in held],
        }


def role_pool(role: str, budget: Budget, members: Sequence[Member]) -> Pool:
    return Pool(f"{ROLE_PREFIX}{role}", budget, tuple(members), kind="role")


def refusal(device: str, pools: Sequence[Pool]) -> BudgetExceeded | None:
    """Why ``device`` may not take a slot in every pool, or None when it may. The first pool
    without room is named, with the devices that hold its slots; every full pool is listed."""
    full = [p for p in pools if len(p.holders(excluding=device)) + 1 > p.allowed]
    if not full:
        return None
    first = full[0]
    holders = first.holders(excluding=device)
    what = "role" if first.kind == "role" else "group"
    label = first.name.removeprefix(ROLE_PREFIX) if first.kind == "role" else first.name
    budget = f"max_unavailable {first.budget}"
    if first.budget.percent:
        budget += f" of {len(first.members)} = {first.allowed}"
    if holders:
        named = ", ".join(f"{m.name} ({m.status.value})" for m in holders)
        held = f"its {first.allowed} slot(s) are held by {named}"
    else:
        held = "it allows none out of service"
    return BudgetExceeded(
        f"{what} {label} ({budget}) has no room for {device}: {held}",
        group=first.name,
        kind=first.kind,
        max_unavailable=str(first.budget),
        slots=first.allowed,
        holders=[m.name for m in holders],
        full=[p.describe() for p in full],
    )


def reservation(pools: Sequence[Pool], *, forced: str | None) -> dict[str, Any]:
    """What the audit row of a change that leaves service records: the pools it took a slot
    in (a device in no pool leaves its audit row as it always was) and an admin's force."""
    out: dict[str, Any] = {"reserved": [p.name for p in pools]} if pools else {}
    if forced is not None:
        out["forced"] = forced
    return out


def unavailable_count(statuses: Mapping[str, DeviceStatus], members: Sequence[str]) -> int:
    """How many of ``members`` are unavailable given ``statuses`` (used to replay history)."""
    return sum(1 for m in members if statuses.get(m) in UNAVAILABLE)
