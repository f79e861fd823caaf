"""Failed sign-ins counted per client address, so that guessing tokens is slow.

A client address that fails authentication ``limit`` times within ``window_s`` seconds is
refused (every attempt, with a good token or not) until the oldest of those failures is
``window_s`` old; a good token from another address is unaffected. A token has 256 random
bits, so this is not what keeps it unguessable: it keeps a guessing client from costing the
server a database lookup per request, and makes it show in the log.

The state is per instance (one per app) and bounded: at most ``max_addresses`` are tracked,
and the least recently failing is forgotten first. Pure: the caller passes the time
(``time.monotonic()`` in the server), so tests need no clock.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class FailureThrottle:
    """Counts failures per address in a sliding window."""

    def __init__(self, *, limit: int, window_s: float = 60.0, max_addresses: int = 10_000) -> None:
        if limit < 1 or window_s <= 0 or max_addresses < 1:
            raise ValueError("limit, window_s and max_addresses must be positive")
        self.limit = limit
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str, now: float) -> float | None:
        """Seconds until ``address`` may try again, or None when it may try now."""
        times = self._recent(address, now)
        if times is None or len(times) < self.limit:
            return None
        return times[0] + self.window_s - now

    def failed(self, address: str, now: float) -> None:
        times = self._recent(address, now)
        if times is None:
            times = self._failures[address] = deque(maxlen=self.limit)
        times.append(now)
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def tracked(self) -> int:
        return len(self._failures)
