"""Bulk inventory import (see ``pitstop.api.importing``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from pitstop.api.deps import Admin, StoreDep, ViaDep
from pitstop.api.import_pool import ImportReader
from pitstop.api.importing import run_import
from pitstop.api.schemas import ImportResult
from pitstop.domain.errors import ValidationFailed

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"])

# The body limit (PITSTOP_MAX_IMPORT_BYTES, api/body_limit.py) is larger on this path.
IMPORT_PATH = "/api/v1/inventory/import"


@router.post(
    IMPORT_PATH.removeprefix("/api/v1/inventory"),
    openapi_extra={
        "requestBody": {
            "content": {"application/yaml": {"schema": {"type": "string"}}, "text/csv": {}},
            "required": True,
        }
    },
)
async def import_inventory(
    request: Request,
    store: StoreDep,
    actor: Admin,
    via: ViaDep,
    format: Annotated[Literal["yaml", "csv"] | None, Query()] = None,
    fabric: Annotated[str | None, Query(description="Fabric to import into")] = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import devices (and groups and fabrics, from YAML) atomically: on any error nothing is
    written and the answer lists each bad row and field. The body is the file itself."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("the file is not UTF-8 text") from exc
    fmt = format or ("csv" if "csv" in request.headers.get("content-type", "") else "yaml")
    reader: ImportReader = request.app.state.import_reader
    parsed = await reader.read(text, fmt=fmt, fabric=fabric)
    async with store.unit() as u:
        return await run_import(u, parsed, dry_run=dry_run, actor=actor, via=via)
