"""What each role can cause, checked over every write operation the API documents.

The README's role table is the promise: a viewer changes nothing, an operator only moves
devices along the maintenance path and runs jobs and campaigns, and everything else is an
admin's. Listing the operations from the OpenAPI document (not by hand) means a new write
operation fails this test until it is placed in one of the sets below.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import SQLITE_ONLY, Api, open_api

from pitstop.storage.store import Store

pytestmark = SQLITE_ONLY

WRITES = ("post", "put", "patch", "delete")
# Computes and answers; stores nothing.
ANYONE_MAY = {"POST /api/v1/campaigns/plan"}
OPERATOR_MAY = ANYONE_MAY | {
    "POST /api/v1/devices/{device}/status",
    "POST /api/v1/jobs",
    "POST /api/v1/jobs/{job}/cancel",
    "POST /api/v1/jobs/{job}/retry",
    "POST /api/v1/fabrics/{fabric}/epochs/tick",
    "POST /api/v1/campaigns",
    "POST /api/v1/campaigns/{ref}/start",
    "POST /api/v1/campaigns/{ref}/pause",
    "POST /api/v1/campaigns/{ref}/resume",
    "POST /api/v1/campaigns/{ref}/abort",
    "POST /api/v1/campaigns/{ref}/rollback",
    "POST /api/v1/campaigns/{ref}/devices/{device}/approve",
}
# Path parameters filled with things that exist, so a refusal is the role's and not a 404.
PATH_VALUES = {
    "fabric": "dc1",
    "device": "leaf1",
    "group": "mlag-1",
    "token": "viewer",
    "ref": "no-such-campaign",
    "job": str(uuid.uuid4()),
    "name": "no-such-action",
}


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.seed_demo()
        yield a


async def _writes(api: Api) -> list[tuple[str, str]]:
    doc = (await api.get("/openapi.json", as_=None)).json()
    return sorted(
        (method.upper(), path)
        for path, ops in doc["paths"].items()
        for method in ops
        if method in WRITES
    )


async def _not_refused(api: Api, who: str) -> set[str]:
    """The write operations whose answer to ``who`` is not 403 FORBIDDEN."""
    passed: set[str] = set()
    for method, path in await _writes(api):
        url = path.format(**PATH_VALUES)
        kw: dict[str, Any] = {} if method == "DELETE" else {"json": {}}
        r = await api.request(method, url, as_=who, **kw)
        assert r.status_code < 500, (method, path, r.text)
        if r.status_code != 403:
            passed.add(f"{method} {path}")
        else:
            assert r.json()["code"] == "FORBIDDEN", (method, path, r.text)
    return passed


async def _state(api: Api) -> Any:
    return (
        await api.ok("GET", "/api/v1/fabrics"),
        [(d["name"], d["status"], d["version"]) for d in await api.all_devices()],
        # A token's last use moves with every request; nothing else of it may.
        [{**t, "last_used_at": None} for t in await api.ok("GET", "/api/v1/tokens")],
        await api.ok("GET", "/api/v1/actions"),
    )


async def test_a_viewer_is_refused_every_write_operation_and_changes_nothing(api: Api) -> None:
    before = await _state(api)
    assert await _not_refused(api, "viewer") == ANYONE_MAY
    assert await _state(api) == before
    assert await api.audit(actor="viewer") == []


async def test_an_operator_may_write_only_along_the_maintenance_path(api: Api) -> None:
    assert await _not_refused(api, "operator") == OPERATOR_MAY


async def test_every_write_operation_is_placed_in_the_role_table(api: Api) -> None:
    # An admin is refused none of them (a fabric-scoped token is another matter).
    assert await _not_refused(api, "admin") == {f"{m} {p}" for m, p in await _writes(api)}
