"""The campaign API: offline validation as problem+json with every reason, roles, the plan
as a user sees it, and state conflicts with their stable codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import MEDIA, SQLITE_ONLY, Api, open_api

from pitstop.storage.store import Store

DEFINITION = {
    "name": "roll",
    "fabric": "dc1",
    "selector": {"roles": ["leaf", "spine"]},
    "order": ["leaf before spine"],
    "concurrency": 4,
    "canary": 1,
}


@pytest.fixture
async def demo(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as api:
        await api.seed_demo()
        yield api


async def test_plan_shows_waves_against_the_lower_bound(demo: Api) -> None:
    plan = await demo.ok("POST", "/api/v1/campaigns/plan", json=DEFINITION, as_="viewer")
    waves = plan["waves"]
    assert plan["devices"] == 8 and plan["canary"] == [waves[0][0]] and len(waves[0]) == 1
    spines = {"spine1", "spine2"}
    # Spines only after every leaf, one at a time (role:spine keeps one in service and the
    # spines group allows one), MLAG partners never together.
    leaf_waves = [i for i, w in enumerate(waves) if set(w) - spines]
    spine_waves = [i for i, w in enumerate(waves) if set(w) & spines]
    assert max(leaf_waves) < min(spine_waves) and all(len(waves[i]) == 1 for i in spine_waves)
    for pair in ({"leaf1", "leaf2"}, {"leaf3", "leaf4"}, {"leaf5", "leaf6"}):
        assert all(len(pair & set(w)) <= 1 for w in waves)
    assert plan["lower_bound"]["value"] <= plan["wave_count"]
    assert plan["capacities"]["role:spine"] == 1
    assert await demo.ok("GET", "/api/v1/campaigns") == {"items": []}  # nothing stored


@SQLITE_ONLY
async def test_an_impossible_campaign_is_problem_json_with_every_reason(demo: Api) -> None:
    body = {**DEFINITION, "dependencies": ["leaf1 before ghost", "spine1 before leaf1"]}
    r = await demo.post("/api/v1/campaigns", json=body, as_="operator")
    assert r.status_code == 422 and r.headers["content-type"].startswith(MEDIA)
    problem = r.json()
    assert problem["code"] == "CAMPAIGN_INVALID"
    assert "dependency leaf1 before ghost: unknown device ghost" in problem["reasons"]


@SQLITE_ONLY
async def test_a_bad_definition_names_its_fields_and_viewers_may_not_create(demo: Api) -> None:
    r = await demo.post("/api/v1/campaigns", json={**DEFINITION, "concurrency": "many"})
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_FAILED"
    assert [e["field"] for e in r.json()["errors"]] == ["concurrency"]
    r = await demo.post("/api/v1/campaigns", json=DEFINITION, as_="viewer")
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"


@SQLITE_ONLY
async def test_state_conflicts_have_a_stable_code(demo: Api) -> None:
    created = await demo.ok("POST", "/api/v1/campaigns", 201, json=DEFINITION)
    assert created["state"] == "created"
    r = await demo.post("/api/v1/campaigns/roll/resume")
    assert r.status_code == 409 and r.json()["code"] == "CAMPAIGN_STATE_CONFLICT"
    r = await demo.post("/api/v1/campaigns", json=DEFINITION)
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"
    aborted = await demo.ok("POST", "/api/v1/campaigns/roll/abort")
    assert aborted["state"] == "aborted" and aborted["devices"] == []
    r = await demo.post("/api/v1/campaigns/roll/devices/leaf1/approve")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
