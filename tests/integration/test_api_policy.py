"""Fabric policy and budgets over HTTP: reading and changing the policy, the budget table,
refusals with their codes, and an admin's forced start recorded in the audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import Api, open_api, problem

from pitstop.storage.store import Store


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.fabric("dc1", "mlag-1")
        await a.new_device("dc1", "leaf1", groups=["mlag-1"])
        await a.new_device("dc1", "leaf2", groups=["mlag-1"])
        await a.new_device("dc1", "spine1", role="spine")
        await a.new_device("dc1", "spine2", role="spine")
        yield a


async def _policy(api: Api, as_: str = "admin", **body: Any) -> Any:
    return await api.patch("/api/v1/fabrics/dc1/policy", json=body, as_=as_)


async def test_the_default_policy_allows_maintenance_and_half_the_spines(api: Api) -> None:
    got = await api.ok("GET", "/api/v1/fabrics/dc1/policy", as_="viewer")
    assert got == {
        "fabric": "dc1",
        "maintenance_allowed": True,
        "role_budgets": {"spine": "50%"},
        "role_overrides": {},
    }


async def test_changing_the_policy_needs_an_admin_and_a_reason(api: Api) -> None:
    problem(
        await _policy(api, as_="operator", maintenance_allowed=False, reason="x"), 403, "FORBIDDEN"
    )
    body = problem(await _policy(api, maintenance_allowed=False), 422, "VALIDATION_FAILED")
    assert [e["field"] for e in body["errors"]] == ["reason"]
    body = problem(
        await _policy(api, role_budgets={"spine": "half"}, reason="x"), 422, "VALIDATION_FAILED"
    )
    assert [e["field"] for e in body["errors"]] == ["role_budgets.spine"]
    unchanged = await api.ok("GET", "/api/v1/fabrics/dc1/policy")
    assert unchanged["maintenance_allowed"] is True

    r = await _policy(
        api, maintenance_allowed=False, role_budgets={"leaf": 1}, reason="change freeze"
    )
    assert r.status_code == 200, r.text
    assert r.json()["role_budgets"] == {"leaf": "1", "spine": "50%"}
    (row,) = await api.audit(action="fabric.policy")
    assert row["reason"] == "change freeze"
    assert row["details"]["after"]["maintenance_allowed"] is False
    assert row["details"]["before"]["maintenance_allowed"] is True


async def test_a_full_budget_refuses_with_its_holders(api: Api) -> None:
    await api.set_status("leaf1", "draining")
    r = await api.post("/api/v1/devices/leaf2/status", json={"status": "draining"}, as_="operator")
    body = problem(r, 409, "BUDGET_EXCEEDED")
    assert body["group"] == "mlag-1"
    assert body["holders"] == ["leaf1"]
    assert "leaf1 (draining)" in body["detail"]
    assert (await api.device("leaf2"))["status"] == "activated"

    table = {p["name"]: p for p in await api.ok("GET", "/api/v1/fabrics/dc1/budgets")}
    assert table["mlag-1"]["holders"] == [{"device": "leaf1", "status": "draining"}]
    assert (table["mlag-1"]["allowed"], table["mlag-1"]["free"]) == (1, 0)
    assert (table["role:spine"]["allowed"], table["role:spine"]["free"]) == (1, 1)


async def test_disallowed_maintenance_is_refused_unless_an_admin_forces_it(api: Api) -> None:
    await api.set_status("spine1", "draining")
    assert (await _policy(api, maintenance_allowed=False, reason="freeze")).status_code == 200
    url = "/api/v1/devices/leaf1/status"
    problem(
        await api.post(url, json={"status": "draining"}, as_="operator"),
        409,
        "MAINTENANCE_DISALLOWED",
    )
    job = {"type": "maintenance.activate", "device": "leaf1", "reason": "optics"}
    problem(await api.post("/api/v1/jobs", json=job, as_="operator"), 409, "MAINTENANCE_DISALLOWED")

    forced = {"status": "draining", "force": True, "force_reason": "link flapping now"}
    problem(await api.post(url, json=forced, as_="operator"), 403, "FORBIDDEN")
    body = problem(
        await api.post(url, json={"status": "draining", "force": True}), 422, "VALIDATION_FAILED"
    )
    assert [e["field"] for e in body["errors"]] == ["force_reason"]
    assert (await api.device("leaf1"))["status"] == "activated"

    assert (await api.device("leaf1", as_="admin"))["status"] == "activated"
    d = await api.set_status(
        "leaf1", "draining", as_="admin", force=True, force_reason="link flapping now"
    )
    assert d["status"] == "draining"
    rows = await api.audit(device="leaf1", action="device.status")
    assert rows[0]["details"]["forced"] == "link flapping now"
    # Not retroactive: spine1, out of service before the change, comes back and may stay.
    assert (await api.device("spine1"))["status"] == "draining"
    assert (await api.set_status("spine1", "activated"))["status"] == "activated"


async def test_a_forced_job_carries_its_reason_into_the_audit(api: Api) -> None:
    assert (await _policy(api, maintenance_allowed=False, reason="freeze")).status_code == 200
    job = {
        "type": "maintenance.activate",
        "device": "leaf1",
        "reason": "optics",
        "force": True,
        "force_reason": "customer outage",
    }
    out = await api.ok("POST", "/api/v1/jobs", 201, json=job)
    assert out["status"] == "queued"
    (row,) = await api.audit(action="job.submit")
    assert row["details"]["forced"] == "customer outage"
