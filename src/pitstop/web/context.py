"""What every web page shares: who is signed in, the CSRF check, role checks, rendering, and
the route class that turns pitstop errors into HTML pages instead of problem+json.

The role shown in the page decides which buttons appear, but the server decides what is
allowed: every POST passes ``Viewer.require`` (and the engine's own checks) whatever the page
showed, and a POST without the session's CSRF token is refused before anything else runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import ImmutableMultiDict

from pitstop import __version__
from pitstop.domain.errors import Forbidden, PitstopError, Unauthenticated
from pitstop.domain.roles import Actor, Role
from pitstop.domain.throttle import FailureThrottle
from pitstop.storage.store import Store
from pitstop.web import filters, sessions

log = logging.getLogger("pitstop.web")

PREFIX = "/ui"
_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class LoginRequired(Exception):
    """No valid session: pages redirect to the sign-in form."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of one request."""

    actor: Actor
    csrf: str

    def may(self, role: Role) -> bool:
        return _RANK.get(self.actor.role, -1) >= _RANK[role]

    def may_write(self, fabric: str) -> bool:
        return self.may(Role.OPERATOR) and self.actor.may_write_fabric(fabric)

    def require(self, role: Role) -> Actor:
        if not self.may(role):
            raise Forbidden(
                f"this needs the {role.value} role; you are signed in as "
                f"{self.actor.name!r} ({self.actor.role.value})"
            )
        return self.actor


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(files("pitstop.web").joinpath("templates"))),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters.install(env)
    env.globals["version"] = __version__
    env.globals["prefix"] = PREFIX
    return env


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure when the request came over HTTPS (as uvicorn sees it, which
    believes ``X-Forwarded-Proto`` only from ``PITSTOP_TRUSTED_PROXIES``) or when the public
    URL users reach pitstop at is https."""
    public: str = getattr(request.app.state, "web_public_url", "")
    return request.url.scheme == "https" or public.startswith("https://")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def auth_throttle(request: Request) -> FailureThrottle:
    throttle: FailureThrottle = request.app.state.auth_throttle
    return throttle


def secret_of(request: Request) -> str:
    secret: str = getattr(request.app.state, "web_session_secret", "")
    return secret


async def viewer(request: Request, *, check_csrf: bool | None = None) -> Viewer:
    """The signed-in user, checked against the token table on every request. POSTs must also
    carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``)."""
    store = store_of(request)
    claim = sessions.parse(request.cookies.get(sessions.COOKIE), now=store.clock())
    if claim is None:
        raise LoginRequired("sign in to continue")
    secret = secret_of(request)
    try:
        async with store.unit() as u:
            actor, token_hash = await u.tokens.session(claim.token_id)
    except Unauthenticated as exc:
        raise LoginRequired(exc.detail) from None
    if not sessions.verify(claim, token_hash=token_hash, secret=secret):
        raise LoginRequired("the session cookie is not valid; sign in again")
    if check_csrf if check_csrf is not None else request.method == "POST":
        sent = request.headers.get("x-csrf-token")
        if sent is None:
            form = await read_form(request)
            value = form.get("csrf")
            sent = value if isinstance(value, str) else None
        if not sessions.csrf_ok(claim, sent, token_hash=token_hash, secret=secret):
            raise Forbidden("the form's CSRF token is missing or wrong; reload the page")
    return Viewer(
        actor=actor, csrf=sessions.csrf_token(claim, token_hash=token_hash, secret=secret)
    )


async def read_form(request: Request) -> ImmutableMultiDict[str, str]:
    """A url-encoded form body. Every pitstop form is url-encoded (no uploads), so this needs
    no multipart parser; anything else reads as an empty form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return ImmutableMultiDict()
    body = (await request.body()).decode("utf-8", errors="replace")
    return ImmutableMultiDict(parse_qsl(body, keep_blank_values=True))


def render(
    request: Request,
    name: str,
    ctx: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    env: Environment = request.app.state.web_templates
    html = env.get_template(name).render({"request": request, **ctx})
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def fragment(request: Request, name: str, ctx: Mapping[str, Any]) -> str:
    env: Environment = request.app.state.web_templates
    return env.get_template(name).render({"request": request, **ctx})


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request, why: str) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"{PREFIX}/login?next={quote(target)}&why={quote(why)}"
    if "text/event-stream" in request.headers.get("accept", ""):
        # A live stream cannot follow a redirect to a form; 401 makes the browser stop it.
        return Response(why, status_code=401, media_type="text/plain")
    if request.headers.get("hx-request"):
        # htmx would swap the sign-in page into a fragment; make it navigate instead.
        return Response(status_code=204, headers={"HX-Redirect": url})
    if request.method != "GET":
        return render(
            request,
            "error.html",
            {"title": "Signed out", "detail": why, "code": "UNAUTHENTICATED"},
            status_code=401,
        )
    return redirect(url)


def error_page(request: Request, exc: PitstopError, viewer: Viewer | None = None) -> Response:
    return render(
        request,
        "error.html",
        {"title": exc.title, "detail": exc.detail, "code": exc.code, "viewer": viewer},
        status_code=exc.http_status,
    )


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class WebRoute(APIRoute):
    """A route whose pitstop errors become HTML pages (the API keeps problem+json)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except LoginRequired as exc:
                return login_redirect(request, exc.why)
            except PitstopError as exc:
                if exc.http_status >= 500:
                    log.exception("web request failed")
                return error_page(request, exc)

        return handler
