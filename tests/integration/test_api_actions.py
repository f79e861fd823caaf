"""The named-action API: only an unscoped admin defines what campaigns may run, everyone may
read it, every change is audited, a bad template is refused naming its element, and no role
can put a command of its own into a campaign."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import SETUP, SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.domain.roles import Role, Via
from pitstop.storage.store import Store

UPGRADE = {
    "name": "upgrade-os",
    "command": ["/usr/local/bin/upgrade-os", "{host}", "--rack={labels[rack]}"],
    "undo": ["/usr/local/bin/downgrade-os", "{host}"],
    "timeout_s": 900,
    "fabrics": ["dc1"],
    "description": "Upgrade the OS and reboot",
}
CAMPAIGN = {
    "name": "roll",
    "fabric": "dc1",
    "selector": {"roles": ["leaf"]},
    "concurrency": 2,
    "action": {"type": "run", "name": "upgrade-os"},
}


@pytest.fixture
async def demo(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as api:
        await api.seed_demo()
        yield api


async def test_an_admin_defines_changes_and_deletes_an_action_each_audited(demo: Api) -> None:
    created = await demo.ok("POST", "/api/v1/actions", 201, json=UPGRADE)
    assert {k: created[k] for k in UPGRADE} == UPGRADE
    assert created["created_by"] == "admin"
    for who in ("viewer", "operator-dc1"):
        listed = await demo.ok("GET", "/api/v1/actions", as_=who)
        assert [a["name"] for a in listed["items"]] == ["upgrade-os"]
        assert (await demo.ok("GET", "/api/v1/actions/upgrade-os", as_=who))["timeout_s"] == 900

    changed = await demo.ok("PATCH", "/api/v1/actions/upgrade-os", json={"timeout_s": 60})
    assert (changed["timeout_s"], changed["command"]) == (60, UPGRADE["command"])
    await demo.ok("DELETE", "/api/v1/actions/upgrade-os")
    problem(await demo.get("/api/v1/actions/upgrade-os"), 404, "NOT_FOUND")

    audit = [a for a in await demo.audit() if a["action"].startswith("action.")]
    assert [(a["action"], a["actor"]) for a in reversed(audit)] == [
        ("action.create", "admin"),
        ("action.update", "admin"),
        ("action.delete", "admin"),
    ]
    update = next(a for a in audit if a["action"] == "action.update")
    assert (update["details"]["before"]["timeout_s"], update["details"]["after"]["timeout_s"]) == (
        900,
        60,
    )


@SQLITE_ONLY
async def test_only_an_unscoped_admin_may_define_what_runs(demo: Api) -> None:
    for who in ("operator", "operator-dc1", "viewer"):
        problem(await demo.post("/api/v1/actions", json=UPGRADE, as_=who), 403, "FORBIDDEN")
    async with demo.store.unit() as u:
        _, secret = await u.tokens.create(
            name="admin-dc1",
            role=Role.ADMIN,
            fabrics=("dc1",),
            expires_at=None,
            actor=SETUP,
            via=Via.API,
        )
    demo.tokens["admin-dc1"] = secret
    problem(await demo.post("/api/v1/actions", json=UPGRADE, as_="admin-dc1"), 403, "FORBIDDEN")
    await demo.ok("POST", "/api/v1/actions", 201, json=UPGRADE)
    for who in ("operator", "admin-dc1"):
        r = await demo.patch("/api/v1/actions/upgrade-os", json={"fabrics": []}, as_=who)
        problem(r, 403, "FORBIDDEN")
        problem(await demo.delete("/api/v1/actions/upgrade-os", as_=who), 403, "FORBIDDEN")
    problem(await demo.post("/api/v1/actions", json=UPGRADE), 409, "CONFLICT")


@SQLITE_ONLY
async def test_a_bad_definition_names_each_element(demo: Api) -> None:
    bad = {
        **UPGRADE,
        "command": ["upgrade-os", "{labels.__class__}", "{name!r}"],
        "undo": ["{labels[tool]}"],
    }
    body = problem(await demo.post("/api/v1/actions", json=bad), 422, "VALIDATION_FAILED")
    assert fields(body) == ["command[1]", "command[2]", "undo[0]"]
    assert "{labels.__class__} is not allowed" in body["errors"][0]["message"]
    for timeout in ("0", "1e309", "Infinity", '"Infinity"', "NaN", "1000000"):
        text = json.dumps({**UPGRADE, "timeout_s": "T"}).replace('"T"', timeout)
        headers = {"Content-Type": "application/json"}
        r = await demo.post("/api/v1/actions", content=text, headers=headers)
        assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["timeout_s"], timeout
    r = await demo.post("/api/v1/actions", json={**UPGRADE, "shell": True})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["shell"]


@SQLITE_ONLY
async def test_no_role_can_put_a_command_of_its_own_into_a_campaign(demo: Api) -> None:
    inline = {**CAMPAIGN, "action": {"type": "command", "command": ["sh", "-c", "id"]}}
    for who in ("operator-dc1", "admin"):
        for url in ("/api/v1/campaigns", "/api/v1/campaigns/plan"):
            body = problem(await demo.post(url, json=inline, as_=who), 422, "CAMPAIGN_INVALID")
            assert body["reasons"][0].startswith("action.type: ")
            assert "named action" in body["reasons"][0]
    smuggled = {**CAMPAIGN, "action": {**CAMPAIGN["action"], "command": ["sh", "-c", "id"]}}
    await demo.ok("POST", "/api/v1/actions", 201, json=UPGRADE)
    body = problem(
        await demo.post("/api/v1/campaigns", json=smuggled, as_="operator-dc1"),
        422,
        "CAMPAIGN_INVALID",
    )
    assert body["reasons"][0].startswith("action.command: a campaign may not carry a command")
    assert (await demo.ok("GET", "/api/v1/campaigns"))["items"] == []


@SQLITE_ONLY
async def test_an_operator_uses_a_defined_action_only_where_it_is_allowed(demo: Api) -> None:
    await demo.ok("POST", "/api/v1/actions", 201, json=UPGRADE)
    created = await demo.ok("POST", "/api/v1/campaigns", 201, json=CAMPAIGN, as_="operator-dc1")
    assert created["definition"]["action"] == {"type": "run", "name": "upgrade-os"}
    elsewhere = {
        **CAMPAIGN,
        "name": "roll-storage",
        "fabric": "storage",
        "selector": {"roles": ["storage"]},
    }
    body = problem(await demo.post("/api/v1/campaigns", json=elsewhere), 422, "CAMPAIGN_INVALID")
    assert body["reasons"] == [
        "action.name: action 'upgrade-os' may run only on dc1, not on fabric 'storage'"
    ]
    started = await demo.ok("POST", "/api/v1/campaigns/roll/start", as_="operator-dc1")
    assert started["definition"]["action"]["command"] == UPGRADE["command"]
    assert started["definition"]["action"]["undo"] == UPGRADE["undo"]
