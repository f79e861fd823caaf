"""Workers: claim a job's lease, run its steps in order, keep the lease alive, and finish it.

At-least-once: a step that was running when its worker died runs again on the worker that
takes the job over, so every step is idempotent. Everything a worker writes is fenced by the
lease epoch it claimed with (``StepContext.boundary``, ``undo_steps``, ``set_status``), so a
worker that lost its lease cannot change anything.

A running step is interrupted (its task cancelled at whatever it awaits, a driver call
included) in three cases: its time limit passed; its job was cancelled, which the heartbeat
notices (at once through ``Store.job_cancel_requested``, from another process too on
PostgreSQL, ``storage/notices.py``; else within a beat, a third of the lease TTL), and then
the workflow's undo runs as for a failure; or the worker shuts down (the task running the job
is cancelled), and then nothing is undone: the lease is released with a log line, and the
next worker resumes the job at that step. This is safe because every step is idempotent and
every driver stops cleanly when cancelled (a local command is killed, nothing is left
half-sent), and because the undo and the re-run read the device's state afresh rather than
trusting what the step reached.
The undo itself is not interrupted by a cancel. A step is always awaited to its end before
its undo runs or its lease is released; one that does not stop within ``STOP_GRACE_S`` of a
shutdown keeps its lease, which then expires as a dead worker's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pitstop.domain.errors import PitstopError, WorkflowChanged
from pitstop.domain.jobs import JobStatus, Level, StepStatus
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.parameters import resolve
from pitstop.domain.roles import Actor, Role, Via
from pitstop.domain.step_outputs import (
    HEALTH_STEPS,
    DrainKey,
    HealthKey,
    StepName,
    ValidateKey,
)
from pitstop.drivers.registry import DriverRegistry
from pitstop.engine.context import Sleep, StepContext, StepFailed
from pitstop.engine.workflows import compensate, steps_for
from pitstop.storage.journal import JobEnd, LeaseLost, PendingEvent, StepEnd
from pitstop.storage.store import Store

log = logging.getLogger("pitstop.engine")

STOP_GRACE_S = 10.0  # how long a shutdown waits for an interrupted step to stop


class StepCancelled(Exception):
    """The job was cancelled while this step ran; the step was interrupted."""


@dataclass
class _Run:
    """One job this worker runs: what its heartbeat found, and the step running now."""

    lost: asyncio.Event = field(default_factory=asyncio.Event)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    step: asyncio.Future[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    lease_ttl_s: float = 15.0
    poll_interval_s: float = 0.5
    concurrency: int = 8  # jobs one worker runs at once
    max_running: int | None = None
    max_running_per_fabric: int | None = None


@dataclass
class Worker:
    store: Store
    drivers: DriverRegistry
    config: EngineConfig = field(default_factory=EngineConfig)
    clock: Callable[[], datetime] | None = None
    sleep: Sleep = asyncio.sleep
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = self.store.clock

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.config.lease_ttl_s)

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Claim and run jobs until ``stop``: up to ``config.concurrency`` at a time, since a
        job spends most of its life waiting on its device."""
        stop = stop or asyncio.Event()
        async with self.store.notices.listening():  # jobs queued by other processes too
            await self._claim_until(stop)

    async def _claim_until(self, stop: asyncio.Event) -> None:
        running: set[asyncio.Task[None]] = set()
        queued = self.store.job_queued.subscribe()
        try:
            while not stop.is_set():
                queued.clear()
                claimed = None
                if len(running) < self.config.concurrency:
                    try:
                        claimed = await self._claim()
                    except Exception:  # the database may be briefly unavailable
                        log.exception("worker %s: claiming a job failed", self.name)
                if claimed is not None:
                    task = asyncio.create_task(self._guarded(*claimed))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    continue
                waiters: set[asyncio.Future[Any]] = {
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(queued.wait()),
                }
                waiters |= set(running)
                await asyncio.wait(
                    waiters,
                    timeout=self.config.poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for waiter in waiters - set(running):
                    waiter.cancel()
        finally:
            self.store.job_queued.unsubscribe(queued)
            for task in running:
                task.cancel()
            for task in list(running):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _guarded(self, job_id: uuid.UUID, epoch: int) -> None:
        try:
            await self._run(job_id, epoch)
        except LeaseLost as exc:
            log.warning("worker %s lost the lease of job %s: %s", self.name, job_id, exc)
        except Exception:  # a bug in one job must not stop the worker
            log.exception("worker %s: job %s failed unexpectedly", self.name, job_id)
        finally:
            self.store.job_ended.fire()

    async def _claim(self) -> tuple[uuid.UUID, int] | None:
        return await self.store.leases.claim(
            worker=self.name,
            lease_ttl=self.ttl,
            max_running=self.config.max_running,
            max_running_per_fabric=self.config.max_running_per_fabric,
        )

    async def run_once(self) -> bool:
        """Claim and run one job to its end (or until the lease is lost). False: none to run."""
        claimed = await self._claim()
        if claimed is None:
            return False
        job_id, epoch = claimed
        try:
            await self._run(job_id, epoch)
        except LeaseLost as exc:
            log.warning("worker %s lost the lease of job %s: %s", self.name, job_id, exc)
        finally:
            self.store.job_ended.fire()
        return True

    async def _run(self, job_id: uuid.UUID, epoch: int) -> None:
        job, device, fabric_params = await self.store.leases.start(job_id)
        assert self.clock is not None
        try:
            # Resolved at submit; only a job stored before that was kept resolves here.
            params = job.request.effective or resolve(
                dict(fabric_params), dict(job.request.overrides)
            )
            driver = self.drivers.open(device)
        except Exception as exc:  # unknown driver, bad parameters: nothing can run
            await self._fail_unopened(job_id, epoch, exc)
            return
        ctx = StepContext(
            store=self.store,
            job=job,
            epoch=epoch,
            device=device,
            driver=driver,
            params=params,
            clock=self.clock,
            sleep=self.sleep,
        )
        run = _Run()
        beat = asyncio.create_task(self._heartbeat(job_id, epoch, run))
        try:
            await self._steps(ctx, run)
        except asyncio.CancelledError:
            # This worker is shutting down: hand the job on, undoing nothing.
            await _stopped(beat)
            await self._release(ctx, run)
            raise
        finally:
            await _stopped(beat)
            with contextlib.suppress(Exception):
                await driver.close()

    async def _release(self, ctx: StepContext, run: _Run) -> None:
        if run.lost.is_set():
            return
        if run.step is not None and not run.step.done():
            log.warning(
                "worker %s: step %s of job %s did not stop; its lease will expire instead",
                self.name,
                ctx.step,
                ctx.job.id,
            )
            return
        where = f"{ctx.step} was interrupted" if ctx.step else "between steps"
        await ctx.warn(
            f"worker {self.name} is shutting down ({where}); the job resumes on the next worker",
            worker=self.name,
        )
        pending, ctx.pending = ctx.pending, []
        try:
            await self.store.leases.release(ctx.job.id, epoch=ctx.epoch, events=pending)
        except Exception:  # the database may be gone too: then the lease expires
            log.exception("worker %s: releasing the lease of job %s failed", self.name, ctx.job.id)

    async def _fail_unopened(self, job_id: uuid.UUID, epoch: int, exc: Exception) -> None:
        """No driver, no way to touch the device: fail the job. A device caught half-way
        (draining, undraining) is in an uncertain state and goes to error."""
        code = exc.code if isinstance(exc, PitstopError) else "INTERNAL"
        detail = exc.detail if isinstance(exc, PitstopError) else str(exc)
        message = f"{code}: cannot start: {detail}"

        async with self.store.unit() as u:
            job = await u.jobs.get(job_id)
            device = await u.devices.get(job.device_id)
        # One fenced transaction: the device to error (when it was caught half-way), the log
        # line and the job's end.
        events = [PendingEvent(self.store.clock(), Level.ERROR, message, None, device.name, {})]
        end = JobEnd(JobStatus.FAILED, {}, error=message)
        if device.status in (DeviceStatus.DRAINING, DeviceStatus.UNDRAINING):
            await self.store.writes.change_status(
                device=device,
                target=DeviceStatus.ERROR,
                actor=Actor(name=job.created_by, role=Role.ENGINE),
                via=Via.ENGINE,
                reason=message,
                attention_reason=message,
                job_id=job_id,
                epoch=epoch,
                events=events,
                finish=end,
            )
        else:
            await self.store.journal.boundary(job_id, epoch, events=events, finish=end)

    async def _heartbeat(self, job_id: uuid.UUID, epoch: int, run: _Run) -> None:
        # Real time on purpose: leases are about wall-clock liveness of this process. A cancel
        # wakes it at once (from another process through a notice on PostgreSQL); one whose
        # notice was lost, or on SQLite from another process, is seen at the next beat.
        interval = max(self.config.lease_ttl_s / 3, 0.05)
        wake = self.store.job_cancel_requested.subscribe()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), interval)
                wake.clear()
                beat = await self.store.leases.heartbeat(job_id, epoch=epoch, lease_ttl=self.ttl)
                if not beat.ours:
                    run.lost.set()
                    return
                if beat.cancel_requested:
                    run.cancel.set()
        finally:
            self.store.job_cancel_requested.unsubscribe(wake)

    async def _steps(self, ctx: StepContext, run: _Run) -> None:
        job = ctx.job
        # Steps are matched by name, never by position: a job keeps the plan it was queued
        # with, so a step added to the workflow since is not run, and one removed since fails
        # the job cleanly (``WORKFLOW_CHANGED``) instead of raising on every claim.
        defs = {d.name: d for d in steps_for(job.type, job.mode)}
        gone = [
            s.name
            for s in job.steps
            if s.status not in (StepStatus.SUCCEEDED, StepStatus.SKIPPED) and s.name not in defs
        ]
        total = sum(s.expected_s for s in job.steps) or 1.0
        done = sum(
            s.expected_s
            for s in job.steps
            if s.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
        )
        if all(s.runs == 0 for s in job.steps):
            await ctx.info(
                f"{job.type.value} started on {ctx.device.name}",
                mode=job.mode,
                worker=self.name,
                attempt=job.attempt,
            )
        else:
            await ctx.warn(f"resumed by worker {self.name}", worker=self.name, attempt=job.attempt)
        failed = next((s for s in job.steps if s.status is StepStatus.FAILED), None)
        if failed is not None:
            # The worker before this one failed that step and was undoing the job when it
            # died (a retry resets failed steps): finish the undo, never carry the job forward.
            for s in job.steps:
                if s.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.FAILED):
                    ctx.outputs[s.name] = s.output
            await self._finish_undone(
                ctx,
                at_step=failed.name,
                cancelled=False,
                reason=failed.error or f"{failed.name} failed",
            )
            return
        # The step that just ended, written together with the start of the next one: one
        # transaction per step.
        ended: StepEnd | None = None
        for step in job.steps:
            idx = step.idx
            if step.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
                ctx.outputs[step.name] = step.output
                continue
            if run.lost.is_set():
                raise LeaseLost("heartbeat found the lease taken over")
            pct = round(100 * done / total)
            row = await ctx.boundary(
                ended=ended, progress=pct if ended else None, start=(idx, step.name)
            )
            ctx.step = step.name
            ctx.step_started_at = row.step_started_at
            if row.cancel_requested:
                await self._finish_undone(
                    ctx, at_step=step.name, cancelled=True, reason="cancelled"
                )
                return
            if gone:
                # Before any step of the changed plan runs: nothing is done that the job
                # could not finish.
                await self._step_failed(ctx, idx, _workflow_changed(job.type.value, gone))
                return
            step_def = defs[step.name]
            try:
                # The driver may need longer (or less) than the engine's default limit.
                limit = ctx.driver.capabilities.profile.timeout_s(step.name, step_def.timeout_s)
                output = await self._timed(ctx, run, step_def.run, step_def.expected_s, limit)
            except LeaseLost:
                raise
            except StepCancelled:
                await ctx.warn(f"cancel requested: {step.name} was interrupted")
                await ctx.boundary(
                    ended=StepEnd(idx, StepStatus.CANCELLED, None, "cancelled while running")
                )
                await self._finish_undone(
                    ctx, at_step=step.name, cancelled=True, reason="cancelled"
                )
                return
            except Exception as exc:
                await self._step_failed(ctx, idx, exc)
                return
            ctx.outputs[step.name] = output
            done += step.expected_s
            ended = StepEnd(idx, StepStatus.SUCCEEDED, output)
        ctx.step = None
        result = _result(ctx)
        await ctx.info(f"{job.type.value} succeeded")
        await ctx.boundary(ended=ended, finish=JobEnd(JobStatus.SUCCEEDED, result))

    async def _timed(
        self, ctx: StepContext, run: _Run, step: Any, expected_s: float, timeout_s: float
    ) -> dict[str, Any]:
        """Run one step under its time limit, interrupted by a cancel of its job."""
        task: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(step(ctx))
        run.step = task
        cancelled = asyncio.ensure_future(run.cancel.wait())
        # A limit shorter than twice the expected time (a driver may declare one) still holds.
        warn_after = min(2 * expected_s, timeout_s)

        async def wait(seconds: float) -> bool:
            """True when the step ended; raises when its job was cancelled first."""
            either: set[asyncio.Future[Any]] = {task, cancelled}
            await asyncio.wait(either, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return True
            if cancelled.done():
                await _interrupted(task)
                raise StepCancelled(f"{ctx.step} interrupted by a cancel")
            return False

        try:
            done = await wait(warn_after)
            if not done and warn_after < timeout_s:
                await ctx.warn(
                    f"step {ctx.step} is taking longer than twice its expected {expected_s:g} s"
                )
                await ctx.flush()  # operators watching live see the warning now
                done = await wait(max(timeout_s - warn_after, 0))
            if not done:
                await _interrupted(task)
                raise StepFailed(f"step {ctx.step} timed out after {timeout_s:g} s")
            result: dict[str, Any] = task.result()
            return result
        finally:
            cancelled.cancel()
            if not task.done():
                # This worker is shutting down: the step stops before its lease is released.
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_GRACE_S)

    async def _step_failed(self, ctx: StepContext, idx: int, exc: Exception) -> None:
        message = exc.detail if isinstance(exc, PitstopError) else f"{type(exc).__name__}: {exc}"
        code = exc.code if isinstance(exc, PitstopError) else "INTERNAL"
        if not isinstance(exc, PitstopError):
            log.exception("step %s of job %s raised", ctx.step, ctx.job.id)
        output = exc.output if isinstance(exc, StepFailed) else {}
        assert ctx.step is not None
        # What the failed step measured (its checks, the residual traffic) goes into the
        # job's result: it is what an operator needs to see first.
        ctx.outputs[ctx.step] = output
        await ctx.log(Level.ERROR, f"{ctx.step} failed: {message}", {"code": code})
        await ctx.boundary(ended=StepEnd(idx, StepStatus.FAILED, output, f"{code}: {message}"))
        await self._finish_undone(
            ctx, at_step=ctx.step, cancelled=False, reason=f"{code}: {message}"
        )

    async def _finish_undone(
        self, ctx: StepContext, *, at_step: str, cancelled: bool, reason: str
    ) -> None:
        ctx.step = "rollback"
        ctx.step_started_at = None
        undone = await compensate(ctx, at_step=at_step, cancelled=cancelled)
        await ctx.log(Level.WARNING if cancelled else Level.ERROR, undone)
        result = {**_result(ctx), "failed_step": at_step, "undo": undone}
        status = JobStatus.CANCELLED if cancelled else JobStatus.FAILED
        await ctx.boundary(finish=JobEnd(status, result, reason))


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _interrupted(task: asyncio.Future[Any]) -> None:
    """Cancel a step and wait for it to stop: its undo must not race it. (``wait``, not
    ``await task``: a shutdown cancelling this worker meanwhile must not be swallowed.)"""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: the step's own error no longer matters


def _workflow_changed(workflow: str, gone: list[str]) -> WorkflowChanged:
    names = ", ".join(gone)
    return WorkflowChanged(
        f"this job was queued with step(s) {names}, which {workflow} no longer has; "
        "submit a new job to run the workflow as it is now"
    )


def _result(ctx: StepContext) -> dict[str, Any]:
    """The parts of the step outputs a person looks at first."""
    out: dict[str, Any] = {"device": ctx.device.name, "status": ctx.device.status.value}
    for key in HEALTH_STEPS:
        if key in ctx.outputs:
            out["checks"] = ctx.outputs[key].get(HealthKey.CHECKS, [])
            out["overall"] = ctx.outputs[key].get(HealthKey.OVERALL)
    validate = ctx.outputs.get(StepName.VALIDATE, {})
    if ValidateKey.REDUNDANCY in validate:
        out["redundancy"] = validate[ValidateKey.REDUNDANCY]
    if StepName.VERIFY_DRAIN in ctx.outputs:
        drain = ctx.outputs[StepName.VERIFY_DRAIN]
        out["drain"] = {
            k: drain.get(k) for k in (DrainKey.SECONDS, DrainKey.RESIDUAL_PPS, DrainKey.LIMIT_PPS)
        }
    if StepName.COMPARE in ctx.outputs:
        out["diff"] = ctx.outputs[StepName.COMPARE]
    if StepName.VERDICT in ctx.outputs:
        out["verdict"] = ctx.outputs[StepName.VERDICT]
    return out
