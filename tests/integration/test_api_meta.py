"""Probes, the lifecycle table, the OpenAPI document, and errors outside any route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from test_api_support import MEDIA, SQLITE_ONLY, Api, open_api, problem

from pitstop.domain.lifecycle import TRANSITIONS
from pitstop.storage.migrate import head_revision
from pitstop.storage.store import Store


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        yield a


async def test_healthz_needs_no_token(api: Api) -> None:
    r = await api.get("/healthz", as_=None)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_reports_the_schema_revision(api: Api) -> None:
    r = await api.get("/readyz", as_=None)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "schema": head_revision()}


async def test_readyz_is_unavailable_when_the_schema_is_not_at_head(api: Api) -> None:
    async with api.store.db.transaction() as s:
        await s.execute(text("UPDATE alembic_version SET version_num = '0000_old'"))
    r = await api.get("/readyz", as_=None)
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "unavailable"
    assert "0000_old" in r.json()["detail"]
    # Liveness does not depend on the database.
    assert (await api.get("/healthz", as_=None)).status_code == 200


async def test_the_lifecycle_table(api: Api) -> None:
    rows = await api.ok("GET", "/api/v1/lifecycle", as_="viewer")
    got = {(r["from_status"], r["to_status"]): r["roles"] for r in rows}
    assert len(rows) == len(got) == len(TRANSITIONS)
    assert got[("activated", "draining")] == ["operator", "admin", "engine"]
    assert got[("pending", "activated")] == ["admin"]
    assert got[("draining", "error")] == ["admin", "engine"]
    assert ("maintenance", "activated") not in got
    assert ("activated", "maintenance") not in got
    assert not any(f == t for f, t in got)
    assert not any(f == "decommissioned" for f, _ in got)
    problem(await api.get("/api/v1/lifecycle", as_=None), 401, "UNAUTHENTICATED")


async def test_openapi_and_docs(api: Api) -> None:
    r = await api.get("/openapi.json", as_=None)
    assert r.status_code == 200
    doc = r.json()
    assert doc["info"]["title"] == "pitstop"
    paths = doc["paths"]
    for path in (
        "/api/v1/devices",
        "/api/v1/devices/{device}/status",
        "/api/v1/fabrics/{fabric}/groups",
        "/api/v1/inventory/import",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/lifecycle",
        "/api/v1/whoami",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    body = paths["/api/v1/inventory/import"]["post"]["requestBody"]["content"]
    assert {"application/yaml", "text/csv"} <= set(body)
    # Secrets have no place in the schema of any response.
    token_out = doc["components"]["schemas"]["TokenOut"]["properties"]
    assert "token" not in token_out and "hash" not in token_out

    docs = await api.get("/docs", as_=None)
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "openapi.json" in docs.text


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("method", "url", "status", "code"),
    [
        ("GET", "/nope", 404, "NOT_FOUND"),
        ("GET", "/api/v1/nope", 404, "NOT_FOUND"),
        ("GET", "/api/v2/devices", 404, "NOT_FOUND"),
        ("PUT", "/api/v1/devices", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", "/healthz", 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_unknown_paths_and_methods_are_problems(
    api: Api, method: str, url: str, status: int, code: str
) -> None:
    for who in (None, "viewer"):
        problem(await api.request(method, url, as_=who), status, code)


def _operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{m.upper()} {p}": op for p, ops in doc["paths"].items() for m, op in ops.items()}


@SQLITE_ONLY
async def test_openapi_documents_every_error_as_a_problem(api: Api) -> None:
    doc = (await api.get("/openapi.json", as_=None)).json()
    schemas = doc["components"]["schemas"]
    problem_schema = schemas["Problem"]
    assert {"type", "title", "status", "detail", "code", "instance"} <= set(
        problem_schema["required"]
    )
    assert {"errors", "allowed", "reasons"} <= set(problem_schema["properties"])
    # FastAPI's own 422 body is never served, so it is not documented anywhere.
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    ops = _operations(doc)
    # Load balancers read /readyz's own body; it is the one error that is not a problem.
    for name, op in ops.items():
        if name == "GET /readyz":
            continue
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {
                    MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (name, status)
    assert "WWW-Authenticate" in ops["GET /api/v1/devices"]["responses"]["401"]["headers"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("operation", "statuses"),
    [
        ("GET /healthz", set()),
        ("GET /api/v1/whoami", {"401", "429"}),
        ("GET /api/v1/tokens", {"401", "403", "429"}),
        ("GET /api/v1/devices", {"401", "404", "422", "429"}),
        ("GET /api/v1/devices/{device}", {"401", "404", "409", "422", "429"}),
        ("POST /api/v1/devices", {"401", "403", "404", "409", "413", "422", "429"}),
        ("POST /api/v1/jobs", {"401", "403", "404", "409", "413", "422", "429"}),
        ("DELETE /api/v1/fabrics/{fabric}", {"401", "403", "404", "409", "422", "429"}),
        ("POST /api/v1/campaigns/plan", {"401", "404", "409", "413", "422", "429"}),
        ("POST /api/v1/inventory/import", {"401", "403", "404", "409", "413", "422", "429"}),
    ],
)
async def test_each_operation_lists_the_errors_it_can_answer(
    api: Api, operation: str, statuses: set[str]
) -> None:
    doc = (await api.get("/openapi.json", as_=None)).json()
    responses = _operations(doc)[operation]["responses"]
    assert {s for s in responses if int(s) >= 400} == statuses


@SQLITE_ONLY
async def test_a_body_that_is_not_utf8_is_a_validation_problem(api: Api) -> None:
    r = await api.post(
        "/api/v1/fabrics", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    body = problem(r, 422, "VALIDATION_FAILED")
    assert [e["field"] for e in body["errors"]] == ["body"]


@SQLITE_ONLY
async def test_openapi_documents_streams_the_map_etag_and_readiness(api: Api) -> None:
    ops = _operations((await api.get("/openapi.json", as_=None)).json())
    events = ops["GET /api/v1/jobs/{job}/events"]["responses"]["200"]["content"]
    assert set(events) == {"application/json", "text/event-stream"}
    watch = ops["GET /api/v1/fabrics/{fabric}/map/watch"]["responses"]["200"]["content"]
    assert set(watch) == {"text/event-stream"}
    assert "304" in ops["GET /api/v1/fabrics/{fabric}/map"]["responses"]
    ready = ops["GET /readyz"]["responses"]
    for status in ("200", "503"):
        schema = ready[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Readiness"}
