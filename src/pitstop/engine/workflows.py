"""The workflows: which steps each job type runs, in order, and how each undoes itself when a
step fails or the job is cancelled.

``maintenance.activate``: validate → health → snapshot → mark_draining → divert → verify_drain
→ mark_maintenance. A test run stops after the health checks and gives a verdict; it changes
nothing. ``maintenance.deactivate``: validate → config_check → mark_undraining → restore →
verify_restored → post_health → compare → mark_activated (``config_check`` reports, or with
``undrain.revert_config`` reverts, what changed in the configuration during maintenance).
``healthcheck``: health → verdict.

The time limits here are the engine's defaults, for any device; a driver whose device needs
longer for a step declares it in its ``DriverProfile`` and the runner uses that instead.

The promise on failure: before the diversion the device stays activated; after it, activation
rolls back (unless ``rollback_on_failure`` is false); a failed deactivation puts the diversion
back and returns the device to maintenance; a failed rollback leaves it in ``error`` with
``needs_attention``. A device is never left draining or undraining without a running job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pitstop.domain.jobs import JobType, Mode, StepPlan
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.parameters import MAX_TIMEOUT_S
from pitstop.domain.step_outputs import StepName
from pitstop.engine import checks, config_check, traffic
from pitstop.engine.context import StepContext

StepFn = Callable[[StepContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class StepDef:
    name: str
    run: StepFn
    expected_s: float
    timeout_s: float

    def plan(self) -> StepPlan:
        return StepPlan(self.name, self.expected_s, self.timeout_s)


async def _mark(ctx: StepContext, status: DeviceStatus) -> dict[str, Any]:
    device = await ctx.set_status(status)
    return {"status": device.status.value, "version": device.version}


# The steps that poll stop themselves at their parameter's timeout (at most an hour); the
# minute more is for the last sample, so their own message, not this limit, ends them.
_POLLING_LIMIT_S = MAX_TIMEOUT_S + 60

ACTIVATE: tuple[StepDef, ...] = (
    StepDef(StepName.VALIDATE, checks.validate_activation, 1, 30),
    StepDef(StepName.HEALTH, checks.health, 6, 120),
    StepDef(StepName.SNAPSHOT, partial(checks.snapshot, health_step=StepName.HEALTH), 2, 120),
    StepDef("mark_draining", checks.mark_draining, 0.2, 30),
    StepDef("divert", traffic.divert, 2, 120),
    StepDef(StepName.VERIFY_DRAIN, traffic.verify_drain, 10, _POLLING_LIMIT_S),
    StepDef("mark_maintenance", partial(_mark, status=DeviceStatus.MAINTENANCE), 0.2, 30),
)

TEST_RUN: tuple[StepDef, ...] = (
    StepDef(StepName.VALIDATE, checks.validate_activation, 1, 30),
    StepDef(StepName.HEALTH, checks.health, 6, 120),
    StepDef(StepName.VERDICT, checks.verdict, 0.1, 30),
)

DEACTIVATE: tuple[StepDef, ...] = (
    StepDef(
        StepName.VALIDATE, partial(checks.validate_status, expected=DeviceStatus.MAINTENANCE), 1, 30
    ),
    # A driver whose restore takes longer declares it (``DriverProfile.step_timeouts``).
    StepDef("config_check", config_check.check_config, 2, 120),
    StepDef("mark_undraining", partial(_mark, status=DeviceStatus.UNDRAINING), 0.2, 30),
    StepDef("restore", traffic.restore, 2, 120),
    StepDef("verify_restored", traffic.verify_restored, 10, _POLLING_LIMIT_S),
    StepDef(StepName.POST_HEALTH, checks.health, 6, 120),
    StepDef(StepName.COMPARE, traffic.compare, 1, 120),
    StepDef("mark_activated", partial(_mark, status=DeviceStatus.ACTIVATED), 0.2, 30),
)

HEALTHCHECK: tuple[StepDef, ...] = (
    StepDef(StepName.HEALTH, checks.health, 6, 120),
    StepDef(StepName.VERDICT, checks.verdict, 0.1, 30),
)


def steps_for(job_type: JobType, mode: Mode | None) -> tuple[StepDef, ...]:
    if job_type is JobType.ACTIVATE:
        return TEST_RUN if mode is Mode.TEST_RUN else ACTIVATE
    if job_type is JobType.DEACTIVATE:
        return DEACTIVATE
    return HEALTHCHECK


def plans(job_type: JobType, mode: Mode | None) -> list[StepPlan]:
    return [s.plan() for s in steps_for(job_type, mode)]


# Undoing ---------------------------------------------------------------------------------

_ACTIVATE_UNDONE = ("mark_draining", "divert", "verify_drain", "mark_maintenance")
_DEACTIVATE_UNDONE = (
    "mark_undraining",
    "restore",
    "verify_restored",
    "post_health",
    "compare",
    "mark_activated",
)


async def _mark_undone(ctx: StepContext, names: Sequence[str]) -> None:
    await ctx.undo_steps(names)


async def _to_error(ctx: StepContext, why: str) -> str:
    await ctx.set_status(DeviceStatus.ERROR, reason=why, attention=why)
    return f"device set to error: {why}"


async def compensate(ctx: StepContext, *, at_step: str, cancelled: bool = False) -> str:
    """Undo what the job did, given the step it stopped at. Returns what was done, for the
    job's result. Idempotent: safe to run again after a takeover."""
    status = await ctx.current_status()
    if ctx.job.type is JobType.ACTIVATE and ctx.job.mode is not Mode.TEST_RUN:
        return await _undo_activate(ctx, status, at_step, cancelled=cancelled)
    if ctx.job.type is JobType.DEACTIVATE:
        return await _undo_deactivate(ctx, status, at_step)
    return "nothing to undo"


async def _undo_activate(
    ctx: StepContext, status: DeviceStatus, at_step: str, *, cancelled: bool
) -> str:
    if status is not DeviceStatus.DRAINING:
        return f"nothing to undo: the device is {status.value}"
    diverted = at_step not in ("mark_draining",)
    # rollback_on_failure keeps a failed drain diverted for inspection; a cancel is an
    # operator asking for the device back, so it always rolls back.
    keep = not ctx.params.rollback_on_failure and not cancelled
    if diverted and keep and at_step != "divert":
        return await _to_error(
            ctx,
            "activation failed after the diversion and rollback_on_failure is false: "
            "the diversion is still in place",
        )
    try:
        if diverted:
            await ctx.info("rolling back: removing the diversion")
            await traffic.restore(ctx)
            if at_step != "divert":
                await traffic.verify_restored(ctx)
        await ctx.set_status(DeviceStatus.ACTIVATED, reason="activation rolled back")
    except Exception as exc:  # any failure of the rollback leaves the device uncertain
        return await _to_error(ctx, f"rollback failed: {exc}")
    await _mark_undone(ctx, _ACTIVATE_UNDONE)
    return "rolled back: the diversion was removed and the device is activated"


async def _undo_deactivate(ctx: StepContext, status: DeviceStatus, at_step: str) -> str:
    if status is not DeviceStatus.UNDRAINING:
        return f"nothing to undo: the device is {status.value}"
    try:
        await ctx.info("putting the diversion back; the device returns to maintenance")
        await traffic.apply_diversion(ctx)
        await ctx.set_status(
            DeviceStatus.MAINTENANCE, reason="deactivation failed; back in maintenance"
        )
    except Exception as exc:  # the device's real state is now uncertain
        return await _to_error(ctx, f"could not put the diversion back: {exc}")
    await _mark_undone(ctx, _DEACTIVATE_UNDONE)
    return "the diversion is back in place and the device is in maintenance"
