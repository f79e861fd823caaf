"""What every long-lived stream shares: it ends soon after the credential that opened it
stops being valid.

A request is authenticated once, when it starts; a stream (the API's job events and map
watch, the web UI's live fragments) can last for hours. Each stream's loop asks its guard
before every poll; the guard runs the real check (the token looked up again: revoked,
expired, deleted) at most every ``every_s`` seconds, so a revoked token or a signed-out
session stops streaming within a few seconds at the cost of one indexed read per stream
every few seconds. The API and the web bring their own check (a Bearer token, a session
cookie); the cadence and the refusal are here, once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from pitstop.domain.errors import Unauthenticated

# Raises Unauthenticated when the stream's credential is no longer valid.
Check = Callable[[], Awaitable[object]]

CHECK_EVERY_S = 2.0


class StreamGuard:
    """Answers "may this stream go on?", checking its credential every ``every_s``."""

    def __init__(
        self,
        check: Check,
        *,
        every_s: float = CHECK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._every_s = every_s
        self._clock = clock
        self._next = clock() + every_s
        self.refusal: Unauthenticated | None = None

    async def allows(self) -> bool:
        if self.refusal is not None:
            return False
        now = self._clock()
        if now < self._next:
            return True
        self._next = now + self._every_s
        try:
            await self._check()
        except Unauthenticated as exc:
            self.refusal = exc
            return False
        return True
