"""The request body limit: bodies over it are refused with 413 before the app reads them.

A pure ASGI middleware, so it sees the request before any route, form parser or JSON decoder
does, and it covers the API and the web pages alike. A body with a ``Content-Length`` over the
limit is refused from the header alone, without reading a byte of it. A chunked body (no
``Content-Length``) is read here, counting, and refused as soon as the count passes the limit;
a body within the limit is handed to the app unchanged. The server (uvicorn) already refuses a
body longer than its declared ``Content-Length``, so declared bodies are not counted again.

The limit is per path: the inventory import takes whole files and gets a larger one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pitstop.api.problems import problem
from pitstop.domain.errors import PayloadTooLarge


class Limit(NamedTuple):
    """A limit in bytes, and the setting that changes it (named in the refusal)."""

    max_bytes: int
    setting: str


class BodyLimit:
    def __init__(self, app: ASGIApp, *, default: Limit, per_path: Mapping[str, Limit]) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path)

    def limit_for(self, path: str) -> Limit:
        return self.per_path.get(path.rstrip("/") or "/", self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = {k.lower(): v for k, v in scope["headers"]}
        declared = headers.get(b"content-length")
        if declared is not None:
            if declared.strip().isdigit() and int(declared) > limit.max_bytes:
                await self._refuse(scope, receive, send, limit)
                return
            await self.app(scope, receive, send)
            return
        if b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        # Chunked: read it all here, up to the limit, then replay it to the app.
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                buffered.append(message)
                break
            size += len(message.get("body", b""))
            if size > limit.max_bytes:
                await self._refuse(scope, receive, send, limit)
                return
            buffered.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: Limit) -> None:
        error = PayloadTooLarge(
            f"the request body is larger than the {limit.max_bytes} bytes this server accepts "
            f"here ({limit.setting})",
            limit=limit.max_bytes,
            setting=limit.setting,
        )
        response = problem(
            status=error.http_status,
            code=error.code,
            title=error.title,
            detail=error.detail,
            instance=scope["path"],
            extra=error.extra,
        )
        # The unread body is not wanted: close the connection rather than drain it.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
