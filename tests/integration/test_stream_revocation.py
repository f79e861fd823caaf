"""Revoking a token ends what it opened: a stream that started before the revocation (API
with the Bearer token, web UI with the session cookie) ends within a few seconds, and so does
one whose token expires meanwhile.

Without the revocation none of these streams would ever end (the job stays queued, no worker
runs here; a map watch and a driven campaign stream forever), so each test waits a bounded
time for the stream to finish and checks it had started streaming first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from site_support import Site, open_site, sign_in

from pitstop.api.startup import seed_demo
from pitstop.domain.roles import Actor, Role, Via
from pitstop.storage.store import Store

# The guard checks every 2 s; the bound leaves room for a loaded machine.
ENDS_WITHIN_S = 15.0
STARTED_S = 1.0  # time for the stream to be open before the token goes


@pytest.fixture
async def site(store: Store) -> AsyncIterator[Site]:
    assert await seed_demo(store)
    async with open_site(store) as s:
        yield s


async def _queued_job(site: Site) -> str:
    admin = await site.client()
    r = await admin.post(
        "/api/v1/jobs",
        json={"type": "maintenance.activate", "device": "leaf1", "reason": "optics"},
        headers=site.bearer("admin"),
    )
    assert r.status_code == 201, r.text
    job_id: str = r.json()["id"]
    return job_id


async def _revoke(site: Site, name: str) -> None:
    admin = await site.client()
    r = await admin.delete(f"/api/v1/tokens/{name}", headers=site.bearer("admin"))
    assert r.status_code == 200, r.text


async def _ends_after(site: Site, opened: asyncio.Task[httpx.Response], name: str) -> str:
    await asyncio.sleep(STARTED_S)
    assert not opened.done(), "the stream ended before the token was revoked"
    await _revoke(site, name)
    response = await asyncio.wait_for(opened, ENDS_WITHIN_S)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return response.text


async def test_revoking_a_token_ends_its_job_event_stream(site: Site) -> None:
    job_id = await _queued_job(site)
    c = await site.client()
    url = f"/api/v1/jobs/{job_id}/events"
    opened = asyncio.create_task(c.get(url, headers=site.bearer("viewer"), timeout=60))
    text = await _ends_after(site, opened, "viewer")
    assert "event: job" in text  # it streamed before the revocation
    assert text.rstrip().endswith('"detail": "token \'viewer\' was revoked"}')
    assert "event: error" in text and '"code": "UNAUTHENTICATED"' in text


async def test_revoking_a_token_ends_its_map_watch(site: Site) -> None:
    c = await site.client()
    url = "/api/v1/fabrics/dc1/map/watch"
    opened = asyncio.create_task(c.get(url, headers=site.bearer("viewer"), timeout=60))
    text = await _ends_after(site, opened, "viewer")
    assert text.startswith(": watching")
    assert "event: error" in text and "was revoked" in text


async def test_a_map_watch_ends_when_its_token_expires(site: Site, clock: Any) -> None:
    async with site.store.unit() as u:
        _, secret = await u.tokens.create(
            name="short",
            role=Role.VIEWER,
            fabrics=(),
            expires_at=clock() + timedelta(minutes=5),
            actor=Actor("test", Role.ADMIN),
            via=Via.API,
        )
    c = await site.client()
    url = "/api/v1/fabrics/dc1/map/watch"
    opened = asyncio.create_task(
        c.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=60)
    )
    await asyncio.sleep(STARTED_S)
    assert not opened.done()
    clock.advance(minutes=6)
    response = await asyncio.wait_for(opened, ENDS_WITHIN_S)
    assert "event: error" in response.text and "expired" in response.text


async def _web_stream_ends(site: Site, url: str) -> str:
    browser = await site.client()
    assert (await sign_in(browser, site.tokens["operator"])).status_code == 303
    opened = asyncio.create_task(
        browser.get(url, headers={"Accept": "text/event-stream"}, timeout=60)
    )
    text = await _ends_after(site, opened, "operator")
    # The browser's reconnection is refused, which stops its EventSource.
    again = await browser.get(url, headers={"Accept": "text/event-stream"})
    assert again.status_code == 401
    return text


async def test_revoking_a_token_ends_the_web_job_stream_of_its_session(site: Site) -> None:
    job_id = await _queued_job(site)
    text = await _web_stream_ends(site, f"/ui/jobs/{job_id}/live?view=job")
    assert "event: end" not in text  # not "the job is over": the session is


async def test_revoking_a_token_ends_the_web_campaign_stream_of_its_session(site: Site) -> None:
    admin = await site.client()
    definition = {
        "name": "roll",
        "fabric": "dc1",
        "selector": {"roles": ["leaf"]},
        "concurrency": 1,
    }
    r = await admin.post("/api/v1/campaigns", json=definition, headers=site.bearer("admin"))
    assert r.status_code == 201, r.text
    r = await admin.post("/api/v1/campaigns/roll/start", headers=site.bearer("admin"))
    assert r.status_code == 200, r.text
    await _web_stream_ends(site, "/ui/campaigns/roll/live")


async def test_revoking_a_token_ends_the_web_fleet_stream_of_its_session(site: Site) -> None:
    await _web_stream_ends(site, "/ui/fleet/live?part=fabrics")
