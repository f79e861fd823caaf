"""The sliding window: which devices of a running campaign may start *now*.

No wave barriers: whenever a device settles, the next devices in plan order whose
dependencies are done, whose groups have a free slot and for which the concurrency cap has
room start at once. A slow device therefore holds back only the devices that share a group
with it or depend on it, never a whole wave (the way Ansible's ``serial`` batches do).

Rules, in the order they are applied:

* canary devices go first and alone; the rest wait until every canary is done;
* an explicit dependency (``a before b``) needs ``a`` *done*; when ``a`` failed or was skipped,
  ``b`` is skipped too (``blocked``);
* a role rule (``leaf before spine``) needs every leaf *settled* (done, failed or skipped), so
  one failed leaf under a tolerant failure policy does not hold back every spine;
* a group slot is taken by every member that is unavailable in the fabric (whatever put it
  there) and by every campaign device between entering and exiting.

Pure: the engine reads the states and the slots and passes them in; the campaign benchmark
drives the same function on a simulated clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pitstop.domain.campaign_records import CampaignDevice
from pitstop.domain.campaigns import IN_FLIGHT, SETTLED, DeviceState

S = DeviceState
# Between entering and back in service: the device holds a slot in each of its groups.
HOLDS_GROUPS: frozenset[DeviceState] = frozenset(
    {S.ENTERING, S.ACTION, S.AWAITING_APPROVAL, S.EXITING, S.ROLLING_BACK}
)


@dataclass(frozen=True, slots=True)
class WindowDevice:
    name: str
    role: str
    groups: tuple[str, ...]
    state: DeviceState
    after: tuple[str, ...] = ()
    canary: bool = False


def next_devices(
    devices: Sequence[WindowDevice],
    *,
    roles_before: Mapping[str, Sequence[str]],
    concurrency: int,
    slots: Mapping[str, int],
    used: Mapping[str, int],
) -> list[str]:
    """The pending devices to start now, in plan order. ``devices`` is in plan order;
    ``used`` counts the slots of each group already taken (see the module docstring)."""
    room = concurrency - sum(d.state in IN_FLIGHT for d in devices)
    if room <= 0:
        return []
    state = {d.name: d.state for d in devices}
    canary_open = any(d.canary and d.state is not S.DONE for d in devices)
    unsettled = Counter(d.role for d in devices if d.state not in SETTLED)
    taken = dict(used)
    out: list[str] = []
    for d in devices:
        if room == 0:
            break
        if d.state is not S.PENDING or (canary_open and not d.canary):
            continue
        if any(state.get(a) is not S.DONE for a in d.after):
            continue
        if any(unsettled[r] for r in roles_before.get(d.role, ())):
            continue
        if any(taken.get(g, 0) >= slots.get(g, 0) for g in d.groups):
            continue
        out.append(d.name)
        room -= 1
        for g in d.groups:
            taken[g] = taken.get(g, 0) + 1
    return out


def blocked(devices: Sequence[WindowDevice]) -> list[str]:
    """Pending devices that can never start: a dependency failed or was skipped (directly or
    through a chain of such devices)."""
    state = {d.name: d.state for d in devices}
    dead = {n for n, s in state.items() if s in (S.FAILED, S.SKIPPED, S.ROLLED_BACK)}
    out: list[str] = []
    changed = True
    while changed:
        changed = False
        for d in devices:
            if state[d.name] is S.PENDING and d.name not in out and set(d.after) & dead:
                out.append(d.name)
                dead.add(d.name)
                changed = True
    return out


def used_slots(
    *,
    members: Mapping[str, Sequence[str]],
    unavailable: set[str],
    holding: set[str],
) -> dict[str, int]:
    """Slots taken per group: members unavailable in the fabric or held by the campaign,
    each member counted once."""
    busy = unavailable | holding
    return {g: sum(m in busy for m in names) for g, names in members.items()}


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    done: int
    failed: int
    skipped: int
    in_flight: int
    pending: int
    eta_s: float | None

    @property
    def percent(self) -> int:
        settled = self.done + self.failed + self.skipped
        return round(100 * settled / self.total) if self.total else 100


def progress(
    states: Sequence[DeviceState],
    *,
    durations_s: Sequence[float],
    expected_s: float,
    concurrency: int,
) -> Progress:
    """Counts, and an ETA: the devices left times the mean duration of the finished ones (the
    expected duration before any finished), spread over the concurrency."""
    count = Counter(states)
    done = count[S.DONE] + count[S.ROLLED_BACK]
    in_flight = sum(count[s] for s in IN_FLIGHT)
    left = count[S.PENDING] + in_flight
    mean = sum(durations_s) / len(durations_s) if durations_s else expected_s
    eta = mean * left / max(1, min(concurrency, left)) if left else 0.0
    return Progress(
        total=len(states),
        done=done,
        failed=count[S.FAILED],
        skipped=count[S.SKIPPED],
        in_flight=in_flight,
        pending=count[S.PENDING],
        eta_s=eta,
    )


def campaign_progress(
    spec: Mapping[str, Any], devices: Sequence[CampaignDevice], *, now: datetime
) -> Progress:
    """``progress`` for a stored campaign: its definition (``spec_document``) gives the
    expected durations and the concurrency, its done devices the durations measured so far."""
    expected = spec.get("expected_durations") or {}
    durations = [s for d in devices if d.state is S.DONE and (s := d.duration_s(now))]
    return progress(
        [d.state for d in devices],
        durations_s=durations,
        expected_s=sum(float(v) for v in expected.values()) or 60.0,
        concurrency=int(spec.get("concurrency", 1)),
    )
