"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pitstop.storage.migrate import current_revision, head_revision
from pitstop.storage.store import Store

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """The answer of ``/readyz``: ``ok`` with the schema revision, or ``unavailable`` and why.
    Not a problem: load balancers read ``status``."""

    status: str = Field(description="ok or unavailable")
    schema_: str | None = Field(default=None, alias="schema", description="Schema revision")
    detail: str | None = Field(default=None, description="Why it is not ready")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": Readiness, "description": "Ready"},
        503: {"model": Readiness, "description": "Not ready: the database or its schema"},
    },
)
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
