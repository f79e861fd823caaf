"""Changing and deleting devices over HTTP (PATCH and DELETE)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.storage.store import Store

URL = "/api/v1/devices/leaf1"


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.fabric("dc1", "a", "b")
        await a.new_device(
            "dc1",
            "leaf1",
            groups=["a"],
            labels={"rack": "r1"},
            connection={"host": "h1", "port": 22, "credentials_ref": "env:PW"},
        )
        yield a


async def test_patch_changes_only_the_fields_sent_and_bumps_the_version(api: Api) -> None:
    before = await api.device("leaf1")
    api.clock.advance(seconds=10)
    out = await api.ok(
        "PATCH",
        URL,
        json={"labels": {"rack": "r2", "pod": "p1"}, "groups": ["a", "b"], "version": 1},
    )
    assert out["labels"] == {"rack": "r2", "pod": "p1"}
    assert out["groups"] == ["a", "b"]
    assert out["version"] == 2
    assert out["connection"] == before["connection"]
    assert (out["role"], out["status"]) == (before["role"], before["status"])
    assert out["updated_at"] > before["updated_at"]
    assert await api.device("leaf1") == out

    out = await api.ok(
        "PATCH", URL, json={"connection": {"host": "h2"}, "role": "spine", "driver": "noop"}
    )
    assert out["connection"] == {"host": "h2", "port": None, "credentials_ref": None, "options": {}}
    assert (out["role"], out["driver"], out["version"]) == ("spine", "noop", 3)
    # An empty list takes the device out of every group.
    out = await api.ok("PATCH", URL, json={"groups": [], "labels": {}})
    assert (out["groups"], out["labels"]) == ([], {})
    groups = await api.ok("GET", "/api/v1/fabrics/dc1/groups")
    assert [g["members"] for g in groups] == [0, 0]

    rows = await api.audit(device="leaf1", action="device.update")
    assert [r["details"]["fields"] for r in rows] == [
        ["groups", "labels"],
        ["connection", "driver", "role"],
        ["groups", "labels"],
    ]


async def test_a_stale_version_refuses_the_patch(api: Api) -> None:
    await api.ok("PATCH", URL, json={"labels": {}})
    before = await api.device("leaf1")
    out = problem(await api.patch(URL, json={"labels": {"x": "y"}, "version": 1}), 409, "CONFLICT")
    assert (out["current_version"], out["expected_version"]) == (2, 1)
    assert await api.device("leaf1") == before


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"groups": ["zzz"]}, "groups"),
        ({"status": "maintenance"}, "status"),
        ({"name": "leaf9"}, "name"),
        ({"fabric": "dc2"}, "fabric"),
        ({"labels": {"k": "bad value"}}, "labels"),
        ({"connection": {"options": {"enable_password": "x"}}}, "connection.options"),
        ({"connection": {"port": -1}}, "connection.port"),
    ],
)
async def test_a_bad_patch_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    before = await api.device("leaf1")
    out = problem(await api.patch(URL, json=body), 422, "VALIDATION_FAILED")
    assert fields(out) == [field]
    assert await api.device("leaf1") == before
    assert await api.audit(action="device.update") == []


@SQLITE_ONLY
@pytest.mark.parametrize("body", [{}, {"version": 1}])
async def test_a_patch_with_nothing_to_change_is_refused(api: Api, body: dict[str, Any]) -> None:
    before = await api.device("leaf1")
    out = problem(await api.patch(URL, json=body), 422, "VALIDATION_FAILED")
    assert "nothing to change" in out["detail"]
    assert await api.device("leaf1") == before


@SQLITE_ONLY
@pytest.mark.parametrize("field", ["labels", "groups", "connection", "role", "driver"])
async def test_a_null_in_a_patch_is_refused_not_a_crash(api: Api, field: str) -> None:
    before = await api.device("leaf1")
    r = await api.patch(URL, json={field: None})
    out = problem(r, 422, "VALIDATION_FAILED")
    assert fields(out) == [field]
    assert await api.device("leaf1") == before


async def test_a_group_listed_twice_in_a_patch_is_refused(api: Api) -> None:
    out = problem(await api.patch(URL, json={"groups": ["a", "a"]}), 422, "VALIDATION_FAILED")
    assert fields(out) == ["groups"]


async def test_a_patch_checks_the_role_like_create_does(api: Api) -> None:
    out = problem(await api.patch(URL, json={"role": "Bad Role!"}), 422, "VALIDATION_FAILED")
    assert fields(out) == ["role"]
    assert (await api.device("leaf1"))["role"] == "leaf"


# Delete ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["activated", "draining", "maintenance", "error"])
async def test_a_device_in_service_or_maintenance_cannot_be_deleted(api: Api, status: str) -> None:
    path = {
        "activated": [],
        "draining": ["draining"],
        "maintenance": ["draining", "maintenance"],
        "error": ["error"],
    }[status]
    for target in path:
        await api.set_status("leaf1", target, as_="admin")
    before = await api.device("leaf1")
    out = problem(await api.delete(URL), 409, "CONFLICT")
    assert status in out["detail"]
    assert await api.device("leaf1") == before


async def test_pending_and_decommissioned_devices_can_be_deleted(api: Api) -> None:
    await api.new_device("dc1", "new1", status="pending", groups=["b"])
    r = await api.delete("/api/v1/devices/new1", headers={"X-Pitstop-Via": "cli"})
    assert r.status_code == 204, r.text
    assert r.content == b""
    problem(await api.get("/api/v1/devices/new1"), 404, "NOT_FOUND")

    await api.set_status("leaf1", "decommissioned", as_="admin")
    leaf1 = await api.device("leaf1")
    assert leaf1["allowed_transitions"] == []
    r = await api.delete(f"/api/v1/devices/{leaf1['id']}")
    assert r.status_code == 204, r.text
    assert await api.all_devices() == []
    assert [g["members"] for g in await api.ok("GET", "/api/v1/fabrics/dc1/groups")] == [0, 0]

    rows = await api.audit(action="device.delete")
    assert [(r["device"], r["from_status"], r["via"]) for r in rows] == [
        ("leaf1", "decommissioned", "api"),
        ("new1", "pending", "cli"),
    ]
    # With no devices left the fabric may go.
    assert (await api.delete("/api/v1/fabrics/dc1")).status_code == 204
    assert (await api.ok("GET", "/api/v1/audit/verify"))["ok"] is True


async def test_only_admins_edit_or_delete(api: Api) -> None:
    await api.new_device("dc1", "new1", status="pending")
    for who in ("operator", "viewer"):
        problem(await api.patch(URL, json={"labels": {}}, as_=who), 403, "FORBIDDEN")
        problem(await api.delete("/api/v1/devices/new1", as_=who), 403, "FORBIDDEN")
    assert (await api.device("new1"))["status"] == "pending"
    assert (await api.device("leaf1"))["version"] == 1


async def test_a_device_whose_name_looks_like_a_uuid_can_be_read_by_name(api: Api) -> None:
    name = "0123456789abcdef0123456789abcdef"
    made = await api.new_device("dc1", name)
    assert (await api.device(name))["id"] == made["id"]
