"""Workers: claim a job's lease, run its steps in order, keep the lease alive, and finish it.

At-least-once: a step that was running when its worker died runs again on the worker that
takes the job over, so every step is idempotent. Everything a worker writes is fenced by the
lease epoch it claimed with (``StepContext.fenced``), so a worker that lost its lease cannot
change anything.
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

from pitstop.domain.errors import PitstopError
from pitstop.domain.jobs import JobStatus, Level, StepStatus
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.parameters import resolve
from pitstop.domain.roles import Actor, Role, Via
from pitstop.drivers.registry import DriverRegistry
from pitstop.engine.context import Sleep, StepContext, StepFailed
from pitstop.engine.workflows import compensate, steps_for
from pitstop.storage.jobs import LeaseLost
from pitstop.storage.journal import JobEnd, StepEnd
from pitstop.storage.store import Store

log = logging.getLogger("pitstop.engine")


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
            params = resolve(dict(fabric_params), dict(job.params.get("advanced_parameters", {})))
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
        lost = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(job_id, epoch, lost))
        try:
            await self._steps(ctx, lost)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            with contextlib.suppress(Exception):
                await driver.close()

    async def _fail_unopened(self, job_id: uuid.UUID, epoch: int, exc: Exception) -> None:
        """No driver, no way to touch the device: fail the job. A device caught half-way
        (draining, undraining) is in an uncertain state and goes to error."""
        code = exc.code if isinstance(exc, PitstopError) else "INTERNAL"
        detail = exc.detail if isinstance(exc, PitstopError) else str(exc)
        message = f"{code}: cannot start: {detail}"

        async with self.store.unit() as u:
            row = await u.jobs.fence(job_id, epoch)
            job = await u.jobs.get(job_id)
            device = await u.devices.get(job.device_id)
            if device.status in (DeviceStatus.DRAINING, DeviceStatus.UNDRAINING):
                await u.devices.change_status(
                    device.id,
                    target=DeviceStatus.ERROR,
                    actor=Actor(name=job.created_by, role=Role.ENGINE),
                    via=Via.ENGINE,
                    reason=message,
                    job_id=job_id,
                    attention_reason=message,
                )
            await u.jobs.add_event(job_id, level=Level.ERROR, message=message, device=device.name)
            await u.jobs.finish(row, status=JobStatus.FAILED, result={}, error=message)

    async def _heartbeat(self, job_id: uuid.UUID, epoch: int, lost: asyncio.Event) -> None:
        # Real time on purpose: leases are about wall-clock liveness of this process.
        interval = max(self.config.lease_ttl_s / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            ours = await self.store.leases.heartbeat(job_id, epoch=epoch, lease_ttl=self.ttl)
            if not ours:
                lost.set()
                return

    async def _steps(self, ctx: StepContext, lost: asyncio.Event) -> None:
        job = ctx.job
        defs = steps_for(job.type, job.mode)
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
        for idx, (step_def, step) in enumerate(zip(defs, job.steps, strict=True)):
            if step.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
                ctx.outputs[step.name] = step.output
                continue
            if lost.is_set():
                raise LeaseLost("heartbeat found the lease taken over")
            pct = round(100 * done / total)
            row = await ctx.boundary(
                ended=ended, progress=pct if ended else None, start=(idx, step.name)
            )
            ctx.step = step.name
            if row.cancel_requested:
                await self._finish_undone(
                    ctx, at_step=step.name, cancelled=True, reason="cancelled"
                )
                return
            try:
                output = await self._timed(
                    ctx, step_def.run, step_def.expected_s, step_def.timeout_s
                )
            except LeaseLost:
                raise
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
        self, ctx: StepContext, run: Any, expected_s: float, timeout_s: float
    ) -> dict[str, Any]:
        task = asyncio.ensure_future(run(ctx))
        warn_after = 2 * expected_s
        try:
            done, _ = await asyncio.wait({task}, timeout=warn_after)
            if not done:
                await ctx.warn(
                    f"step {ctx.step} is taking longer than twice its expected {expected_s:g} s"
                )
                await ctx.flush()  # operators watching live see the warning now
                done, _ = await asyncio.wait({task}, timeout=max(timeout_s - warn_after, 0))
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                raise StepFailed(f"step {ctx.step} timed out after {timeout_s:g} s")
            result: dict[str, Any] = task.result()
            return result
        finally:
            if not task.done():
                task.cancel()

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
        undone = await compensate(ctx, at_step=at_step, cancelled=cancelled)
        await ctx.log(Level.WARNING if cancelled else Level.ERROR, undone)
        result = {**_result(ctx), "failed_step": at_step, "undo": undone}
        status = JobStatus.CANCELLED if cancelled else JobStatus.FAILED
        await ctx.boundary(finish=JobEnd(status, result, reason))


def _result(ctx: StepContext) -> dict[str, Any]:
    """The parts of the step outputs a person looks at first."""
    out: dict[str, Any] = {"device": ctx.device.name, "status": ctx.device.status.value}
    for key in ("health", "post_health"):
        if key in ctx.outputs:
            out["checks"] = ctx.outputs[key].get("checks", [])
            out["overall"] = ctx.outputs[key].get("overall")
    if "validate" in ctx.outputs and "redundancy" in ctx.outputs["validate"]:
        out["redundancy"] = ctx.outputs["validate"]["redundancy"]
    if "verify_drain" in ctx.outputs:
        drain = ctx.outputs["verify_drain"]
        out["drain"] = {k: drain.get(k) for k in ("seconds", "residual_pps", "limit_pps")}
    if "compare" in ctx.outputs:
        out["diff"] = ctx.outputs["compare"]
    if "verdict" in ctx.outputs:
        out["verdict"] = ctx.outputs["verdict"]
    return out
