"""The audit log over HTTP: filters, order, cursors, and the hash-chain check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta, timezone
from typing import Any

import pytest
from test_api_support import SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.storage.store import Store

URL = "/api/v1/audit"


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.fabric("dc1", "mlag-1")
        await a.fabric("dc2")
        for name in ("leaf1", "leaf2"):
            await a.new_device("dc1", name, groups=["mlag-1"])
        await a.new_device("dc2", "leaf1")
        yield a


def actions(rows: list[dict[str, Any]]) -> list[str]:
    return [r["action"] for r in rows]


async def test_rows_come_newest_first_with_strictly_decreasing_seq(api: Api) -> None:
    rows = await api.audit()
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == len(seqs)
    # 4 tokens, 2 fabrics, 1 group, 3 devices, oldest last.
    assert actions(rows) == [
        "device.create",
        "device.create",
        "device.create",
        "fabric.create",
        "group.create",
        "fabric.create",
        *["token.create"] * 4,
    ]
    assert seqs[-1] == 1
    assert rows[0]["hash"] and rows[0]["hash"] != rows[1]["hash"]


async def test_filter_by_device_name_or_id_actor_action_and_fabric(api: Api) -> None:
    await api.ok(
        "POST",
        "/api/v1/devices/leaf1/status",
        params={"fabric": "dc1"},
        json={"status": "draining", "reason": "optics"},
        as_="operator",
    )
    # A device name matches in every fabric; its id matches only that device.
    by_name = await api.audit(device="leaf1")
    assert sorted((r["fabric"], r["action"]) for r in by_name) == [
        ("dc1", "device.create"),
        ("dc1", "device.status"),
        ("dc2", "device.create"),
    ]
    dc2_leaf1 = await api.device("leaf1", fabric="dc2")
    assert [(r["fabric"], r["action"]) for r in await api.audit(device=dc2_leaf1["id"])] == [
        ("dc2", "device.create")
    ]
    assert [r["device"] for r in await api.audit(actor="operator")] == ["leaf1"]
    assert await api.audit(actor="nobody") == []
    assert len(await api.audit(action="device.create")) == 3
    assert [r["device"] for r in await api.audit(fabric="dc1", action="device.create")] == [
        "leaf2",
        "leaf1",
    ]
    combined = await api.audit(device="leaf1", actor="operator", fabric="dc1")
    assert [(r["from_status"], r["to_status"], r["reason"]) for r in combined] == [
        ("activated", "draining", "optics")
    ]


async def test_filter_by_since(api: Api) -> None:
    t0 = api.clock()
    api.clock.advance(hours=1)
    await api.set_status("leaf2", "draining")
    api.clock.advance(hours=1)
    await api.set_status("leaf2", "activated")

    def iso(delta: timedelta) -> str:
        return (t0 + delta).isoformat().replace("+00:00", "Z")

    assert len(await api.audit(since=iso(timedelta(0)))) == len(await api.audit())
    later = await api.audit(since=iso(timedelta(minutes=30)))
    assert [(r["to_status"], r["at"]) for r in later] == [
        ("activated", iso(timedelta(hours=2))),
        ("draining", iso(timedelta(hours=1))),
    ]
    # ``since`` is inclusive.
    assert len(await api.audit(since=iso(timedelta(hours=2)))) == 1
    assert await api.audit(since=iso(timedelta(hours=3))) == []
    problem(await api.get(URL, params={"since": "yesterday"}), 422, "VALIDATION_FAILED")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_since_with_a_utc_offset_on_sqlite(api: Api) -> None:
    await _since_with_an_offset(api)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_since_with_a_utc_offset_on_postgres(api: Api) -> None:
    await _since_with_an_offset(api)


async def _since_with_an_offset(api: Api) -> None:
    t0 = api.clock()
    api.clock.advance(hours=1)
    await api.set_status("leaf2", "draining")
    # The same instant as t0 + 30 minutes, written in UTC+02:00.
    since = (t0 + timedelta(minutes=30)).astimezone(timezone(timedelta(hours=2)))
    rows = await api.audit(since=since.isoformat())
    assert actions(rows) == ["device.status"]


async def test_cursor_pagination_walks_every_row_once(api: Api) -> None:
    everything = (await api.ok("GET", URL, params={"limit": 1000}))["items"]
    seen: list[int] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await api.ok("GET", URL, params=params, as_="viewer")
        seen.extend(r["seq"] for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["seq"] for r in everything]
    assert len(seen) == 10

    # Filters hold across pages.
    first = await api.ok("GET", URL, params={"limit": 2, "action": "device.create"})
    rest = await api.ok(
        "GET", URL, params={"action": "device.create", "cursor": first["next_cursor"]}
    )
    assert len(first["items"]) + len(rest["items"]) == 3
    assert rest["next_cursor"] is None


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "@@@"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"since": "2030-13-01"}, "since"),
    ],
)
async def test_bad_audit_parameters_are_validation_problems(
    api: Api, params: dict[str, str], field: str
) -> None:
    out = problem(await api.get(URL, params=params), 422, "VALIDATION_FAILED")
    assert fields(out) == [field]


async def test_verify_checks_every_row(api: Api) -> None:
    count = len(await api.audit())
    out = await api.ok("GET", f"{URL}/verify", as_="viewer")
    assert out == {"ok": True, "checked": count, "problems": []}
    await api.set_status("leaf2", "draining")
    assert (await api.ok("GET", f"{URL}/verify"))["checked"] == count + 1


async def test_refusals_leave_no_audit_rows(api: Api) -> None:
    before = await api.audit()
    refusals = [
        await api.post(
            "/api/v1/devices/leaf2/status", json={"status": "maintenance"}, as_="operator"
        ),
        await api.post("/api/v1/devices/leaf2/status", json={"status": "draining"}, as_="viewer"),
        await api.post("/api/v1/fabrics", json={"name": "dc1"}),
        await api.delete("/api/v1/fabrics/dc1"),
        await api.post("/api/v1/devices", json={"fabric": "dc1", "name": "leaf1", "role": "leaf"}),
    ]
    assert [r.status_code for r in refusals] == [409, 403, 409, 409, 422]
    assert await api.audit() == before


async def test_the_audit_log_needs_a_token(api: Api) -> None:
    problem(await api.get(URL, as_=None), 401, "UNAUTHENTICATED")
    problem(await api.get(f"{URL}/verify", as_=None), 401, "UNAUTHENTICATED")
