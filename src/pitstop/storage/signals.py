"""In-process wake-ups: a job was queued, a job ended, a person changed a campaign.

Workers and campaign drivers poll the database, because another process (a second replica, a
separate ``pitstop worker``) may be the one that queued or finished the job. Within one
process they need not wait for their next poll: ``serve`` runs the API, the workers and the
campaign driver together, and each change they make there is announced on the ``Store``'s
signals right after its transaction committed. Anyone waiting wakes at once; a missed signal
only costs the poll interval it would have cost anyway.
"""

from __future__ import annotations

import asyncio


class Signal:
    """Fire-and-forget: every subscriber's event is set; each subscriber clears its own."""

    def __init__(self) -> None:
        self._events: set[asyncio.Event] = set()

    def subscribe(self) -> asyncio.Event:
        event = asyncio.Event()
        self._events.add(event)
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._events.discard(event)

    def fire(self) -> None:
        for event in self._events:
            event.set()
