"""The storage entry point: ``Store.unit()`` opens one transaction with every repository (CRUD
and reads); ``Store.writes`` lists every fenced or audited write (``writes.py``), among them
``Store.leases`` and ``Store.journal``, the workers' claims and step boundaries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pitstop.storage.audit_log import AuditLog
from pitstop.storage.budgets import BudgetRepository
from pitstop.storage.campaigns import CampaignRepository
from pitstop.storage.clock import Clock, utcnow
from pitstop.storage.database import Database
from pitstop.storage.devices import DeviceRepository
from pitstop.storage.epochs import EpochRepository
from pitstop.storage.fabrics import FabricRepository
from pitstop.storage.jobs import JobRepository
from pitstop.storage.journal import Journal
from pitstop.storage.leases import Leases
from pitstop.storage.named_actions import NamedActionRepository
from pitstop.storage.notices import Notices
from pitstop.storage.overruns import OverrunRepository
from pitstop.storage.signals import Signal
from pitstop.storage.tokens import TokenRepository
from pitstop.storage.writes import Writes


@dataclass(frozen=True, slots=True)
class Unit:
    """Repositories sharing one transaction: everything in a unit commits or nothing does."""

    fabrics: FabricRepository
    devices: DeviceRepository
    tokens: TokenRepository
    audit: AuditLog
    jobs: JobRepository
    budgets: BudgetRepository
    epochs: EpochRepository
    overruns: OverrunRepository
    campaigns: CampaignRepository
    actions: NamedActionRepository


class Store:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        self._journal: Journal | None = None
        self._leases: Leases | None = None
        self._writes: Writes | None = None
        # Announced after the commit, to wake the workers and campaign drivers of this
        # process and, on PostgreSQL, of the others (``notices.py``).
        self.notices = Notices(lambda: db.connector, postgres=not db.sqlite)
        self.job_queued: Signal = self.notices.signal("job_queued")
        self.job_ended: Signal = self.notices.signal("job_ended")
        # Running jobs' workers look at once.
        self.job_cancel_requested: Signal = self.notices.signal("job_cancel_requested")
        # Started, paused, resumed, aborted, approved...
        self.campaign_changed: Signal = self.notices.signal("campaign_changed")

    @property
    def journal(self) -> Journal:
        """The engine's step-boundary writes, outside the session (``journal.py``)."""
        if self._journal is None:
            self._journal = Journal(self.db.connector, self.clock)
        return self._journal

    @property
    def leases(self) -> Leases:
        """Claims, heartbeats and job starts for workers (``leases.py``)."""
        if self._leases is None:
            self._leases = Leases(self.db.connector, self.clock)
        return self._leases

    @property
    def writes(self) -> Writes:
        """Every fenced or audited write outside the units' CRUD, by name (``writes.py``)."""
        if self._writes is None:
            self._writes = Writes(
                self.db.connector, self.clock, journal=self.journal, leases=self.leases
            )
        return self._writes

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        async with self.db.transaction() as session:
            audit = AuditLog(session, self.clock)
            yield Unit(
                fabrics=FabricRepository(session, self.clock),
                devices=DeviceRepository(session, self.clock, audit),
                tokens=TokenRepository(session, self.clock, audit),
                audit=audit,
                jobs=JobRepository(session, self.clock),
                budgets=BudgetRepository(session),
                epochs=EpochRepository(session, self.clock),
                overruns=OverrunRepository(session, self.clock, audit),
                campaigns=CampaignRepository(session, self.clock),
                actions=NamedActionRepository(session, self.clock),
            )
