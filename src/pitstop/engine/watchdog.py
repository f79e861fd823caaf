"""The maintenance watchdog: flags devices whose maintenance outlived its ``expected_end``.

It runs inside every ``pitstop serve`` on an interval. Each overrun is flagged once
(``needs_attention`` with a reason, shown by ``device list``) and raises one event, a
``device.overrun`` audit row, even with several replicas (``storage/overruns.py``). Nothing is
done to the device: an overrun is for a person to look at, not a reason to undo their work.
The sleep is injected and the store carries the clock, so tests run it on fake time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pitstop.storage.overruns import Overrun
from pitstop.storage.store import Store

log = logging.getLogger("pitstop.watchdog")

Sleep = Callable[[float], Awaitable[None]]
WATCHDOG = "pitstop-watchdog"


class Watchdog:
    def __init__(self, *, store: Store, interval_s: float, sleep: Sleep = asyncio.sleep) -> None:
        self.store = store
        self.interval_s = interval_s
        self._sleep = sleep

    async def run_once(self) -> list[Overrun]:
        async with self.store.unit() as u:
            flagged = await u.overruns.flag_overdue(actor=WATCHDOG)
        for o in flagged:
            log.warning(
                "%s/%s is still %s %.0f s after its expected end (%s)",
                o.fabric,
                o.device,
                o.status.value,
                o.overdue_s,
                o.expected_end.isoformat(),
            )
        return flagged

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set (or the task is cancelled, as ``serve`` does on shutdown)."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the database may be briefly unavailable; try again later
                log.exception("watchdog pass failed")
            await self._sleep(self.interval_s)
