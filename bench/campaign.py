"""Campaign makespan benchmark: the sliding window against the lower bound and against
wave barriers, on 1,000 simulated devices with skewed durations.

    .venv/bin/python bench/campaign.py [--devices 1000] [--seed 7] [--runs 3]
        [--sigma 0.5] [--outliers 0.05] [--noise 0.2] [--stuck 0.01] [--rack-sigma 0]
        [--history 3]

What is simulated, exactly: time. No job runs; each device's whole maintenance (enter,
action, exit) takes a duration drawn from a skewed distribution, in two parts:

* what belongs to the device and comes back every campaign: a lognormal factor around a
  median of 5 minutes (``--sigma``, 0.5), five times slower for one device in twenty
  (``--outliers``: slow hardware, a long power-on self test, a node holding much more data)
  and, with ``--rack-sigma``, a lognormal factor per rack (the spines share one);
* what belongs to one run only: a lognormal run-to-run variation (``--noise``, sigma 0.2),
  and one device in a hundred five times slower this time only (``--stuck``: a drain that
  hangs on a long-lived session, a reboot that needs a second try).

``--history K`` earlier campaigns over the same fleet are drawn the same way (their own
run-to-run parts, the same device parts), and ``pitstop.domain.campaign_pace.paces`` turns
their durations into each device's pace, exactly as ``campaign start`` does from the
campaigns stored in the database. Nothing of the measured run's own durations leaks into it.

The dispatcher is the real one, ``pitstop.domain.campaign_window.next_devices``, called at
every simulated completion with the devices' states, exactly as the campaign driver calls it
every tick: over the planner's order as it is; over ``campaign_estimates.dispatch_order``
with no history (a fleet's first campaign: the durations measured on the devices done so far,
the campaign's expected 5 minutes before any finished); and over ``dispatch_order`` with the
paces as well (what the driver does once the fleet has been through campaigns before).
None of them sees a device's duration in this run before it finished.

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
  every duration of this run (per layer, the longest remaining path of durations first);
* the most any history could give: the online window with every device's own part as its
  pace, exactly, and nothing of this run's variation (what ``--history`` approaches as the
  number of earlier campaigns grows);
* wave barriers: the planner's waves run one after another, each waiting for its slowest
  device (safe, like Ansible ``serial`` with batches that respect the groups);
* Ansible ``serial`` proper: fixed batches of N / 12 devices in plan order, each waiting for
  its slowest; it knows nothing of the groups, so it is shown for its barrier cost only (it
  breaks the MLAG budgets).

``--runs R`` repeats everything for seeds ``seed .. seed + R - 1`` and prints each ratio's
mean and worst.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from planner import fabric

from pitstop.domain.campaign_estimates import dispatch_order
from pitstop.domain.campaign_pace import PastRun, paces
from pitstop.domain.campaign_window import WindowDevice, next_devices
from pitstop.domain.campaigns import DeviceState
from pitstop.domain.makespan import MakespanBound, TimedDevice, makespan_bound
from pitstop.domain.planner import Plan, PlanRequest, plan


@dataclass(frozen=True)
class Workload:
    sigma: float
    outliers: float
    noise: float
    stuck: float
    rack_sigma: float


def device_parts(names: list[str], seed: int, w: Workload) -> dict[str, float]:
    """What each device takes every campaign: its own factor, its rack's factor."""
    rng = random.Random(seed)
    out = {}
    for n in names:
        d = rng.lognormvariate(math.log(300), w.sigma)
        if rng.random() < w.outliers:
            d *= 5
        out[n] = d
    if w.rack_sigma:
        racks = random.Random(seed + 1)
        factor: dict[str, float] = {}
        for n in names:
            rack = n.split("-")[0] if n.startswith("r") else "spines"
            if rack not in factor:
                factor[rack] = racks.lognormvariate(0.0, w.rack_sigma)
            out[n] *= factor[rack]
    return out


def one_run(base: dict[str, float], seed: int, w: Workload) -> dict[str, float]:
    """One campaign's durations: the device parts times this run's own variation."""
    rng = random.Random(seed)
    out = {}
    for n, d in base.items():
        d *= rng.lognormvariate(0.0, w.noise) if w.noise else 1.0
        if rng.random() < w.stuck:
            d *= 5
        out[n] = d
    return out


def history_paces(base: dict[str, float], seed: int, w: Workload, runs: int) -> dict[str, float]:
    """The paces ``campaign start`` would compute after ``runs`` earlier campaigns."""
    past = [
        PastRun(f"past-{k}", n, d)
        for k in range(runs)  # the most recent first, as the repository returns them
        for n, d in one_run(base, seed * 1000 + 1 + k, w).items()
    ]
    return paces(past)


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
    req: PlanRequest,
    order: list[str],
    dur: dict[str, float],
    *,
    online: float | None = None,
    pace: dict[str, float] | None = None,
) -> float:
    """The simulated makespan. With ``online`` (the campaign's expected duration) the window
    runs over ``dispatch_order``: estimates from the durations of the devices done so far
    and, with ``pace``, from the devices' paces in earlier campaigns."""
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
                pace=pace,
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


LABELS = {
    "plan": "sliding window, plan order",
    "first": "sliding window, online, no history",
    "paced": "sliding window, online, with history",
    "own": "sliding window, knows each device's own part",
    "clairvoyant": "sliding window, clairvoyant (reference)",
    "barriers": "wave barriers (planned waves)",
    "serial": "ansible serial batches (ignores groups)",
}


def simulate(
    req: PlanRequest, planned: Plan, seed: int, w: Workload, history: int
) -> dict[str, float]:
    order = list(planned.order)
    names = [d.name for d in req.devices]
    base = device_parts(names, seed, w)
    dur = one_run(base, seed * 1000, w)
    pace = history_paces(base, seed, w, history) if history else {}
    bound = lower_bound(req, dur)
    layer = {"leaf": 0, "spine": 1}
    roles = {d.name: d.role for d in req.devices}
    tail = remaining_path(req, dur)
    result = {
        "plan": sliding_window(req, order, dur),
        "first": sliding_window(req, order, dur, online=300.0),
        # For reference only: a dispatcher that knew every duration of this run in advance.
        "clairvoyant": sliding_window(
            req, sorted(order, key=lambda n: (layer[roles[n]], -tail[n], -dur[n])), dur
        ),
    }
    if history:
        result["paced"] = sliding_window(req, order, dur, online=300.0, pace=pace)
    # The most any history could tell: every device's own part exactly, nothing of this run's.
    typical = statistics.median(base.values())
    own = {n: v / typical for n, v in base.items()}
    result["own"] = sliding_window(req, order, dur, online=300.0, pace=own)
    result["barriers"] = sum(max(dur[n] for n in wave) for wave in planned.waves)
    c = req.concurrency
    result["serial"] = sum(max(dur[n] for n in order[i : i + c]) for i in range(0, len(order), c))
    # A schedule that keeps every rule cannot beat a valid bound (see pitstop.domain.makespan).
    assert min(result.values()) >= bound.value * (1 - 1e-9), "a schedule beat the bound"
    median = statistics.median(dur.values())
    print(
        f"seed {seed}: median {median / 60:.1f} min, max {max(dur.values()) / 60:.1f} min; "
        f"bound {bound.value / 60:.1f} min (work {bound.work / 60:.1f}, chain "
        f"{bound.chain / 60:.1f}, layers "
        + " + ".join(f"{r} {v / 60:.1f}" for r, v in bound.per_layer.items())
        + ")"
    )
    for key, value in result.items():
        print(f"  {LABELS[key]:<44} {value / 60:8.1f} min  {value / bound.value:5.3f}x bound")
    return {k: v / bound.value for k, v in result.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3, help="seeds seed .. seed + runs - 1")
    ap.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma between devices")
    ap.add_argument("--outliers", type=float, default=0.05, help="share of 5x slower devices")
    ap.add_argument("--noise", type=float, default=0.2, help="lognormal sigma run to run")
    ap.add_argument("--stuck", type=float, default=0.01, help="share of one-off 5x stragglers")
    ap.add_argument("--rack-sigma", type=float, default=0.0, help="lognormal sigma per rack")
    ap.add_argument("--history", type=int, default=3, help="earlier campaigns for the paces")
    args = ap.parse_args()
    w = Workload(args.sigma, args.outliers, args.noise, args.stuck, args.rack_sigma)
    req = fabric(args.devices)
    result = plan(req)
    print(
        f"{args.devices} devices, concurrency {req.concurrency}, {result.wave_count} planned "
        f"waves; device sigma {w.sigma}, {w.outliers:.0%} slow at 5x, rack sigma "
        f"{w.rack_sigma}; run-to-run sigma {w.noise}, {w.stuck:.0%} stuck at 5x; "
        f"{args.history} earlier campaigns"
    )
    ratios = [
        simulate(req, result, seed, w, args.history)
        for seed in range(args.seed, args.seed + args.runs)
    ]
    print(f"over {args.runs} seeds (target <= 1.05x bound):")
    for key in ratios[0]:
        values = [r[key] for r in ratios]
        print(
            f"  {LABELS[key]:<44} mean {statistics.mean(values):5.3f}x  worst {max(values):5.3f}x"
        )


if __name__ == "__main__":
    main()
