"""Engine against a peer, on one PostgreSQL: pitstop's steps per second and worker CPU per
step next to procrastinate's, in the same run, with the same two worker processes (16 jobs
each at once), and how long a job queued in one process takes to start in another.

    .venv/bin/python bench/engine_peers.py [--devices 60] [--workers 2] [--wakeups 20]

- pitstop: ``bench/engine.py``'s throughput run (activations, then deactivations, of
  zero-latency simulated devices), on a fresh database.
- procrastinate: as many chains as pitstop ran jobs, each as long as pitstop's jobs were on
  average, every job queueing the next of its chain (a job is one step), on another fresh
  database, with its default worker settings (LISTEN/NOTIFY, polling every 5 s as a fallback).
- wake-up: one pitstop worker process polling once an hour; jobs submitted one at a time
  from this process; the time from the submit's return to the job's start (both read from
  this machine's clock).

Prints counts and ratios (targets: 2x procrastinate's steps/s, 0.7 ms worker CPU per step,
50 ms from queued to started). The machine's load moves wall-clock figures; the first line
gives it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import procrastinate
from chains import chain_app
from engine import (
    CONCURRENCY,
    PARAMS,
    _drop_pg,
    _pg_database,
    _seed,
    _submit_one,
    throughput,
)

from pitstop.domain.jobs import JobType
from pitstop.drivers.registry import DriverRegistry
from pitstop.drivers.simulated import SimulatedDriverFactory
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.service import JobService
from pitstop.storage.database import Database
from pitstop.storage.store import Store

TARGET_RATIO = 2.0
TARGET_CPU_MS = 0.7
TARGET_WAKE_MS = 50.0


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


# procrastinate -----------------------------------------------------------------------------


async def _remaining(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        n = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        )
        return int(n)
    finally:
        await conn.close()


def _procrastinate_worker(url: str, cpu: Any) -> None:
    async def run() -> None:
        app = chain_app(_dsn(url))
        async with app.open_async():
            task = asyncio.create_task(
                app.run_worker_async(
                    concurrency=CONCURRENCY, wait=True, install_signal_handlers=False
                )
            )
            # Stop as pitstop's bench workers do: when the queue has run dry.
            while True:
                await asyncio.sleep(0.2)
                if not await _remaining(_dsn(url)):
                    break
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    before = time.process_time()
    asyncio.run(run())
    cpu.put(time.process_time() - before)


async def _procrastinate_setup(url: str, chains: int, length: int) -> None:
    app = chain_app(_dsn(url))
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        step = app.tasks["step"]
        for _ in range(chains):
            await step.defer_async(left=length)


async def _procrastinate_measure(url: str) -> tuple[int, float, int]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        done = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        )
        failed = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'"
        )
        start, end = await conn.fetchrow(
            "SELECT min(at) FILTER (WHERE type = 'started'),"
            " max(at) FILTER (WHERE type IN ('succeeded', 'failed'))"
            " FROM procrastinate_events"
        )
    finally:
        await conn.close()
    return int(done), (end - start).total_seconds(), int(failed)


def procrastinate_throughput(
    url: str, chains: int, length: int, workers: int
) -> tuple[int, float, int, float]:
    asyncio.run(_procrastinate_setup(url, chains, length))
    ctx = mp.get_context("spawn")
    cpu = ctx.Queue()
    procs = [ctx.Process(target=_procrastinate_worker, args=(url, cpu)) for _ in range(workers)]
    for p in procs:
        p.start()
    used = sum(cpu.get() for _ in procs)
    for p in procs:
        p.join()
    return (*asyncio.run(_procrastinate_measure(url)), float(used))


# wake-up across processes ------------------------------------------------------------------


def _idle_worker(url: str, ready: Any, stop: Any) -> None:
    async def run() -> None:
        db = Database.from_url(url)
        registry = DriverRegistry()
        registry.register("simulated", SimulatedDriverFactory())
        store = Store(db)
        worker = Worker(
            store=store,
            drivers=registry,
            config=EngineConfig(lease_ttl_s=60, poll_interval_s=3600, concurrency=CONCURRENCY),
        )
        halt = asyncio.Event()
        task = asyncio.create_task(worker.run_forever(halt))
        await asyncio.wait_for(store.notices.ready.wait(), 30)
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        halt.set()
        await task
        await db.close()

    asyncio.run(run())


async def _wakeups(url: str, count: int) -> list[float]:
    db = Database.from_url(url)
    store = Store(db)
    service = JobService(store)
    latencies = []
    try:
        for i in range(count):
            await _submit_one(service, i, JobType.HEALTHCHECK)
            submitted = datetime.now(UTC)
            while True:
                async with store.unit() as u:
                    job = (await u.jobs.page(limit=1)).items[0]
                if job.started_at is not None and job.status.finished:
                    break
                await asyncio.sleep(0.05)
            latencies.append((job.started_at - submitted).total_seconds() * 1000)
    finally:
        await store.notices.close()
        await db.close()
    return latencies


def wakeup(url: str, count: int) -> list[float]:
    asyncio.run(_seed(url, count))
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_idle_worker, args=(url, ready, stop))
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the worker process did not start listening")
        return asyncio.run(_wakeups(url, count))
    finally:
        stop.set()
        proc.join()


# -------------------------------------------------------------------------------------------


def _fresh() -> tuple[str, str]:
    return asyncio.run(_pg_database())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--wakeups", type=int, default=20)
    args = parser.parse_args()
    assert PARAMS  # the same zero-latency parameters as bench/engine.py
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average {load}")

    url, name = _fresh()
    try:
        steps, elapsed, failed, cpu = throughput(url, args.devices, args.workers)
    finally:
        asyncio.run(_drop_pg(name))
    rate, ms = steps / elapsed, cpu / steps * 1000
    jobs = 2 * args.devices
    print(
        f"pitstop: {jobs} jobs, {steps} steps in {elapsed:.2f} s = {rate:.0f} steps/s; "
        f"failed jobs: {failed}; worker CPU {cpu:.2f} s = {ms:.2f} ms per step "
        f"(target {TARGET_CPU_MS} ms: {ms / TARGET_CPU_MS:.2f}x)"
    )

    length = max(1, round(steps / jobs))
    url, name = _fresh()
    try:
        p_steps, p_elapsed, p_failed, p_cpu = procrastinate_throughput(
            url, jobs, length, args.workers
        )
    finally:
        asyncio.run(_drop_pg(name))
    p_rate, p_ms = p_steps / p_elapsed, p_cpu / p_steps * 1000
    print(
        f"procrastinate {procrastinate.__version__}: {jobs} chains of {length} jobs, "
        f"{p_steps} steps in {p_elapsed:.2f} s = {p_rate:.0f} steps/s; failed jobs: "
        f"{p_failed}; worker CPU {p_cpu:.2f} s = {p_ms:.2f} ms per step"
    )
    print(
        f"pitstop / procrastinate: steps/s {rate / p_rate:.2f}x (target {TARGET_RATIO:.0f}x), "
        f"worker CPU per step {ms / p_ms:.2f}x"
    )

    if args.wakeups:
        url, name = _fresh()
        try:
            waits = sorted(wakeup(url, args.wakeups))
        finally:
            asyncio.run(_drop_pg(name))
        median = statistics.median(waits)
        print(
            f"wake-up across processes (worker polling once an hour), {len(waits)} jobs: "
            f"queued to started median {median:.1f} ms, max {waits[-1]:.1f} ms "
            f"(target {TARGET_WAKE_MS:.0f} ms: {median / TARGET_WAKE_MS:.2f}x)"
        )


if __name__ == "__main__":
    main()
