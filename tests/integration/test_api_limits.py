"""What one request may hold: bodies within a byte limit, JSON within a nesting depth and
with finite numbers. Each refusal is a 4xx problem naming the limit, never a 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import SHARED_READER, SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.settings import Settings
from pitstop.storage.store import Store

pytestmark = SQLITE_ONLY

JSON = {"Content-Type": "application/json"}
IMPORT = "/api/v1/inventory/import"


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    settings = Settings(max_body_bytes=4096, max_import_bytes=8192)
    async with open_api(store, clock, settings=settings) as a:
        await a.fabric("dc1", "a")
        yield a


def fabric_body(size: int) -> bytes:
    """A valid fabric body of exactly ``size`` bytes."""
    head = b'{"name": "big", "description": "'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


# The body limit -------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_refused_from_its_content_length(api: Api) -> None:
    r = await api.post("/api/v1/fabrics", content=fabric_body(4097), headers=JSON)
    body = problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert body["limit"] == 4096
    assert "PITSTOP_MAX_BODY_BYTES" in body["detail"]
    fabrics = await api.ok("GET", "/api/v1/fabrics")
    assert [f["name"] for f in fabrics] == ["dc1"]


async def test_a_body_at_the_limit_is_read(api: Api) -> None:
    data = b'{"name": "edge"}'
    r = await api.post("/api/v1/fabrics", content=data + b" " * (4096 - len(data)), headers=JSON)
    assert r.status_code == 201, r.text


async def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(api: Api) -> None:
    r = await api.post("/api/v1/fabrics", content=chunks(fabric_body(5000)), headers=JSON)
    assert "content-length" not in r.request.headers
    body = problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert body["limit"] == 4096


async def test_a_chunked_body_within_the_limit_reaches_the_route(api: Api) -> None:
    data = b'{"name": "small", "description": "streamed"}'
    r = await api.post("/api/v1/fabrics", content=chunks(data, 7), headers=JSON)
    assert r.status_code == 201, r.text
    assert (await api.ok("GET", "/api/v1/fabrics/small"))["description"] == "streamed"


async def test_imports_have_their_own_larger_limit(api: Api) -> None:
    rows = "".join(
        f"- {{name: leaf{i:04d}, role: leaf, labels: {{n: x{i}}}}}\n" for i in range(150)
    )
    text = rows.encode()
    assert 4096 < len(text) <= 8192
    r = await api.post(
        IMPORT,
        content=text,
        params={"fabric": "dc1", "dry_run": True},
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == 200, r.text
    r = await api.post(
        IMPORT,
        content=text * 2,
        params={"fabric": "dc1"},
        headers={"Content-Type": "application/yaml"},
    )
    body = problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert body["limit"] == 8192
    assert "PITSTOP_MAX_IMPORT_BYTES" in body["detail"]


async def test_the_limit_holds_before_authentication(api: Api) -> None:
    r = await api.post("/api/v1/fabrics", content=fabric_body(5000), headers=JSON, as_=None)
    problem(r, 413, "PAYLOAD_TOO_LARGE")


async def test_the_limit_holds_for_form_posts_on_any_path(api: Api) -> None:
    form = {"token": "x" * 5000}
    r = await api.post("/ui/login", data=form, as_=None)
    assert r.request.headers["content-type"] == "application/x-www-form-urlencoded"
    problem(r, 413, "PAYLOAD_TOO_LARGE")


# JSON bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [33, 2000])
async def test_json_nested_too_deeply_is_refused_naming_the_depth(api: Api, levels: int) -> None:
    deep = b"[" * levels + b"]" * levels
    r = await api.post("/api/v1/fabrics", content=deep, headers=JSON)
    body = problem(r, 422, "VALIDATION_FAILED")
    assert "32 levels" in body["detail"]
    assert fields(body) == ["body"]


async def test_json_a_hundred_thousand_levels_deep_is_a_422_with_the_default_limits(
    store: Store, clock: Any
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    async with open_api(store, clock) as a:
        r = await a.post("/api/v1/fabrics", content=deep, headers=JSON)
        body = problem(r, 422, "VALIDATION_FAILED")
        assert "32 levels" in body["detail"]


async def test_json_within_the_depth_passes_the_guard(api: Api) -> None:
    ok = b'{"name": "fine", "labels": {}, "parameters": {"drain": {"timeout_s": 30}}}'
    r = await api.post("/api/v1/fabrics", content=ok, headers=JSON)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("number", ["1e309", "-1e309", "Infinity", "NaN", "-Infinity"])
async def test_non_finite_numbers_are_refused_in_any_json_body(api: Api, number: str) -> None:
    data = '{"name": "x", "parameters": {"drain": {"timeout_s": NUMBER}}}'.replace("NUMBER", number)
    r = await api.post("/api/v1/fabrics", content=data.encode(), headers=JSON)
    body = problem(r, 422, "VALIDATION_FAILED")
    assert "finite" in body["detail"]
    assert [f["name"] for f in await api.ok("GET", "/api/v1/fabrics")] == ["dc1"]


async def test_a_body_that_is_not_json_is_still_reported_by_the_route(api: Api) -> None:
    r = await api.post("/api/v1/fabrics", content=b'{"name": ', headers=JSON)
    problem(r, 422, "VALIDATION_FAILED")


# Imports --------------------------------------------------------------------------------------

YAML = {"Content-Type": "application/yaml"}


def device_rows(count: int) -> str:
    return "".join(f"- {{name: leaf{i:05d}, role: leaf}}\n" for i in range(count))


async def test_yaml_nested_5000_levels_deep_is_a_422_naming_the_depth(api: Api) -> None:
    r = await api.post(IMPORT, content=b"[" * 5000, params={"fabric": "dc1"}, headers=YAML)
    body = problem(r, 422, "VALIDATION_FAILED")
    assert "deeper than 32 levels" in body["detail"]
    assert body["errors"][0]["field"] == "document"


async def test_yaml_within_the_depth_is_read(api: Api) -> None:
    nested = "[" * 20 + "]" * 20
    text = f"- {{name: leaf1, role: leaf, labels: {{}}}}\n- {nested}\n"
    r = await api.post(IMPORT, content=text.encode(), params={"fabric": "dc1"}, headers=YAML)
    body = problem(r, 422, "VALIDATION_FAILED")
    assert "expected a mapping" in r.text and "deeper" not in body["detail"]


async def test_yaml_aliases_are_counted_as_what_they_repeat(api: Api) -> None:
    # Nine levels of ten aliases each: a billion values once expanded, in a few hundred bytes.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\n".join(lines) + "\ndevices: []\n"
    r = await api.post(IMPORT, content=text.encode(), params={"fabric": "dc1"}, headers=YAML)
    body = problem(r, 422, "VALIDATION_FAILED")
    assert "aliases counted" in body["detail"]


async def test_yaml_merge_keys_still_work(api: Api) -> None:
    text = """
base: &base {role: leaf, labels: {rack: r1}}
devices:
  - {<<: *base, name: leaf1}
  - {<<: *base, name: leaf2}
"""
    r = await api.post(IMPORT, content=text.encode(), params={"fabric": "dc1"}, headers=YAML)
    # The anchor's own section is unknown; everything else reads.
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["base"]


@pytest.fixture
async def few_rows(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock, settings=Settings(max_import_rows=10)) as a:
        await a.fabric("dc1", "a")
        yield a


async def test_an_import_over_the_row_limit_is_refused_naming_it(few_rows: Api) -> None:
    text = device_rows(11).encode()
    r = await few_rows.post(IMPORT, content=text, params={"fabric": "dc1"}, headers=YAML)
    body = problem(r, 422, "VALIDATION_FAILED")
    assert "at most 10 devices" in body["detail"] and "PITSTOP_MAX_IMPORT_ROWS" in body["detail"]
    assert fields(body) == ["devices"]
    assert await few_rows.all_devices() == []
    r = await few_rows.post(
        IMPORT, content=device_rows(10).encode(), params={"fabric": "dc1"}, headers=YAML
    )
    assert r.status_code == 200, r.text


async def test_the_row_limit_counts_every_fabric_of_a_file(few_rows: Api) -> None:
    one = "".join(f"      - {{name: d{i}, role: leaf}}\n" for i in range(6))
    text = "fabrics:\n" + "".join(f"  - name: f{n}\n    devices:\n{one}" for n in range(2))
    r = await few_rows.post(IMPORT, content=text.encode(), headers=YAML)
    assert "at most 10 devices" in problem(r, 422, "VALIDATION_FAILED")["detail"]


async def test_a_csv_over_the_row_limit_is_refused(few_rows: Api) -> None:
    text = "name,role\n" + "".join(f"leaf{i},leaf\n" for i in range(11))
    r = await few_rows.post(
        IMPORT,
        content=text.encode(),
        params={"fabric": "dc1"},
        headers={"Content-Type": "text/csv"},
    )
    assert "at most 10 devices" in problem(r, 422, "VALIDATION_FAILED")["detail"]


async def test_a_csv_field_past_the_csv_module_limit_is_a_422(store: Store, clock: Any) -> None:
    text = "name,role,labels\nleaf1,leaf,k=" + "v" * 200_000 + "\n"
    async with open_api(store, clock) as a:
        await a.fabric("dc1")
        r = await a.post(
            IMPORT,
            content=text.encode(),
            params={"fabric": "dc1"},
            headers={"Content-Type": "text/csv"},
        )
        assert problem(r, 422, "VALIDATION_FAILED")["errors"][0]["field"] == "document"


async def test_a_large_import_does_not_hold_up_other_requests(
    store: Store, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read in another process: /healthz is answered while the import is still
    being read. Read on the event loop, nothing could answer until the reading ended."""
    text = device_rows(5000).encode()
    reading = asyncio.Event()
    read_done = asyncio.Event()
    real_read = SHARED_READER.read

    async def observed(*args: Any, **kw: Any) -> Any:
        reading.set()
        try:
            return await real_read(*args, **kw)
        finally:
            read_done.set()

    monkeypatch.setattr(SHARED_READER, "read", observed)
    async with open_api(store, clock) as a:
        await a.fabric("dc1")
        importing = asyncio.create_task(
            a.post(IMPORT, content=text, params={"fabric": "dc1", "dry_run": True}, headers=YAML)
        )
        await asyncio.wait_for(reading.wait(), timeout=30)
        health = await a.get("/healthz", as_=None)
        assert health.status_code == 200
        assert not read_done.is_set()
        r = await importing
        assert r.status_code == 200, r.text
        assert len(r.json()["devices_created"]) == 5000
