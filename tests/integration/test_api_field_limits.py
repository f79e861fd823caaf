"""Text fields have length limits and labels, groups and options a count limit, in the API
bodies and in imports alike; each refusal names the field. Bodies here stay under the body
limit, so the field limit itself is what refuses them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from test_api_support import SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.domain.errors import ValidationFailed
from pitstop.domain.jobs import JobType
from pitstop.domain.roles import Actor, Role, Via
from pitstop.engine.service import JobService
from pitstop.storage.store import Store

pytestmark = SQLITE_ONLY

IMPORT = "/api/v1/inventory/import"
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.fabric("dc1", "a")
        await a.new_device("dc1", "leaf1")
        yield a


def many(n: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(n)}


async def test_a_long_fabric_description_is_refused(api: Api) -> None:
    r = await api.post("/api/v1/fabrics", json={"name": "big", "description": "x" * 1001})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["description"]
    r = await api.patch("/api/v1/fabrics/dc1", json={"description": "x" * 100_000})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["description"]
    await api.ok("POST", "/api/v1/fabrics", 201, json={"name": "ok", "description": "x" * 1000})


async def test_a_ten_megabyte_description_never_reaches_the_route(api: Api) -> None:
    r = await api.post("/api/v1/fabrics", json={"name": "big", "description": "x" * 10_000_000})
    problem(r, 413, "PAYLOAD_TOO_LARGE")


async def test_a_long_group_description_is_refused(api: Api) -> None:
    body = {"name": "g", "max_unavailable": 1, "description": "x" * 1001}
    r = await api.post("/api/v1/fabrics/dc1/groups", json=body)
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["description"]


async def test_labels_are_bounded_in_count_and_length(api: Api) -> None:
    base = {"fabric": "dc1", "role": "leaf"}
    r = await api.post("/api/v1/devices", json={**base, "name": "d1", "labels": many(65)})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["labels"]
    r = await api.post("/api/v1/devices", json={**base, "name": "d2", "labels": {"k" * 64: "v"}})
    assert "at most 63" in problem(r, 422, "VALIDATION_FAILED")["detail"]
    r = await api.post("/api/v1/devices", json={**base, "name": "d3", "labels": {"k": "v" * 254}})
    assert "at most 253" in problem(r, 422, "VALIDATION_FAILED")["detail"]
    r = await api.patch("/api/v1/devices/leaf1", json={"labels": many(65)})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["labels"]
    r = await api.patch("/api/v1/fabrics/dc1", json={"labels": many(65)})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["labels"]
    await api.ok("POST", "/api/v1/devices", 201, json={**base, "name": "d4", "labels": many(64)})


async def test_groups_and_options_are_bounded(api: Api) -> None:
    base = {"fabric": "dc1", "role": "leaf"}
    groups = [f"g{i}" for i in range(65)]
    r = await api.post("/api/v1/devices", json={**base, "name": "d1", "groups": groups})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["groups"]
    conn = {"options": many(65)}
    r = await api.post("/api/v1/devices", json={**base, "name": "d2", "connection": conn})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["connection.options"]
    conn = {"options": {"mode": "x" * 1025}}
    r = await api.post("/api/v1/devices", json={**base, "name": "d3", "connection": conn})
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["connection.options"]


async def test_reasons_tickets_and_job_references_are_bounded(api: Api) -> None:
    r = await api.post(
        "/api/v1/devices/leaf1/status", json={"status": "draining", "reason": "x" * 2001}
    )
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["reason"]
    body = {"type": "healthcheck", "device": "x" * 64}
    r = await api.post("/api/v1/jobs", json=body)
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["device"]
    body = {"name": "t", "role": "viewer", "fabrics": [f"f{i}" for i in range(65)]}
    r = await api.post("/api/v1/tokens", json=body)
    assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["fabrics"]


async def test_an_import_names_the_row_and_field_over_a_limit(api: Api) -> None:
    text = yaml.safe_dump(
        {
            "fabrics": [
                {
                    "name": "new",
                    "description": "x" * 1001,
                    "devices": [
                        {"name": "ok", "role": "leaf"},
                        {"name": "wide", "role": "leaf", "labels": many(65)},
                    ],
                }
            ]
        }
    )
    r = await api.post(IMPORT, content=text.encode(), headers=YAML)
    body = problem(r, 422, "VALIDATION_FAILED")
    assert sorted((e.get("row", 0), e["field"]) for e in body["errors"]) == [
        (0, "fabrics[0].description"),
        (2, "fabrics[0].devices[1].labels"),
    ]
    assert [f["name"] for f in await api.ok("GET", "/api/v1/fabrics")] == ["dc1"]


@pytest.mark.parametrize(("field", "size"), [("reason", 2001), ("ticket", 128)])
async def test_the_engine_bounds_reasons_for_every_caller(api: Api, field: str, size: int) -> None:
    """The web forms reach the job service without a schema; the service itself refuses."""
    args: dict[str, Any] = {"reason": "why", "ticket": None, field: "x" * size}
    with pytest.raises(ValidationFailed) as caught:
        await JobService(api.store).submit(
            job_type=JobType.HEALTHCHECK,
            device="leaf1",
            fabric="dc1",
            mode=None,
            advanced_parameters=None,
            expected_end=None,
            actor=Actor("web-user", Role.OPERATOR),
            via=Via.WEB,
            **args,
        )
    assert [e.field for e in caught.value.errors] == [field]
    assert (await api.ok("GET", "/api/v1/jobs"))["items"] == []
