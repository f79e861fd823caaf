"""RFC 9457 problem+json for every error, each with its stable ``code``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from pitstop.domain.errors import PitstopError, RateLimited

log = logging.getLogger("pitstop.api")

MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    """One bad field of a request (or row of an imported file)."""

    field: str = Field(description="Where: a field name, a JSON path, or a query parameter")
    message: str
    row: int | None = Field(default=None, description="The row of an imported file, from 1")


class Problem(BaseModel):
    """The body of every error (RFC 9457). ``code`` is stable; the members after ``instance``
    appear with the errors that carry them, and an error may add members of its own."""

    # RFC 9457 lets a problem type define extension members (a 404 of a map says which epochs
    # are kept, a refused transition says the current status): they are part of the answer.
    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="urn:pitstop:problem:<code in kebab case>")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="Stable error code, e.g. NOT_FOUND or BUDGET_EXCEEDED")
    instance: str = Field(description="The path of the request")
    errors: list[FieldProblem] | None = Field(
        default=None, description="VALIDATION_FAILED: each bad field and what is wrong with it"
    )
    allowed: list[str] | None = Field(
        default=None, description="TRANSITION_NOT_ALLOWED: the statuses allowed from here"
    )
    reasons: list[str] | None = Field(
        default=None, description="CAMPAIGN_INVALID: every problem found in the definition"
    )


def problem(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    **more: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:pitstop:problem:{code.lower().replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    # An error's own details never overwrite the members RFC 9457 defines.
    body.update({k: v for k, v in {**(extra or {}), **more}.items() if k not in body})
    sent = dict(headers or {})
    if status == 401:
        sent["WWW-Authenticate"] = 'Bearer realm="pitstop"'
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=sent or None)


def clean_message(msg: str) -> str:
    """Pydantic prefixes our own messages with 'Value error, '; operators need only ours."""
    return msg.removeprefix("Value error, ")


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(PitstopError)
    async def _pitstop(request: Request, exc: PitstopError) -> JSONResponse:
        return problem(
            status=exc.http_status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            instance=request.url.path,
            extra=exc.extra,
            headers=(
                {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
            ),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _loc(tuple(e.get("loc", ()))),
                "message": clean_message(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(
            status=422,
            code="VALIDATION_FAILED",
            title="Validation failed",
            detail=summary or "the request is not valid",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8, say); a body that decodes
            # but is not JSON is already a 422. One status and code for "the body is wrong".
            return problem(
                status=422,
                code="VALIDATION_FAILED",
                title="Validation failed",
                detail=f"body: {exc.detail}",
                instance=request.url.path,
                errors=[{"field": "body", "message": str(exc.detail)}],
            )
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHENTICATED"}
        code = codes.get(exc.status_code, f"HTTP_{exc.status_code}")
        return problem(
            status=exc.status_code,
            code=code,
            title=str(exc.detail),
            detail=str(exc.detail),
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # Every 500 is a bug in pitstop: log the traceback, tell the caller nothing internal.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            status=500,
            code="INTERNAL",
            title="Internal error",
            detail="pitstop hit an unexpected error; it has been logged",
            instance=request.url.path,
        )
