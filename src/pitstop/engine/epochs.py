"""The epoch ticker: publishes each fabric's next fleet map every ``interval_s``.

Every ``pitstop serve`` replica runs one. They need no coordination beyond the database: a
tick is claimed under the fabric's lock and skipped when another replica published within the
interval (``storage/epochs.py``), so a fabric gets one epoch per interval however many
replicas run. The clock and the sleep are injected, so tests run it on fake time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pitstop.domain.fleetmap import FleetMap
from pitstop.storage.store import Store

log = logging.getLogger("pitstop.epochs")

Sleep = Callable[[float], Awaitable[None]]
TICKER = "pitstop-epoch-ticker"


class EpochTicker:
    def __init__(
        self,
        *,
        store: Store,
        interval_s: float,
        keep: int = 1000,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.keep = keep
        self._sleep = sleep

    async def run_once(self) -> list[FleetMap]:
        """Tick every fabric whose next epoch is due; returns the maps published."""
        async with self.store.unit() as u:
            fabric_ids = await u.epochs.fabric_ids()
        published: list[FleetMap] = []
        for fabric_id in fabric_ids:
            # One transaction per fabric: one busy fabric never holds up the others' ticks.
            async with self.store.unit() as u:
                made = await u.epochs.tick(
                    fabric_id, by=TICKER, interval_s=self.interval_s, keep=self.keep
                )
            if made is not None:
                published.append(made)
        return published

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set (or the task is cancelled, as ``serve`` does on shutdown)."""
        # Waking several times per interval keeps a tick late by a fraction of it at most.
        period = max(self.interval_s / 4, 0.05)
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the database may be briefly unavailable; try again later
                log.exception("epoch tick failed")
            await self._sleep(period)
