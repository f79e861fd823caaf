"""The error statuses an operation documents follow from what its route declares."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel

from pitstop.api import openapi
from pitstop.api.deps import ActorDep, Admin, ViaDep
from pitstop.api.problems import MEDIA_TYPE


class WidgetIn(BaseModel):
    fabric: str
    size: int


def _router() -> APIRouter:
    router = APIRouter(prefix="/w")

    @router.get("/open")
    async def open_() -> dict[str, str]:
        return {}

    @router.get("")
    async def listing(_: ActorDep, limit: Annotated[int, Query(ge=1)] = 10) -> dict[str, str]:
        return {}

    @router.get("/{widget}")
    async def one(widget: str, _: ActorDep) -> dict[str, str]:
        return {}

    @router.post("", responses={413: {"description": "too big"}})
    async def make(body: WidgetIn, _: Admin, via: ViaDep) -> dict[str, str]:
        return {}

    return router


def _responses() -> dict[str, dict[str, object]]:
    app = FastAPI()
    app.include_router(openapi.documented(_router()))
    openapi.install(app)
    doc = app.openapi()
    return {
        f"{m.upper()} {p}": op["responses"]
        for p, ops in doc["paths"].items()
        for m, op in ops.items()
    }


def test_statuses_follow_from_token_role_references_and_inputs() -> None:
    errors = {op: {s for s in r if int(s) >= 400} for op, r in _responses().items()}
    assert errors == {
        "GET /w/open": set(),
        "GET /w": {"401", "422", "429"},
        "GET /w/{widget}": {"401", "404", "422", "429"},
        # A body naming a fabric may name one that does not exist; a write may conflict; any
        # body may be over the limit.
        "POST /w": {"401", "403", "404", "409", "413", "422", "429"},
    }


def test_every_error_declared_or_derived_is_a_problem() -> None:
    made = _responses()["POST /w"]
    for status in ("401", "403", "404", "409", "413", "422", "429"):
        content = made[status]["content"]
        assert content == {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_documenting_a_router_twice_changes_nothing() -> None:
    router = _router()
    openapi.documented(router)
    once = [dict(r.responses) for r in router.routes]  # type: ignore[attr-defined]
    openapi.documented(router)
    assert [dict(r.responses) for r in router.routes] == once  # type: ignore[attr-defined]
