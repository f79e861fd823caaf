"""Planner benchmark: planning time and waves against the lower bound, on generated fabrics of
1k, 10k and 100k devices in overlapping groups, with dependencies and a role order.

    .venv/bin/python bench/planner.py [--sizes 1000,10000,100000] [--repeat 3]

Each fabric has racks of 20 leaves (MLAG pairs of two), a spine layer of one spine per 50
leaves, and three groups per leaf: its rack (max_unavailable 4), its MLAG pair (1) and the
leaf role (10%); spines are in the spine role group (25%). ``leaf before spine`` orders the
roles, and in every rack the first three pairs' first leaves form a chain (a storage
controller handover, say). The global concurrency is N / 12.

Prints the best of ``--repeat`` planning times (the planner is pure and deterministic, so the
plan is the same each time) and the plan's waves against every lower-bound term. The targets
are 100k devices in under 2 s and at most the lower bound + 1 waves.
"""

from __future__ import annotations

import argparse
import time

from pitstop.domain.inventory import Budget
from pitstop.domain.planner import PlanDevice, PlanRequest, plan

RACK = 20


def fabric(n: int) -> PlanRequest:
    spines = max(2, n // 51)
    leaves = n - spines
    devices: list[PlanDevice] = []
    deps: list[tuple[str, str]] = []
    for i in range(leaves):
        rack, slot = divmod(i, RACK)
        name = f"r{rack:05d}-l{slot:02d}"
        groups = (f"rack-{rack}", f"mlag-{rack}-{slot // 2}", "role-leaf")
        devices.append(PlanDevice(name, "leaf", groups))
        if slot in (2, 4) and i - 2 >= rack * RACK:
            deps.append((f"r{rack:05d}-l{slot - 2:02d}", name))
    devices += [PlanDevice(f"spine{i:05d}", "spine", ("role-spine",)) for i in range(spines)]
    sizes: dict[str, int] = {}
    for d in devices:
        for g in d.groups:
            sizes[g] = sizes.get(g, 0) + 1
    budgets = {"rack": Budget(4), "mlag": Budget(1), "role-leaf": Budget.parse("10%")}
    budgets["role-spine"] = Budget.parse("25%")
    caps = {g: (budgets.get(g) or budgets[g.split("-")[0]]).slots(k) for g, k in sizes.items()}
    return PlanRequest(
        devices=devices,
        capacities=caps,
        dependencies=deps,
        role_order=[("leaf", "spine")],
        concurrency=max(1, n // 12),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(
        f"{'devices':>8} {'groups':>7} {'deps':>6} {'plan s':>7} {'waves':>6} {'bound':>6} "
        f"{'groups':>6} {'chain':>6} {'N/C':>5} {'layers':>6} {'excess':>6}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        req = fabric(n)
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = plan(req)
            best = min(best, time.perf_counter() - t0)
        lb = result.lower_bound
        print(
            f"{n:>8} {len(req.capacities):>7} {len(req.dependencies):>6} {best:>7.3f} "
            f"{result.wave_count:>6} {lb.value:>6} {lb.groups:>6} {lb.chain:>6} "
            f"{lb.concurrency:>5} {lb.role_layers:>6} {result.wave_count - lb.value:>+6}"
        )
    print("targets: 100k devices planned in < 2 s; waves <= bound + 1")


if __name__ == "__main__":
    main()
