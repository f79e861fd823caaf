"""Devices over HTTP: create, read, and list with filters and cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import DEMO_DC1, DEMO_STORAGE, SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.storage.store import Store


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        yield a


@pytest.fixture
async def demo(api: Api) -> Api:
    await api.seed_demo()
    return api


def names(items: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in items]


# Create ----------------------------------------------------------------------------------------


async def test_create_a_device_and_read_it_back_by_name_and_id(api: Api) -> None:
    await api.fabric("dc1", "mlag-1")
    r = await api.post(
        "/api/v1/devices",
        json={
            "fabric": "dc1",
            "name": "leaf1",
            "role": "leaf",
            "driver": "simulated",
            "connection": {
                "host": "leaf1.example.net",
                "port": 2222,
                "credentials_ref": "env:LEAF_PW",
                "options": {"timeout": "30"},
            },
            "labels": {"rack": "r1"},
            "groups": ["mlag-1"],
        },
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["fabric"] == "dc1"
    assert made["status"] == "activated"
    assert made["version"] == 1
    assert made["groups"] == ["mlag-1"]
    assert made["labels"] == {"rack": "r1"}
    assert made["connection"] == {
        "host": "leaf1.example.net",
        "port": 2222,
        "credentials_ref": "env:LEAF_PW",
        "options": {"timeout": "30"},
    }
    assert made["needs_attention"] is False
    assert made["status_changed_by"] == "admin"

    assert await api.device("leaf1") == made
    assert await api.ok("GET", f"/api/v1/devices/{made['id']}") == made

    audit = await api.audit(device="leaf1")
    assert [(a["action"], a["actor"], a["to_status"]) for a in audit] == [
        ("device.create", "admin", "activated")
    ]
    assert audit[0]["device_id"] == made["id"]


async def test_a_device_may_start_pending_but_not_in_maintenance(api: Api) -> None:
    await api.fabric("dc1")
    made = await api.new_device("dc1", "new1", status="pending")
    assert made["status"] == "pending"
    # Only an admin may commission it.
    assert made["allowed_transitions"] == ["activated", "error"]
    out = problem(
        await api.post(
            "/api/v1/devices",
            json={"fabric": "dc1", "name": "new2", "role": "leaf", "status": "maintenance"},
        ),
        422,
        "VALIDATION_FAILED",
    )
    assert fields(out) == ["status"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"groups": ["nope"]}, "groups"),
        ({"name": "Bad Name"}, "name"),
        ({"name": "bad_"}, "name"),
        ({"role": "Leaf Switch"}, "role"),
        ({"labels": {"rack": "has space"}}, "labels"),
        ({"connection": {"port": 0}}, "connection.port"),
        ({"connection": {"port": 70000}}, "connection.port"),
        ({"connection": {"hostname": "x"}}, "connection.hostname"),
        ({"colour": "blue"}, "colour"),
        ({"groups": ["mlag-1", "mlag-1"]}, "groups"),
        ({"status": "draining"}, "status"),
    ],
)
async def test_a_bad_device_is_refused_naming_the_field(
    api: Api, extra: dict[str, Any], field: str
) -> None:
    await api.fabric("dc1", "mlag-1")
    body = {"fabric": "dc1", "name": "leaf1", "role": "leaf", **extra}
    out = problem(await api.post("/api/v1/devices", json=body), 422, "VALIDATION_FAILED")
    assert fields(out) == [field], out
    assert field.split(".")[0] in out["detail"] or out["detail"].startswith("unknown groups")
    assert await api.all_devices() == []
    assert await api.audit(action="device.create") == []


async def test_a_duplicate_device_name_in_a_fabric_is_refused(api: Api) -> None:
    await api.fabric("dc1")
    first = await api.new_device("dc1", "leaf1")
    out = problem(
        await api.post("/api/v1/devices", json={"fabric": "dc1", "name": "leaf1", "role": "x"}),
        422,
        "VALIDATION_FAILED",
    )
    assert fields(out) == ["name"]
    assert await api.all_devices() == [first]


@SQLITE_ONLY
@pytest.mark.parametrize("key", ["password", "ssh_Password", "api_key", "enable_secret", "TOKEN"])
async def test_secret_looking_connection_options_are_refused_and_never_echoed(
    api: Api, key: str
) -> None:
    await api.fabric("dc1")
    secret = "hunter2-very-secret-value"
    r = await api.post(
        "/api/v1/devices",
        json={
            "fabric": "dc1",
            "name": "leaf1",
            "role": "leaf",
            "connection": {"host": "h", "options": {key: secret}},
        },
    )
    out = problem(r, 422, "VALIDATION_FAILED")
    assert fields(out) == ["connection.options"]
    assert secret not in r.text
    assert "credentials_ref" in out["errors"][0]["message"]
    assert await api.all_devices() == []
    assert secret not in json.dumps(await api.audit())


async def test_an_unknown_fabric_in_the_body_is_not_found(api: Api) -> None:
    problem(
        await api.post("/api/v1/devices", json={"fabric": "dc9", "name": "leaf1", "role": "x"}),
        404,
        "NOT_FOUND",
    )


async def test_a_malformed_json_body_is_a_validation_problem(api: Api) -> None:
    await api.fabric("dc1")
    r = await api.post(
        "/api/v1/devices", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    problem(r, 422, "VALIDATION_FAILED")


# Read -----------------------------------------------------------------------------------------


async def test_a_device_name_in_two_fabrics_is_ambiguous_until_the_fabric_is_named(
    api: Api,
) -> None:
    await api.fabric("dc1")
    await api.fabric("dc2")
    one = await api.new_device("dc1", "leaf1")
    two = await api.new_device("dc2", "leaf1")

    out = problem(await api.get("/api/v1/devices/leaf1"), 409, "AMBIGUOUS_REFERENCE")
    assert out["fabrics"] == ["dc1", "dc2"]
    problem(
        await api.post("/api/v1/devices/leaf1/status", json={"status": "draining"}),
        409,
        "AMBIGUOUS_REFERENCE",
    )

    assert (await api.device("leaf1", fabric="dc1"))["id"] == one["id"]
    assert (await api.device("leaf1", fabric="dc2"))["id"] == two["id"]
    assert (await api.device("leaf1", fabric=two["fabric_id"]))["id"] == two["id"]
    # An id needs no fabric.
    assert (await api.device(one["id"]))["fabric"] == "dc1"

    out = await api.ok(
        "POST",
        "/api/v1/devices/leaf1/status",
        params={"fabric": "dc2"},
        json={"status": "draining"},
        as_="operator",
    )
    assert out["id"] == two["id"]
    assert (await api.device("leaf1", fabric="dc1"))["status"] == "activated"


async def test_unknown_devices_are_not_found(api: Api) -> None:
    await api.fabric("dc1")
    await api.new_device("dc1", "leaf1")
    problem(await api.get("/api/v1/devices/nope"), 404, "NOT_FOUND")
    problem(await api.get("/api/v1/devices/00000000-0000-4000-8000-000000000000"), 404, "NOT_FOUND")
    problem(await api.get("/api/v1/devices/leaf1", params={"fabric": "dc9"}), 404, "NOT_FOUND")
    problem(
        await api.post("/api/v1/devices/nope/status", json={"status": "draining"}),
        404,
        "NOT_FOUND",
    )


# List -----------------------------------------------------------------------------------------


async def test_listing_is_sorted_by_name_and_filters_by_fabric(demo: Api) -> None:
    everything = await demo.all_devices()
    assert names(everything) == sorted(DEMO_DC1 + DEMO_STORAGE)
    assert names(await demo.all_devices(fabric="dc1")) == DEMO_DC1
    assert names(await demo.all_devices(fabric="storage")) == DEMO_STORAGE
    problem(await demo.get("/api/v1/devices", params={"fabric": "dc9"}), 404, "NOT_FOUND")


async def test_listing_filters_by_status_role_group_and_name(demo: Api) -> None:
    await demo.set_status("leaf1", "draining")
    await demo.set_status("leaf3", "draining")
    await demo.set_status("leaf3", "maintenance")

    assert names(await demo.all_devices(status="draining")) == ["leaf1"]
    assert names(await demo.all_devices(status="draining,maintenance")) == ["leaf1", "leaf3"]
    assert names(await demo.all_devices(status=" maintenance , draining ")) == ["leaf1", "leaf3"]
    assert len(await demo.all_devices(status="activated")) == 20
    assert names(await demo.all_devices(role="spine")) == ["spine1", "spine2"]
    assert names(await demo.all_devices(role="border", fabric="dc1")) == ["border1", "border2"]
    assert names(await demo.all_devices(group="mlag-2")) == ["leaf3", "leaf4"]
    assert names(await demo.all_devices(group="rack-a", status="activated")) == [
        "stor01",
        "stor02",
        "stor03",
        "stor04",
    ]
    assert names(await demo.all_devices(name="leaf2")) == ["leaf2"]
    assert await demo.all_devices(role="nope") == []


async def test_q_matches_part_of_the_name(demo: Api) -> None:
    assert names(await demo.all_devices(q="leaf")) == [f"leaf{i}" for i in range(1, 7)]
    assert names(await demo.all_devices(q="ine")) == ["spine1", "spine2"]
    assert names(await demo.all_devices(q="STOR1")) == ["stor10", "stor11", "stor12"]
    # Wildcards are matched literally.
    assert await demo.all_devices(q="%") == []
    assert await demo.all_devices(q="_") == []


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("rack=r1", ["border1", "leaf1", "leaf2", "spine1"]),
        ("rack=r1,vendor!=x", ["border1", "leaf1", "leaf2", "spine1"]),
        ("rack=r2,role!=x", ["border2", "leaf3", "leaf4", "spine2"]),
        ("rack==r3", ["leaf5", "leaf6"]),
        ("vendor", DEMO_DC1),
        ("!vendor", DEMO_STORAGE),
        ("!rack", []),
        ("rack=rack-a", ["stor01", "stor02", "stor03", "stor04"]),
        ("rack!=r1,vendor", ["border2", "leaf3", "leaf4", "leaf5", "leaf6", "spine2"]),
        (" rack = r3 , vendor = frr ", ["leaf5", "leaf6"]),
    ],
)
async def test_label_selectors(demo: Api, selector: str, expected: list[str]) -> None:
    assert names(await demo.all_devices(selector=selector)) == expected


async def test_a_device_without_a_label_matches_not_equal_and_absent(api: Api) -> None:
    await api.fabric("dc1")
    await api.new_device("dc1", "a", labels={"rack": "r1"})
    await api.new_device("dc1", "b", labels={"rack": "r2"})
    await api.new_device("dc1", "c")
    assert names(await api.all_devices(selector="rack!=r1")) == ["b", "c"]
    assert names(await api.all_devices(selector="!rack")) == ["c"]
    assert names(await api.all_devices(selector="rack")) == ["a", "b"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"selector": "=r1"}, "selector"),
        ({"selector": "!"}, "selector"),
        ({"selector": "ra ck=r1"}, "selector"),
        ({"status": "broken"}, "status"),
        ({"status": "draining,up"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"needs_attention": "perhaps"}, "needs_attention"),
    ],
)
async def test_bad_list_parameters_are_validation_problems(
    demo: Api, params: dict[str, str], field: str
) -> None:
    out = problem(await demo.get("/api/v1/devices", params=params), 422, "VALIDATION_FAILED")
    assert fields(out) == [field], out


async def test_cursor_pagination_walks_every_device_exactly_once(demo: Api) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await demo.ok("GET", "/api/v1/devices", params=params, as_="viewer")
        pages += 1
        assert 1 <= len(page["items"]) <= 3
        seen.extend(names(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 50
    assert seen == sorted(DEMO_DC1 + DEMO_STORAGE)
    assert len(set(seen)) == 22
    assert pages == 8  # 7 full pages and one of 1

    # A cursor continues under the same filters.
    first = await demo.ok("GET", "/api/v1/devices", params={"limit": 2, "fabric": "storage"})
    rest = await demo.ok(
        "GET",
        "/api/v1/devices",
        params={"limit": 100, "fabric": "storage", "cursor": first["next_cursor"]},
    )
    assert names(first["items"]) + names(rest["items"]) == DEMO_STORAGE
    assert rest["next_cursor"] is None


async def test_a_full_last_page_has_no_cursor(api: Api) -> None:
    await api.fabric("dc1")
    for n in ("a", "b", "c"):
        await api.new_device("dc1", n)
    page = await api.ok("GET", "/api/v1/devices", params={"limit": 3})
    assert names(page["items"]) == ["a", "b", "c"]
    assert page["next_cursor"] is None


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@SQLITE_ONLY
@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("!!!", id="not-base64"),
        pytest.param("bm90IGpzb24", id="not-json"),
        pytest.param(_b64({"a": 1}), id="not-a-list"),
        pytest.param(_b64(["leaf1"]), id="wrong-length"),
    ],
)
async def test_a_bad_cursor_is_a_validation_problem(demo: Api, cursor: str) -> None:
    out = problem(
        await demo.get("/api/v1/devices", params={"cursor": cursor}), 422, "VALIDATION_FAILED"
    )
    assert fields(out) == ["cursor"]


async def test_a_forged_cursor_with_a_bad_id_is_a_validation_problem(demo: Api) -> None:
    r = await demo.get("/api/v1/devices", params={"cursor": _b64(["leaf1", "not-a-uuid"])})
    out = problem(r, 422, "VALIDATION_FAILED")
    assert fields(out) == ["cursor"]


async def test_allowed_transitions_depend_on_the_callers_role(demo: Api) -> None:
    by_role = {
        who: (await demo.ok("GET", "/api/v1/devices/leaf1", as_=who))["allowed_transitions"]
        for who in ("viewer", "operator", "admin")
    }
    assert by_role == {
        "viewer": [],
        "operator": ["draining"],
        "admin": ["draining", "error", "decommissioned"],
    }
    listed = await demo.ok("GET", "/api/v1/devices", params={"name": "leaf1"}, as_="operator")
    assert listed["items"][0]["allowed_transitions"] == ["draining"]
