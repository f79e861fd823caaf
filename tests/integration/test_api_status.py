"""Setting a device's status by hand over HTTP: the lifecycle table, roles, versions, audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import SQLITE_ONLY, Api, open_api, problem

from pitstop.domain.lifecycle import DeviceStatus, allowed_targets
from pitstop.domain.roles import Role
from pitstop.storage.store import Store

URL = "/api/v1/devices/leaf1/status"


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.fabric("dc1", "mlag-1")
        await a.new_device("dc1", "leaf1", groups=["mlag-1"])
        await a.new_device("dc1", "leaf2", groups=["mlag-1"])
        yield a


def unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after == before


async def test_the_whole_maintenance_path_by_hand(api: Api) -> None:
    start = await api.device("leaf1")
    assert (start["status"], start["version"]) == ("activated", 1)
    assert start["maintenance"] == {
        "reason": None,
        "ticket": None,
        "requested_by": None,
        "entered_at": None,
        "expected_end": None,
    }

    api.clock.advance(minutes=1)
    d = await api.set_status("leaf1", "draining", reason="replace PSU", ticket="CHG-42", version=1)
    assert (d["status"], d["version"]) == ("draining", 2)
    assert d["status_reason"] == "replace PSU"
    assert d["status_changed_by"] == "operator"
    assert d["status_changed_at"] > start["status_changed_at"]
    assert d["maintenance"]["requested_by"] == "operator"
    assert d["maintenance"]["ticket"] == "CHG-42"
    assert d["maintenance"]["reason"] == "replace PSU"
    assert d["maintenance"]["entered_at"] is None
    assert d["allowed_transitions"] == ["maintenance", "activated"]

    api.clock.advance(minutes=1)
    m = await api.set_status("leaf1", "maintenance", reason="drained", version=2)
    assert (m["status"], m["version"]) == ("maintenance", 3)
    assert m["status_reason"] == "drained"
    # The maintenance record keeps who asked for it and why.
    assert m["maintenance"]["requested_by"] == "operator"
    assert m["maintenance"]["ticket"] == "CHG-42"
    assert m["maintenance"]["entered_at"] == m["status_changed_at"]
    assert m["allowed_transitions"] == ["undraining"]

    api.clock.advance(minutes=30)
    u = await api.set_status("leaf1", "undraining", as_="admin", version=3)
    assert (u["status"], u["version"]) == ("undraining", 4)
    assert u["status_changed_by"] == "admin"
    assert u["status_reason"] is None
    assert u["maintenance"]["entered_at"] == m["maintenance"]["entered_at"]

    a = await api.set_status("leaf1", "activated", reason="done", version=4)
    assert (a["status"], a["version"]) == ("activated", 5)
    assert a["status_reason"] == "done"
    assert a["maintenance"] == start["maintenance"]
    assert await api.ok("GET", "/api/v1/devices/leaf1", as_="operator") == a
    # The other member of the group was never touched.
    assert (await api.device("leaf2"))["version"] == 1

    rows = await api.audit(device="leaf1", action="device.status")
    assert [(r["from_status"], r["to_status"], r["actor"]) for r in rows] == [
        ("undraining", "activated", "operator"),
        ("maintenance", "undraining", "admin"),
        ("draining", "maintenance", "operator"),
        ("activated", "draining", "operator"),
    ]
    assert rows[-1]["reason"] == "replace PSU"
    assert rows[-1]["ticket"] == "CHG-42"
    assert all(r["details"]["manual"] is True for r in rows)
    assert all(r["via"] == "api" for r in rows)
    verify = await api.ok("GET", "/api/v1/audit/verify")
    assert verify["ok"] is True


async def test_a_drain_can_be_aborted_and_an_exit_rolled_back(api: Api) -> None:
    await api.set_status("leaf1", "draining")
    d = await api.set_status("leaf1", "activated")
    assert d["status"] == "activated"
    assert d["maintenance"]["requested_by"] is None

    for target in ("draining", "maintenance", "undraining", "maintenance"):
        d = await api.set_status("leaf1", target)
    assert (d["status"], d["version"]) == ("maintenance", 7)


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("operator", ["draining"]),
        ("admin", ["draining", "error", "decommissioned"]),
    ],
)
async def test_an_edge_missing_from_the_table_is_refused_listing_what_the_caller_may_do(
    api: Api, who: str, allowed: list[str]
) -> None:
    role = Role(who)
    assert allowed == [s.value for s in allowed_targets(DeviceStatus.ACTIVATED, role)]
    before = await api.device("leaf1")
    r = await api.post(URL, json={"status": "maintenance", "reason": "skip"}, as_=who)
    out = problem(r, 409, "TRANSITION_NOT_ALLOWED")
    assert out["current"] == "activated"
    assert out["requested"] == "maintenance"
    assert out["allowed"] == allowed
    unchanged(before, await api.device("leaf1"))
    assert await api.audit(action="device.status") == []


async def test_asking_for_the_current_status_is_refused(api: Api) -> None:
    before = await api.device("leaf1")
    out = problem(
        await api.post(URL, json={"status": "activated"}, as_="operator"),
        409,
        "TRANSITION_NOT_ALLOWED",
    )
    assert out["allowed"] == ["draining"]
    unchanged(before, await api.device("leaf1"))


@pytest.mark.parametrize("target", ["error", "decommissioned"])
async def test_an_edge_for_admins_only_is_forbidden_to_an_operator(api: Api, target: str) -> None:
    before = await api.device("leaf1")
    out = problem(await api.post(URL, json={"status": target}, as_="operator"), 403, "FORBIDDEN")
    assert out["allowed"] == ["draining"]
    unchanged(before, await api.device("leaf1"))
    # The admin may.
    d = await api.set_status("leaf1", target, as_="admin", reason="dead")
    assert d["status"] == target


async def test_error_recovery_is_for_admins(api: Api) -> None:
    e = await api.set_status("leaf1", "error", as_="admin", reason="lost contact")
    assert e["needs_attention"] is True
    assert e["attention_reason"] == "lost contact"
    assert e["allowed_transitions"] == ["activated", "maintenance", "decommissioned"]
    op = await api.ok("GET", "/api/v1/devices/leaf1", as_="operator")
    assert op["allowed_transitions"] == []
    assert names_of(await api.all_devices(needs_attention="true")) == ["leaf1"]

    problem(await api.post(URL, json={"status": "activated"}, as_="operator"), 403, "FORBIDDEN")
    a = await api.set_status("leaf1", "activated", as_="admin")
    assert (a["needs_attention"], a["attention_reason"]) == (False, None)
    assert await api.all_devices(needs_attention="true") == []


def names_of(items: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in items]


async def test_a_stale_version_is_a_conflict_and_changes_nothing(api: Api) -> None:
    await api.set_status("leaf1", "draining")
    before = await api.device("leaf1")
    assert before["version"] == 2
    out = problem(
        await api.post(URL, json={"status": "maintenance", "version": 1}, as_="operator"),
        409,
        "CONFLICT",
    )
    assert out["current_version"] == 2
    assert out["expected_version"] == 1
    unchanged(before, await api.device("leaf1"))
    assert len(await api.audit(action="device.status")) == 1

    d = await api.set_status("leaf1", "maintenance", version=2)
    assert d["version"] == 3


async def test_the_table_is_checked_before_the_version(api: Api) -> None:
    out = problem(
        await api.post(URL, json={"status": "maintenance", "version": 99}, as_="operator"),
        409,
        "TRANSITION_NOT_ALLOWED",
    )
    assert out["allowed"] == ["draining"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "asleep"}, "status"),
        ({}, "status"),
        ({"status": "draining", "colour": "red"}, "colour"),
        ({"status": "draining", "ticket": "x" * 128}, "ticket"),
        ({"status": "draining", "version": "one"}, "version"),
    ],
)
async def test_a_bad_status_body_is_a_validation_problem(
    api: Api, body: dict[str, Any], field: str
) -> None:
    before = await api.device("leaf1")
    out = problem(await api.post(URL, json=body, as_="operator"), 422, "VALIDATION_FAILED")
    assert [e["field"] for e in out["errors"]] == [field]
    unchanged(before, await api.device("leaf1"))


@SQLITE_ONLY
@pytest.mark.parametrize(("header", "via"), [("cli", "cli"), ("web", "web"), ("CLI", "cli")])
async def test_x_pitstop_via_is_recorded_in_the_audit_log(api: Api, header: str, via: str) -> None:
    await api.ok(
        "POST",
        URL,
        json={"status": "draining"},
        headers={"X-Pitstop-Via": header},
        as_="operator",
    )
    rows = await api.audit(device="leaf1", action="device.status")
    assert [(r["via"], r["actor"]) for r in rows] == [(via, "operator")]


@SQLITE_ONLY
@pytest.mark.parametrize("header", ["engine", "Engine", "carrier-pigeon", ""])
async def test_x_pitstop_via_engine_or_unknown_is_refused(api: Api, header: str) -> None:
    before = await api.device("leaf1")
    r = await api.post(
        URL, json={"status": "draining"}, headers={"X-Pitstop-Via": header}, as_="operator"
    )
    out = problem(r, 422, "VALIDATION_FAILED")
    assert "X-Pitstop-Via" in out["detail"]
    unchanged(before, await api.device("leaf1"))
    assert await api.audit(action="device.status") == []


async def test_status_can_be_set_by_device_id(api: Api) -> None:
    dev = await api.device("leaf2")
    out = await api.ok(
        "POST", f"/api/v1/devices/{dev['id']}/status", json={"status": "draining"}, as_="operator"
    )
    assert (out["name"], out["status"]) == ("leaf2", "draining")


async def test_concurrent_changes_from_one_version_let_exactly_one_through(api: Api) -> None:
    async def drain(reason: str) -> Any:
        return await api.post(
            URL, json={"status": "draining", "version": 1, "reason": reason}, as_="operator"
        )

    results = await asyncio.gather(*(drain(f"try {i}") for i in range(5)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409, 409], [r.text for r in results]
    winner = next(r.json() for r in results if r.status_code == 200)
    for r in results:
        if r.status_code == 409:
            assert r.json()["code"] in ("CONFLICT", "TRANSITION_NOT_ALLOWED")
    d = await api.device("leaf1")
    assert (d["status"], d["version"], d["status_reason"]) == (
        "draining",
        2,
        winner["status_reason"],
    )
    rows = await api.audit(action="device.status")
    assert [r["reason"] for r in rows] == [winner["status_reason"]]
    assert (await api.ok("GET", "/api/v1/audit/verify"))["ok"] is True
