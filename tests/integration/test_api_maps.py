"""The fleet map over HTTP: manual ticks, the map by epoch with ETag and 304, and a status
change that reaches the map only at the next epoch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import Api, open_api, problem

from pitstop.storage.store import Store

MAP = "/api/v1/fabrics/dc1/map"
TICK = "/api/v1/fabrics/dc1/epochs/tick"


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.fabric("dc1", "mlag-1")
        await a.new_device("dc1", "leaf1", groups=["mlag-1"])
        await a.new_device("dc1", "leaf2", groups=["mlag-1"])
        yield a


async def test_no_map_before_the_first_tick(api: Api) -> None:
    body = problem(await api.get(MAP, as_="viewer"), 404, "NOT_FOUND")
    assert "pitstop epoch tick --fabric dc1" in body["detail"]


async def test_ticking_needs_an_operator_and_is_audited(api: Api) -> None:
    problem(await api.post(TICK, as_="viewer"), 403, "FORBIDDEN")
    m = await api.ok("POST", TICK, as_="operator")
    assert m["epoch"] == 1
    assert m["members"] == {"leaf1": "ONLINE", "leaf2": "ONLINE"}
    assert m["counts"] == {"ONLINE": 2, "OFFLINE": 0, "MAINTENANCE": 0}
    (row,) = await api.audit(action="fabric.epoch_tick")
    assert (row["actor"], row["details"]["epoch"]) == ("operator", 1)


async def test_the_map_has_an_etag_and_answers_304_when_unchanged(api: Api) -> None:
    await api.ok("POST", TICK)
    r = await api.get(MAP, as_="viewer")
    assert r.status_code == 200
    etag = r.headers["etag"]
    assert etag.startswith('"1-') and r.json()["etag"] == etag

    again = await api.get(MAP, as_="viewer", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    await api.set_status("leaf1", "draining")
    # The status changed at once; the map did not.
    assert (await api.device("leaf1"))["status"] == "draining"
    same = await api.get(MAP, as_="viewer", headers={"If-None-Match": etag})
    assert same.status_code == 304

    await api.ok("POST", TICK)
    changed = await api.get(MAP, as_="viewer", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["epoch"] == 2
    assert changed.json()["members"]["leaf1"] == "MAINTENANCE"
    assert changed.headers["etag"] != etag


async def test_an_older_epoch_can_be_read_while_kept(api: Api) -> None:
    await api.ok("POST", TICK)
    await api.set_status("leaf2", "draining")
    await api.ok("POST", TICK)
    old = await api.ok("GET", MAP, params={"epoch": 1})
    assert (old["epoch"], old["members"]["leaf2"]) == (1, "ONLINE")
    body = problem(await api.get(MAP, params={"epoch": 7}), 404, "NOT_FOUND")
    assert (body["oldest_kept"], body["latest"]) == (1, 2)
    problem(await api.get(MAP, params={"epoch": 0}), 422, "VALIDATION_FAILED")
    problem(await api.get("/api/v1/fabrics/nope/map"), 404, "NOT_FOUND")
