"""Campaign makespan benchmark: the sliding window against the lower bound and against
wave barriers, on 1,000 simulated devices with skewed durations.

    .venv/bin/python bench/campaign.py [--devices 1000] [--seed 7] [--sigma 0.5]
        [--outliers 0.05] [--rack-sigma 0]

What is simulated, exactly: time. No job runs; each device's whole maintenance (enter,
action, exit) takes a duration drawn once from a skewed distribution: lognormal, median 5
minutes, sigma 0.5 by default, and by default one device in twenty five times slower (a
stuck drain, a slow reboot). ``--rack-sigma`` adds a lognormal factor per rack (racks of
slower or faster hardware; the spines share one). The dispatcher is the real one,
``pitstop.domain.campaign_window.next_devices``, called at every simulated completion with
the devices' states, exactly as the campaign driver calls it every tick: once over the
planner's order as it is, once over ``campaign_estimates.dispatch_order`` (what the driver
does: the order refined by the durations measured on the devices done so far, with the
campaign's expected duration of 5 minutes before any finished). Neither sees a device's
duration before it finished.

The fleet is the planner benchmark's (racks of 20 leaves with max_unavailable 4, MLAG pairs
with 1, the leaf role with 10 %, one spine per 50 leaves with 25 %, ``leaf before spine``,
a three-leaf chain in each rack) and the global concurrency is N / 12.

Compared:
* the lower bound on the makespan, ``pitstop.domain.makespan.makespan_bound`` on the very
  durations simulated (its docstring proves each term): per group and for the concurrency
  cap, the work over the slots, the longest member and the pigeonhole term; the longest
  chain of durations; and the role layers added (leaf bound plus spine bound). Every
  simulated schedule is checked against it (and against the group capacities): one that
  beat it would stop the benchmark with an error;
* a clairvoyant reference that no real campaign can be: the window over an order that knows
  every duration (per layer, the longest remaining path of durations first);
* wave barriers: the planner's waves run one after another, each waiting for its slowest
  device (safe, like Ansible ``serial`` with batches that respect the groups);
* Ansible ``serial`` proper: fixed batches of N / 12 devices in plan order, each waiting for
  its slowest; it knows nothing of the groups, so it is shown for its barrier cost only (it
  breaks the MLAG budgets).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from planner import fabric

from pitstop.domain.campaign_estimates import dispatch_order
from pitstop.domain.campaign_window import WindowDevice, next_devices
from pitstop.domain.campaigns import DeviceState
from pitstop.domain.makespan import MakespanBound, TimedDevice, makespan_bound
from pitstop.domain.planner import PlanRequest, plan


def durations(
    names: list[str], seed: int, sigma: float, outliers: float, rack_sigma: float = 0.0
) -> dict[str, float]:
    rng = random.Random(seed)
    out = {}
    for n in names:
        d = rng.lognormvariate(math.log(300), sigma)
        if rng.random() < outliers:
            d *= 5
        out[n] = d
    if rack_sigma:
        # Racks of slower or faster hardware: one factor per rack (the spines share one),
        # drawn from a second stream so the per-device draws above stay the same.
        racks = random.Random(seed + 1)
        factor: dict[str, float] = {}
        for n in names:
            rack = n.split("-")[0] if n.startswith("r") else "spines"
            if rack not in factor:
                factor[rack] = racks.lognormvariate(0.0, rack_sigma)
            out[n] *= factor[rack]
    return out


def lower_bound(req: PlanRequest, dur: dict[str, float]) -> MakespanBound:
    """The bound on the very durations the simulation runs (see ``pitstop.domain.makespan``)."""
    return makespan_bound(
        [TimedDevice(d.name, d.role, d.groups, dur[d.name]) for d in req.devices],
        capacities=req.capacities,
        concurrency=req.concurrency,
        dependencies=req.dependencies,
        role_order=req.role_order,
    )


def remaining_path(req: PlanRequest, dur: dict[str, float]) -> dict[str, float]:
    """Each device's duration plus its longest chain of successors' durations."""
    succ: dict[str, list[str]] = {}
    for a, b in req.dependencies:
        succ.setdefault(a, []).append(b)
    tail: dict[str, float] = {}

    def walk(n: str) -> float:
        if n not in tail:
            tail[n] = dur[n] + max((walk(s) for s in succ.get(n, ())), default=0.0)
        return tail[n]

    return {d.name: walk(d.name) for d in req.devices}


def sliding_window(
    req: PlanRequest, order: list[str], dur: dict[str, float], *, online: float | None = None
) -> float:
    """The simulated makespan. With ``online`` (the campaign's expected duration) the window
    runs over ``dispatch_order``: estimates from the durations of the devices done so far."""
    by_name = {d.name: d for d in req.devices}
    after: dict[str, list[str]] = {}
    for a, b in req.dependencies:
        after.setdefault(b, []).append(a)
    state = dict.fromkeys(order, DeviceState.PENDING)
    roles_before = {"spine": ["leaf"]}
    running: list[tuple[float, str]] = []
    now = 0.0
    while True:
        used: dict[str, int] = {}
        for name, st in state.items():
            if st is DeviceState.ENTERING:
                for g in by_name[name].groups:
                    used[g] = used.get(g, 0) + 1
        window = [
            WindowDevice(n, by_name[n].role, by_name[n].groups, state[n], tuple(after.get(n, ())))
            for n in order
        ]
        if online is not None:
            measured = {n: dur[n] for n, st in state.items() if st is DeviceState.DONE}
            window = dispatch_order(
                window,
                measured=measured,
                expected_s=online,
                slots=req.capacities,
                concurrency=req.concurrency,
            )
        for name in next_devices(
            window,
            roles_before=roles_before,
            concurrency=req.concurrency,
            slots=req.capacities,
            used=used,
        ):
            state[name] = DeviceState.ENTERING
            heapq.heappush(running, (now + dur[name], name))
            for g in by_name[name].groups:
                used[g] = used.get(g, 0) + 1
        # The simulated schedule keeps every rule, or its makespan would prove nothing.
        assert all(used[g] <= req.capacities[g] for g in used), "a group over its capacity"
        assert sum(s is DeviceState.ENTERING for s in state.values()) <= req.concurrency
        if not running:
            break
        now, name = heapq.heappop(running)
        state[name] = DeviceState.DONE
        # Devices finishing at the same instant settle together, as in one driver tick.
        while running and running[0][0] == now:
            state[heapq.heappop(running)[1]] = DeviceState.DONE
    assert all(s is DeviceState.DONE for s in state.values())
    return now


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma of durations")
    ap.add_argument("--outliers", type=float, default=0.05, help="share of 5x slower devices")
    ap.add_argument(
        "--rack-sigma", type=float, default=0.0, help="lognormal sigma of a per-rack factor"
    )
    args = ap.parse_args()
    req = fabric(args.devices)
    result = plan(req)
    dur = durations(
        [d.name for d in req.devices], args.seed, args.sigma, args.outliers, args.rack_sigma
    )
    lb = lower_bound(req, dur)
    bound = lb.value
    window = sliding_window(req, list(result.order), dur)
    # What the campaign driver does: the plan's order refined at every tick by the durations
    # measured so far, the expected duration (5 minutes here) before any device finished.
    online = sliding_window(req, list(result.order), dur, online=300.0)
    # For reference only: a dispatcher that knew every duration in advance (per role layer,
    # the longest remaining path of durations first, then the longest device). The real one
    # cannot know them: it sees the expected durations, the same for every device here.
    layer = {"leaf": 0, "spine": 1}
    roles = {d.name: d.role for d in req.devices}
    tail = remaining_path(req, dur)
    clairvoyant = sliding_window(
        req, sorted(result.order, key=lambda n: (layer[roles[n]], -tail[n], -dur[n])), dur
    )
    barriers = sum(max(dur[n] for n in wave) for wave in result.waves)
    order = list(result.order)
    serial = sum(
        max(dur[n] for n in order[i : i + req.concurrency])
        for i in range(0, len(order), req.concurrency)
    )
    median = sorted(dur.values())[len(dur) // 2]
    print(
        f"{args.devices} devices, concurrency {req.concurrency}, {result.wave_count} planned "
        f"waves; durations lognormal sigma {args.sigma}, {args.outliers:.0%} at 5x, "
        f"rack factor sigma {args.rack_sigma}: "
        f"median {median / 60:.1f} min, max {max(dur.values()) / 60:.1f} min"
    )
    print(
        "lower bound terms (min): "
        + f"work {lb.work / 60:.1f}, chain {lb.chain / 60:.1f}, layers {lb.layers / 60:.1f} ("
        + " + ".join(f"{r} {v / 60:.1f}" for r, v in lb.per_layer.items())
        + f") -> bound {bound / 60:.1f} min"
    )
    for label, value in (
        ("sliding window, plan order", window),
        ("sliding window, online estimates", online),
        ("sliding window, clairvoyant (reference)", clairvoyant),
        ("wave barriers (planned waves)", barriers),
        ("ansible serial batches (ignores groups)", serial),
    ):
        print(f"{label:<44} {value / 60:8.1f} min  {value / bound:5.3f}x bound")
    # A schedule that keeps every rule cannot beat a valid bound (see pitstop.domain.makespan).
    assert min(window, online, clairvoyant, barriers) >= bound * (1 - 1e-9), (
        "a schedule beat the bound"
    )
    print(
        f"sliding window (online) vs wave barriers: {barriers / online:.2f}x faster; "
        "target <= 1.05x bound"
    )


if __name__ == "__main__":
    main()
