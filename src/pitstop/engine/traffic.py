"""Steps that move traffic: divert, verify the drain by measurement, restore, verify restore,
and compare the device with its pre-maintenance snapshot."""

from __future__ import annotations

from typing import Any

from pitstop.domain.errors import PitstopError
from pitstop.domain.metrics import Snapshot
from pitstop.domain.snapshots import diff
from pitstop.domain.step_outputs import DrainKey
from pitstop.engine.codec import health_from_json, rates_from_json, snapshot_from_json
from pitstop.engine.config_check import this_maintenance
from pitstop.engine.context import StepContext, StepFailed


async def apply_diversion(ctx: StepContext) -> dict[str, Any]:
    result = await ctx.driver.apply_maintenance(method=ctx.params.drain.method, options={})
    verb = "applied" if result.changed else "already in place"
    await ctx.info(f"diversion {result.method} {verb}", changed=result.changed)
    return {"changed": result.changed, "method": result.method, "detail": result.detail}


async def divert(ctx: StepContext) -> dict[str, Any]:
    """The activation's step: apply the diversion, and keep the configuration it left, what
    the device should hold when it leaves maintenance (``config_check``)."""
    applied = await apply_diversion(ctx)
    try:
        config: str | None = await ctx.driver.backup_config()
    except PitstopError as exc:
        # The diversion is in place: failing the step now would undo it unverified. Without
        # the record, leaving maintenance can only report that nothing was compared.
        await ctx.warn(f"the configuration after the diversion could not be read: {exc}")
        config = None
    return {**applied, "config": config}


async def verify_drain(ctx: StepContext) -> dict[str, Any]:
    """Measure until transit traffic is under ``drain.max_residual_pps`` (or the driver says
    drained). Fails when ``drain.timeout_s`` passes first, counted from the step's first start:
    a drain is never assumed, and a takeover does not give it the time again."""
    limit = ctx.params.drain.max_residual_pps
    timeout = ctx.params.drain.timeout_s
    start = ctx.step_start()
    samples: list[dict[str, float]] = []
    while True:
        sample = await ctx.driver.traffic()
        elapsed = (ctx.clock() - start).total_seconds()
        samples.append({DrainKey.T: round(elapsed, 3), DrainKey.PPS: round(sample.transit_pps, 3)})
        await ctx.info(
            f"transit {sample.transit_pps:.1f} pps (limit {limit:g})",
            **{DrainKey.TRANSIT_PPS: sample.transit_pps, DrainKey.ELAPSED_S: elapsed},
        )
        if sample.transit_pps <= limit or sample.drained is True:
            await ctx.info(f"drained in {elapsed:.1f} s", drain_seconds=elapsed)
            return {
                DrainKey.SECONDS: elapsed,
                DrainKey.RESIDUAL_PPS: sample.transit_pps,
                DrainKey.LIMIT_PPS: limit,
                DrainKey.SAMPLES: samples[-120:],
            }
        if elapsed >= timeout:
            raise StepFailed(
                f"drain did not converge: {sample.transit_pps:.1f} pps after {elapsed:.1f} s "
                f"(limit {limit:g} pps within {timeout:g} s)",
                {
                    DrainKey.RESIDUAL_PPS: sample.transit_pps,
                    DrainKey.LIMIT_PPS: limit,
                    DrainKey.SAMPLES: samples[-120:],
                },
            )
        await ctx.flush()
        await ctx.sleep(ctx.params.drain.poll_interval_s)


async def restore(ctx: StepContext) -> dict[str, Any]:
    result = await ctx.driver.remove_maintenance(method=ctx.params.drain.method, options={})
    verb = "removed" if result.changed else "was not in place"
    await ctx.info(f"diversion {result.method} {verb}", changed=result.changed)
    return {"changed": result.changed, "method": result.method, "detail": result.detail}


async def verify_restored(ctx: StepContext) -> dict[str, Any]:
    """The driver's own check that the device carries traffic again or is eligible to (for
    BGP: its paths are valid and not de-preferred; it need not be best again). Its
    ``undrain.timeout_s`` counts from the step's first start (from now in an undo)."""
    timeout = ctx.params.undrain.timeout_s
    start = ctx.step_start()
    while True:
        check = await ctx.driver.verify_restored()
        elapsed = (ctx.clock() - start).total_seconds()
        if check.ok:
            traffic = await ctx.driver.traffic()
            await ctx.info(
                f"restored in {elapsed:.1f} s: {check.detail}",
                transit_pps=traffic.transit_pps,
            )
            return {"seconds": elapsed, "detail": check.detail, "transit_pps": traffic.transit_pps}
        if elapsed >= timeout:
            raise StepFailed(
                f"device not restored after {elapsed:.1f} s: {check.detail}",
                {"detail": check.detail},
            )
        await ctx.flush()
        await ctx.sleep(ctx.params.undrain.poll_interval_s)


async def compare(ctx: StepContext) -> dict[str, Any]:
    """Diff the post-maintenance state with the snapshot the activation took."""
    activation = await this_maintenance(ctx, "snapshot")
    if activation is None or not activation[1]:
        await ctx.warn("no pre-maintenance snapshot to compare with")
        return {"compared": False, "clean": None}
    activation_id, snapshot = activation
    pre = snapshot_from_json(snapshot)
    measured = ctx.outputs["post_health"]
    post = Snapshot(
        at=ctx.clock(),
        config=await ctx.driver.backup_config(),
        health=health_from_json(dict(measured["sample"])),
        rates=rates_from_json(list(measured.get("rates", []))),
    )
    checks = ctx.params.checks
    result = diff(
        pre,
        post,
        compare=ctx.params.compare,
        error_rate_limit=checks.interface_errors.max_per_s,
        drop_rate_limit=checks.interface_drops.max_per_s,
    )
    config_changed = pre.config != post.config
    if result.clean and not config_changed:
        await ctx.info("post-maintenance state matches the snapshot")
    else:
        summary = result.summary() + ("; config differs" if config_changed else "")
        await ctx.warn(f"differences from the snapshot: {summary}", diff=result.as_dict())
    return {
        "compared": True,
        "clean": result.clean and not config_changed,
        "config_changed": config_changed,
        "diff": result.as_dict(),
        "snapshot_job": str(activation_id),
    }
