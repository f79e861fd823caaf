"""Every command builds its process through the one composition root (``pitstop.runtime``):
the same database settings, the services its plan names, and a clean stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_server import ServerProcess, child_env, new_token, sqlite_url
from sqlalchemy import text

from pitstop.api.app import create_app
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


LAB = """
fabrics:
  - name: term
    groups: [{name: spines, max_unavailable: 1}]
    devices:
      - {name: spine1, role: spine, groups: [spines], labels: {sim.convergence_s: "4"}}
      - {name: spine2, role: spine, groups: [spines]}
"""
FAST = {"sample_interval_s": 0.2, "drain": {"poll_interval_s": 0.25, "timeout_s": 60}}


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pitstop", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait(lambda: b"pitstop worker" in log.read_bytes() or proc.poll() is not None, 60, "a worker")
    assert proc.poll() is None, log.read_text()
    return proc


def test_pitstop_worker_stopped_with_sigterm_hands_its_job_on_at_once(tmp_path: Path) -> None:
    """The API server runs no workers; a ``pitstop worker`` takes the job and is stopped
    mid-drain. With a lease of ten minutes, a second worker finishes the job within the wait
    only because the first one released the lease as it stopped."""
    token = new_token()
    env = child_env(
        tmp_path,
        PITSTOP_DATABASE_URL=sqlite_url(tmp_path / "term.db"),
        PITSTOP_BOOTSTRAP_TOKEN=token,
        PITSTOP_SIM_STATE_DIR=str(tmp_path / "sim"),
        PITSTOP_LEASE_TTL_S="600",
        PITSTOP_WORKERS="0",
    )
    server = ServerProcess("serve", env=env, log=tmp_path / "server.log")
    headers = {"Authorization": f"Bearer {token}"}
    with server, httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        r = http.post("/api/v1/inventory/import", content=LAB, params={"format": "yaml"})
        assert r.status_code == 200, r.text
        first = _worker(env, tmp_path / "first.log")
        try:
            r = http.post(
                "/api/v1/jobs",
                json={
                    "type": "maintenance.activate",
                    "device": "spine1",
                    "advanced_parameters": FAST,
                    "reason": "graceful stop of a worker",
                },
            )
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]

            def step() -> str | None:
                current: str | None = http.get(f"/api/v1/jobs/{job_id}").json()["current_step"]
                return current

            _wait(lambda: step() == "verify_drain", 30, "the job to reach verify_drain")
            first.send_signal(signal.SIGTERM)
            assert first.wait(30) == 0, (tmp_path / "first.log").read_text()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
        second = _worker(env, tmp_path / "second.log")
        try:

            def finished() -> dict[str, Any] | None:
                job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}").json()
                return job if job["status"] in ("succeeded", "failed", "cancelled") else None

            job = _wait(finished, 60, "the handed-over job to finish")
        finally:
            second.terminate()
            second.wait(30)
        assert job["status"] == "succeeded", (job, (tmp_path / "second.log").read_text())
        steps = {s["name"]: s for s in job["steps"]}
        assert steps["divert"]["runs"] == 1
        assert steps["verify_drain"]["runs"] == 2
        events = http.get(f"/api/v1/jobs/{job_id}/events", params={"follow": "false"}).json()
        assert any(
            "is shutting down (verify_drain was interrupted)" in e["message"] for e in events
        )


class _Crashing:
    async def run_forever(self, stop: asyncio.Event) -> None:
        raise RuntimeError("the exporter's port is taken")


class _Waiting:
    stopped = False

    async def run_forever(self, stop: asyncio.Event) -> None:
        try:
            await stop.wait()
        finally:
            self.stopped = stop.is_set()


async def test_a_service_added_to_the_runtime_runs_and_one_that_crashes_is_logged(
    fresh_sqlite_url: Callable[[], str], caplog: pytest.LogCaptureFixture
) -> None:
    """The seam where metrics and tracing plug in: any ``run_forever(stop)`` joins the
    services. One that fails is logged at once and leaves the others running."""
    settings = Settings(database_url=fresh_sqlite_url())
    waiting = _Waiting()
    async with open_runtime(settings, plan=Plan(workers=0, fleet=False)) as runtime:
        runtime.services += [_Crashing(), waiting]
        with caplog.at_level(logging.ERROR, logger="pitstop.runtime"):
            async with runtime.running():
                deadline = time.monotonic() + 10
                while "_Crashing stopped on its own" not in caplog.text:
                    assert time.monotonic() < deadline, caplog.text
                    await asyncio.sleep(0.01)
                assert "the exporter's port is taken" in caplog.text
                assert not waiting.stopped
        assert waiting.stopped


def test_the_http_app_factory_opens_no_database_of_its_own() -> None:
    """Only the root opens databases: an app given neither a backend nor a store is refused
    when it is built, not when its first request finds no database."""
    with pytest.raises(TypeError, match="needs a backend or a store"):
        create_app(Settings())
