"""One tick of a campaign, device by device: from what the driver read (the campaign, its
devices, their jobs, the fleet's statuses, the commands under way) to what it must write and
submit. The campaign-level flow (validation, failure policy, rollback) is ``campaign_flow``.

No I/O here: a tick yields a ``Tick`` (device updates, log events, a new campaign state,
jobs to submit or cancel, commands to start) and the driver applies it. Phases per device:
``pending → entering (activate job) → action | awaiting_approval → exiting (deactivate job)
→ soaking → done``, or ``failed`` / ``skipped``; on rollback, ``rolling_back → rolled_back``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pitstop.domain.campaign_estimates import dispatch_order
from pitstop.domain.campaign_records import Campaign, CampaignDevice
from pitstop.domain.campaign_window import (
    HOLDS_GROUPS,
    WindowDevice,
    blocked,
    next_devices,
    used_slots,
)
from pitstop.domain.campaigns import ActionKind, CampaignSpec, CampaignState
from pitstop.domain.campaigns import DeviceState as S
from pitstop.domain.inventory import Device
from pitstop.domain.jobs import Job, JobStatus, Level
from pitstop.domain.lifecycle import UNAVAILABLE, DeviceStatus
from pitstop.domain.policy import FabricPolicy
from pitstop.engine.campaign_actions import ActionResult, device_fields, render, run_command

C = CampaignState
ROLE_GROUP = "role:"


@dataclass(frozen=True, slots=True)
class Submission:
    position: int
    device: str
    device_id: uuid.UUID
    kind: str  # test_run | activate | deactivate | cancel
    job_id: uuid.UUID | None = None
    retry_state: S = S.PENDING
    # A rollback's deactivation also puts back the configuration the diversion left, undoing
    # what the action changed (``undrain.revert_config``).
    revert_config: bool = False


@dataclass
class Tick:
    updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    state: CampaignState | None = None
    error: str | None = None
    submissions: list[Submission] = field(default_factory=list)
    start_actions: dict[int, Coroutine[Any, Any, ActionResult]] = field(default_factory=dict)
    forget_actions: list[int] = field(default_factory=list)


def role_slots(policy: FabricPolicy, roles: Sequence[str]) -> dict[str, int]:
    """The slots of each capped role's pool, counted as the budget reservation counts them:
    every device of the role in the fabric (``storage/budgets.py``)."""
    counts = Counter(roles)
    return {
        ROLE_GROUP + role: cap.slots(counts[role])
        for role, cap in policy.role_budgets.items()
        if counts[role]
    }


def slots_and_use(
    *, budgets: Mapping[str, int], fleet: Sequence[Device], holding: set[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Each group's slots and the slots taken now; a ``role:`` group keeps one in service."""
    members: dict[str, list[str]] = {}
    for f in fleet:
        if f.status in (DeviceStatus.PENDING, DeviceStatus.DECOMMISSIONED):
            continue
        for g in (*f.groups, ROLE_GROUP + f.role):
            members.setdefault(g, []).append(f.name)
    slots = {g: budgets.get(g, 0) for g in members}
    for g, names in members.items():
        if g.startswith(ROLE_GROUP):
            # The fabric's role budget, where it has one, and never the last of the role.
            slots[g] = min(len(names) - 1, budgets.get(g, len(names)))
    unavailable = {f.name for f in fleet if f.status in UNAVAILABLE}
    return slots, used_slots(members=members, unavailable=unavailable, holding=holding)


class Decision:
    """The device phases of one tick, collecting what to write into ``t``."""

    def __init__(
        self,
        campaign: Campaign,
        spec: CampaignSpec,
        devices: Sequence[CampaignDevice],
        jobs: Mapping[uuid.UUID | None, Job],
        fleet: Sequence[Device],
        actions: Mapping[int, ActionResult | None],
        now: datetime,
    ) -> None:
        self.c, self.spec, self.jobs, self.actions, self.now = campaign, spec, jobs, actions, now
        self.devices = list(devices)
        self.state = {d.position: d.state for d in devices}
        self.fleet = {f.name: f for f in fleet}
        self.fleet_list = list(fleet)
        self.t = Tick()

    # Writing helpers ---------------------------------------------------------------------

    def set(self, d: CampaignDevice, **values: Any) -> None:
        if "state" in values:
            self.state[d.position] = values["state"]
            values.setdefault("phase_started_at", self.now)
            values.setdefault("hang_warned", False)
        self.t.updates.setdefault(d.position, {}).update(values)

    def log(self, level: Level, message: str, device: str | None = None, **data: Any) -> None:
        self.t.events.append({"level": level, "message": message, "device": device, "data": data})

    def submit(self, d: CampaignDevice, kind: str, state: S, retry: S = S.PENDING) -> None:
        self.set(d, state=state, step=f"submitting {kind}", job_id=None)
        revert = kind == "deactivate" and state is S.ROLLING_BACK
        self.t.submissions.append(
            Submission(d.position, d.name, d.device_id, kind, None, retry, revert_config=revert)
        )

    def fail(self, d: CampaignDevice, why: str) -> None:
        self.set(d, state=S.FAILED, step=None, finished_at=self.now, error=why)
        self.log(Level.ERROR, f"{d.name} failed: {why}", d.name)

    def hang(self, d: CampaignDevice, expected_s: float, phase: str) -> None:
        started = d.phase_started_at
        if d.hang_warned or started is None:
            return
        elapsed = (self.now - started).total_seconds()
        # A device known to be slow (its pace from earlier campaigns) is expected to be slow.
        slower = max(1.0, d.pace or 1.0)
        if elapsed > 2 * expected_s * slower:
            self.set(d, hang_warned=True)
            known = f" (its pace is {slower:.2g}x from earlier campaigns)" if slower > 1 else ""
            self.log(
                Level.WARNING,
                f"{phase} on {d.name} has taken {elapsed:.0f} s, more than twice the "
                f"expected {expected_s * slower:g} s{known}",
                d.name,
            )

    # Phases ------------------------------------------------------------------------------

    def job_phase(self, d: CampaignDevice, kind: str, expected_s: float) -> Job | None:
        """The finished job of this phase, or None while there is none yet."""
        job = self.jobs.get(d.job_id) if d.job_id else None
        if job is None:
            if not (d.step or "").startswith("submitting"):
                self.submit(d, kind, d.state)  # its submission was lost: submit again
            return None
        if not job.status.finished:
            if job.current_step and d.step != f"{kind}: {job.current_step}":
                self.set(d, step=f"{kind}: {job.current_step}")
            self.hang(d, expected_s, kind)
            return None
        return job

    def entered(self, d: CampaignDevice) -> None:
        kind = self.spec.action.kind
        if self.c.state in (C.ABORTING, C.ROLLING_BACK):
            self.set(d, state=S.ACTION, step="in maintenance", job_id=None)
            if self.c.state is C.ABORTING:
                self.submit(d, "deactivate", S.EXITING, retry=S.EXITING)
        elif kind is ActionKind.NONE:
            self.submit(d, "deactivate", S.EXITING, retry=S.EXITING)
        elif kind in (ActionKind.RUN, ActionKind.COMMAND):
            self.set(d, state=S.ACTION, step="command", job_id=None)
            self.start_command(d, self.spec.action.command, "command")
        else:
            self.set(d, state=S.AWAITING_APPROVAL, step="awaiting approval", job_id=None)
            self.log(
                Level.INFO,
                f"{d.name} is in maintenance and awaits approval: Approve on the campaign's "
                f"page, or pitstop campaign approve {self.c.name} {d.name}",
                d.name,
            )

    def start_command(self, d: CampaignDevice, template: Sequence[str], what: str) -> None:
        device = self.fleet.get(d.name)
        try:
            assert device is not None, f"{d.name} is no longer in the fabric"
            argv = render(template, device_fields(device, campaign=self.c.name))
        except (ValueError, AssertionError) as exc:
            self.t.start_actions[d.position] = _failed(str(exc))
            return
        self.log(Level.INFO, f"{what} on {d.name}: {' '.join(argv)}", d.name, argv=argv)
        self.t.start_actions[d.position] = run_command(argv, timeout_s=self.spec.action.timeout_s)

    def action_result(self, d: CampaignDevice) -> ActionResult | None:
        """The command's result once it ended; starts it when it is not running here (a new
        driver after a restart runs it again: at least once)."""
        if d.position not in self.actions:
            what = "undo" if d.state is S.ROLLING_BACK else "command"
            template = self.spec.action.undo if what == "undo" else self.spec.action.command
            self.log(Level.WARNING, f"{what} on {d.name} was cut off: running it again", d.name)
            self.start_command(d, template, what)
            return None
        result = self.actions[d.position]
        if result is None:
            self.hang(d, self.spec.expected.action_s, "the command")
            return None
        self.t.forget_actions.append(d.position)
        level = Level.INFO if result.ok else Level.ERROR
        self.log(
            level,
            f"command {result.detail}",
            d.name,
            exit_code=result.exit_code,
            output=result.output,
        )
        return result

    def advance(self, d: CampaignDevice) -> None:
        st = self.state[d.position]
        exp = self.spec.expected
        if st is S.ENTERING:
            job = self.job_phase(d, "activate", exp.enter_s)
            if job is None:
                return
            if job.status is JobStatus.SUCCEEDED:
                self.entered(d)
            elif job.status is JobStatus.CANCELLED and self.c.state is C.ABORTING:
                self.set(d, state=S.SKIPPED, step=None, finished_at=self.now, error="aborted")
            else:
                self.fail(d, f"entering maintenance failed (job {job.id}): {job.error}")
        elif st is S.ACTION:
            if d.step == "in maintenance":
                return
            if self.c.state is C.ROLLING_BACK and d.position not in self.actions:
                # Cut off by a restart during a rollback: never start the change again.
                self.set(d, step="in maintenance")
                return
            result = self.action_result(d)
            if result is None:
                return
            if not result.ok:
                self.fail(d, f"command {result.detail}; left in maintenance for inspection")
                return
            self.set(d, action_ran=True, result=f"command {result.detail}")
            if self.c.state is C.ROLLING_BACK:
                self.set(d, step="in maintenance")
            else:
                self.submit(d, "deactivate", S.EXITING, retry=S.EXITING)
        elif st is S.AWAITING_APPROVAL:
            if d.approved_by or self.c.state is C.ABORTING:
                self.submit(d, "deactivate", S.EXITING, retry=S.EXITING)
            else:
                self.hang(d, exp.action_s, "approval")
        elif st is S.EXITING:
            job = self.job_phase(d, "deactivate", exp.exit_s)
            if job is None:
                return
            if job.status is not JobStatus.SUCCEEDED:
                self.fail(d, f"leaving maintenance failed (job {job.id}): {job.error}")
            elif self.spec.soak_s > 0:
                until = self.now + timedelta(seconds=self.spec.soak_s)
                self.set(
                    d, state=S.SOAKING, step=f"soaking {self.spec.soak_s:g} s", soak_until=until
                )
            else:
                self.done(d)
        elif st is S.SOAKING and d.soak_until is not None and self.now >= d.soak_until:
            self.done(d)

    def done(self, d: CampaignDevice) -> None:
        self.set(d, state=S.DONE, step=None, finished_at=self.now, result=d.result or "ok")

    # The campaign ------------------------------------------------------------------------

    def window(self) -> list[WindowDevice]:
        return [
            WindowDevice(d.name, d.role, d.groups, self.state[d.position], d.after, d.canary)
            for d in self.devices
        ]

    def start_next(self, budgets: Mapping[str, int]) -> None:
        by_name = {d.name: d for d in self.devices}
        for name in blocked(self.window()):
            d = by_name[name]
            self.set(d, state=S.SKIPPED, finished_at=self.now, error="a dependency did not finish")
            self.log(Level.WARNING, f"{name} skipped: a dependency failed or was skipped", name)
        holding = {d.name for d in self.devices if self.state[d.position] in HOLDS_GROUPS}
        slots, used = slots_and_use(budgets=budgets, fleet=self.fleet_list, holding=holding)
        # The plan's order, refined by the durations measured on the devices done so far.
        measured = {
            d.name: took
            for d in self.devices
            if self.state[d.position] is S.DONE and (took := d.duration_s(self.now)) is not None
        }
        e = self.spec.expected
        chosen = next_devices(
            dispatch_order(
                self.window(),
                measured=measured,
                expected_s=e.enter_s + e.action_s + e.exit_s,
                slots=slots,
                concurrency=self.spec.concurrency,
                pace={d.name: d.pace for d in self.devices if d.pace is not None},
            ),
            roles_before=self.c.plan.get("roles_before", {}),
            concurrency=self.spec.concurrency,
            slots=slots,
            used=used,
        )
        for name in chosen:
            d = by_name[name]
            self.submit(d, "activate", S.ENTERING)
            self.set(d, started_at=self.now, finished_at=None, error=None)

    def skip_pending(self, why: str) -> None:
        for d in self.devices:
            if self.state[d.position] is S.PENDING:
                self.set(d, state=S.SKIPPED, finished_at=self.now, error=why)

    def finish(self, state: CampaignState, error: str | None = None) -> None:
        self.t.state, self.t.error = state, error
        self.log(
            Level.INFO if state is C.SUCCEEDED else Level.WARNING,
            f"campaign {state.value}" + (f": {error}" if error else ""),
        )


async def _failed(detail: str) -> ActionResult:
    return ActionResult(False, None, "", detail)
