"""Mounting the web UI on the FastAPI app, and signing in and out.

``mount`` adds the pages under ``/ui`` and the vendored static files (htmx and its SSE
extension, the stylesheet) under ``/ui/static``: nothing is fetched from a CDN, because
operators' networks are often air-gapped. The web uses the same store and drivers as the API
(``app.state``) and never imports the API package: both sit on the engine.
"""

from __future__ import annotations

import logging
import math
import time
from importlib.resources import files
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pitstop.domain.errors import Unauthenticated
from pitstop.domain.throttle import FailureThrottle
from pitstop.web import audit, campaigns, fleet, jobs, sessions, wizard
from pitstop.web.context import (
    PREFIX,
    LoginRequired,
    WebRoute,
    auth_throttle,
    client_address,
    read_form,
    redirect,
    render,
    secret_of,
    secure_cookies,
    store_of,
    templates,
    viewer,
)

log = logging.getLogger("pitstop.web.auth")

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path inside the UI: a sign-in link must not send anyone elsewhere."""
    if not target:
        return f"{PREFIX}/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"{PREFIX}/"):
        return f"{PREFIX}/"
    return target


def _same_origin(request: Request) -> bool:
    """A sign-in POST from a browser on another site carries that site's Origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _login_form(
    request: Request, *, target: str, why: str = "", error: str = "", status_code: int = 200
) -> Response:
    """The sign-in form, bound to a fresh sign-in cookie (its CSRF token is derived from it)."""
    nonce = sessions.login_nonce()
    response = render(
        request,
        "login.html",
        {
            "next": target,
            "why": why,
            "error": error,
            "csrf": sessions.login_csrf(nonce, secret=secret_of(request)),
        },
        status_code=status_code,
    )
    response.set_cookie(
        sessions.LOGIN_COOKIE,
        nonce,
        max_age=int(sessions.LOGIN_LIFETIME.total_seconds()),
        path=f"{PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    return response


@router.get("/login", response_model=None)
async def login_page(request: Request) -> Response:
    return _login_form(
        request,
        target=_safe_next(request.query_params.get("next")),
        why=request.query_params.get("why", ""),
    )


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    form = await read_form(request)
    target = _safe_next(str(form.get("next") or ""))
    token = str(form.get("token") or "").strip()
    address = client_address(request)
    csrf_ok = sessions.login_csrf_ok(
        request.cookies.get(sessions.LOGIN_COOKIE), form.get("csrf"), secret=secret_of(request)
    )
    if not _same_origin(request) or not csrf_ok:
        log.warning("web sign-in refused from %s: cross-site or without its CSRF token", address)
        error = "sign-in from another site, or from an outdated form, refused; try again"
        return _login_form(request, target=target, error=error, status_code=403)
    throttle = auth_throttle(request)
    wait = throttle.retry_after(address, time.monotonic())
    if wait is not None:
        seconds = math.ceil(wait)
        refused = _login_form(
            request,
            target=target,
            error=f"too many failed sign-ins from {address}; try again in {seconds} s",
            status_code=429,
        )
        refused.headers["Retry-After"] = str(seconds)
        return refused
    store = store_of(request)
    try:
        async with store.unit() as u:
            token_id, _ = await u.tokens.identify(token)
            _, token_hash = await u.tokens.session(token_id)
    except Unauthenticated as exc:
        throttle.failed(address, time.monotonic())
        log.warning("web sign-in failed from %s: %s", address, exc.detail)
        return _login_form(request, target=target, error=exc.detail, status_code=401)
    cookie = sessions.issue(
        token_id=token_id, token_hash=token_hash, now=store.clock(), secret=secret_of(request)
    )
    response = redirect(target)
    response.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=int(sessions.LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    response.delete_cookie(sessions.LOGIN_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    await viewer(request)  # the CSRF check: another site cannot sign anyone out
    response = redirect(f"{PREFIX}/login?why=signed+out")
    response.delete_cookie(
        sessions.COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    return response


def mount(
    app: FastAPI,
    *,
    session_secret: str = "",
    public_url: str = "",
    failures_per_minute: int = 10,
) -> None:
    """Add the web UI to ``app`` (which provides ``app.state.store`` once started).

    ``public_url`` is where users reach pitstop: an ``https://`` one marks the cookies Secure
    even when a TLS-terminating proxy talks plain HTTP to pitstop. Failed sign-ins count in
    the app's ``auth_throttle`` (the API's, when the app has one)."""
    app.state.web_templates = templates()
    app.state.web_session_secret = session_secret
    app.state.web_public_url = public_url
    if getattr(app.state, "auth_throttle", None) is None:
        app.state.auth_throttle = FailureThrottle(limit=failures_per_minute)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(directory=str(files("pitstop.web").joinpath("static"))),
        name="web-static",
    )
    for module in (fleet, wizard, jobs, campaigns, audit):
        app.include_router(module.router)
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    async def signed_out(request: Request, exc: Exception) -> Response:
        from pitstop.web.context import login_redirect

        assert isinstance(exc, LoginRequired)
        return login_redirect(request, exc.why)

    app.add_exception_handler(LoginRequired, signed_out)
