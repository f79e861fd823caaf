"""Online duration estimates, and the dispatch order of a running campaign built from them.

The sliding window (``campaign_window.next_devices``) starts pending devices in the order it is
given. The plan's order knows only the structure (dependencies, group pressure); while the
campaign runs, the durations measured on finished devices tell more: a rack of slow hardware
shows itself after a few of its members. This module turns what a campaign really knows, the
expected duration from its definition and the durations measured so far, into an estimate per
device, and orders the pending devices by their estimated remaining path (the device's own
estimate plus the longest chain of estimates of the devices that wait for it), longest first,
so likely stragglers and long chains start early instead of last in their layer.

It never sees a device's own future duration. What it may know of a device before it starts
is its pace (``campaign_pace``): how slow it was next to its peers in earlier campaigns. A
device's estimate is its pace times its groups' estimate for a typical device; measured
durations are divided by their device's pace before they enter those estimates, so one slow
machine that is known to be slow does not make its whole rack look slow. Estimates per group
are shrunk towards the campaign-wide mean (``PRIOR_WEIGHT`` pseudo-samples), so one fast or
slow member moves its group's estimate only a little. With nothing measured and no pace known,
every estimate is the expected duration and the order is the plan's, longest dependency chain
first.

Pure: devices, measurements and the expected duration in, an order out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pitstop.domain.campaign_window import WindowDevice
from pitstop.domain.campaigns import DeviceState

# How many campaign-wide samples a group's own measurements are weighed against.
PRIOR_WEIGHT = 3.0


def estimates(
    devices: Sequence[WindowDevice],
    *,
    measured: Mapping[str, float],
    expected_s: float,
    pace: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Each device's estimated duration: its pace (1.0 when unknown) times the slowest of its
    groups' shrunk mean measured durations, each divided by its device's pace; the
    campaign-wide mean where a group has no measurement yet (the expected duration before
    any device finished)."""
    pace = pace or {}

    def speed(name: str) -> float:
        p = pace.get(name, 1.0)
        return p if p > 0 else 1.0

    typical = {n: v / speed(n) for n, v in measured.items() if v > 0}
    prior = sum(typical.values()) / len(typical) if typical else expected_s
    total: dict[str, float] = {}
    count: dict[str, int] = {}
    for d in devices:
        v = typical.get(d.name)
        if v is None:
            continue
        for g in d.groups:
            total[g] = total.get(g, 0.0) + v
            count[g] = count.get(g, 0) + 1
    shrunk = {g: (total[g] + PRIOR_WEIGHT * prior) / (count[g] + PRIOR_WEIGHT) for g in total}
    return {
        d.name: speed(d.name) * max((shrunk.get(g, prior) for g in d.groups), default=prior)
        for d in devices
    }


def dispatch_order(
    devices: Sequence[WindowDevice],
    *,
    measured: Mapping[str, float],
    expected_s: float,
    slots: Mapping[str, int] | None = None,
    concurrency: int | None = None,
    pace: Mapping[str, float] | None = None,
) -> list[WindowDevice]:
    """``devices`` (in plan order) reordered for ``next_devices``: pending devices by their
    urgency, most urgent first, ties in plan order; the others keep their relative places
    after them (the window skips them anyway).

    A device's urgency is the least time still needed because of it: its estimated remaining
    path, or, with ``slots``, the estimated pending work of its tightest group over that
    group's slots (groups at least as wide as ``concurrency`` never bind alone and are left
    out), whichever is larger; so a slow rack keeps its slots busy from the start instead
    of being left with a queue at the end."""
    est = estimates(devices, measured=measured, expected_s=expected_s, pace=pace)
    waiting_on: dict[str, list[str]] = {}
    for d in devices:
        for a in d.after:
            waiting_on.setdefault(a, []).append(d.name)
    path: dict[str, float] = {}
    for start in est:
        # Iterative: chains may be long; dependencies are acyclic (the planner refuses cycles).
        stack = [start]
        while stack:
            n = stack[-1]
            if n in path:
                stack.pop()
                continue
            todo = [s for s in waiting_on.get(n, ()) if s in est and s not in path]
            if todo:
                stack.extend(todo)
                continue
            tail = max((path[s] for s in waiting_on.get(n, ()) if s in path), default=0.0)
            path[n] = est[n] + tail
            stack.pop()
    position = {d.name: i for i, d in enumerate(devices)}
    pending = [d for d in devices if d.state is DeviceState.PENDING]
    others = [d for d in devices if d.state is not DeviceState.PENDING]
    load: dict[str, float] = {}
    if slots is not None:
        wide = concurrency if concurrency is not None else len(devices) + 1
        for d in pending:
            for g in d.groups:
                if 0 < slots.get(g, 0) < wide:
                    load[g] = load.get(g, 0.0) + est[d.name] / slots[g]
    urgency = {d.name: max([path[d.name], *(load.get(g, 0.0) for g in d.groups)]) for d in pending}
    pending.sort(key=lambda d: (-urgency[d.name], -path[d.name], position[d.name]))
    return pending + others
