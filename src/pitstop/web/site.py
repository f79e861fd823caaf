"""Mounting the web UI on the FastAPI app, and signing in and out.

``mount`` adds the pages under ``/ui`` and the vendored static files (htmx and its SSE
extension, the stylesheet) under ``/ui/static``: nothing is fetched from a CDN, because
operators' networks are often air-gapped. The web uses the same store and drivers as the API
(``app.state``) and never imports the API package: both sit on the engine.
"""

from __future__ import annotations

from importlib.resources import files
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pitstop.domain.errors import Unauthenticated
from pitstop.web import audit, campaigns, fleet, jobs, sessions, wizard
from pitstop.web.context import (
    PREFIX,
    LoginRequired,
    WebRoute,
    read_form,
    redirect,
    render,
    secret_of,
    store_of,
    templates,
    viewer,
)

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
    """The sign-in form has no session to bind a CSRF token to, so it checks the Origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return render(
        request,
        "login.html",
        {
            "next": _safe_next(request.query_params.get("next")),
            "why": request.query_params.get("why", ""),
            "error": "",
        },
    )


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    form = await read_form(request)
    target = _safe_next(str(form.get("next") or ""))
    token = str(form.get("token") or "").strip()
    if not _same_origin(request):
        return render(
            request,
            "login.html",
            {"next": target, "why": "", "error": "sign-in from another site refused"},
            status_code=403,
        )
    store = store_of(request)
    try:
        async with store.unit() as u:
            token_id, _ = await u.tokens.identify(token)
            _, token_hash = await u.tokens.session(token_id)
    except Unauthenticated as exc:
        return render(
            request,
            "login.html",
            {"next": target, "why": "", "error": exc.detail},
            status_code=401,
        )
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
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    await viewer(request)  # the CSRF check: another site cannot sign anyone out
    response = redirect(f"{PREFIX}/login?why=signed+out")
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict")
    return response


def mount(app: FastAPI, *, session_secret: str = "") -> None:
    """Add the web UI to ``app`` (which provides ``app.state.store`` once started)."""
    app.state.web_templates = templates()
    app.state.web_session_secret = session_secret
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
