"""``pitstop serve``, ``pitstop demo``, ``pitstop worker`` and ``pitstop db upgrade``: the
commands that run here rather than talk to a server. Each builds its process through the
composition root, ``pitstop.runtime``."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer

from pitstop.settings import Settings, default_database_url

# The server side (FastAPI, SQLAlchemy, Alembic, uvicorn) is imported inside the commands that
# need it: every other command is a thin HTTP client and should start in a blink.

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)

HostOpt = Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1)")]
PortOpt = Annotated[int | None, typer.Option(help="Port to listen on (default 8080)")]


def _settings(host: str | None, port: int | None, **overrides: object) -> Settings:
    values: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
    if host is not None:
        values["host"] = host
    if port is not None:
        values["port"] = port
    return Settings(**values)  # type: ignore[arg-type]


def _run(settings: Settings, *, demo: bool) -> None:
    import uvicorn

    from pitstop.runtime import server_app

    url = f"http://{settings.host}:{settings.port}"

    def announce(message: str) -> None:
        typer.echo(message, err=False)

    announce(f"pitstop {'demo ' if demo else ''}server on {url}  (API docs: {url}/docs)")
    announce(f"Database: {settings.database_url}")
    app = server_app(settings, demo=demo, announce=announce)
    announce(f"Web UI: {url}/ui/")
    believe, trusted = proxy(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=believe,
        forwarded_allow_ips=trusted,
    )


def proxy(settings: Settings) -> tuple[bool, str | None]:
    """uvicorn's options for a reverse proxy: X-Forwarded-For and X-Forwarded-Proto are
    believed only from ``PITSTOP_TRUSTED_PROXIES`` (nobody by default, so no client can claim
    another address to dodge the sign-in limit, or claim HTTPS)."""
    trusted = ",".join(p.strip() for p in settings.trusted_proxies.split(",") if p.strip())
    return (True, trusted) if trusted else (False, None)


def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the API server (migrates the database first; prints an admin token on first start)."""
    _run(_settings(host, port), demo=False)


def demo(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the server with the demo fleet (dc1 and storage) in a SQLite file of its own."""
    database_url = None if "PITSTOP_DATABASE_URL" in os.environ else default_database_url("demo.db")
    _run(_settings(host, port, database_url=database_url), demo=True)


def worker(
    count: Annotated[int, typer.Option(help="Workers in this process")] = 1,
) -> None:
    """Run job workers without the API (more capacity next to `pitstop serve`)."""
    from pitstop.runtime import open_runtime, worker_plan

    settings = Settings()

    async def run() -> None:
        async with open_runtime(settings, plan=worker_plan(count)) as runtime:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            typer.echo(f"{count} pitstop worker(s) on {settings.database_url}")
            async with runtime.running():
                await stop.wait()

    asyncio.run(run())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to PITSTOP_DATABASE_URL."""
    from pitstop.runtime import open_database
    from pitstop.storage.migrate import current_revision, upgrade

    settings = Settings()

    async def run() -> str | None:
        db = open_database(settings)
        try:
            await upgrade(db.engine)
            return await current_revision(db.engine)
        finally:
            await db.close()

    revision = asyncio.run(run())
    typer.echo(f"Database at revision {revision}: {settings.database_url}")
