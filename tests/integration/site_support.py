"""Shared helpers for the tests of the whole server (API and web UI on one app, as ``serve``
builds it); this module holds no tests.

``open_site`` runs the app's lifespan on the per-test ``store`` and makes one token per kind
of caller; ``client(address)`` is an httpx client that reaches the app from that address
(httpx's ASGI transport), and ``sign_in`` goes through the web sign-in form as a browser does.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from test_api_support import CALLERS, SETUP

from pitstop.api.app import create_app
from pitstop.domain.roles import Via
from pitstop.settings import Settings
from pitstop.storage.store import Store
from pitstop.web.site import mount

BASE = "http://pitstop.test"


@dataclass
class Site:
    app: FastAPI
    store: Store
    tokens: dict[str, str]
    stack: AsyncExitStack
    wrap: Callable[[Any], Any] = field(default=lambda app: app)

    async def client(self, address: str = "127.0.0.1", **kw: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.wrap(self.app), client=(address, 40000))
        return await self.stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=BASE, **kw)
        )

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """GET the sign-in form, then POST it with the token, as a browser does."""
    page = await client.get("/ui/login")
    assert page.status_code == 200, page.text
    return await client.post(
        "/ui/login",
        data={"token": token, "next": "/ui/", "csrf": form_csrf(page.text)},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )


@asynccontextmanager
async def open_site(
    store: Store, settings: Settings | None = None, **mount_kw: Any
) -> AsyncIterator[Site]:
    settings = settings or Settings()
    app = create_app(settings, store=store)
    mount(app, public_url=settings.public_url, **mount_kw)
    async with app.router.lifespan_context(app), AsyncExitStack() as stack:
        tokens: dict[str, str] = {}
        async with store.unit() as u:
            for name, (role, fabrics) in CALLERS.items():
                _, secret = await u.tokens.create(
                    name=name, role=role, fabrics=fabrics, expires_at=None, actor=SETUP, via=Via.API
                )
                tokens[name] = secret
        yield Site(app=app, store=store, tokens=tokens, stack=stack)
