"""Over every operation of the OpenAPI schema: an integer parameter past 64 bits, a
``Last-Event-ID`` past 64 bits, and a JSON body nested too deeply or holding a non-finite
number are each a 422 problem, never a 5xx. A new endpoint gets these checks without a
new test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_api_support import SQLITE_ONLY, Api, open_api, problem

from pitstop.api.app import create_app
from pitstop.settings import Settings
from pitstop.storage.store import Store

pytestmark = SQLITE_ONLY

TOO_BIG = str(2**63)


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.seed_demo()
        yield a


def operations(store: Store) -> list[tuple[str, str, dict[str, Any]]]:
    schema = create_app(Settings(), store=store).openapi()
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def is_integer(schema: dict[str, Any]) -> bool:
    kinds = [schema, *schema.get("anyOf", [])]
    return any(k.get("type") == "integer" for k in kinds)


async def existing(api: Api) -> dict[str, str]:
    """Path parameter values that name things that exist, so each check reaches the query."""
    job = await api.ok("POST", "/api/v1/jobs", 201, json={"type": "healthcheck", "device": "leaf1"})
    campaign = {"name": "roll", "fabric": "dc1", "selector": {"roles": ["leaf"]}}
    await api.ok("POST", "/api/v1/campaigns", 201, json=campaign)
    return {
        "fabric": "dc1",
        "device": "leaf1",
        "job": job["id"],
        "ref": "roll",
        "group": "spines",
        "token": "viewer",
    }


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


async def test_every_integer_parameter_is_bounded(api: Api, store: Store) -> None:
    values = await existing(api)
    checked = []
    for method, path, op in operations(store):
        for param in op.get("parameters", []):
            name = param["name"]
            if param["in"] in ("query", "path") and is_integer(param.get("schema", {})):
                url = fill(path.replace("{" + name + "}", TOO_BIG), values)
                params = {} if param["in"] == "path" else {name: TOO_BIG, "follow": "false"}
                r = await api.request(method, url, params=params)
                assert r.status_code == 422, (method, path, name, r.status_code, r.text)
                problem(r, 422, "VALIDATION_FAILED")
                checked.append((path, name))
            if param["in"] == "header" and name == "last-event-id":
                url = fill(path, values)
                r = await api.request(method, url, headers={"Last-Event-ID": TOO_BIG})
                problem(r, 422, "VALIDATION_FAILED")
                checked.append((path, name))
    # The schema still has the parameters this test is about.
    names = {name for _, name in checked}
    assert {"epoch", "after", "limit", "last-event-id"} <= names, checked


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 40 + b"]" * 40, "32 levels"),
        (b'{"name": 1e309}', "finite"),
        (b'{"name": NaN}', "finite"),
    ],
    ids=["deep", "huge-number", "nan"],
)
async def test_every_json_body_is_guarded(api: Api, store: Store, body: bytes, reason: str) -> None:
    values = await existing(api)
    seen = 0
    for method, path, op in operations(store):
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        url = fill(path, values)
        r = await api.request(
            method, url, content=body, headers={"Content-Type": "application/json"}
        )
        assert reason in problem(r, 422, "VALIDATION_FAILED")["detail"], (method, path)
        seen += 1
    assert seen >= 10
