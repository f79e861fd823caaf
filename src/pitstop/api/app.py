"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pitstop import __version__
from pitstop.api import problems
from pitstop.api.routers import audit, devices, fabrics, health, inventory, tokens
from pitstop.api.startup import ensure_admin_token, seed_demo
from pitstop.settings import Settings
from pitstop.storage.database import Database
from pitstop.storage.migrate import upgrade
from pitstop.storage.store import Store

Announce = Callable[[str], None]


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    demo: bool = False,
    announce: Announce = print,
) -> FastAPI:
    """Build the app. Given a ``store`` (tests), it is used as is; otherwise the app connects to
    ``settings.database_url`` on start, migrates it, and creates the first admin token."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            app.state.store = store
            yield
            return
        db = Database.from_url(
            settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        await upgrade(db.engine)
        own = Store(db)
        app.state.store = own
        secret = await ensure_admin_token(own, bootstrap=settings.bootstrap_token, always=demo)
        if demo and await seed_demo(own):
            announce("Seeded the demo fleet: fabrics dc1 and storage.")
        if secret and secret != settings.bootstrap_token:
            announce(f"Admin token (shown once, store it now): {secret}")
        try:
            yield
        finally:
            await db.close()

    app = FastAPI(
        title="pitstop",
        version=__version__,
        summary="Take infrastructure devices out of service safely, and bring them back.",
        lifespan=lifespan,
    )
    problems.install(app)
    for module in (health, fabrics, devices, inventory, tokens, audit):
        app.include_router(module.router)
    return app
