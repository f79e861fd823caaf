"""The composition root: the one place where a pitstop process is put together.

``pitstop serve``, ``pitstop demo``, ``pitstop worker`` and ``pitstop db upgrade`` all build
their process here, so they open the database the same way (the SQLite busy timeout, WAL and
``BEGIN IMMEDIATE`` of ``storage/database.py``), load the same drivers and run the same
background services. Before there was one root, each command assembled its own copy and the
copies drifted: the worker opened SQLite without the configured busy timeout.

A process is built in two steps. ``open_runtime`` opens the resources (database, migrations,
store, driver registry) and lists the background services its ``Plan`` asks for, without
starting them; ``Runtime.running`` starts every listed service and, on the way out, stops
them all and waits for each to hand its work on (a worker releases its jobs' leases, the
campaign driver its campaigns'). A service is anything with ``run_forever(stop)``: a metrics
exporter or a tracing flusher joins ``Runtime.services`` before ``running`` starts it, and
wrapped stores or drivers go in where ``open_runtime`` builds them.

The HTTP app factory (``api/app.py``) only builds the HTTP app: ``serving`` hands it the
runtime as its backend, and ``server_app`` adds the web UI beside the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI

from pitstop.api.app import Backend, create_app
from pitstop.api.startup import ensure_admin_token, seed_demo
from pitstop.drivers.registry import DriverRegistry
from pitstop.engine.campaign_runner import CampaignDriver, CampaignDriverConfig
from pitstop.engine.epochs import EpochTicker
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.watchdog import Watchdog
from pitstop.settings import Settings
from pitstop.storage.database import Database
from pitstop.storage.migrate import upgrade
from pitstop.storage.store import Store
from pitstop.web.site import mount

log = logging.getLogger("pitstop.runtime")

Announce = Callable[[str], None]


class Service(Protocol):
    """A background service: runs until ``stop`` is set or its task is cancelled, and hands
    its work on (leases released) before it returns."""

    async def run_forever(self, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True, slots=True)
class Plan:
    """Which background services a process runs."""

    workers: int  # job workers; the campaign driver runs wherever jobs run
    fleet: bool  # the epoch ticker and the maintenance watchdog


def serve_plan(settings: Settings) -> Plan:
    """``pitstop serve`` and ``pitstop demo``: ``PITSTOP_WORKERS`` workers and the fleet."""
    return Plan(workers=settings.workers, fleet=True)


def worker_plan(count: int) -> Plan:
    """``pitstop worker``: job capacity next to the servers, which keep the fleet services."""
    return Plan(workers=count, fleet=False)


def open_database(settings: Settings) -> Database:
    """The database of every command, with the same connection settings."""
    return Database.from_url(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        lease_ttl_s=settings.lease_ttl_s,
        concurrency=settings.worker_concurrency,
        max_running=settings.max_running,
        max_running_per_fabric=settings.max_running_per_fabric,
    )


def background_services(
    *, store: Store, drivers: DriverRegistry, settings: Settings, plan: Plan
) -> list[Service]:
    """The services ``plan`` asks for, built on ``store`` and ``drivers``, not yet started."""
    services: list[Service] = [
        Worker(store=store, drivers=drivers, config=engine_config(settings))
        for _ in range(plan.workers)
    ]
    if plan.workers:
        # Campaigns are driven wherever jobs run; a lease keeps each with one driver.
        config = CampaignDriverConfig(
            lease_ttl_s=settings.lease_ttl_s, poll_interval_s=settings.campaign_poll_interval_s
        )
        services.append(CampaignDriver(store=store, config=config))
    if plan.fleet:
        services.append(
            EpochTicker(
                store=store, interval_s=settings.epoch_interval_s, keep=settings.map_epochs_kept
            )
        )
        services.append(Watchdog(store=store, interval_s=settings.watchdog_interval_s))
    return services


@dataclass
class Runtime:
    """One process's database, store, drivers and background services."""

    settings: Settings
    database: Database
    store: Store
    drivers: DriverRegistry
    services: list[Service] = field(default_factory=list)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run every service in ``services`` while inside; stop them all on the way out."""
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run_forever(stop)) for s in self.services]
        for task, service in zip(tasks, self.services, strict=True):
            task.add_done_callback(_report(service, stop))
        try:
            yield
        finally:
            stop.set()
            # Cancelled as well as told to stop: a worker interrupts its running steps now
            # and releases their leases, instead of waiting for each step to end.
            for task in tasks:
                task.cancel()
            for task in tasks:
                # Reported as it ended (``_report``); one failed service must not keep the
                # others from stopping, nor the drivers and the database from closing.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def _report(service: Service, stop: asyncio.Event) -> Callable[[asyncio.Task[None]], None]:
    """A service that ends before the stop has crashed or given up. The process carries on
    with the others, so the log says so the moment it happens, not at shutdown."""

    def done(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        name = type(service).__name__
        if not stop.is_set():
            log.error("%s stopped on its own: %s", name, exc or "it returned", exc_info=exc)
        elif exc is not None:
            log.error("%s failed while stopping: %s", name, exc, exc_info=exc)

    return done


@asynccontextmanager
async def open_runtime(settings: Settings, *, plan: Plan) -> AsyncIterator[Runtime]:
    """Open the database (migrated to the head), the store and the drivers, and list the
    services of ``plan``; everything is closed again on the way out."""
    database = open_database(settings)
    try:
        await upgrade(database.engine)
        store = Store(database)
        drivers = DriverRegistry.from_entry_points(
            clock=store.clock, state_dir=settings.sim_state_dir
        )
        try:
            services = background_services(
                store=store, drivers=drivers, settings=settings, plan=plan
            )
            yield Runtime(
                settings=settings,
                database=database,
                store=store,
                drivers=drivers,
                services=services,
            )
        finally:
            # Notices still on their way (PostgreSQL) go out before the pool closes, so the
            # other replicas hear of the last changes at once rather than at their next poll.
            await store.notices.close()
            await drivers.aclose()
    finally:
        await database.close()


async def first_start(store: Store, settings: Settings, *, demo: bool, announce: Announce) -> None:
    """What a server does before it serves: make sure an admin can sign in, seed the demo."""
    secret = await ensure_admin_token(store, bootstrap=settings.bootstrap_token, always=demo)
    if demo and await seed_demo(store):
        announce("Seeded the demo fleet: fabrics dc1 and storage.")
    if secret and secret != settings.bootstrap_token:
        announce(f"Admin token (shown once, store it now): {secret}")


def serving(
    settings: Settings, *, plan: Plan, demo: bool = False, announce: Announce = print
) -> Callable[[], AbstractAsyncContextManager[Backend]]:
    """The HTTP app's backend: a runtime opened when the app starts (on the server's event
    loop) and closed when it stops."""

    @asynccontextmanager
    async def backend() -> AsyncIterator[Backend]:
        async with open_runtime(settings, plan=plan) as runtime:
            await first_start(runtime.store, settings, demo=demo, announce=announce)
            async with runtime.running():
                yield Backend(store=runtime.store, drivers=runtime.drivers)

    return backend


def server_app(settings: Settings, *, demo: bool = False, announce: Announce = print) -> FastAPI:
    """The app ``pitstop serve`` and ``pitstop demo`` run: the API, with the web UI beside it
    (neither imports the other), on a runtime with the serve plan."""
    app = create_app(
        settings, backend=serving(settings, plan=serve_plan(settings), demo=demo, announce=announce)
    )
    mount(
        app,
        session_secret=settings.web_session_secret,
        public_url=settings.public_url,
        failures_per_minute=settings.auth_failures_per_minute,
    )
    return app
