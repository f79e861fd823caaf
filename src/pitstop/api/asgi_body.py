"""What the request guards share: a request's media type, its whole body read once and
handed on unchanged, and a refusal sent as a problem.

The guards (``nul_guard.py``, ``json_guard.py``) are pure ASGI middlewares that look at a
body before any route does. They run behind the body limit (``body_limit.py``), so the body
they buffer is bounded; the messages they read are replayed to the app in order, so the
route sees the same bytes as if nothing had looked.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from pitstop.api.problems import problem
from pitstop.domain.errors import PitstopError


def media_type(scope: Scope) -> bytes:
    """The request's ``Content-Type`` without parameters, lower-cased (``b""`` if none)."""
    for key, value in scope["headers"]:
        if key.lower() == b"content-type":
            kind: bytes = value.split(b";")[0].strip().lower()
            return kind
    return b""


async def read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that gives the app the same messages again."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return b"".join(chunks), replay


async def refuse(scope: Scope, receive: Receive, send: Send, exc: PitstopError) -> None:
    """Answer with ``exc`` as problem+json, the route never called."""
    response = problem(
        status=exc.http_status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=scope["path"],
        extra=exc.extra,
    )
    await response(scope, receive, send)
