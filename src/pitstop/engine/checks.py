"""Steps shared by the workflows: validation, health checks, snapshots, verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pitstop.domain.budgets import ROLE_PREFIX
from pitstop.domain.health import CheckResult, CheckStatus, evaluate, interface_rates, overall
from pitstop.domain.inventory import Budget
from pitstop.domain.jobs import JobType, Level, Mode
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.metrics import Snapshot
from pitstop.domain.redundancy import GroupState, Member, check_redundancy
from pitstop.domain.standing import Standing
from pitstop.domain.step_outputs import HealthKey, StepName, ValidateKey, VerdictKey
from pitstop.engine.codec import health_from_json, health_to_json, rates_to_json
from pitstop.engine.context import StepContext, StepFailed


def _results(results: list[CheckResult]) -> list[dict[str, Any]]:
    return [r.as_dict() for r in results]


async def validate_status(ctx: StepContext, expected: DeviceStatus) -> dict[str, Any]:
    status = await ctx.current_status()
    if status is not expected:
        raise StepFailed(
            f"{ctx.device.name} is {status.value}; this workflow starts from {expected.value}",
            {"status": status.value},
        )
    return {"status": status.value}


def _judged(
    *,
    device: str,
    role: str,
    same_role: Sequence[Member],
    groups: Sequence[GroupState],
    cap: Budget | None,
) -> list[CheckResult]:
    # The fabric's role budget is checked like one more group, so a test run reports it too.
    states = list(groups)
    if cap is not None:
        states.append(GroupState(f"{ROLE_PREFIX}{role}", cap, tuple(same_role)))
    return check_redundancy(device=device, role=role, same_role=same_role, groups=states)


def _standing_results(standing: Standing) -> list[CheckResult]:
    return _judged(
        device=standing.device,
        role=standing.role,
        same_role=standing.same_role,
        groups=[GroupState(p.name, p.budget, p.members) for p in standing.groups],
        cap=standing.policy.role_budget(standing.role),
    )


async def _redundancy(ctx: StepContext) -> list[CheckResult]:
    """The redundancy check on the rows as they are now (a validation step)."""
    return _standing_results(await ctx.store.writes.standing(ctx.device))


def _refuse_unredundant(standing: Standing) -> None:
    """The redundancy check on the rows the draining transition locked and read."""
    failed = [r for r in _standing_results(standing) if r.status is CheckStatus.FAIL]
    if failed:
        raise StepFailed("; ".join(r.message for r in failed), {"redundancy": _results(failed)})


async def mark_draining(ctx: StepContext) -> dict[str, Any]:
    """Take the device out of its groups' capacity. In one transaction, under the fabric's
    lock (``storage/transitions.py``): redundancy is checked again (unless switched off), the
    budget slots are reserved and the status changes, so two activations that both passed
    validation can never both take a group past its budget. A device already draining (an
    earlier run of this step) is left as is."""
    enabled = ctx.params.checks.redundancy.enabled
    await ctx.set_status(DeviceStatus.DRAINING, judge=_refuse_unredundant if enabled else None)
    return {"status": ctx.device.status.value, "version": ctx.device.version}


async def validate_activation(ctx: StepContext) -> dict[str, Any]:
    """The device is activated, and taking it out keeps redundancy (unless switched off)."""
    status = await ctx.current_status()
    problems: list[str] = []
    if status is not DeviceStatus.ACTIVATED:
        problems.append(f"{ctx.device.name} is {status.value}, not activated")
    results: list[CheckResult] = []
    if ctx.params.checks.redundancy.enabled:
        results = await _redundancy(ctx)
        problems += [r.message for r in results if r.status is CheckStatus.FAIL]
    for r in results:
        level = "fail" if r.status is CheckStatus.FAIL else "ok"
        await ctx.info(f"redundancy {level}: {r.message}", check=r.as_dict())
    output = {
        "status": status.value,
        ValidateKey.REDUNDANCY: _results(results),
        ValidateKey.PROBLEMS: problems,
    }
    if problems and ctx.job.mode is not Mode.TEST_RUN:
        raise StepFailed("; ".join(problems), output)
    return output


async def health(ctx: StepContext) -> dict[str, Any]:
    """Two samples ``sample_interval_s`` apart: absolute checks on the second, rates between."""
    first = await ctx.driver.health()
    await ctx.sleep(ctx.params.sample_interval_s)
    second = await ctx.driver.health()
    if second.at <= first.at:
        second_or_none = None  # no window to take rates over
        rates: tuple[Any, ...] = ()
    else:
        second_or_none = second
        rates = interface_rates(first, second)
    results = evaluate(first, second_or_none, ctx.params, ctx.driver.capabilities.profile)
    verdict = overall(results)
    for r in results:
        if r.status is CheckStatus.SKIP:
            continue
        await ctx.log(
            _LEVEL[r.status],
            f"{r.check} {r.status.value}: {r.message}",
            {"check": r.as_dict()},
        )
    output = {
        HealthKey.CHECKS: _results(results),
        HealthKey.OVERALL: verdict.value,
        HealthKey.SAMPLE: health_to_json(second),
        HealthKey.RATES: rates_to_json(rates),
    }
    # Test runs and standalone health checks measure everything and let the verdict decide.
    aborting = (
        ctx.params.health_check_abort
        and ctx.job.mode is not Mode.TEST_RUN
        and ctx.job.type is not JobType.HEALTHCHECK
    )
    if verdict is CheckStatus.FAIL and aborting:
        failed = [r.check for r in results if r.status is CheckStatus.FAIL]
        raise StepFailed(f"health checks failed: {', '.join(failed)}", output)
    return output


_LEVEL = {
    CheckStatus.PASS: Level.INFO,
    CheckStatus.WARN: Level.WARNING,
    CheckStatus.FAIL: Level.ERROR,
    CheckStatus.SKIP: Level.DEBUG,
}


async def snapshot(ctx: StepContext, health_step: str) -> dict[str, Any]:
    """Config backup plus the operational state the health step measured."""
    config = await ctx.driver.backup_config()
    measured = ctx.outputs[health_step]
    snap = Snapshot(
        at=ctx.clock(),
        config=config,
        health=health_from_json(dict(measured["sample"])),
    )
    await ctx.info(
        f"snapshot taken: {len(config.splitlines())} config lines, "
        f"{len(snap.health.bgp_peers)} BGP peers, {len(snap.health.interfaces)} interfaces",
    )
    return {
        "at": snap.at.isoformat(),
        "config": config,
        "health": measured["sample"],
        "rates": measured.get("rates", []),
    }


async def verdict(ctx: StepContext) -> dict[str, Any]:
    """Would activation go ahead? Fails the job when it would not (test runs, health checks)."""
    problems: list[str] = []
    validation = ctx.outputs.get(StepName.VALIDATE, {})
    problems += list(validation.get(ValidateKey.PROBLEMS, []))
    measured = ctx.outputs.get(StepName.HEALTH, {})
    failed = [c["check"] for c in measured.get(HealthKey.CHECKS, []) if c["status"] == "fail"]
    warned = [c["check"] for c in measured.get(HealthKey.CHECKS, []) if c["status"] == "warn"]
    if failed and (ctx.params.health_check_abort or ctx.job.type is JobType.HEALTHCHECK):
        problems.append(f"health checks failed: {', '.join(failed)}")
    output = {
        VerdictKey.PROBLEMS: problems,
        VerdictKey.WARNINGS: warned,
        VerdictKey.PASSED: not problems,
    }
    if problems:
        raise StepFailed("; ".join(problems), output)
    await ctx.info("all checks passed" + (f" (warnings: {', '.join(warned)})" if warned else ""))
    return output
