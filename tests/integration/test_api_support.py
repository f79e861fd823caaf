"""Shared helpers for the API tests (``test_api_*.py``); this module holds no tests.

The conftest files belong to others, so the API tests share code by importing this module
(pytest puts this directory on ``sys.path``). ``open_api`` builds the real app on the per-test
``store``, runs its lifespan, and drives it through httpx's ASGI transport, with one token per
kind of caller made directly in the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pitstop.api.app import create_app
from pitstop.api.import_pool import ImportReader
from pitstop.api.startup import seed_demo
from pitstop.domain.roles import Actor, Role, Via
from pitstop.settings import Settings
from pitstop.storage.store import Store

MEDIA = "application/problem+json"

# For tests of request validation, which does not depend on the database: run them once, on
# SQLite, to keep the suite quick. Everything that reaches SQL in a way that could differ
# between the backends runs on both.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SETUP = Actor("test", Role.ADMIN)

# name -> (role, fabric scope). The token name is what the audit log records as the actor.
CALLERS: dict[str, tuple[Role, tuple[str, ...]]] = {
    "admin": (Role.ADMIN, ()),
    "operator": (Role.OPERATOR, ()),
    "operator-dc1": (Role.OPERATOR, ("dc1",)),
    "viewer": (Role.VIEWER, ()),
}

DEMO_DC1 = sorted(["spine1", "spine2", "border1", "border2", *(f"leaf{i}" for i in range(1, 7))])
DEMO_STORAGE = [f"stor{i:02d}" for i in range(1, 13)]


@dataclass
class Api:
    """The app under test, with a client and a token for each kind of caller."""

    client: httpx.AsyncClient
    store: Store
    clock: Any
    tokens: dict[str, str]

    def auth(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    async def request(
        self, method: str, url: str, *, as_: str | None = "admin", **kw: Any
    ) -> httpx.Response:
        headers = {**self.auth(as_), **kw.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kw)

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", url, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kw)

    # Conveniences that assert success, for arranging a test.

    async def ok(self, method: str, url: str, status: int = 200, **kw: Any) -> Any:
        r = await self.request(method, url, **kw)
        assert r.status_code == status, (r.status_code, r.text)
        return r.json() if r.content else None

    async def device(self, name: str, **params: str) -> dict[str, Any]:
        out: dict[str, Any] = await self.ok("GET", f"/api/v1/devices/{name}", params=params)
        return out

    async def all_devices(self, **params: Any) -> list[dict[str, Any]]:
        return await self.walk("/api/v1/devices", **params)

    async def audit(self, **params: Any) -> list[dict[str, Any]]:
        return await self.walk("/api/v1/audit", **params)

    async def walk(self, url: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated listing."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):
            page = await self.ok(
                "GET", url, params={**params, **({"cursor": cursor} if cursor else {})}
            )
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError("the listing never ended")

    async def fabric(self, name: str, *groups: str, budget: str = "1") -> dict[str, Any]:
        out: dict[str, Any] = await self.ok(
            "POST", "/api/v1/fabrics", 201, json={"name": name, "description": f"{name} fab"}
        )
        for g in groups:
            await self.ok(
                "POST",
                f"/api/v1/fabrics/{name}/groups",
                201,
                json={"name": g, "max_unavailable": budget},
            )
        return out

    async def new_device(self, fabric: str, name: str, **fields: Any) -> dict[str, Any]:
        body = {"fabric": fabric, "name": name, "role": "leaf", **fields}
        out: dict[str, Any] = await self.ok("POST", "/api/v1/devices", 201, json=body)
        return out

    async def set_status(
        self, name: str, status: str, *, as_: str = "operator", **fields: Any
    ) -> dict[str, Any]:
        out: dict[str, Any] = await self.ok(
            "POST",
            f"/api/v1/devices/{name}/status",
            json={"status": status, **fields},
            as_=as_,
        )
        return out

    async def seed_demo(self) -> None:
        assert await seed_demo(self.store)


# One import process for every app built with the default settings: starting a process per
# test would cost seconds each.
SHARED_READER = ImportReader(max_rows=Settings().max_import_rows)


@asynccontextmanager
async def open_api(
    store: Store, clock: Any, *, settings: Settings | None = None
) -> AsyncIterator[Api]:
    shared = SHARED_READER if settings is None else None
    app = create_app(settings or Settings(), store=store, import_reader=shared)
    async with app.router.lifespan_context(app):
        tokens: dict[str, str] = {}
        async with store.unit() as u:
            for name, (role, fabrics) in CALLERS.items():
                _, secret = await u.tokens.create(
                    name=name,
                    role=role,
                    fabrics=fabrics,
                    expires_at=None,
                    actor=SETUP,
                    via=Via.API,
                )
                tokens[name] = secret
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, store, clock, tokens)


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is an RFC 9457 problem with this status and code; return its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].split(";")[0].strip() == MEDIA, r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert body["title"] and body["detail"], body
    assert body["instance"] == r.request.url.path, body
    return body


def fields(body: dict[str, Any]) -> list[str]:
    """The ``field`` of each error a validation problem lists."""
    return [e["field"] for e in body.get("errors", [])]
