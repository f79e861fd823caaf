"""Wake-ups: a job was queued, a job ended, a person changed a campaign.

Workers and campaign conductors poll the database, because another process (a second
replica, a separate ``pitstop worker``) may be the one that queued or finished the job. They
need not wait for their next poll: each change is announced on the ``Store``'s signals right
after its transaction committed. Anyone waiting in this process wakes at once; on PostgreSQL
the signal is also relayed to the other processes (``notices.py``). A missed signal only
costs the poll interval it would have cost anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Signal:
    """Fire-and-forget: every subscriber's event is set; each subscriber clears its own."""

    def __init__(self, name: str = "", relay: Callable[[str], None] | None = None) -> None:
        self.name = name
        self._relay = relay  # tells the other processes, when there is a way to
        self._events: set[asyncio.Event] = set()

    def subscribe(self) -> asyncio.Event:
        event = asyncio.Event()
        self._events.add(event)
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._events.discard(event)

    def fire(self) -> None:
        """News from this process: wake its subscribers and tell the other processes."""
        self.wake()
        if self._relay is not None:
            self._relay(self.name)

    def wake(self) -> None:
        """Wake this process's subscribers only (news that came from another process)."""
        for event in self._events:
            event.set()
