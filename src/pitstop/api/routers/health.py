"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pitstop.storage.migrate import current_revision, head_revision
from pitstop.storage.store import Store

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the version this build expects."""
    store: Store = request.app.state.store
    try:
        await store.db.ping()
        current = await current_revision(store.db.engine)
    except Exception as exc:  # any database failure means not ready
        return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
    head = head_revision()
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "detail": f"schema at {current}, expected {head}"},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "schema": current})
