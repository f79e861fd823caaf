"""What the OpenAPI document says about errors.

Every error pitstop answers is ``application/problem+json`` with the ``Problem`` schema (see
``problems``), so the document says so, once, for every error status of every operation. The
statuses an operation lists are derived from the route itself rather than written by hand on
each one, so a new route is documented by what it declares:

- 401 when it needs a token (it depends on ``get_actor``), and 429 there too: too many failed
  authentications from the caller's address;
- 403 when it checks a role (a ``RoleCheck`` dependency; the same check refuses a token whose
  fabric scope does not cover the change);
- 404 when it names a resource: a path parameter, or a ``fabric`` or ``device`` query or
  body field;
- 409 when it changes state (a lifecycle, version or name conflict) or resolves a device by
  name (a name in several fabrics is ``AMBIGUOUS_REFERENCE``);
- 413 when it takes a body (POST, PUT, PATCH): the body limit answers before any route runs;
- 422 when it takes a body, a query or a path parameter, or the ``X-Pitstop-Via`` header:
  FastAPI's own 422 (``HTTPValidationError``) is replaced by the problem actually served.

A route adds what cannot be derived (a 304, a 403 its service raises) with ``responses=``; an
error status declared there without a body gets the problem body too. Routers are documented
before they are included (``documented``), with FastAPI's public ``responses``; the document
itself only gains the ``Problem`` schema (``install``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from pitstop.api.deps import RoleCheck, get_actor, get_via
from pitstop.api.problems import MEDIA_TYPE, Problem

PROBLEM_REF = "#/components/schemas/Problem"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODIES = frozenset({"POST", "PUT", "PATCH"})
# Query parameters and body fields that name a resource the request looks up (may not find).
REFERENCES = frozenset({"fabric", "fabrics", "device"})

DESCRIPTIONS = {
    401: "No token, or a token that is unknown, expired or revoked",
    403: "The token's role or fabric scope does not allow this",
    404: "A resource named in the request does not exist",
    409: "Conflicts with the current state (status, version, name, or an ambiguous name)",
    413: "The body is larger than the limit (PITSTOP_MAX_BODY_BYTES, or the import's)",
    422: "The request is not valid; ``errors`` lists each bad field",
    429: "Too many failed authentications from this address; retry after ``Retry-After``",
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _body_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    for body in dependant.body_params:
        model = body.field_info.annotation
        names |= set(getattr(model, "model_fields", {}))
    return names


def problem_statuses(route: APIRoute, method: str) -> set[int]:
    """The error statuses this operation can answer, derived from what the route declares."""
    dependant = route.dependant
    calls = list(_calls(dependant))
    params = [*dependant.path_params, *dependant.query_params]
    for sub in dependant.dependencies:
        params += [*sub.path_params, *sub.query_params]
    names = {p.alias for p in params}
    out: set[int] = set()
    if get_actor in calls:
        out |= {401, 429}
    if any(isinstance(c, RoleCheck) for c in calls):
        out.add(403)
    if dependant.path_params or (names | _body_names(dependant)) & REFERENCES:
        out.add(404)
    if method in WRITES or "device" in names:
        out.add(409)
    if method in BODIES:
        out.add(413)
    if dependant.body_params or params or get_via in calls:
        out.add(422)
    return out


def _problem_content() -> dict[str, Any]:
    return {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}


def _own_content(declared: dict[str, Any]) -> bool:
    """The route gave this status a body of its own (not a problem)."""
    return "content" in declared or "model" in declared


def documented(router: APIRouter) -> APIRouter:
    """Declare, on each of ``router``'s routes, the problems it can answer; before the router
    is included, so every FastAPI version builds the operations from them."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        statuses: set[int] = set()
        for method in route.methods or ():
            statuses |= problem_statuses(route, method)
        for status in statuses:
            route.responses.setdefault(status, {"description": DESCRIPTIONS[status]})
        for key, declared in route.responses.items():
            code = int(key)
            if code < 400 or _own_content(declared):
                continue
            declared["content"] = _problem_content()
            if code == 401:
                declared["headers"] = {
                    "WWW-Authenticate": {
                        "description": 'Bearer realm="pitstop"',
                        "schema": {"type": "string"},
                    }
                }
            if code == 429:
                declared["headers"] = {
                    "Retry-After": {
                        "description": "Seconds until this address may try again",
                        "schema": {"type": "integer"},
                    }
                }
    return router


def _with_problem(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" in schemas:
        return doc
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    # FastAPI adds its own 422 to an operation that takes only headers that cannot fail
    # (``Authorization``): that body is never served, so it leaves the document.
    fastapi_422 = "#/components/schemas/HTTPValidationError"
    for operations in doc.get("paths", {}).values():
        for op in operations.values():
            content = op.get("responses", {}).get("422", {}).get("content", {})
            if content.get("application/json", {}).get("schema", {}).get("$ref") == fastapi_422:
                del op["responses"]["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc


def install(app: FastAPI) -> None:
    """Add the ``Problem`` schema that the documented routes refer to."""

    def openapi() -> dict[str, Any]:
        return _with_problem(FastAPI.openapi(app))

    app.openapi = openapi  # type: ignore[method-assign]
