"""The deactivation's first look at the device: did its configuration change while it was in
maintenance, and, when asked, put back the one it had right after the diversion.

The activation's ``divert`` step keeps the configuration the diversion left. Whatever differs
from it when the device is about to leave maintenance was changed in maintenance: by the
work itself (an upgrade, a person at the console, a campaign's command). By default the
change is reported, with the lines that differ, and kept: it is usually the point of the
maintenance. With ``undrain.revert_config`` (a campaign's rollback sets it) the driver puts
the recorded configuration back before the diversion is removed, so traffic never returns to
a configuration nobody verified; the diversion is then removed as usual and the final
comparison with the pre-maintenance snapshot shows what is left.
"""

from __future__ import annotations

import difflib
import uuid
from typing import Any

from pitstop.domain.jobs import JobType
from pitstop.drivers.base import ConfigRestorer
from pitstop.engine.context import StepContext, StepFailed

# Diff lines kept in the step's output and log; the whole configuration is in the snapshot.
MAX_DIFF_LINES = 200


def changed_lines(before: str, after: str) -> list[str]:
    """The unified diff from ``before`` to ``after``, without its headers, bounded."""
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    body = [ln for ln in diff if not ln.startswith(("---", "+++", "@@"))]
    return body[:MAX_DIFF_LINES]


async def this_maintenance(ctx: StepContext, step: str) -> tuple[uuid.UUID, dict[str, Any]] | None:
    """The output of ``step`` in the activation job that put the device into its *current*
    maintenance; None when there is none. An activation that ended before the device last
    entered maintenance belongs to an earlier one (the device was put back in maintenance by
    hand since), and its records say nothing of the device now."""
    found = await ctx.store.journal.last_step_output(ctx.device.id, JobType.ACTIVATE, step)
    if found is None:
        return None
    entered = ctx.device.maintenance.entered_at
    async with ctx.store.unit() as u:
        job = await u.jobs.get(found[0])
    if entered is not None and job.finished_at is not None and job.finished_at < entered:
        return None
    return found


async def check_config(ctx: StepContext) -> dict[str, Any]:
    found = await this_maintenance(ctx, "divert")
    expected = found[1].get("config") if found is not None and found[1] else None
    if not isinstance(expected, str):
        if ctx.params.undrain.revert_config:
            # Asked to revert, unable to: traffic must not return to a configuration that
            # was asked to be put back and was not.
            raise StepFailed(
                f"{ctx.device.name}: undrain.revert_config was asked for, but no configuration "
                "was recorded when this maintenance began; the device stays in maintenance "
                "(leave maintenance without revert_config to keep its configuration)",
                {"compared": False},
            )
        await ctx.warn(
            "no configuration was recorded when this maintenance began: nothing to compare with"
        )
        return {"compared": False}
    current = await ctx.driver.backup_config()
    if current == expected:
        await ctx.info("the configuration is as the diversion left it")
        return {"compared": True, "changed": False, "reverted": False}
    diff = changed_lines(expected, current)
    if not ctx.params.undrain.revert_config:
        await ctx.warn(
            f"the configuration changed in maintenance ({len(diff)} lines); kept "
            "(undrain.revert_config is off)",
            diff=diff,
        )
        return {"compared": True, "changed": True, "reverted": False, "diff": diff}
    driver = ctx.driver
    if not isinstance(driver, ConfigRestorer):
        raise StepFailed(
            f"{ctx.device.name}: the configuration changed in maintenance and the "
            f"{ctx.device.driver} driver cannot restore one; the device stays in maintenance",
            {"compared": True, "changed": True, "reverted": False, "diff": diff},
        )
    result = await driver.restore_config(expected)
    await ctx.info(
        f"the configuration changed in maintenance ({len(diff)} lines) and was reverted: "
        f"{result.detail}",
        diff=diff,
    )
    return {
        "compared": True,
        "changed": True,
        "reverted": True,
        "detail": result.detail,
        "diff": diff,
        "snapshot_job": str(found[0]) if found else None,
    }
