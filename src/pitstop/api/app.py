"""The FastAPI application factory: builds the HTTP app, and nothing else.

The app serves from a ``Backend`` (the store and the drivers) that it is given: a store built
by a test, or the process's runtime, which the composition root (``pitstop/runtime.py``)
opens when the app starts and closes when it stops. What runs in the background (workers,
the campaign driver, the epoch ticker, the watchdog) is the root's business, not the app's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

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
from pitstop.domain.throttle import FailureThrottle
from pitstop.drivers.registry import DriverRegistry
from pitstop.settings import Settings
from pitstop.storage.store import Store


@dataclass(frozen=True, slots=True)
class Backend:
    """What the HTTP app serves from."""

    store: Store
    drivers: DriverRegistry


OpenBackend = Callable[[], AbstractAsyncContextManager[Backend]]


def create_app(
    settings: Settings | None = None,
    *,
    backend: OpenBackend | None = None,
    store: Store | None = None,
    drivers: DriverRegistry | None = None,
    import_reader: ImportReader | None = None,
) -> FastAPI:
    """Build the app on ``backend``, entered when the app starts and left when it stops.

    Instead, a test may give a ``store`` (used as is) and ``drivers`` (by default the
    entry-point drivers on the store's clock, closed when the app stops). An
    ``import_reader`` given is shared with other apps and left open."""
    if (backend is None) == (store is None):
        raise TypeError("create_app needs a backend or a store, not both")
    settings = settings or Settings()

    @asynccontextmanager
    async def own_store() -> AsyncIterator[Backend]:
        assert store is not None
        if drivers is not None:
            yield Backend(store=store, drivers=drivers)
            return
        registry = DriverRegistry.from_entry_points(
            clock=store.clock, state_dir=settings.sim_state_dir
        )
        try:
            yield Backend(store=store, drivers=registry)
        finally:
            await registry.aclose()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            served = await stack.enter_async_context(backend() if backend else own_store())
            app.state.store = served.store
            app.state.drivers = served.drivers
            reader = import_reader or ImportReader(max_rows=settings.max_import_rows)
            if import_reader is None:
                stack.callback(reader.close)
            app.state.import_reader = reader
            yield

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
