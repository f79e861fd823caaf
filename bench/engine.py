"""Engine benchmark: step throughput with two worker processes, and orchestration CPU per
activate+deactivate cycle, on SQLite and PostgreSQL, against zero-latency simulated devices.

    .venv/bin/python bench/engine.py [--db sqlite|postgres|both] [--devices 60] [--cycles 20]

Prints counts and ratios against the targets (500 steps/s on SQLite, 2,000 steps/s on
PostgreSQL, 0.7 ms of worker CPU per step, 50 ms CPU per cycle, 1.5 ms CPU per job submitted).
``bench/engine_peers.py`` runs procrastinate beside it on PostgreSQL. Wall-clock figures
depend on the machine and its load; run it on an idle machine and record the command and
output in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from pitstop.api.import_files import parse_file
from pitstop.api.importing import run_import
from pitstop.api.startup import SYSTEM
from pitstop.domain.jobs import JobStatus, JobType, Mode
from pitstop.domain.roles import Actor, Role, Via
from pitstop.drivers.registry import DriverRegistry
from pitstop.drivers.simulated import SimulatedDriverFactory
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.service import JobService
from pitstop.storage.database import Database
from pitstop.storage.migrate import upgrade
from pitstop.storage.store import Store

PG = os.environ.get("PITSTOP_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
TARGET_STEPS = {"sqlite": 500.0, "postgres": 2000.0}
TARGET_CPU_MS = 50.0
TARGET_STEP_CPU_MS = 0.7  # worker CPU per step
TARGET_SUBMIT_MS = 1.5  # CPU per job submitted
CONCURRENCY = 16  # jobs each worker process runs at once
BENCH = Actor("bench", Role.OPERATOR)
# Zero-latency devices, no sleeping between samples, no redundancy check (every device is
# taken out at once): what is left is the engine's own cost.
PARAMS = {
    "sample_interval_s": 0,
    "checks": {"redundancy": {"enabled": False}},
    "drain": {"poll_interval_s": 0.1},
    "undrain": {"poll_interval_s": 0.1},
}


async def _seed(url: str, devices: int) -> None:
    db = Database.from_url(url)
    await upgrade(db.engine)
    rows = "\n".join(
        f"  - {{name: d{i:05d}, role: server, labels: {{sim.convergence_s: '0'}}}}"
        for i in range(devices)
    )
    async with Store(db).unit() as u:
        await u.fabrics.create(name="bench", description="", labels={})
        parsed = parse_file("devices:\n" + rows, fmt="yaml", fabric="bench", max_rows=100_000)
        await run_import(u, parsed, dry_run=False, actor=SYSTEM, via=Via.API)
    await db.close()


async def _submit_one(service: JobService, i: int, job_type: JobType) -> None:
    await service.submit(
        job_type=job_type,
        device=f"d{i:05d}",
        fabric="bench",
        mode=Mode.ACTIVATE if job_type is JobType.ACTIVATE else None,
        advanced_parameters=PARAMS,
        reason="bench",
        ticket=None,
        expected_end=None,
        actor=BENCH,
        via=Via.API,
    )


async def _submit(url: str, devices: int, job_type: JobType) -> None:
    db = Database.from_url(url)
    store = Store(db)
    service = JobService(store)
    for i in range(devices):
        await _submit_one(service, i, job_type)
    await store.notices.close()  # let the last notice out before the pool closes
    await db.close()


async def _measure(url: str) -> tuple[int, float, int]:
    """Steps run, seconds of work (per job type: first start to last finish, so process
    start-up is not counted), and jobs that did not succeed."""
    db = Database.from_url(url)
    steps = failed = 0
    spans: dict[str, list[float]] = {}
    async with Store(db).unit() as u:
        page = await u.jobs.page(limit=100_000)
        for job in page.items:
            full = await u.jobs.get(job.id)
            steps += sum(s.runs for s in full.steps)
            failed += job.status.value != "succeeded"
            assert job.started_at and job.finished_at
            span = spans.setdefault(job.type.value, [float("inf"), 0.0])
            span[0] = min(span[0], job.started_at.timestamp())
            span[1] = max(span[1], job.finished_at.timestamp())
    await db.close()
    return steps, sum(end - start for start, end in spans.values()), failed


def _worker_process(url: str, stop_when_idle: float, cpu: Any) -> None:
    async def run() -> None:
        db = Database.from_url(url)
        registry = DriverRegistry()
        registry.register("simulated", SimulatedDriverFactory())
        config = EngineConfig(lease_ttl_s=60, poll_interval_s=0.01, concurrency=CONCURRENCY)
        worker = Worker(store=Store(db), drivers=registry, config=config)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run_forever(stop))
        store = Store(db)
        while True:
            await asyncio.sleep(stop_when_idle)
            async with store.unit() as u:
                left = await u.jobs.page(statuses=[JobStatus.QUEUED, JobStatus.RUNNING], limit=1)
            if not left.items:
                break
        stop.set()
        await task
        await db.close()

    before = time.process_time()  # after the imports: start-up is not the engine's cost
    asyncio.run(run())
    cpu.put(time.process_time() - before)


def _run_workers(url: str, workers: int) -> float:
    """Runs the queue dry; returns the CPU seconds the worker processes used."""
    ctx = mp.get_context("spawn")
    cpu = ctx.Queue()
    procs = [ctx.Process(target=_worker_process, args=(url, 0.2, cpu)) for _ in range(workers)]
    for p in procs:
        p.start()
    used = sum(cpu.get() for _ in procs)
    for p in procs:
        p.join()
    return float(used)


def throughput(url: str, devices: int, workers: int) -> tuple[int, float, int, float]:
    """Steps, seconds, failed jobs, and the worker processes' CPU seconds."""
    asyncio.run(_seed(url, devices))
    cpu = 0.0
    for job_type in (JobType.ACTIVATE, JobType.DEACTIVATE):
        asyncio.run(_submit(url, devices, job_type))
        cpu += _run_workers(url, workers)
    return (*asyncio.run(_measure(url)), cpu)


async def cpu_per_cycle(url: str, cycles: int) -> tuple[float, float]:
    """CPU per activate+deactivate cycle run, and per job submitted (ms)."""
    await _seed(url, cycles)
    db = Database.from_url(url)
    store = Store(db)
    registry = DriverRegistry()
    registry.register("simulated", SimulatedDriverFactory())
    worker = Worker(store=store, drivers=registry, config=EngineConfig(lease_ttl_s=60))
    service = JobService(store)
    used = submitting = 0.0
    for i in range(cycles):
        for job_type in (JobType.ACTIVATE, JobType.DEACTIVATE):
            before = time.process_time()
            await _submit_one(service, i, job_type)
            submitting += time.process_time() - before
            before = time.process_time()
            while await worker.run_once():
                pass
            used += time.process_time() - before
    await store.notices.close()
    await db.close()
    return used / cycles * 1000, submitting / (2 * cycles) * 1000


async def _pg_database() -> tuple[str, str]:
    name = f"pitstop_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{PG}/{name}", name


async def _drop_pg(name: str) -> None:
    conn = await asyncpg.connect(PG.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def bench(kind: str, devices: int, cycles: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for what in ("throughput", "cpu"):
            if kind == "sqlite":
                url, name = f"sqlite+aiosqlite:///{Path(tmp) / (what + '.db')}", ""
            else:
                url, name = asyncio.run(_pg_database())
            try:
                if what == "throughput":
                    steps, elapsed, failed, cpu = throughput(url, devices, workers)
                    rate = steps / elapsed
                    target = TARGET_STEPS[kind]
                    print(
                        f"{kind}: {devices} devices x (activate + deactivate), {workers} worker "
                        f"processes: {steps} steps in {elapsed:.2f} s = {rate:.0f} steps/s "
                        f"(target {target:.0f}: {rate / target:.2f}x); failed jobs: {failed}; "
                        f"worker CPU {cpu:.2f} s = {cpu / steps * 1000:.2f} ms per step "
                        f"(target {TARGET_STEP_CPU_MS} ms: "
                        f"{cpu / steps * 1000 / TARGET_STEP_CPU_MS:.2f}x)"
                    )
                else:
                    ms, submit_ms = asyncio.run(cpu_per_cycle(url, cycles))
                    print(
                        f"{kind}: orchestration CPU per activate+deactivate cycle over {cycles} "
                        f"cycles: {ms:.1f} ms (target {TARGET_CPU_MS:.0f} ms: "
                        f"{ms / TARGET_CPU_MS:.2f}x); submit CPU per job {submit_ms:.2f} ms "
                        f"(target {TARGET_SUBMIT_MS} ms: {submit_ms / TARGET_SUBMIT_MS:.2f}x)"
                    )
            finally:
                if name:
                    asyncio.run(_drop_pg(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--devices", type=int, default=60)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average {load}")
    for kind in kinds:
        bench(kind, args.devices, args.cycles, args.workers)


if __name__ == "__main__":
    main()
