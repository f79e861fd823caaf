"""The peer's side of ``engine_peers.py``: a procrastinate app whose one task queues the next
job of its chain. A module of its own, so that the worker processes import the same task."""

from __future__ import annotations

import procrastinate


def chain_app(dsn: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="step")
    async def step(left: int) -> None:
        if left > 1:
            await step.defer_async(left=left - 1)

    return app
