"""Security headers on every response of the server (API, web UI and docs alike).

A pure ASGI middleware, so it also covers streams and static files, and costs one dict update
per response:

- ``Content-Security-Policy``: scripts and styles only from pitstop itself (no inline script,
  no ``javascript:`` link, no CDN), and no framing (``frame-ancestors 'none'``). Style
  *attributes* stay allowed: the progress bars set their width with one, and an attribute
  cannot run script. The docs page (Swagger UI) also needs inline ``<style>`` elements.
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (for browsers without CSP
  level 2), ``Referrer-Policy: same-origin``.
- ``Cache-Control: no-store`` on everything that carries data (HTML pages, JSON, streams,
  exports): a shared machine's browser cache or a proxy must not keep a fleet's inventory or
  an audit log. Scripts, stylesheets, images and fonts keep their validators (``ETag``) and
  are cached.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_COMMON = (
    "default-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGE_POLICY = f"{_COMMON}; style-src 'self'; style-src-attr 'unsafe-inline'"
DOCS_POLICY = f"{_COMMON}; style-src 'self' 'unsafe-inline'"

# Content types served from the packages' static directories: cacheable.
_ASSET_TYPES = ("text/css", "text/javascript", "application/javascript", "image/", "font/")


def _is_asset(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind.startswith(_ASSET_TYPES)


class SecurityHeaders:
    """Adds the headers above to every HTTP response; ``docs_paths`` get ``DOCS_POLICY``."""

    def __init__(self, app: ASGIApp, *, docs_paths: Iterable[str] = ("/docs",)) -> None:
        self.app = app
        self.docs_paths = tuple(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        policy = DOCS_POLICY if path.startswith(self.docs_paths) else PAGE_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OWNED]
                content_type = next(
                    (v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"),
                    "",
                )
                cache = (
                    next(
                        (v for k, v in message.get("headers", []) if k.lower() == b"cache-control"),
                        None,
                    )
                    if _is_asset(content_type)
                    else b"no-store"
                )
                headers += [
                    (b"content-security-policy", policy.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if cache is not None:
                    headers.append((b"cache-control", cache))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_OWNED = {
    b"content-security-policy",
    b"x-content-type-options",
    b"x-frame-options",
    b"referrer-policy",
    b"cache-control",
}
