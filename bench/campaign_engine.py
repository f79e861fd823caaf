"""A real campaign on the real engine, in real time: the sliding window's makespan against
the lower bound, with fewer devices than the simulated benchmark.

    .venv/bin/python bench/campaign_engine.py [--devices 48] [--concurrency 8] [--seed 7]
        [--campaigns 2]

A SQLite database in a temporary directory; zero-latency simulated devices in MLAG pairs
(max_unavailable 1) and racks of eight (max_unavailable 2); one worker running up to 16 jobs
at once and the campaign driver polling every 50 ms, both in this process. Every device
enters maintenance through a real activation job, runs a real named action (``python -c
"time.sleep(S)"``, defined once as an admin would, with S drawn per device from a lognormal,
median 1 s, sigma 0.5, stored as a label and passed through the argv template) and leaves
through a real deactivation job.

``--campaigns K`` campaigns run one after another over the same fleet (each device sleeps the
same S every time): the first knows nothing of the devices, each later one starts with the
paces ``campaign start`` learned from the ones before (``pitstop.domain.campaign_pace``).

Prints, per campaign, its makespan (its start to its end, test runs excluded), and, from
each device's *measured* time from entering to done, the lower bound (total work over the
concurrency, each group's work over its capacity, the longest device) and what wave
barriers over the planned waves would have taken with those same durations (computed, not
run).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from pitstop.api.importing import run_import
from pitstop.api.startup import SYSTEM
from pitstop.domain.campaigns import FINISHED
from pitstop.domain.makespan import TimedDevice, makespan_bound
from pitstop.domain.named_actions import NamedAction, check_action
from pitstop.domain.roles import Actor, Role, Via
from pitstop.drivers.registry import DriverRegistry
from pitstop.drivers.simulated import SimulatedDriverFactory
from pitstop.engine.campaign_runner import CampaignDriver, CampaignDriverConfig
from pitstop.engine.campaigns import CampaignService
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.storage.database import Database
from pitstop.storage.migrate import upgrade
from pitstop.storage.store import Store

BENCH = Actor("bench", Role.OPERATOR)
PARAMS = {
    "sample_interval_s": 0,
    "drain": {"poll_interval_s": 0.1},
    "undrain": {"poll_interval_s": 0.1},
}


def inventory(devices: int, seed: int) -> tuple[str, dict[str, float]]:
    rng = random.Random(seed)
    racks = math.ceil(devices / 8)
    groups = [f"  - {{name: rack{r}, max_unavailable: 2}}" for r in range(racks)]
    groups += [f"  - {{name: pair{p}, max_unavailable: 1}}" for p in range(math.ceil(devices / 2))]
    rows, sleeps = [], {}
    for i in range(devices):
        s = round(rng.lognormvariate(0, 0.5), 2)
        sleeps[f"n{i:03d}"] = s
        rows.append(
            f"  - {{name: n{i:03d}, role: leaf, groups: [rack{i // 8}, pair{i // 2}], "
            f"labels: {{sim.convergence_s: '0', bench.sleep_s: '{s}'}}}}"
        )
    text = "groups:\n" + "\n".join(groups) + "\ndevices:\n" + "\n".join(rows) + "\n"
    return text, sleeps


async def run(devices: int, concurrency: int, seed: int, campaigns: int, directory: Path) -> None:
    db = Database.from_url(f"sqlite+aiosqlite:///{directory / 'bench.db'}")
    await upgrade(db.engine)
    store = Store(db)
    text, _ = inventory(devices, seed)
    async with store.unit() as u:
        await u.fabrics.create(name="bench", description="", labels={})
        await run_import(
            u, text, fmt="yaml", fabric="bench", dry_run=False, actor=SYSTEM, via=Via.API
        )
    registry = DriverRegistry()
    registry.register("simulated", SimulatedDriverFactory())
    worker = Worker(
        store=store,
        drivers=registry,
        config=EngineConfig(lease_ttl_s=60, poll_interval_s=0.01, concurrency=16),
    )
    driver = CampaignDriver(
        store=store, config=CampaignDriverConfig(lease_ttl_s=60, poll_interval_s=0.05)
    )
    sleep_cmd = [sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))"]
    async with store.unit() as u:  # what an admin defines once; the campaigns name it
        await u.actions.create(
            check_action(
                NamedAction(name="sleep", command=(*sleep_cmd, "{labels[bench.sleep_s]}"))
            ),
            actor=SYSTEM.name,
        )
    service = CampaignService(store)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(worker.run_forever(stop)),
        asyncio.create_task(driver.run_forever(stop)),
    ]
    for k in range(1, campaigns + 1):
        definition = {
            "name": f"bench-{k}",
            "fabric": "bench",
            "selector": {"roles": ["leaf"]},
            "concurrency": concurrency,
            "action": {"type": "run", "name": "sleep"},
            "advanced_parameters": PARAMS,
        }
        await service.create(definition, actor=BENCH, via=Via.API)
        await one_campaign(service, f"bench-{k}", devices, concurrency)
    stop.set()
    await asyncio.gather(*tasks)
    await registry.aclose()
    await db.close()


async def one_campaign(service: CampaignService, name: str, devices: int, concurrency: int) -> None:
    t0 = time.perf_counter()
    await service.start(name, actor=BENCH, via=Via.API)
    while True:
        await asyncio.sleep(0.2)
        campaign, rows = await service.get(name)
        if campaign.state in FINISHED:
            break
    wall = time.perf_counter() - t0

    starts = [d.started_at for d in rows if d.started_at]
    ends = [d.finished_at for d in rows if d.finished_at]
    makespan = (max(ends) - min(starts)).total_seconds()
    dur = {d.name: d.duration_s(max(ends)) or 0.0 for d in rows}
    groups: dict[str, float] = {}
    for d in rows:
        for g in d.groups:
            if not g.startswith("role:"):
                groups[g] = groups.get(g, 0.0) + dur[d.name]
    caps = {g: 2 if g.startswith("rack") else 1 for g in groups}
    terms = {
        "work/C": sum(dur.values()) / concurrency,
        "group work/k": max(w / caps[g] for g, w in groups.items()),
        "longest device": max(dur.values()),
        # The same groups through pitstop.domain.makespan, which adds the pigeonhole terms.
        "slot sequences": makespan_bound(
            [
                TimedDevice(d.name, d.role, tuple(g for g in d.groups if g in caps), dur[d.name])
                for d in rows
            ],
            capacities=caps,
            concurrency=concurrency,
        ).work,
    }
    bound = max(terms.values())
    waves = campaign.plan["waves"]
    barriers = sum(max(dur[n] for n in wave) for wave in waves)
    tally: dict[str, int] = {}
    for d in rows:
        tally[d.state.value] = tally.get(d.state.value, 0) + 1
    paced = sum(d.pace is not None for d in rows)
    print(
        f"{name}: {devices} devices, concurrency {concurrency}, campaign "
        f"{campaign.state.value} ({tally}); pace known for {paced}; wall time with test runs "
        f"{wall:.1f} s"
    )
    print(
        "per-device enter..done, measured: "
        f"median {sorted(dur.values())[len(dur) // 2]:.2f} s, max {max(dur.values()):.2f} s"
    )
    print("lower bound terms (s): " + ", ".join(f"{k} {v:.1f}" for k, v in terms.items()))
    print(f"sliding window makespan (measured)   {makespan:7.1f} s  {makespan / bound:5.3f}x bound")
    print(
        f"wave barriers over {len(waves)} planned waves    {barriers:7.1f} s  "
        f"{barriers / bound:5.3f}x bound (computed from the measured durations)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--campaigns", type=int, default=2, help="run one after another")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.devices, args.concurrency, args.seed, args.campaigns, Path(tmp)))


if __name__ == "__main__":
    main()
