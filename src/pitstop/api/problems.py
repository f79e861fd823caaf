"""RFC 9457 problem+json for every error, each with its stable ``code``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pitstop.domain.errors import PitstopError, RateLimited

log = logging.getLogger("pitstop.api")

MEDIA_TYPE = "application/problem+json"


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
