"""Hitless benchmark: does maintenance through pitstop lose packets on a real FRR fabric?

    .venv/bin/python bench/hitless.py [--spines 2] [--leaves 2] [--flows 32] [--pps 500]
                                      [--cut-s 4] [--rounds 3] [--json]

Run it as root: the lab creates network namespaces and starts FRR daemons.

Builds a lab fabric (``pitstop.lab``, prefixed names, removed at the end), sends ``--flows``
sequence-numbered UDP flows at ``--pps`` in total from the host of leaf1 to the host of leaf2
(each flow its own source port, so the leaves' layer-4 ECMP spreads them over every spine),
and cuts spine1 for ``--cut-s`` seconds by disabling IPv4 forwarding in its namespace (BGP
stays up: the spine silently drops transit, as a line card being replaced would) in three
variants:

  (a) abrupt: no diversion at all;
  (b) naive: ``bgp graceful-shutdown`` applied through the frr driver, then the cut at once,
      without waiting for the drain to be verified;
  (c) pitstop: a maintenance.activate job through the real engine (health checks, snapshot,
      diversion, measured drain verification), the cut, then a maintenance.deactivate job.

Prints packets sent and lost per variant, pitstop's measured drain time (the job's
``verify_drain`` step), and the BGP convergence time: from applying graceful-shutdown until no
leaf's FIB uses spine1 any more, measured ``--rounds`` times by polling the leaves' routes.
The engine runs with the CPU-idle health check off, because the benchmark machine is shared:
its idle time says nothing about the routers.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from pitstop.api.importing import run_import
from pitstop.api.startup import SYSTEM
from pitstop.domain.inventory import Connection, Device, MaintenanceInfo
from pitstop.domain.jobs import Job, JobStatus, JobType, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.drivers.frr import FrrDriverFactory
from pitstop.drivers.registry import DriverRegistry
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.service import JobService
from pitstop.lab.fabric import running
from pitstop.lab.flows import FlowReport, UdpFlows
from pitstop.lab.host import unavailable
from pitstop.lab.inventory import inventory
from pitstop.lab.topology import Topology
from pitstop.storage.database import Database
from pitstop.storage.migrate import upgrade
from pitstop.storage.store import Store

SPINE = "spine1"
WARMUP_S = 2.0
AFTER_S = 3.0
PARAMS: dict[str, Any] = {
    "sample_interval_s": 1,
    "checks": {"cpu_idle": {"enabled": False}},
    "drain": {"poll_interval_s": 0.5},
    "undrain": {"poll_interval_s": 0.5},
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def set_forwarding(topo: Topology, on: bool) -> None:
    ns = topo.router(SPINE).netns
    sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv4.ip_forward={int(on)}")


def device_of(topo: Topology, name: str) -> Device:
    spec = next(d for d in inventory(topo)["fabrics"][0]["devices"] if d["name"] == name)
    now = utcnow()
    return Device(
        id=uuid.uuid4(), fabric_id=uuid.uuid4(), fabric=topo.fabric, name=name,
        role=spec["role"], driver="frr",
        connection=Connection(options=spec["connection"]["options"]), labels=spec["labels"],
        groups=tuple(spec["groups"]), status=DeviceStatus.ACTIVATED, status_reason=None,
        status_changed_by=None, status_changed_at=None, maintenance=MaintenanceInfo(),
        needs_attention=False, attention_reason=None, version=1, created_at=now,
        updated_at=now,
    )  # fmt: skip


def flows(topo: Topology, args: argparse.Namespace) -> UdpFlows:
    src, dst = topo.hosts[0], topo.hosts[1]
    return UdpFlows(
        src_ns=src.netns,
        src_addr=src.address,
        dst_ns=dst.netns,
        dst_addr=dst.address,
        flows=args.flows,
        pps=args.pps,
    )


def spine_in_fib(topo: Topology) -> bool:
    """Whether any leaf still forwards towards another leaf's hosts through spine1."""
    spine_ifs = "to-" + SPINE
    for leaf in topo.leaves:
        for other in topo.leaves:
            if other is leaf:
                continue
            for prefix in other.networks[1:]:
                route = sh("ip", "-n", leaf.netns, "route", "show", prefix)
                if spine_ifs in route:
                    return True
    return False


async def convergence_s(topo: Topology, driver: Any) -> float:
    """Seconds from applying graceful-shutdown until no leaf's FIB uses the spine."""
    t0 = time.monotonic()
    await driver.apply_maintenance(method=None, options={})
    while spine_in_fib(topo):
        if time.monotonic() - t0 > 30:
            raise RuntimeError("the leaves never left the spine")
        await asyncio.sleep(0.005)
    took = time.monotonic() - t0
    await driver.remove_maintenance(method=None, options={})
    for _ in range(600):  # back on the spine before the next round (30 s at most)
        if spine_in_fib(topo):
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("the leaves never took the spine back")
    await asyncio.sleep(1.0)
    return took


async def cut(topo: Topology, seconds: float) -> None:
    set_forwarding(topo, False)
    try:
        await asyncio.sleep(seconds)
    finally:
        set_forwarding(topo, True)


class Engine:
    def __init__(self, store: Store, fabric: str) -> None:
        self.store, self.fabric = store, fabric
        self.service = JobService(store)
        registry = DriverRegistry()
        registry.register("frr", FrrDriverFactory())
        self.worker = Worker(
            store=store, drivers=registry, clock=utcnow, sleep=asyncio.sleep,
            config=EngineConfig(lease_ttl_s=30), name="bench",
        )  # fmt: skip

    async def run(self, job_type: JobType) -> Job:
        job = await self.service.submit(
            job_type=job_type, device=SPINE, fabric=self.fabric,
            mode=Mode.ACTIVATE if job_type is JobType.ACTIVATE else None,
            advanced_parameters=PARAMS, reason="hitless benchmark", ticket="BENCH",
            expected_end=None, actor=Actor("bench", Role.OPERATOR), via=Via.API,
        )  # fmt: skip
        assert await self.worker.run_once()
        async with self.store.unit() as u:
            return await u.jobs.get(job.id)


def drain_seconds(job: Job) -> float:
    step = next(s for s in job.steps if s.name == "verify_drain")
    return float(step.output["seconds"])


async def variant(topo: Topology, args: argparse.Namespace, body: Any) -> FlowReport:
    f = flows(topo, args).start()
    await asyncio.sleep(WARMUP_S)
    await body()
    await asyncio.sleep(AFTER_S)
    return f.stop()


async def bench(args: argparse.Namespace, topo: Topology, workdir: Path) -> dict[str, Any]:
    db = Database.from_url(f"sqlite+aiosqlite:///{workdir / 'bench.db'}")
    await upgrade(db.engine)
    store = Store(db, clock=utcnow)
    async with store.unit() as u:
        doc = yaml.safe_dump(inventory(topo), sort_keys=False)
        await run_import(u, doc, fmt="yaml", fabric=None, dry_run=False, actor=SYSTEM, via=Via.API)
    engine = Engine(store, topo.fabric)
    driver = FrrDriverFactory().open(device_of(topo, SPINE))
    results: dict[str, Any] = {}
    try:
        results["convergence_s"] = [await convergence_s(topo, driver) for _ in range(args.rounds)]

        async def abrupt() -> None:
            await cut(topo, args.cut_s)

        async def naive() -> None:
            await driver.apply_maintenance(method=None, options={})
            await cut(topo, args.cut_s)
            await driver.remove_maintenance(method=None, options={})

        jobs: dict[str, Job] = {}

        async def pitstop() -> None:
            jobs["enter"] = await engine.run(JobType.ACTIVATE)
            if jobs["enter"].status is not JobStatus.SUCCEEDED:
                raise RuntimeError(f"maintenance enter failed: {jobs['enter'].error}")
            await cut(topo, args.cut_s)
            jobs["exit"] = await engine.run(JobType.DEACTIVATE)
            if jobs["exit"].status is not JobStatus.SUCCEEDED:
                raise RuntimeError(f"maintenance exit failed: {jobs['exit'].error}")

        for name, body in (("a", abrupt), ("b", naive), ("c", pitstop)):
            results[name] = await variant(topo, args, body)
            await asyncio.sleep(1.0)
        results["drain_s"] = drain_seconds(jobs["enter"])
        results["enter_s"] = _job_seconds(jobs["enter"])
        results["exit_s"] = _job_seconds(jobs["exit"])
    finally:
        await driver.remove_maintenance(method=None, options={})
        await driver.close()
        await db.close()
    return results


def _job_seconds(job: Job) -> float:
    if job.started_at and job.finished_at:
        return (job.finished_at - job.started_at).total_seconds()
    return float("nan")


def report(args: argparse.Namespace, topo: Topology, r: dict[str, Any]) -> None:
    print(f"python {sys.version.split()[0]}, FRR {_frr_version()}, lab {topo.fabric}: "
          f"{len(topo.spines)} spines, {len(topo.leaves)} leaves; "
          f"{args.flows} UDP flows at {args.pps:g} pps host1 -> host2; "
          f"{SPINE} cut for {args.cut_s:g} s (forwarding off)")  # fmt: skip
    labels = {
        "a": "(a) abrupt, no drain",
        "b": "(b) naive: graceful-shutdown, cut at once",
        "c": "(c) pitstop: maintenance enter -> cut -> exit",
    }
    for key in ("a", "b", "c"):
        f: FlowReport = r[key]
        print(
            f"{labels[key]:<48} sent {f.sent:>6}  lost {f.lost:>5} ({f.loss_pct:5.2f} %)  "
            f"longest gap {f.longest_gap_s:.2f} s"
        )
    conv = r["convergence_s"]
    print(
        f"BGP convergence (graceful-shutdown applied -> no leaf FIB uses {SPINE}), "
        f"{len(conv)} rounds: median {statistics.median(conv) * 1000:.0f} ms, "
        f"max {max(conv) * 1000:.0f} ms"
    )
    ratio = r["drain_s"] / max(statistics.median(conv), 1e-9)
    print(
        f"pitstop measured drain (verify_drain): {r['drain_s']:.2f} s = {ratio:.1f}x the median "
        f"convergence; maintenance enter took {r['enter_s']:.1f} s, exit {r['exit_s']:.1f} s"
    )
    target = "met" if r["c"].lost == 0 else "NOT met"
    print(f"target (c) 0 packets lost: {target}")
    if args.json:
        out = {k: (dataclasses.asdict(v) if isinstance(v, FlowReport) else v) for k, v in r.items()}
        for v in out.values():
            if isinstance(v, dict):
                v.pop("lost_per_flow", None)
        print(json.dumps(out))


def _frr_version() -> str:
    out = sh("dpkg-query", "-W", "-f", "${Version}", "frr")
    return out.strip() or "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spines", type=int, default=2)
    p.add_argument("--leaves", type=int, default=2)
    p.add_argument("--flows", type=int, default=32)
    p.add_argument("--pps", type=float, default=500.0)
    p.add_argument("--cut-s", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args()
    why = unavailable()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    fabric = "b" + "".join(random.choices(string.ascii_lowercase, k=5))
    with (
        tempfile.TemporaryDirectory(prefix="pitstop-hitless-") as tmp,
        running(fabric=fabric, spines=args.spines, leaves=args.leaves) as topo,
    ):
        results = asyncio.run(bench(args, topo, Path(tmp)))
        report(args, topo, results)
    return 0 if results["c"].lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
