"""Server-sent events for the live parts of the pages.

Each event carries an HTML fragment that htmx's SSE extension swaps into the element listening
for that event name (``sse-swap``), so a page updates in place without reloading. A stream
polls storage (the engine writes job state and log lines there from any worker, in any
replica), sends only what changed, and ends with ``end`` when there is nothing more to wait
for, which the page uses to close its connection (``sse-close``). A stream also ends, without
``end``, within a few seconds of its session ending (the token revoked or expired:
``StreamGuard``); the browser's reconnection then meets the sign-in page's 401 and stops, and
``pitstop.js`` takes the page to the sign-in form.

A page can pass the digests of the fragments it was rendered with (``seen``); the stream's
first poll then sends only the fragments that differ from those, so nothing changed between
the page's render and the stream's start is lost, and nothing unchanged is swapped (and a
form the reader is about to submit is not replaced under them).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse

from pitstop.domain.errors import Unauthenticated
from pitstop.engine.stream_guard import StreamGuard
from pitstop.web.context import LoginRequired, viewer

POLL_S = 0.5
KEEPALIVE_S = 15.0

# One poll: the fragments to send now (event name -> HTML), and whether the stream is done.
Poll = Callable[[], Awaitable[tuple[list[tuple[str, str, int | None]], bool]]]


def event(name: str, html: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    # A data field cannot hold a newline; SSE joins consecutive data lines back with one.
    data = "".join(f"data: {line}\n" for line in (html.splitlines() or [""]))
    return f"{head}event: {name}\n{data}\n"


def session_guard(request: Request) -> StreamGuard:
    """Checks the request's session cookie again, as every page request does."""

    async def check() -> None:
        try:
            await viewer(request, check_csrf=False)
        except LoginRequired as exc:
            raise Unauthenticated(exc.why) from None

    return StreamGuard(check)


async def _run(
    request: Request, poll: Poll, poll_s: float, guard: StreamGuard | None = None
) -> AsyncIterator[str]:
    idle = 0.0
    while True:
        if guard is not None:
            with anyio.CancelScope(shield=True):  # a read in a transaction, as for a poll
                allowed = await guard.allows()
            if not allowed:
                return
        # A reader that goes away cancels the stream; a poll cancelled halfway through its
        # transaction would leave the connection (and on SQLite the write lock) held by
        # nobody, and every writer would wait for it. A poll is short: it runs to its end.
        with anyio.CancelScope(shield=True):
            events, done = await poll()
        for name, html, event_id in events:
            yield event(name, html, event_id)
        if done:
            yield event("end", "")
            return
        if await request.is_disconnected():
            return
        idle = 0.0 if events else idle + poll_s
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(poll_s)


def stream(request: Request, poll: Poll, *, poll_s: float = POLL_S) -> StreamingResponse:
    return StreamingResponse(
        _run(request, poll, poll_s, session_guard(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def digest(html: str) -> str:
    return hashlib.sha256(html.encode()).hexdigest()[:16]


def seen_param(fragments: Mapping[str, str]) -> str:
    """What a page shows, for its stream's ``seen`` parameter: ``name.digest,...``."""
    return ",".join(f"{name}.{digest(html)}" for name, html in fragments.items())


def parse_seen(text: str) -> dict[str, str]:
    pairs = (item.partition(".") for item in text.split(",") if item)
    return {name: value for name, _, value in pairs if name and value}


class Changes:
    """Remembers the last fragment sent under each name, so a poll sends only changes.

    ``seen`` (fragment name -> ``digest``) is what the page already shows: a first fragment
    with that digest counts as sent."""

    def __init__(self, seen: Mapping[str, str] | None = None) -> None:
        self._last: dict[str, str] = {}
        self._seen = dict(seen or {})

    def diff(self, fragments: dict[str, str]) -> list[tuple[str, str, int | None]]:
        out: list[tuple[str, str, int | None]] = []
        for name, html in fragments.items():
            if self._last.get(name) != html:
                self._last[name] = html
                if self._seen.pop(name, None) == digest(html):
                    continue
                out.append((name, html, None))
        return out
