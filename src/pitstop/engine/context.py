"""What a workflow step sees: the job, the device, its driver, the resolved parameters, the
outputs of earlier steps, and fenced ways to write (log lines, status changes).

Every write is one transaction that first checks this worker still holds the job's lease
epoch: ``boundary()``, ``undo_steps()`` and ``set_status()``, on the raw connection
(``storage.writes``). A worker that
lost its lease (paused past its expiry while another took over) has its late writes refused
with ``LeaseLost``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pitstop.domain.errors import PitstopError
from pitstop.domain.inventory import Device
from pitstop.domain.jobs import Job, Level
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.parameters import AdvancedParameters
from pitstop.domain.roles import Actor, Role, Via
from pitstop.domain.standing import Judge
from pitstop.drivers.base import Driver
from pitstop.storage.journal import Fenced, JobEnd, PendingEvent, StepEnd
from pitstop.storage.store import Store

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class StepFailed(PitstopError):
    """A step ran and found a reason to stop the job (a failed check, a drain that never
    converged). ``output`` is kept as the step's output."""

    code = "STEP_FAILED"
    http_status = 409
    title = "Step failed"

    def __init__(self, detail: str, output: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.output = dict(output or {})


@dataclass
class StepContext:
    store: Store
    job: Job
    epoch: int
    device: Device
    driver: Driver
    params: AdvancedParameters
    clock: Callable[[], datetime]
    sleep: Sleep
    outputs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    step: str | None = None
    # When the running step first started, across takeovers (``storage.journal``).
    step_started_at: datetime | None = None
    pending: list[PendingEvent] = field(default_factory=list)

    @property
    def job_id(self) -> uuid.UUID:
        return self.job.id

    def step_start(self) -> datetime:
        """Where a polling step's time limit counts from: the step's first start, which a
        takeover keeps, so a drain never gets its ``timeout_s`` twice. Outside a step (an
        undo polling for the restore), now."""
        return self.step_started_at or self.clock()

    @property
    def actor(self) -> Actor:
        # The engine acts for whoever asked for the job; the audit records both.
        return Actor(name=self.job.created_by, role=Role.ENGINE)

    async def undo_steps(self, names: Sequence[str]) -> None:
        """Mark the steps among ``names`` that succeeded as rolled back, fenced, with the
        buffered log lines."""
        pending, self.pending = self.pending, []
        try:
            await self.store.journal.undo_steps(
                self.job.id, self.epoch, names=names, events=pending
            )
        except BaseException:
            self.pending = pending + self.pending
            raise

    async def boundary(
        self,
        *,
        ended: StepEnd | None = None,
        progress: int | None = None,
        start: tuple[int, str] | None = None,
        finish: JobEnd | None = None,
    ) -> Fenced:
        """A step boundary (``storage.journal``) with the buffered log lines: one fenced
        transaction without the session."""
        pending, self.pending = self.pending, []
        try:
            return await self.store.journal.boundary(
                self.job.id,
                self.epoch,
                events=pending,
                ended=ended,
                progress=progress,
                start=start,
                finish=finish,
            )
        except BaseException:
            self.pending = pending + self.pending
            raise

    async def flush(self) -> None:
        """Write the buffered log lines now (long-running steps call it as they go)."""
        if self.pending:
            await self.boundary()

    async def log(self, level: Level, message: str, data: Mapping[str, Any] | None = None) -> None:
        # Buffered: written with the step's next fenced write, so a log line costs no
        # transaction of its own. Live viewers see it at the latest when the step ends.
        self.pending.append(
            PendingEvent(
                at=self.clock(),
                level=level,
                message=message,
                step=self.step,
                device=self.device.name,
                data=dict(data or {}),
            )
        )

    async def info(self, message: str, **data: Any) -> None:
        await self.log(Level.INFO, message, data)

    async def warn(self, message: str, **data: Any) -> None:
        await self.log(Level.WARNING, message, data)

    async def set_status(
        self,
        target: DeviceStatus,
        *,
        reason: str | None = None,
        attention: str | None = None,
        judge: Judge | None = None,
    ) -> Device:
        """Move the device, fenced and audited (via engine, with this job's id), together
        with the buffered log lines. An earlier run of the step may have done it already.
        Leaving service reserves budget slots (the job's ``force_reason`` applies), after
        ``judge`` saw the same rows."""
        request = self.job.request
        pending, self.pending = self.pending, []
        try:
            self.device = await self.store.writes.change_status(
                job_id=self.job.id,
                epoch=self.epoch,
                events=pending,
                device=self.device,
                target=target,
                actor=self.actor,
                via=Via.ENGINE,
                if_needed=True,
                reason=reason or request.reason,
                ticket=request.ticket,
                expected_end=request.expected_end,
                attention_reason=attention,
                forced=request.force_reason,
                judge=judge,
            )
        except BaseException:
            self.pending = pending + self.pending
            raise
        await self.info(f"status {target.value}", status=target.value)
        return self.device

    async def current_status(self) -> DeviceStatus:
        return DeviceStatus(await self.store.journal.device_status(self.device.id))
