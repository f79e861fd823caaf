"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pitstop import __version__
from pitstop.api import docs, openapi, problems
from pitstop.api.body_limit import BodyLimit, Limit
from pitstop.api.headers import SecurityHeaders
from pitstop.api.import_pool import ImportReader
from pitstop.api.json_guard import JsonGuard
from pitstop.api.nul_guard import NulGuard
from pitstop.api.routers import (
    actions,
    audit,
    campaigns,
    devices,
    fabrics,
    health,
    inventory,
    jobs,
    maps,
    policy,
    simulated,
    tokens,
)
from pitstop.api.startup import ensure_admin_token, seed_demo
from pitstop.domain.throttle import FailureThrottle
from pitstop.drivers.registry import DriverRegistry
from pitstop.engine.campaign_runner import CampaignDriver, CampaignDriverConfig
from pitstop.engine.epochs import EpochTicker
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.watchdog import Watchdog
from pitstop.settings import Settings
from pitstop.storage.database import Database
from pitstop.storage.migrate import upgrade
from pitstop.storage.store import Store

Announce = Callable[[str], None]


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        lease_ttl_s=settings.lease_ttl_s,
        concurrency=settings.worker_concurrency,
        max_running=settings.max_running,
        max_running_per_fabric=settings.max_running_per_fabric,
    )


def fleet_tasks(store: Store, settings: Settings, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    ticker = EpochTicker(
        store=store, interval_s=settings.epoch_interval_s, keep=settings.map_epochs_kept
    )
    watchdog = Watchdog(store=store, interval_s=settings.watchdog_interval_s)
    return [
        asyncio.create_task(ticker.run_forever(stop)),
        asyncio.create_task(watchdog.run_forever(stop)),
    ]


def campaign_driver(store: Store, settings: Settings) -> CampaignDriver:
    config = CampaignDriverConfig(
        lease_ttl_s=settings.lease_ttl_s, poll_interval_s=settings.campaign_poll_interval_s
    )
    return CampaignDriver(store=store, config=config)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    drivers: DriverRegistry | None = None,
    workers: int | None = None,
    demo: bool = False,
    announce: Announce = print,
    background: bool | None = None,
    import_reader: ImportReader | None = None,
) -> FastAPI:
    """Build the app. Given a ``store`` (tests), it is used as is and no worker runs unless
    ``workers`` says so; otherwise the app connects to ``settings.database_url`` on start,
    migrates it, creates the first admin token, and runs ``settings.workers`` job workers.
    An ``import_reader`` given is shared with other apps and left open."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db: Database | None = None
        live = store
        if live is None:
            db = Database.from_url(
                settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
            )
            await upgrade(db.engine)
            live = Store(db)
            secret = await ensure_admin_token(live, bootstrap=settings.bootstrap_token, always=demo)
            if demo and await seed_demo(live):
                announce("Seeded the demo fleet: fabrics dc1 and storage.")
            if secret and secret != settings.bootstrap_token:
                announce(f"Admin token (shown once, store it now): {secret}")
        registry = drivers or DriverRegistry.from_entry_points(
            clock=live.clock, state_dir=settings.sim_state_dir
        )
        app.state.store = live
        reader = import_reader or ImportReader(max_rows=settings.max_import_rows)
        app.state.import_reader = reader
        app.state.drivers = registry
        count = workers if workers is not None else (settings.workers if store is None else 0)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(
                Worker(store=live, drivers=registry, config=engine_config(settings)).run_forever(
                    stop
                )
            )
            for _ in range(count)
        ]
        # Fleet: the epoch ticker and the watchdog run in every real server (not in tests that
        # bring their own store, unless they ask).
        if background if background is not None else store is None:
            tasks += fleet_tasks(live, settings, stop)
        if count:
            # Campaigns are driven wherever jobs run; a lease keeps each with one driver.
            tasks.append(asyncio.create_task(campaign_driver(live, settings).run_forever(stop)))
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if import_reader is None:
                reader.close()
            if drivers is None:
                await registry.aclose()
            if db is not None:
                await db.close()

    app = FastAPI(
        title="pitstop",
        version=__version__,
        summary="Take infrastructure devices out of service safely, and bring them back.",
        lifespan=lifespan,
        # Served from the package instead (docs.py): FastAPI's pages load a CDN.
        docs_url=None,
        redoc_url=None,
    )
    # Per app, shared by the API's Bearer check and the web sign-in.
    app.state.auth_throttle = FailureThrottle(limit=settings.auth_failures_per_minute)
    problems.install(app)
    openapi.install(app)
    docs.install(app)
    # The last added runs first: a body over the limit is refused before the guard reads it.
    app.add_middleware(JsonGuard)
    app.add_middleware(NulGuard)
    app.add_middleware(
        BodyLimit,
        default=Limit(settings.max_body_bytes, "PITSTOP_MAX_BODY_BYTES"),
        per_path={
            inventory.IMPORT_PATH: Limit(settings.max_import_bytes, "PITSTOP_MAX_IMPORT_BYTES")
        },
    )
    # Outermost: the guards' own refusals (413, 422) carry the security headers too.
    app.add_middleware(SecurityHeaders)
    for module in (health, fabrics, devices, inventory, jobs, tokens, audit, simulated):
        app.include_router(openapi.documented(module.router))
    # Fleet: policy, budgets and the fleet map.
    app.include_router(openapi.documented(policy.router))
    app.include_router(openapi.documented(maps.router))
    app.include_router(openapi.documented(campaigns.router))
    app.include_router(openapi.documented(actions.router))
    return app
