"""Bulk import over HTTP: YAML and CSV, all or nothing, every bad row reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from test_api_support import SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.storage.store import Store

URL = "/api/v1/inventory/import"
YAML = {"Content-Type": "application/yaml"}
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.fabric("dc1", "a", "b")
        yield a


async def send(
    api: Api, text: str, *, headers: dict[str, str] = YAML, as_: str = "admin", **params: Any
) -> httpx.Response:
    return await api.post(URL, content=text.encode(), headers=headers, params=params, as_=as_)


async def snapshot(api: Api) -> tuple[list[Any], list[Any], list[Any], int]:
    """Everything an import could write: fabrics, groups, devices and the audit log."""
    fabrics = await api.ok("GET", "/api/v1/fabrics")
    groups = [await api.ok("GET", f"/api/v1/fabrics/{f['name']}/groups") for f in fabrics]
    checked = (await api.ok("GET", "/api/v1/audit/verify"))["checked"]
    return fabrics, groups, await api.all_devices(), checked


def errors_by_row(body: dict[str, Any]) -> list[tuple[int | None, str]]:
    return [(e.get("row"), e["field"]) for e in body["errors"]]


# YAML -----------------------------------------------------------------------------------------


async def test_a_yaml_list_of_devices_into_a_named_fabric(api: Api) -> None:
    text = """
- name: leaf1
  role: leaf
  groups: [a]
  labels: {rack: r1}
  connection: {host: 10.0.0.1, port: 22, credentials_ref: "env:PW"}
- {name: leaf2, role: leaf, groups: [a, b], status: pending}
"""
    r = await send(api, text, fabric="dc1")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "dry_run": False,
        "fabrics_created": [],
        "groups_created": [],
        "devices_created": ["dc1/leaf1", "dc1/leaf2"],
    }
    leaf1 = await api.device("leaf1")
    assert leaf1["fabric"] == "dc1"
    assert leaf1["groups"] == ["a"]
    assert leaf1["labels"] == {"rack": "r1"}
    assert leaf1["connection"]["host"] == "10.0.0.1"
    assert leaf1["connection"]["credentials_ref"] == "env:PW"
    assert leaf1["driver"] == "simulated"
    leaf2 = await api.device("leaf2")
    assert (leaf2["status"], leaf2["groups"]) == ("pending", ["a", "b"])

    groups = await api.ok("GET", "/api/v1/fabrics/dc1/groups")
    assert [(g["name"], g["members"]) for g in groups] == [("a", 2), ("b", 1)]
    created = await api.audit(action="device.create")
    assert sorted((a["device"], a["actor"], a["via"]) for a in created) == [
        ("leaf1", "admin", "api"),
        ("leaf2", "admin", "api"),
    ]


async def test_a_yaml_mapping_adds_groups_and_devices_to_an_existing_fabric(api: Api) -> None:
    text = """
groups:
  - {name: spines, max_unavailable: 50%}
devices:
  - {name: spine1, role: spine, groups: [spines]}
  - {name: spine2, role: spine, groups: [spines, a]}
"""
    out = await api.ok(
        "POST", URL, content=text, headers={"X-Pitstop-Via": "cli"}, params={"fabric": "dc1"}
    )
    assert out["groups_created"] == ["dc1/spines"]
    assert out["devices_created"] == ["dc1/spine1", "dc1/spine2"]
    spines = await api.ok("GET", "/api/v1/fabrics/dc1/groups/spines")
    assert (spines["max_unavailable"], spines["members"]) == ("50%", 2)
    assert {a["via"] for a in await api.audit(action="device.create")} == {"cli"}


async def test_a_yaml_fabrics_section_creates_fabrics_groups_and_devices(api: Api) -> None:
    text = """
fabrics:
  - name: edge
    description: Edge routers
    labels: {site: ams}
    groups:
      - {name: pair-1, max_unavailable: 1}
    devices:
      - {name: edge1, role: router, groups: [pair-1], labels: {vendor: x}}
      - {name: edge2, role: router, groups: [pair-1]}
  - name: dc1
    devices:
      - {name: leaf7, role: leaf, groups: [b]}
"""
    out = await api.ok("POST", URL, content=text, headers=YAML)
    assert out == {
        "dry_run": False,
        "fabrics_created": ["edge"],
        "groups_created": ["edge/pair-1"],
        "devices_created": ["edge/edge1", "edge/edge2", "dc1/leaf7"],
    }
    edge = await api.ok("GET", "/api/v1/fabrics/edge")
    assert (edge["description"], edge["labels"]) == ("Edge routers", {"site": "ams"})
    groups = await api.ok("GET", "/api/v1/fabrics/edge/groups")
    assert [(g["name"], g["members"]) for g in groups] == [("pair-1", 2)]
    devices = await api.all_devices(fabric="edge")
    assert [(d["name"], d["role"], d["groups"]) for d in devices] == [
        ("edge1", "router", ["pair-1"]),
        ("edge2", "router", ["pair-1"]),
    ]
    assert (await api.device("leaf7"))["fabric"] == "dc1"
    assert [a["fabric"] for a in await api.audit(action="fabric.create")] == ["edge", "dc1"]
    assert (await api.ok("GET", "/api/v1/audit/verify"))["ok"] is True


async def test_a_yaml_file_with_several_bad_rows_lists_each_and_writes_nothing(
    api: Api,
) -> None:
    await send(api, "- {name: taken, role: leaf}\n", fabric="dc1")
    before = await snapshot(api)
    text = """
- {name: good1, role: leaf, groups: [a]}
- {name: Bad Name, role: leaf}
- {name: lost, role: leaf, groups: [zzz]}
- {name: badport, role: leaf, connection: {port: 99999}}
- {name: good1, role: leaf}
- {name: taken, role: leaf}
- {name: extra, role: leaf, colour: red}
"""
    r = await send(api, text, fabric="dc1")
    out = problem(r, 422, "VALIDATION_FAILED")
    assert errors_by_row(out) == [
        (2, "devices[1].name"),
        (3, "devices[2].groups"),
        (4, "devices[3].connection.port"),
        (5, "devices[4].name"),
        (6, "devices[5].name"),
        (7, "devices[6].colour"),
    ]
    messages = {e["row"]: e["message"] for e in out["errors"]}
    assert "zzz" in messages[3]
    assert "twice" in messages[5]
    assert "already exists" in messages[6]
    assert "nothing was written" in out["detail"]
    assert await snapshot(api) == before


async def test_a_bad_fabric_section_writes_nothing_at_all(api: Api) -> None:
    before = await snapshot(api)
    text = """
fabrics:
  - name: fresh
    groups: [{name: g1, max_unavailable: 1}]
    devices: [{name: ok1, role: leaf, groups: [g1]}]
  - name: also-fresh
    groups: [{name: g2, max_unavailable: 150%}]
"""
    out = problem(await send(api, text), 422, "VALIDATION_FAILED")
    assert fields(out) == ["fabrics[1].groups[0].max_unavailable"]
    assert await snapshot(api) == before
    problem(await api.get("/api/v1/fabrics/fresh"), 404, "NOT_FOUND")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("- {name: leaf1, role: leaf\n- {name: leaf2}\n", 2),
        ("- name: leaf1\n  role: leaf\n bad: indent\n", 3),
        ("devices:\n  - name: [unclosed\n", 3),
    ],
)
async def test_invalid_yaml_is_refused_with_the_line(api: Api, text: str, line: int) -> None:
    before = await snapshot(api)
    out = problem(await send(api, text, fabric="dc1"), 422, "VALIDATION_FAILED")
    assert "YAML" in out["detail"]
    [err] = out["errors"]
    assert err["field"] == "document"
    assert err["row"] == line, err
    assert await snapshot(api) == before


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("text", "params", "field"),
    [
        ("just a string\n", {"fabric": "dc1"}, "document"),
        ("- {name: leaf1, role: leaf}\n", {}, "fabric"),
        ("- {name: leaf1, role: leaf}\n", {"fabric": "dc9"}, "fabric"),
        ("hosts: []\n", {"fabric": "dc1"}, "hosts"),
        ("devices: {leaf1: {}}\n", {"fabric": "dc1"}, "devices"),
        ("- leaf1\n", {"fabric": "dc1"}, "devices[0]"),
        ("fabrics: [{name: Bad}]\n", {}, "fabrics[0].name"),
        ("fabrics: [{name: dc1}, {name: dc1}]\n", {}, "fabrics[1].name"),
        ("groups: [{name: a, max_unavailable: 1}]\n", {"fabric": "dc1"}, "groups[0].name"),
    ],
)
async def test_badly_shaped_yaml_is_refused_naming_the_place(
    api: Api, text: str, params: dict[str, str], field: str
) -> None:
    before = await snapshot(api)
    out = problem(await send(api, text, **params), 422, "VALIDATION_FAILED")
    assert fields(out) == [field], out
    assert await snapshot(api) == before


# CSV -------------------------------------------------------------------------------------------


async def test_a_csv_with_groups_labels_and_port(api: Api) -> None:
    text = (
        "name,role,driver,host,port,credentials_ref,groups,labels,status\n"
        "leaf1,leaf,simulated,10.0.0.1,2222,env:PW,a;b,rack=r1;vendor=frr,\n"
        "leaf2,leaf,,10.0.0.2,,,a,,pending\n"
    )
    out = await api.ok("POST", URL, content=text, headers=CSV, params={"fabric": "dc1"})
    assert out["devices_created"] == ["dc1/leaf1", "dc1/leaf2"]
    leaf1 = await api.device("leaf1")
    assert leaf1["groups"] == ["a", "b"]
    assert leaf1["labels"] == {"rack": "r1", "vendor": "frr"}
    assert leaf1["connection"] == {
        "host": "10.0.0.1",
        "port": 2222,
        "credentials_ref": "env:PW",
        "options": {},
    }
    leaf2 = await api.device("leaf2")
    assert (leaf2["status"], leaf2["connection"]["port"], leaf2["labels"]) == ("pending", None, {})


async def test_format_csv_can_be_asked_for_in_the_query(api: Api) -> None:
    text = "\ufeffname,role\nleaf1,leaf\n"  # with a byte-order mark, as spreadsheets write
    out = await api.ok(
        "POST",
        URL,
        content=text.encode(),
        headers={"Content-Type": "application/octet-stream"},
        params={"fabric": "dc1", "format": "csv"},
    )
    assert out["devices_created"] == ["dc1/leaf1"]


async def test_a_csv_with_several_bad_rows_lists_each_row_and_column(api: Api) -> None:
    await send(api, "- {name: taken, role: leaf}\n", fabric="dc1")
    before = await snapshot(api)
    text = (
        "name,role,host,port,groups,labels\n"
        "good1,leaf,h1,22,a,rack=r1\n"
        "Bad Name,leaf,h2,22,a,\n"
        "lost,leaf,h3,22,a;zzz,\n"
        "badport,leaf,h4,notaport,b,\n"
        "good1,leaf,h5,22,,\n"
        "badlabel,leaf,h6,22,,rack\n"
        "taken,leaf,h7,22,,\n"
    )
    out = problem(await send(api, text, headers=CSV, fabric="dc1"), 422, "VALIDATION_FAILED")
    assert errors_by_row(out) == [
        (3, "name"),
        (4, "groups"),
        (5, "port"),
        (6, "name"),
        (7, "labels"),
        (8, "name"),
    ]
    assert "6 rows" in out["detail"]
    assert await snapshot(api) == before


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name,role,colour\nleaf1,leaf,red\n", "colour"),
        ("host,port\nh,22\n", "header"),
        ("", "header"),
    ],
)
async def test_a_csv_with_a_bad_header_is_refused(api: Api, text: str, field: str) -> None:
    before = await snapshot(api)
    out = problem(await send(api, text, headers=CSV, fabric="dc1"), 422, "VALIDATION_FAILED")
    assert fields(out) == [field]
    assert out["errors"][0]["row"] == 1
    assert await snapshot(api) == before


async def test_a_csv_row_with_too_many_fields_is_refused(api: Api) -> None:
    out = problem(
        await send(api, "name,role\nleaf1,leaf,extra\n", headers=CSV, fabric="dc1"),
        422,
        "VALIDATION_FAILED",
    )
    assert errors_by_row(out) == [(2, "row")]


async def test_a_csv_needs_a_fabric(api: Api) -> None:
    out = problem(await send(api, "name,role\nleaf1,leaf\n", headers=CSV), 422, "VALIDATION_FAILED")
    assert fields(out) == ["fabric"]


# Dry runs, duplicates, permissions ----------------------------------------------------------


async def test_a_dry_run_reports_what_it_would_create_and_writes_nothing(api: Api) -> None:
    before = await snapshot(api)
    text = """
fabrics:
  - name: edge
    groups: [{name: pair-1, max_unavailable: 1}]
    devices: [{name: edge1, role: router, groups: [pair-1]}]
"""
    out = await api.ok("POST", URL, content=text, headers=YAML, params={"dry_run": "true"})
    assert out == {
        "dry_run": True,
        "fabrics_created": ["edge"],
        "groups_created": ["edge/pair-1"],
        "devices_created": ["edge/edge1"],
    }
    assert await snapshot(api) == before
    # The same file then imports for real.
    out = await api.ok("POST", URL, content=text, headers=YAML)
    assert out["dry_run"] is False
    assert [d["name"] for d in await api.all_devices(fabric="edge")] == ["edge1"]


async def test_a_dry_run_still_reports_every_problem(api: Api) -> None:
    out = problem(
        await send(api, "- {name: x, role: leaf, groups: [zzz]}\n", fabric="dc1", dry_run="true"),
        422,
        "VALIDATION_FAILED",
    )
    assert errors_by_row(out) == [(1, "devices[0].groups")]


async def test_importing_a_device_that_exists_is_refused(api: Api) -> None:
    await api.new_device("dc1", "leaf1")
    before = await snapshot(api)
    for text, headers, field in (
        ("- {name: leaf1, role: leaf}\n- {name: leaf2, role: leaf}\n", YAML, "devices[0].name"),
        ("name,role\nleaf2,leaf\nleaf1,leaf\n", CSV, "name"),
    ):
        out = problem(
            await send(api, text, headers=headers, fabric="dc1"), 422, "VALIDATION_FAILED"
        )
        assert fields(out) == [field]
        assert "already exists" in out["errors"][0]["message"]
    assert await snapshot(api) == before


async def test_the_same_device_name_may_be_imported_into_another_fabric(api: Api) -> None:
    await api.fabric("dc2")
    await api.new_device("dc1", "leaf1")
    out = await api.ok(
        "POST", URL, content="- {name: leaf1, role: leaf}\n", headers=YAML, params={"fabric": "dc2"}
    )
    assert out["devices_created"] == ["dc2/leaf1"]


async def test_only_admins_import(api: Api) -> None:
    for who in ("operator", "viewer"):
        problem(
            await send(api, "- {name: x, role: leaf}\n", fabric="dc1", as_=who), 403, "FORBIDDEN"
        )
    problem(
        await api.post(
            URL, content="- {name: x, role: leaf}\n", as_=None, params={"fabric": "dc1"}
        ),
        401,
        "UNAUTHENTICATED",
    )
    assert await api.all_devices() == []


async def test_a_file_that_is_not_utf8_is_refused(api: Api) -> None:
    out = problem(
        await api.post(URL, content=b"\xff\xfe\x00name", headers=CSV, params={"fabric": "dc1"}),
        422,
        "VALIDATION_FAILED",
    )
    assert "UTF-8" in out["detail"]


async def test_an_unknown_format_is_refused(api: Api) -> None:
    out = problem(
        await send(api, "- {name: x, role: leaf}\n", fabric="dc1", format="xml"),
        422,
        "VALIDATION_FAILED",
    )
    assert fields(out) == ["format"]
