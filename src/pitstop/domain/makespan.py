"""A lower bound on a campaign's makespan, in time, for known per-device durations.

The planner's bound speaks of waves; this one speaks of seconds, for judging how long a
sliding-window campaign took against the best any schedule could do with the same durations.
Every term below holds for *every* schedule that keeps the campaign's rules, so a schedule
that finishes earlier than ``makespan_bound(...).value`` would prove a rule was broken.

Why each term holds (a schedule is one interval ``[start, start + duration)`` per device):

* **Slot sequences** (``sequence_bound``). A group of capacity ``k`` never has more than ``k``
  members in progress at once, so its members' intervals form an interval graph with no
  clique larger than ``k``; interval graphs are perfect, so the intervals split into ``k``
  *slots*, each a sequence of non-overlapping intervals, and the makespan is at least the
  total duration of any slot. Hence: the group's work over ``k``; the longest member; and,
  for any ``s``, among the ``s`` longest members some slot holds ``ceil(s / k)`` of them, at
  least the ``ceil(s / k)`` shortest of those ``s``. (For ``s = k + 1``: the ``k``-th plus the
  ``k+1``-th longest, the classic bound for identical machines.) The global concurrency cap
  ``C`` is a group holding every device.
* **Chains.** ``a before b`` needs ``a`` done before ``b`` starts: the longest path of
  durations through the dependencies.
* **Role layers.** With ``leaf before spine`` no spine starts before the last leaf ended, so
  the spines' own schedule starts at or after the leaves' makespan: the two layers' bounds
  add up along the role order. Each layer's bound is the largest of the terms above computed
  on that layer's devices alone.

Pure: names, groups, capacities and durations in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimedDevice:
    name: str
    role: str
    groups: tuple[str, ...]
    duration_s: float


@dataclass(frozen=True, slots=True)
class MakespanBound:
    # Every device together, ignoring the role order: the slot-sequence terms of each group
    # and of the concurrency cap.
    work: float
    chain: float
    # The role layers' bounds added along the role order (0 without role rules).
    layers: float
    per_layer: Mapping[str, float]

    @property
    def value(self) -> float:
        return max(self.work, self.chain, self.layers)


def sequence_bound(durations: Iterable[float], *, slots: int) -> float:
    """The least time in which these durations can run on ``slots`` parallel slots, from
    below: the work per slot, and the pigeonhole term over the ``s`` longest (see the
    module docstring)."""
    ds = sorted(durations, reverse=True)
    if not ds:
        return 0.0
    if slots >= len(ds):
        return ds[0]
    prefix = [0.0]
    for d in ds:
        prefix.append(prefix[-1] + d)
    best = prefix[-1] / slots
    for s in range(1, len(ds) + 1):
        m = math.ceil(s / slots)
        best = max(best, prefix[s] - prefix[s - m])
    return best


def _alone(
    devices: Sequence[TimedDevice],
    *,
    capacities: Mapping[str, int],
    concurrency: int,
    dependencies: Sequence[tuple[str, str]],
) -> tuple[float, float]:
    members: dict[str, list[float]] = {}
    for d in devices:
        for g in d.groups:
            members.setdefault(g, []).append(d.duration_s)
    work = sequence_bound((d.duration_s for d in devices), slots=concurrency)
    for g, ds in members.items():
        work = max(work, sequence_bound(ds, slots=capacities[g]))
    return work, _chain(devices, dependencies)


def _chain(devices: Sequence[TimedDevice], dependencies: Sequence[tuple[str, str]]) -> float:
    dur = {d.name: d.duration_s for d in devices}
    preds: dict[str, list[str]] = {}
    for a, b in dependencies:
        if a in dur and b in dur:
            preds.setdefault(b, []).append(a)
    finish: dict[str, float] = {}
    for start in dur:
        # Iterative depth-first walk: chains of 100k devices must not hit the recursion limit.
        stack = [start]
        while stack:
            n = stack[-1]
            if n in finish:
                stack.pop()
                continue
            todo = [p for p in preds.get(n, ()) if p not in finish]
            if todo:
                stack.extend(todo)
                continue
            finish[n] = dur[n] + max((finish[p] for p in preds.get(n, ())), default=0.0)
            stack.pop()
    return max(finish.values(), default=0.0)


def makespan_bound(
    devices: Sequence[TimedDevice],
    *,
    capacities: Mapping[str, int],
    concurrency: int,
    dependencies: Sequence[tuple[str, str]] = (),
    role_order: Sequence[tuple[str, str]] = (),
) -> MakespanBound:
    """The lower bound for an acyclic campaign the planner accepted."""
    work, chain = _alone(
        devices, capacities=capacities, concurrency=concurrency, dependencies=dependencies
    )
    if not role_order:
        return MakespanBound(work, chain, 0.0, {})
    ordered = {r for rule in role_order for r in rule}
    per_layer: dict[str, float] = {}
    for role in sorted(ordered):
        layer = [d for d in devices if d.role == role]
        per_layer[role] = max(
            _alone(layer, capacities=capacities, concurrency=concurrency, dependencies=dependencies)
        )
    direct: dict[str, set[str]] = {}
    for before, after in role_order:
        direct.setdefault(after, set()).add(before)
    memo: dict[str, float] = {}

    def upto(role: str) -> float:
        # The planner refuses cyclic role orders, so this recursion ends.
        if role not in memo:
            memo[role] = per_layer[role] + max((upto(p) for p in direct.get(role, ())), default=0)
        return memo[role]

    return MakespanBound(work, chain, max(upto(r) for r in ordered), per_layer)
