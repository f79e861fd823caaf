"""The server under a browser's rules: security headers on every response, the docs page
with nothing from outside, the sign-in form's CSRF token, and Secure cookies behind a
TLS-terminating proxy."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import httpx
import pytest
from site_support import Site, form_csrf, open_site, sign_in
from test_api_support import SQLITE_ONLY
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from pitstop.cli.server import proxy
from pitstop.settings import Settings
from pitstop.storage.store import Store


@pytest.fixture
async def site(store: Store) -> AsyncIterator[Site]:
    async with open_site(store) as s:
        yield s


def _cookie(response: httpx.Response, name: str) -> SimpleCookie:
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


# Headers ------------------------------------------------------------------------------------


def _csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    pairs = (p.strip().partition(" ") for p in policy.split(";"))
    return {name: value for name, _, value in pairs}


@SQLITE_ONLY
async def test_pages_api_and_streams_carry_the_security_headers(site: Site) -> None:
    c = await site.client()
    signed_in = await sign_in(c, site.tokens["viewer"])
    assert signed_in.status_code == 303
    for response in (
        await c.get("/ui/login"),
        await c.get("/ui/"),
        await c.get("/api/v1/whoami", headers=site.bearer("viewer")),
        await c.get("/api/v1/nope", headers=site.bearer("viewer")),  # a problem+json
    ):
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        # Data never stays in a browser's or a proxy's cache.
        assert response.headers["cache-control"] == "no-store", response.url
        csp = _csp(response)
        assert csp["script-src"] == "'self'"
        assert csp["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in csp["style-src"]
        assert "unsafe-eval" not in response.headers["content-security-policy"]


@SQLITE_ONLY
async def test_static_assets_stay_cacheable(site: Site) -> None:
    c = await site.client()
    for path in ("/ui/static/pitstop.js", "/ui/static/pitstop.css", "/docs/assets/docs.js"):
        response = await c.get(path)
        assert response.status_code == 200, path
        assert "no-store" not in response.headers.get("cache-control", ""), path
        assert response.headers["etag"]
        assert response.headers["x-content-type-options"] == "nosniff"


@SQLITE_ONLY
async def test_the_docs_page_loads_nothing_from_another_host(site: Site) -> None:
    c = await site.client()
    page = await c.get("/docs")
    assert page.status_code == 200
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs, page.text
    assert [r for r in refs if "//" in r] == []
    assert "<script>" not in page.text  # every script is a file: the CSP allows no inline one
    for ref in refs:
        if ref.startswith("data:"):
            continue
        asset = await c.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    assert _csp(page)["script-src"] == "'self'"
    assert (await c.get("/openapi.json")).status_code == 200
    # ReDoc exists only as a CDN bundle: not offered.
    assert (await c.get("/redoc")).status_code == 404


# The sign-in form ---------------------------------------------------------------------------


@SQLITE_ONLY
async def test_a_sign_in_without_the_forms_csrf_token_is_refused(site: Site) -> None:
    c = await site.client()
    page = await c.get("/ui/login")
    csrf = form_csrf(page.text)
    origin = {"Origin": BASE_ORIGIN}
    token = site.tokens["viewer"]
    missing = await c.post("/ui/login", data={"token": token}, headers=origin)
    wrong = await c.post(
        "/ui/login", data={"token": token, "csrf": csrf[:-2] + "xx"}, headers=origin
    )
    for refused in (missing, wrong):
        assert refused.status_code == 403
        assert "pitstop_session" not in refused.headers.get("set-cookie", "")
    # The form's token is bound to the sign-in cookie of that browser, not to anyone's.
    other = await site.client()
    stolen = await other.post("/ui/login", data={"token": token, "csrf": csrf}, headers=origin)
    assert stolen.status_code == 403
    # The form as served works (the refusals above served a fresh form each).
    fresh = await c.get("/ui/login")
    ok = await c.post(
        "/ui/login", data={"token": token, "csrf": form_csrf(fresh.text)}, headers=origin
    )
    assert ok.status_code == 303
    assert _cookie(ok, "pitstop_session")["pitstop_session"]["httponly"]


BASE_ORIGIN = "http://pitstop.test"


# Secure cookies -----------------------------------------------------------------------------


async def _sign_in_over_tls(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """``sign_in`` for a browser that reaches pitstop over HTTPS through a proxy: this client
    talks plain HTTP, so it would keep a Secure cookie to itself; send it as the browser does."""
    form = await client.get("/ui/login")
    login = _cookie(form, "pitstop_login")["pitstop_login"]
    return await client.post(
        "/ui/login",
        data={"token": token, "csrf": form_csrf(form.text)},
        headers={"Origin": BASE_ORIGIN, "Cookie": f"pitstop_login={login.value}"},
    )


@SQLITE_ONLY
async def test_cookies_are_not_secure_over_plain_http_without_a_public_url(site: Site) -> None:
    c = await site.client()
    response = await sign_in(c, site.tokens["viewer"])
    assert response.status_code == 303
    assert not _cookie(response, "pitstop_session")["pitstop_session"]["secure"]


@SQLITE_ONLY
async def test_an_https_public_url_makes_the_cookies_secure(store: Store) -> None:
    settings = Settings(public_url="https://pitstop.example.net")
    async with open_site(store, settings) as site:
        c = await site.client()
        form = await c.get("/ui/login")
        assert _cookie(form, "pitstop_login")["pitstop_login"]["secure"]
        response = await _sign_in_over_tls(c, site.tokens["viewer"])
        assert response.status_code == 303
        assert _cookie(response, "pitstop_session")["pitstop_session"]["secure"]


def test_a_public_url_must_be_http_or_https() -> None:
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url="pitstop.example.net")


@SQLITE_ONLY
async def test_x_forwarded_proto_is_believed_only_from_a_trusted_proxy(store: Store) -> None:
    settings = Settings(trusted_proxies="10.0.0.7, 10.0.9.0/24")
    believe, trusted = proxy(settings)
    assert believe and trusted == "10.0.0.7,10.0.9.0/24"
    async with open_site(store, settings) as site:
        # What `serve` runs: uvicorn's proxy-headers middleware with the options above.
        site.wrap = lambda app: ProxyHeadersMiddleware(app, trusted_hosts=trusted or "")
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        via_proxy = await site.client("10.0.0.7", headers=forwarded)
        secure = await _sign_in_over_tls(via_proxy, site.tokens["viewer"])
        assert secure.status_code == 303, secure.text
        assert _cookie(secure, "pitstop_session")["pitstop_session"]["secure"]
        stranger = await site.client("198.51.100.4", headers=forwarded)
        plain = await sign_in(stranger, site.tokens["viewer"])
        assert plain.status_code == 303, plain.text
        assert not _cookie(plain, "pitstop_session")["pitstop_session"]["secure"]


def test_no_proxy_is_trusted_by_default() -> None:
    assert proxy(Settings()) == (False, None)
