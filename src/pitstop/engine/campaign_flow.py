"""A campaign's flow across its devices, one tick at a time: online validation (a test run on
every device before anything changes), the sliding window, the failure policy, abort, and
rollback (devices still in maintenance come back one at a time, the last in first out).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from pitstop.domain.campaign_records import Campaign, CampaignDevice
from pitstop.domain.campaigns import IN_FLIGHT, CampaignSpec, CampaignState
from pitstop.domain.campaigns import DeviceState as S
from pitstop.domain.inventory import Device
from pitstop.domain.jobs import Job, JobStatus, Level
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.engine.campaign_actions import ActionResult
from pitstop.engine.campaign_tick import Decision, Submission, Tick

C = CampaignState


def _validate(x: Decision) -> None:
    """Online validation: a test run (checks only, nothing changes) on every device."""
    finished: list[tuple[CampaignDevice, Job]] = []
    refused = [d for d in x.devices if d.state is S.FAILED]  # its test run was refused
    for d in x.devices:
        job = x.jobs.get(d.job_id) if d.job_id else None
        if d.state is S.FAILED:
            continue
        if job is None:
            if not (d.step or "").startswith("submitting"):
                x.set(d, step="submitting test_run", job_id=None, phase_started_at=x.now)
                x.t.submissions.append(Submission(d.position, d.name, d.device_id, "test_run"))
        elif job.status.finished:
            finished.append((d, job))
    if len(finished) + len(refused) < len(x.devices):
        return
    failed = [d for d, j in finished if j.status is not JobStatus.SUCCEEDED] + refused
    for d, j in finished:
        verdict = "pre-check passed" if j.status is JobStatus.SUCCEEDED else f"pre-check: {j.error}"
        x.set(d, job_id=None, step=None, result=verdict)
    if failed:
        failed.sort(key=lambda d: d.position)
        names = ", ".join(d.name for d in failed)
        x.finish(C.VALIDATION_FAILED, f"test runs failed on {len(failed)} device(s): {names}")
    else:
        x.t.state = C.RUNNING
        x.log(Level.INFO, f"test runs passed on all {len(x.devices)} devices; rolling")


def _rollback(x: Decision) -> None:
    """Devices still in maintenance come back one at a time, the last in first out."""
    x.skip_pending("rolled back before it started")
    for d in x.devices:
        st = x.state[d.position]
        if st in IN_FLIGHT and st is not S.ROLLING_BACK:
            x.advance(d)
    current = [d for d in x.devices if x.state[d.position] is S.ROLLING_BACK]
    for d in current:
        if d.step == "undo":
            result = x.action_result(d)
            if result is not None:
                x.submit(d, "deactivate", S.ROLLING_BACK, retry=S.ROLLING_BACK)
            return
        job = x.job_phase(d, "deactivate", x.spec.expected.exit_s)
        if job is None:
            return
        if job.status is JobStatus.SUCCEEDED:
            x.set(d, state=S.ROLLED_BACK, step=None, finished_at=x.now)
            x.log(Level.INFO, f"{d.name} is back in service (rolled back)", d.name)
        else:
            x.fail(d, f"rollback could not bring it back (job {job.id}): {job.error}")
        return
    busy = [
        d
        for d in x.devices
        if x.state[d.position] in IN_FLIGHT
        and not (x.state[d.position] is S.ACTION and d.step == "in maintenance")
        and x.state[d.position] is not S.AWAITING_APPROVAL
    ]
    if busy or x.t.submissions:
        return  # a job or command still under way finishes first
    held = [
        d
        for d in x.devices
        if x.state[d.position] in (S.ACTION, S.AWAITING_APPROVAL, S.FAILED)
        and (f := x.fleet.get(d.name)) is not None
        and f.status is DeviceStatus.MAINTENANCE
    ]
    if not held:
        x.finish(C.ROLLED_BACK)
        return
    d = max(held, key=lambda h: (h.started_at or x.now, h.position))
    undo = x.spec.action.undo if d.action_ran else ()
    config = (
        "action.undo runs first, then whatever still differs from the configuration the "
        "diversion left is put back"
        if undo
        else "whatever differs from the configuration the diversion left is put back before "
        "the diversion is removed"
    )
    x.log(Level.WARNING, f"rolling back {d.name}; config: {config}", d.name)
    if undo:
        x.set(d, state=S.ROLLING_BACK, step="undo", job_id=None)
        x.start_command(d, undo, "undo")
    else:
        x.submit(d, "deactivate", S.ROLLING_BACK, retry=S.ROLLING_BACK)


def decide(
    *,
    campaign: Campaign,
    spec: CampaignSpec,
    devices: Sequence[CampaignDevice],
    jobs: Mapping[uuid.UUID | None, Job],
    fleet: Sequence[Device],
    budgets: Mapping[str, int],
    actions: Mapping[int, ActionResult | None],
    now: datetime,
) -> Tick:
    x = Decision(campaign, spec, devices, jobs, fleet, actions, now)
    state = campaign.state
    if state is C.VALIDATING:
        _validate(x)
        return x.t
    if state is C.ROLLING_BACK:
        _rollback(x)
        return x.t
    for d in x.devices:
        x.advance(d)
    states = list(x.state.values())
    failures = sum(s is S.FAILED for s in states)
    canary_failed = any(d.canary and x.state[d.position] is S.FAILED for d in x.devices)
    policy = spec.failure_policy
    if state is C.RUNNING and (
        canary_failed or policy.tripped(failures=failures, total=len(states))
    ):
        why = "a canary failed" if canary_failed else f"{failures} failure(s); policy: {policy}"
        x.t.state = state = C.STOPPING
        x.log(Level.ERROR, f"stopping: {why}; devices under way finish, nothing new starts")
    if state is C.RUNNING:
        x.start_next(budgets)
    if state is C.ABORTING:
        x.skip_pending("aborted")
        for d in x.devices:
            job = x.jobs.get(d.job_id) if d.job_id else None
            st = x.state[d.position]
            if (
                st is S.ENTERING
                and job
                and not job.status.finished
                and d.step != "cancel requested"
            ):
                x.t.submissions.append(
                    Submission(d.position, d.name, d.device_id, "cancel", job.id, S.ENTERING)
                )
    if any(s in IN_FLIGHT for s in x.state.values()) or x.t.submissions:
        return x.t
    pending = sum(s is S.PENDING for s in x.state.values())
    failures = sum(s is S.FAILED for s in x.state.values())
    if state is C.RUNNING and not pending:
        note = f"{failures} device(s) failed, within the failure policy" if failures else None
        x.finish(C.SUCCEEDED, note)
    elif state is C.STOPPING:
        x.skip_pending("the campaign stopped")
        x.finish(C.FAILED, f"{failures} device(s) failed; policy: {policy}")
    elif state is C.ABORTING:
        x.finish(C.ABORTED)
    return x.t
