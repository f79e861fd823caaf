"""Fabrics and redundancy groups over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.storage.store import Store


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        yield a


# Fabrics -------------------------------------------------------------------------------------


async def test_create_a_fabric_then_read_it_by_name_and_by_id(api: Api) -> None:
    r = await api.post(
        "/api/v1/fabrics",
        json={"name": "dc1", "description": "first", "labels": {"site": "ams"}},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["name"] == "dc1"
    assert made["description"] == "first"
    assert made["labels"] == {"site": "ams"}
    assert made["created_at"] == made["updated_at"]

    assert await api.ok("GET", "/api/v1/fabrics/dc1") == made
    assert await api.ok("GET", f"/api/v1/fabrics/{made['id']}", as_="viewer") == made
    assert await api.ok("GET", "/api/v1/fabrics") == [made]

    rows = await api.audit(action="fabric.create")
    assert [(a["actor"], a["fabric"], a["via"]) for a in rows] == [("admin", "dc1", "api")]


async def test_a_duplicate_fabric_name_is_a_conflict(api: Api) -> None:
    await api.fabric("dc1")
    body = problem(await api.post("/api/v1/fabrics", json={"name": "dc1"}), 409, "CONFLICT")
    assert "dc1" in body["detail"]
    assert len(await api.ok("GET", "/api/v1/fabrics")) == 1
    assert len(await api.audit(action="fabric.create")) == 1


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "-dash"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"name": "ok", "labels": {"bad key!": "v"}}, "labels"),
        ({"name": "ok", "colour": "blue"}, "colour"),
        ({}, "name"),
    ],
)
async def test_a_bad_fabric_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    out = problem(await api.post("/api/v1/fabrics", json=body), 422, "VALIDATION_FAILED")
    assert field in fields(out), out
    assert await api.ok("GET", "/api/v1/fabrics") == []


async def test_patch_a_fabric_changes_only_what_is_sent(api: Api) -> None:
    made = await api.ok(
        "POST", "/api/v1/fabrics", 201, json={"name": "dc1", "labels": {"site": "ams"}}
    )
    api.clock.advance(seconds=5)
    out = await api.ok("PATCH", "/api/v1/fabrics/dc1", json={"description": "renamed"})
    assert out["description"] == "renamed"
    assert out["labels"] == {"site": "ams"}
    assert out["updated_at"] > made["updated_at"]
    assert out["created_at"] == made["created_at"]

    out = await api.ok("PATCH", f"/api/v1/fabrics/{made['id']}", json={"labels": {"k": "v"}})
    assert (out["description"], out["labels"]) == ("renamed", {"k": "v"})
    assert await api.ok("GET", "/api/v1/fabrics/dc1") == out

    problem(await api.patch("/api/v1/fabrics/dc1", json={"name": "dc2"}), 422, "VALIDATION_FAILED")
    updates = await api.audit(action="fabric.update")
    assert [u["details"]["fields"] for u in updates] == [["labels"], ["description"]]


async def test_a_fabric_with_devices_cannot_be_deleted(api: Api) -> None:
    await api.fabric("dc1", "spines")
    await api.new_device("dc1", "spine1", groups=["spines"])
    body = problem(await api.delete("/api/v1/fabrics/dc1"), 409, "CONFLICT")
    assert body["devices"] == 1
    assert (await api.ok("GET", "/api/v1/fabrics/dc1"))["name"] == "dc1"
    assert await api.audit(action="fabric.delete") == []


async def test_an_empty_fabric_is_deleted_with_its_groups(api: Api) -> None:
    await api.fabric("dc1", "spines", "leaves")
    r = await api.delete("/api/v1/fabrics/dc1")
    assert r.status_code == 204, r.text
    assert r.content == b""
    problem(await api.get("/api/v1/fabrics/dc1"), 404, "NOT_FOUND")
    problem(await api.get("/api/v1/fabrics/dc1/groups"), 404, "NOT_FOUND")
    # The name is free again, and the new fabric starts without the old groups.
    await api.fabric("dc1")
    assert await api.ok("GET", "/api/v1/fabrics/dc1/groups") == []
    assert [a["fabric"] for a in await api.audit(action="fabric.delete")] == ["dc1"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/v1/fabrics/nope", None),
        ("GET", "/api/v1/fabrics/00000000-0000-4000-8000-000000000000", None),
        ("PATCH", "/api/v1/fabrics/nope", {"description": "x"}),
        ("DELETE", "/api/v1/fabrics/nope", None),
        ("GET", "/api/v1/fabrics/nope/groups", None),
        ("POST", "/api/v1/fabrics/nope/groups", {"name": "g", "max_unavailable": 1}),
        ("GET", "/api/v1/fabrics/dc1/groups/nope", None),
        ("PATCH", "/api/v1/fabrics/dc1/groups/nope", {"description": "x"}),
        ("DELETE", "/api/v1/fabrics/dc1/groups/nope", None),
    ],
)
async def test_unknown_fabrics_and_groups_are_not_found(
    api: Api, method: str, url: str, body: Any
) -> None:
    await api.fabric("dc1")
    before = await api.audit()
    r = await api.request(method, url, json=body)
    out = problem(r, 404, "NOT_FOUND")
    assert "nope" in out["detail"] or "00000000" in out["detail"]
    assert await api.audit() == before


# Groups ---------------------------------------------------------------------------------------


async def test_groups_crud_with_member_counts(api: Api) -> None:
    await api.fabric("dc1")
    r = await api.post(
        "/api/v1/fabrics/dc1/groups",
        json={"name": "mlag-1", "max_unavailable": 1, "description": "pair"},
    )
    assert r.status_code == 201, r.text
    g = r.json()
    assert (g["name"], g["max_unavailable"], g["members"], g["description"]) == (
        "mlag-1",
        "1",
        0,
        "pair",
    )
    await api.ok(
        "POST", "/api/v1/fabrics/dc1/groups", 201, json={"name": "spines", "max_unavailable": "50%"}
    )
    await api.new_device("dc1", "leaf1", groups=["mlag-1"])
    await api.new_device("dc1", "leaf2", groups=["mlag-1"])
    await api.new_device("dc1", "spine1", groups=["spines"])

    listed = await api.ok("GET", "/api/v1/fabrics/dc1/groups", as_="viewer")
    assert [(x["name"], x["max_unavailable"], x["members"]) for x in listed] == [
        ("mlag-1", "1", 2),
        ("spines", "50%", 1),
    ]
    one = await api.ok("GET", "/api/v1/fabrics/dc1/groups/mlag-1")
    assert one["members"] == 2
    assert await api.ok("GET", f"/api/v1/fabrics/dc1/groups/{g['id']}") == one

    patched = await api.ok(
        "PATCH", "/api/v1/fabrics/dc1/groups/mlag-1", json={"max_unavailable": "25%"}
    )
    assert (patched["max_unavailable"], patched["members"], patched["description"]) == (
        "25%",
        2,
        "pair",
    )

    # A duplicate group name is a conflict.
    problem(
        await api.post("/api/v1/fabrics/dc1/groups", json={"name": "spines", "max_unavailable": 1}),
        409,
        "CONFLICT",
    )

    # Deleting a group takes it off its members; the devices stay.
    r = await api.delete("/api/v1/fabrics/dc1/groups/mlag-1")
    assert r.status_code == 204, r.text
    assert (await api.device("leaf1"))["groups"] == []
    assert [x["name"] for x in await api.ok("GET", "/api/v1/fabrics/dc1/groups")] == ["spines"]

    actions = [a["action"] for a in await api.audit() if a["action"].startswith("group.")]
    assert actions == ["group.delete", "group.update", "group.create", "group.create"]


async def test_the_same_group_name_may_exist_in_two_fabrics(api: Api) -> None:
    await api.fabric("dc1", "spines")
    await api.fabric("dc2", "spines")
    for f in ("dc1", "dc2"):
        assert [g["name"] for g in await api.ok("GET", f"/api/v1/fabrics/{f}/groups")] == ["spines"]
    problem(await api.get("/api/v1/fabrics/dc3/groups/spines"), 404, "NOT_FOUND")


@SQLITE_ONLY
@pytest.mark.parametrize("budget", ["abc", "150%", "-1", -1, "1.5", "", "%"])
async def test_a_bad_max_unavailable_is_refused_naming_the_field(api: Api, budget: Any) -> None:
    await api.fabric("dc1", "spines")
    out = problem(
        await api.post("/api/v1/fabrics/dc1/groups", json={"name": "g", "max_unavailable": budget}),
        422,
        "VALIDATION_FAILED",
    )
    assert fields(out) == ["max_unavailable"], out
    out = problem(
        await api.patch("/api/v1/fabrics/dc1/groups/spines", json={"max_unavailable": budget}),
        422,
        "VALIDATION_FAILED",
    )
    assert fields(out) == ["max_unavailable"], out
    groups = await api.ok("GET", "/api/v1/fabrics/dc1/groups")
    assert [(g["name"], g["max_unavailable"]) for g in groups] == [("spines", "1")]


@SQLITE_ONLY
@pytest.mark.parametrize(("budget", "shown"), [(0, "0"), ("3", "3"), (" 100% ", "100%")])
async def test_a_budget_is_normalised(api: Api, budget: Any, shown: str) -> None:
    await api.fabric("dc1")
    out = await api.ok(
        "POST", "/api/v1/fabrics/dc1/groups", 201, json={"name": "g", "max_unavailable": budget}
    )
    assert out["max_unavailable"] == shown


async def test_a_group_needs_a_budget_and_a_good_name(api: Api) -> None:
    await api.fabric("dc1")
    out = problem(
        await api.post("/api/v1/fabrics/dc1/groups", json={"name": "Spines"}),
        422,
        "VALIDATION_FAILED",
    )
    assert sorted(fields(out)) == ["max_unavailable", "name"]
