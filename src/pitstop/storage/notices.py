"""Signals across processes: on PostgreSQL, a signal fired in one process (``signals.py``)
wakes the subscribers of every other process of the same database, through LISTEN/NOTIFY.

A job queued on one replica then starts on another at once instead of at its worker's next
poll, and a cancel or a campaign change reaches the other processes just as fast. The poll
stays: it is what catches a notice lost while a listener was reconnecting, and the only way
on SQLite, which has no notifications.

- Sending: ``pg_notify`` runs after the change committed (a signal fires after its commit),
  in a task of its own so the writer does not wait for it. A signal fired again before its
  notice went out is sent once: a notice means "look", not "one more".
- Listening: one connection per process, outside the pool (``Connector.listen``), opened
  while at least one worker or conductor runs (``listening()``). Each notice names its
  sender, so a process ignores its own: its subscribers were woken directly.
- After (re)connecting, every signal wakes its subscribers once, since what was sent while
  nobody listened is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from pitstop.storage.connector import Connector
from pitstop.storage.signals import Signal

log = logging.getLogger("pitstop.storage")

CHANNEL = "pitstop"


class Notices:
    """This process's side of the channel: relays its signals out, and others' in."""

    def __init__(self, connector: Callable[[], Connector], *, postgres: bool) -> None:
        self._connector = connector  # looked up when needed: the database may close and reopen
        self._postgres = postgres
        self._origin = uuid.uuid4().hex[:12]
        self._signals: dict[str, Signal] = {}
        self._pending: set[str] = set()
        self._sending: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._listeners = 0
        self.ready = asyncio.Event()  # set while LISTEN is in force

    def signal(self, name: str) -> Signal:
        """A signal whose firing is relayed to the other processes."""
        sig = self._signals[name] = Signal(name, relay=self._relay)
        return sig

    def _relay(self, name: str) -> None:
        if not self._postgres or name in self._pending:
            return
        try:
            # The connector of now: one looked up later, once the database closed, would be
            # a new one with a pool nobody closes.
            task = asyncio.get_running_loop().create_task(self._send(name, self._connector()))
        except RuntimeError:  # no loop: nobody in another process can be waiting on us
            return
        self._pending.add(name)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, name: str, connector: Connector) -> None:
        self._pending.discard(name)  # a fire from now on needs a notice of its own
        try:
            await connector.notify(CHANNEL, f"{self._origin}:{name}")
        except Exception as exc:  # the other processes' polls will see the change
            # Closing while a notice was on its way is a shutdown, not a fault.
            (log.debug if connector.closed else log.warning)(
                "could not tell other processes of %s: %s", name, exc
            )

    def _received(self, payload: str) -> None:
        origin, _, name = payload.partition(":")
        if origin == self._origin:
            return
        found = self._signals.get(name)
        if found is not None:
            found.wake()

    def _listening(self) -> None:
        self.ready.set()
        for sig in self._signals.values():
            sig.wake()

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Keep this process listening while the block runs (shared by every worker and
        conductor of the process). On SQLite it does nothing."""
        if not self._postgres:
            yield
            return
        self._listeners += 1
        if self._listener is None:
            self._listener = asyncio.create_task(
                self._connector().listen(
                    CHANNEL, on_notice=self._received, on_ready=self._listening
                )
            )
        try:
            yield
        finally:
            self._listeners -= 1
            if self._listeners == 0 and self._listener is not None:
                task, self._listener = self._listener, None
                self.ready.clear()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def close(self) -> None:
        """Let the notices already on their way go out."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
