"""Values past what pitstop can store or compute are 4xx problems naming the field, never a
5xx: durations past ten years, selectors of a thousand terms, integers past 64 bits in
queries, headers and bodies."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import Api, fields, open_api, problem

from pitstop.storage.store import Store

# Values at the bounds reach SQL, so these run on both backends.

TOO_BIG = str(2**63)
LARGEST = str(2**63 - 1)


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.seed_demo()
        yield a


async def a_job(api: Api) -> str:
    body = {"type": "healthcheck", "device": "leaf1", "fabric": "dc1"}
    job: dict[str, Any] = await api.ok("POST", "/api/v1/jobs", 201, json=body)
    return str(job["id"])


async def a_campaign(api: Api) -> str:
    body = {"name": "roll", "fabric": "dc1", "selector": {"roles": ["leaf"]}}
    created: dict[str, Any] = await api.ok("POST", "/api/v1/campaigns", 201, json=body)
    return str(created["name"])


@pytest.mark.parametrize("expires", ["999999999d", "3654d", "99999999999999999999w"])
async def test_a_token_lifetime_past_ten_years_is_refused_naming_expires_in(
    api: Api, expires: str
) -> None:
    body = {"name": "long", "role": "viewer", "expires_in": expires}
    r = await api.post("/api/v1/tokens", json=body)
    out = problem(r, 422, "VALIDATION_FAILED")
    assert fields(out) == ["expires_in"]
    assert all(t["name"] != "long" for t in await api.ok("GET", "/api/v1/tokens"))


async def test_a_token_lifetime_of_ten_years_is_accepted(api: Api) -> None:
    body = {"name": "long", "role": "viewer", "expires_in": "3653d"}
    await api.ok("POST", "/api/v1/tokens", 201, json=body)


async def test_a_selector_of_a_thousand_terms_is_refused(api: Api) -> None:
    selector = ",".join(f"k{i}=v" for i in range(1000))
    r = await api.get("/api/v1/devices", params={"selector": selector}, as_="viewer")
    out = problem(r, 422, "VALIDATION_FAILED")
    assert fields(out) == ["selector"]
    assert "32 terms" in out["detail"]


async def test_a_selector_of_32_terms_is_answered(api: Api) -> None:
    selector = ",".join(f"!k{i}" for i in range(32))
    page = await api.ok("GET", "/api/v1/devices", params={"selector": selector}, as_="viewer")
    assert len(page["items"]) > 0


async def test_a_campaign_selector_of_a_thousand_terms_is_refused(api: Api) -> None:
    labels = ",".join(f"k{i}=v" for i in range(1000))
    body = {"name": "wide", "fabric": "dc1", "selector": {"labels": labels}}
    r = await api.post("/api/v1/campaigns/plan", json=body, as_="viewer")
    assert r.status_code == 422, r.text
    assert "32 terms" in r.text


async def test_an_epoch_past_64_bits_is_refused(api: Api) -> None:
    r = await api.get("/api/v1/fabrics/dc1/map", params={"epoch": TOO_BIG}, as_="viewer")
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["epoch"]
    r = await api.get("/api/v1/fabrics/dc1/map", params={"epoch": LARGEST}, as_="viewer")
    problem(r, 404, "NOT_FOUND")


async def test_job_events_after_past_64_bits_is_refused(api: Api) -> None:
    job = await a_job(api)
    url = f"/api/v1/jobs/{job}/events"
    r = await api.get(url, params={"after": TOO_BIG, "follow": False}, as_="viewer")
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["after"]
    r = await api.get(url, params={"after": LARGEST, "follow": False}, as_="viewer")
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("sent", [TOO_BIG, "9" * 5000, "-1", "abc"])
async def test_a_last_event_id_that_is_no_event_id_is_refused(api: Api, sent: str) -> None:
    job = await a_job(api)
    headers = {"Last-Event-ID": sent}
    r = await api.get(
        f"/api/v1/jobs/{job}/events", params={"follow": False}, headers=headers, as_="viewer"
    )
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["Last-Event-ID"]
    r = await api.get("/api/v1/fabrics/dc1/map/watch", headers=headers, as_="viewer")
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["Last-Event-ID"]


async def test_campaign_events_after_past_64_bits_is_refused(api: Api) -> None:
    name = await a_campaign(api)
    r = await api.get(f"/api/v1/campaigns/{name}/events", params={"after": TOO_BIG}, as_="viewer")
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["after"]


async def test_a_version_past_64_bits_is_refused(api: Api) -> None:
    r = await api.patch("/api/v1/devices/leaf1", params={"fabric": "dc1"}, json={"version": 2**63})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["version"]
    body = {"status": "draining", "version": 2**64}
    r = await api.post("/api/v1/devices/leaf1/status", params={"fabric": "dc1"}, json=body)
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["version"]


@pytest.mark.parametrize("budget", [2**63, "99999999999999999999999", 10**7])
async def test_a_budget_past_any_fleet_is_refused(api: Api, budget: Any) -> None:
    body = {"name": "huge", "max_unavailable": budget}
    r = await api.post("/api/v1/fabrics/dc1/groups", json=body)
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["max_unavailable"]


@pytest.mark.parametrize("field", ["concurrency", "canary", "soak_s"])
async def test_campaign_numbers_past_64_bits_are_refused(api: Api, field: str) -> None:
    body = {"name": "big", "fabric": "dc1", "selector": {"roles": ["leaf"]}, field: 2**64}
    r = await api.post("/api/v1/campaigns/plan", json=body, as_="viewer")
    assert r.status_code == 422, r.text
    assert field in r.text


def cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("/api/v1/audit", [2**63]),
        ("/api/v1/audit", [{"a": 1}]),
        ("/api/v1/audit", ["x"]),
        ("/api/v1/audit", [True]),
        ("/api/v1/devices", [{"a": 1}, 1]),
        ("/api/v1/jobs", [1, 2]),
    ],
)
async def test_a_forged_cursor_is_refused(api: Api, url: str, key: list[Any]) -> None:
    r = await api.get(url, params={"cursor": cursor(key)}, as_="viewer")
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["cursor"]


async def test_an_audit_cursor_from_a_listing_still_pages(api: Api) -> None:
    page = await api.ok("GET", "/api/v1/audit", params={"limit": 1})
    assert page["next_cursor"] is not None
    nxt = await api.ok("GET", "/api/v1/audit", params={"limit": 1, "cursor": page["next_cursor"]})
    assert nxt["items"][0]["seq"] < page["items"][0]["seq"]


@pytest.mark.parametrize(
    ("method", "url", "kw", "where"),
    [
        ("GET", "/api/v1/devices/ab%00cd", {}, "path"),
        ("GET", "/api/v1/fabrics/dc1%00", {}, "path"),
        ("GET", "/api/v1/devices", {"params": {"q": "a\x00b"}}, "query"),
        ("GET", "/api/v1/devices", {"params": {"selector": "k=a\x00b"}}, "query"),
        (
            "POST",
            "/api/v1/fabrics",
            {"json": {"name": "nul", "description": "a\x00b"}},
            "description",
        ),
        ("POST", "/api/v1/fabrics", {"json": {"name": "nul", "labels": {"a\x00": "b"}}}, "labels"),
        ("POST", "/ui/login", {"data": {"token": "a\x00b"}}, "body"),
    ],
)
async def test_a_nul_character_is_refused_on_both_backends(
    api: Api, method: str, url: str, kw: dict[str, Any], where: str
) -> None:
    r = await api.request(method, url, as_="viewer", **kw)
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == [where]


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
async def test_an_audit_since_with_no_utc_time_is_refused(api: Api, since: str) -> None:
    r = await api.get("/api/v1/audit", params={"since": since}, as_="viewer")
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["since"]
