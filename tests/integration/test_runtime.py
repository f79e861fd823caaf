"""Every command builds its process through the one composition root (``pitstop.runtime``):
the same database settings, the services its plan names, and a clean stop."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_server import child_env
from sqlalchemy import text

from pitstop.api.startup import seed_demo
from pitstop.runtime import Plan, Runtime, open_runtime, serve_plan, worker_plan
from pitstop.settings import Settings

BUSY_MS = 1234


def _plans(settings: Settings) -> dict[str, Plan]:
    return {"serve": serve_plan(settings), "worker": worker_plan(2)}


@pytest.mark.parametrize("command", ["serve", "worker"])
async def test_every_command_opens_sqlite_with_the_configured_busy_timeout_and_wal(
    fresh_sqlite_url: Callable[[], str], command: str
) -> None:
    """Both the ORM's connections and the engine's raw hot path: a worker that waited less
    than the servers would fail its writes where they wait their turn."""
    settings = Settings(database_url=fresh_sqlite_url(), sqlite_busy_timeout_ms=BUSY_MS)
    async with open_runtime(settings, plan=_plans(settings)[command]) as runtime:
        async with runtime.database.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == BUSY_MS
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        raw = await runtime.database.connector.fetchone("PRAGMA busy_timeout", [])
        assert raw is not None
        assert raw[0] == BUSY_MS


async def test_serve_runs_the_fleet_services_and_a_worker_only_jobs_and_campaigns(
    fresh_sqlite_url: Callable[[], str],
) -> None:
    settings = Settings(database_url=fresh_sqlite_url(), workers=2)
    expected = {
        serve_plan(settings): ["CampaignDriver", "EpochTicker", "Watchdog", "Worker", "Worker"],
        worker_plan(3): ["CampaignDriver", "Worker", "Worker", "Worker"],
        Plan(workers=0, fleet=False): [],
    }
    for plan, kinds in expected.items():
        async with open_runtime(settings, plan=plan) as runtime:
            assert sorted(type(s).__name__ for s in runtime.services) == kinds, plan
            for service in runtime.services:
                assert getattr(service, "store", runtime.store) is runtime.store
                assert getattr(service, "drivers", runtime.drivers) is runtime.drivers


async def _maps(runtime: Runtime) -> int:
    async with runtime.database.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM fleet_maps"))).scalar()
    return int(count or 0)


async def test_a_runtime_runs_its_services_while_running_and_stops_them_when_left(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database_url, workers=0, epoch_interval_s=0.2, sim_state_dir=tmp_path
    )
    async with open_runtime(settings, plan=serve_plan(settings)) as runtime:
        assert await seed_demo(runtime.store)
        assert await _maps(runtime) == 0, "nothing runs before running() starts it"
        async with runtime.running():
            deadline = time.monotonic() + 20
            while await _maps(runtime) == 0:
                assert time.monotonic() < deadline, "the epoch ticker published no map"
                await asyncio.sleep(0.05)
        after = await _maps(runtime)
        # Several intervals: a ticker still running would publish again meanwhile.
        await asyncio.sleep(1.0)
        assert await _maps(runtime) == after, "the epoch ticker kept running after the stop"


def test_pitstop_worker_waits_for_a_locked_sqlite_file_only_as_long_as_configured(
    fresh_sqlite_url: Callable[[], str], tmp_path: Path
) -> None:
    """``pitstop worker`` opens SQLite with ``PITSTOP_SQLITE_BUSY_TIMEOUT_MS`` like the server.
    Set to 1 ms, its next claim on a file another process holds the write lock of fails at
    once and says so; one that waited the built-in 5 s would still be waiting."""
    url = fresh_sqlite_url()
    env = child_env(
        tmp_path,
        PITSTOP_DATABASE_URL=url,
        PITSTOP_SQLITE_BUSY_TIMEOUT_MS="1",
        PITSTOP_SIM_STATE_DIR=str(tmp_path / "sim"),
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pitstop", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = time.monotonic() + 60
        while b"pitstop worker" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < ready, log.read_text()
            time.sleep(0.05)
        path = url.removeprefix("sqlite+aiosqlite:///")
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            # Well inside the 5 s a worker with the built-in timeout would wait.
            until = time.monotonic() + 4
            while b"database is locked" not in log.read_bytes():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < until, log.read_text()
                time.sleep(0.05)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0, log.read_text()
