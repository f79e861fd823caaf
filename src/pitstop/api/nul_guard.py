"""NUL characters are refused in paths, query strings and form bodies, before any route.

PostgreSQL's ``text`` cannot hold U+0000: a name, a search or a form field holding one made
the database refuse the statement, and the caller (a viewer, for a search) got a 500. SQLite
would store it, so the two backends would also disagree. No name, label, reason or search
in pitstop has a use for it, so it is refused at the edge with a 422 problem. JSON bodies are
checked by ``json_guard.py``, which decodes them anyway.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from pitstop.api.asgi_body import media_type, read_body, refuse
from pitstop.domain.errors import FieldError, ValidationFailed

FORM = b"application/x-www-form-urlencoded"


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"\x00" in unquote_to_bytes(raw.replace(b"+", b" "))


def _refusal(where: str) -> ValidationFailed:
    return ValidationFailed(
        f"the {where} holds a NUL character", [FieldError(where, "NUL characters are refused")]
    )


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("raw_path") or scope["path"].encode()
        if "\x00" in scope["path"] or _has_nul(path):
            await refuse(scope, receive, send, _refusal("path"))
            return
        if _has_nul(scope.get("query_string", b"")):
            await refuse(scope, receive, send, _refusal("query"))
            return
        if media_type(scope) != FORM:
            await self.app(scope, receive, send)
            return
        body, replay = await read_body(receive)
        if _has_nul(body):
            await refuse(scope, receive, send, _refusal("body"))
            return
        await self.app(scope, replay, send)
