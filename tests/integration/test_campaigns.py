"""Campaigns end to end on the demo fleet (simulated driver, fake clock), on SQLite and
PostgreSQL: the sliding window within the groups' budgets, online validation, each action
kind, a failure under each policy, pause and resume, abort, and rollback."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

import pytest
from campaign_support import Rollout, counts
from engine_support import ALICE, Engine, build_engine

from pitstop.domain.campaigns import CampaignState
from pitstop.domain.errors import CampaignInvalid, CampaignStateConflict
from pitstop.domain.inventory import Budget
from pitstop.domain.jobs import JobType
from pitstop.domain.roles import Via
from pitstop.storage.store import Store

C = CampaignState
# What cannot differ between the databases (the policy arithmetic, the action kinds) runs
# once, on SQLite; the storage and driving paths run on both.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def rollout(store: Store, clock: Any) -> Rollout:
    engine: Engine = await build_engine(store, clock)
    return Rollout(engine)


async def test_leaves_roll_within_their_mlag_budgets(rollout: Rollout) -> None:
    await rollout.create(concurrency=3)
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.SUCCEEDED, campaign.error
    states = await rollout.states()
    assert states == dict.fromkeys([f"leaf{i}" for i in range(1, 7)], "done")
    for pair in (["leaf1", "leaf2"], ["leaf3", "leaf4"], ["leaf5", "leaf6"]):
        assert await rollout.max_out_at_once(pair) == 1
    assert 1 < await rollout.max_out_at_once([f"leaf{i}" for i in range(1, 7)]) <= 3
    for name in states:
        assert (await rollout.engine.device(name)).status.value == "activated"


LEAVES = [f"leaf{i}" for i in range(1, 7)]


async def _out_of_service(rollout: Rollout) -> list[str]:
    out = []
    for name in LEAVES:
        if (await rollout.engine.device(name)).status.value != "activated":
            out.append(name)
    return out


async def test_a_failure_stops_the_campaign_under_the_stop_policy(rollout: Rollout) -> None:
    await rollout.engine.inject("leaf3", "apply-fails")
    await rollout.create(concurrency=1, failure_policy="stop")
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.FAILED
    assert campaign.error == "1 device(s) failed; policy: stop"
    devices = {d.name: d for d in await rollout.devices()}
    assert devices["leaf3"].state.value == "failed"
    assert "entering maintenance failed" in (devices["leaf3"].error or "")
    tally = counts(await rollout.states())
    assert tally["failed"] == 1 and tally["skipped"] >= 1 and "pending" not in tally
    # The failed activation rolled its device back; nothing is left out of service.
    assert await _out_of_service(rollout) == []


async def test_continue_up_to_n_tolerates_n_failures(rollout: Rollout) -> None:
    await rollout.engine.inject("leaf3", "apply-fails")
    await rollout.create(concurrency=2, failure_policy="continue up to 1")
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.SUCCEEDED
    assert campaign.error == "1 device(s) failed, within the failure policy"
    assert counts(await rollout.states()) == {"done": 5, "failed": 1}


@SQLITE_ONLY
async def test_continue_up_to_a_percentage_stops_past_it(rollout: Rollout) -> None:
    # 20 % of six devices allows one failure; the second trips the policy.
    for name in ("leaf2", "leaf5"):
        await rollout.engine.inject(name, "apply-fails")
    await rollout.create(concurrency=1, failure_policy="continue up to 20%")
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.FAILED
    assert campaign.error == "2 device(s) failed; policy: continue up to 20% failures"
    tally = counts(await rollout.states())
    assert tally["failed"] == 2 and "pending" not in tally


@SQLITE_ONLY
async def test_a_failed_canary_stops_whatever_the_policy(rollout: Rollout) -> None:
    preview = await rollout.service.preview(
        {"name": "roll", "fabric": "dc1", "selector": {"roles": ["leaf"]}, "canary": 1},
        actor=ALICE,
    )
    (canary,) = preview.plan.canary
    await rollout.engine.inject(canary, "apply-fails")
    await rollout.create(canary=1, concurrency=3, failure_policy="continue up to 5")
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.FAILED
    states = await rollout.states()
    assert states[canary] == "failed"
    assert counts(states) == {"failed": 1, "skipped": 5}  # nothing started after the canary


@SQLITE_ONLY
async def test_online_validation_refuses_to_start_on_an_unhealthy_device(
    rollout: Rollout,
) -> None:
    await rollout.engine.inject("leaf2", "high-cpu")
    await rollout.create()
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.VALIDATION_FAILED
    assert campaign.error == "test runs failed on 1 device(s): leaf2"
    results = {d.name: d.result for d in await rollout.devices()}
    assert "cpu_idle" in (results["leaf2"] or "")
    assert {r for n, r in results.items() if n != "leaf2"} == {"pre-check passed"}
    assert await rollout.max_out_at_once(LEAVES) == 0  # nothing was touched


@SQLITE_ONLY
async def test_an_impossible_campaign_is_refused_and_not_stored(rollout: Rollout) -> None:
    with pytest.raises(CampaignInvalid) as info:
        await rollout.create(dependencies=["leaf1 before leaf2", "leaf2 before leaf1"])
    assert info.value.reasons[0].startswith("dependency cycle: ")
    assert await rollout.service.all() == []


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@SQLITE_ONLY
async def test_a_command_runs_between_enter_and_exit_with_its_output_logged(
    rollout: Rollout,
) -> None:
    command = _python("import sys; print('upgrading', sys.argv[1], 'in', sys.argv[2])")
    await rollout.define("upgrade", [*command, "{name}", "{labels[rack]}"])
    await rollout.create(
        selector={"roles": ["leaf"], "labels": "rack=r1"},
        action={"type": "run", "name": "upgrade"},
    )
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.SUCCEEDED, campaign.error
    outputs = [e.data.get("output", "") for e in await rollout.events() if e.device]
    assert "upgrading leaf1 in r1\n" in outputs and "upgrading leaf2 in r1\n" in outputs
    assert {d.result for d in await rollout.devices()} == {"command exited 0"}


async def test_a_failed_command_leaves_its_device_in_maintenance_until_rollback(
    rollout: Rollout,
) -> None:
    fail_on_leaf3 = _python("import sys; sys.exit(3 if sys.argv[1] == 'leaf3' else 0)")
    undo = _python("import sys; print('undo on', sys.argv[1])")
    await rollout.define("upgrade", [*fail_on_leaf3, "{name}"], undo=[*undo, "{name}"])
    await rollout.create(concurrency=1, action={"type": "run", "name": "upgrade"})
    await rollout.start()
    campaign = await rollout.drive()
    assert campaign.state is C.FAILED
    devices = {d.name: d for d in await rollout.devices()}
    assert devices["leaf3"].error == "command exited 3; left in maintenance for inspection"
    assert await _out_of_service(rollout) == ["leaf3"]

    await rollout.service.rollback("roll", actor=ALICE, via=Via.API)
    campaign = await rollout.drive()
    assert campaign.state is C.ROLLED_BACK
    assert (await rollout.states())["leaf3"] == "rolled_back"
    assert await _out_of_service(rollout) == []
    messages = [e.message for e in await rollout.events()]
    assert any(m.startswith("rolling back leaf3; config: ") for m in messages)
    # The failed command never completed, so there was no change to undo.
    assert not any("undo on leaf3" in (e.data.get("output") or "") for e in await rollout.events())


@SQLITE_ONLY
async def test_await_approval_holds_each_device_until_a_person_approves(rollout: Rollout) -> None:
    await rollout.create(
        selector={"roles": ["leaf"], "labels": "rack=r1"}, action="await_approval", concurrency=1
    )
    await rollout.start()
    first = await _until_awaiting(rollout)
    with pytest.raises(CampaignStateConflict):
        await rollout.service.approve(
            "roll", "leaf2" if first == "leaf1" else "leaf1", actor=ALICE, via=Via.API
        )
    await rollout.service.approve("roll", first, actor=ALICE, via=Via.API)
    second = await _until_awaiting(rollout)
    assert second != first
    await rollout.service.approve("roll", second, actor=ALICE, via=Via.API)
    campaign = await rollout.drive()
    assert campaign.state is C.SUCCEEDED
    assert {d.approved_by for d in await rollout.devices()} == {ALICE.name}


async def _until_awaiting(rollout: Rollout) -> str:
    for _ in range(100):
        waiting = [
            d.name
            for d in await rollout.devices()
            if d.state.value == "awaiting_approval" and d.approved_by is None
        ]
        if waiting:
            return waiting[0]
        await rollout.driver.step_all()
        await rollout.engine.run(limit=100)
    raise AssertionError("no device came to await approval")


async def test_pause_lets_devices_under_way_finish_and_resume_carries_on(
    rollout: Rollout,
) -> None:
    await rollout.create(concurrency=2)
    await rollout.start()
    while counts(await rollout.states())["done"] < 1:
        await rollout.driver.step_all()
        await rollout.engine.run(limit=100)
    await rollout.service.pause("roll", actor=ALICE, via=Via.API)
    for _ in range(10):
        await rollout.driver.step_all()
        await rollout.engine.run(limit=100)
    paused = counts(await rollout.states())
    assert (await rollout.campaign()).state is C.PAUSED
    assert paused["pending"] >= 1 and set(paused) <= {"done", "pending"}
    assert await _out_of_service(rollout) == []

    await rollout.service.resume("roll", actor=ALICE, via=Via.API)
    campaign = await rollout.drive()
    assert campaign.state is C.SUCCEEDED
    assert counts(await rollout.states()) == {"done": 6}


async def test_rollback_brings_devices_back_in_reverse_order(rollout: Rollout) -> None:
    await rollout.create(action="await_approval", concurrency=2)
    await rollout.start()
    for _ in range(100):
        states = await rollout.states()
        if counts(states)["awaiting_approval"] == 2:
            break
        await rollout.driver.step_all()
        await rollout.engine.run(limit=100)
    held = sorted(
        (d for d in await rollout.devices() if d.state.value == "awaiting_approval"),
        key=lambda d: (d.started_at, d.position),
    )
    # What the maintenance changed on one of them (an upgrade's new line) goes back too.
    changed = held[0].name
    await rollout.engine.edit_config(changed, "ip prefix-list upgraded seq 5 permit 10.9.0.0/16")
    await rollout.service.pause("roll", actor=ALICE, via=Via.API)
    await rollout.service.rollback("roll", actor=ALICE, via=Via.API)
    campaign = await rollout.drive()

    assert campaign.state is C.ROLLED_BACK
    states = await rollout.states()
    assert counts(states) == {"rolled_back": 2, "skipped": 4}
    assert await _out_of_service(rollout) == []
    back = [
        e.device
        for e in reversed((await _audit(rollout)).items)
        if e.to_status == "activated" and e.device in {d.name for d in held}
    ]
    assert back == [held[1].name, held[0].name]
    store = rollout.engine.store
    device_id = await rollout.engine.device_id(changed)
    found = await store.journal.last_step_output(device_id, JobType.ACTIVATE, "snapshot")
    exit_check = await store.journal.last_step_output(device_id, JobType.DEACTIVATE, "config_check")
    assert found is not None and exit_check is not None
    assert await rollout.engine.config(changed) == found[1]["config"]
    assert (exit_check[1]["changed"], exit_check[1]["reverted"]) == (True, True)


async def _audit(rollout: Rollout) -> Any:
    async with rollout.engine.store.unit() as u:
        return await u.audit.query(action="device.status", limit=10_000)


async def test_abort_skips_what_has_not_started_and_brings_the_rest_back(
    rollout: Rollout,
) -> None:
    await rollout.create(action="await_approval", concurrency=2)
    await rollout.start()
    await _until_awaiting(rollout)
    await rollout.service.abort("roll", actor=ALICE, via=Via.API)
    campaign = await rollout.drive()

    assert campaign.state is C.ABORTED
    tally = counts(await rollout.states())
    assert tally["skipped"] >= 4 and "pending" not in tally and "failed" not in tally
    assert await _out_of_service(rollout) == []
    with pytest.raises(CampaignStateConflict):
        await rollout.service.resume("roll", actor=ALICE, via=Via.API)


async def test_a_second_driver_takes_over_only_once_the_lease_has_expired(
    rollout: Rollout,
) -> None:
    await rollout.create(concurrency=1, selector={"roles": ["leaf"], "labels": "rack=r1"})
    await rollout.start()
    await rollout.driver.step_all()
    other = rollout.new_driver("d2")
    await other.step_all()
    assert (await rollout.campaign()).lease_owner == "d1"
    rollout.engine.clock.advance(seconds=7200)  # past d1's lease: d1 is gone
    await other.step_all()
    assert (await rollout.campaign()).lease_owner == "d2"
    rollout.driver = other
    campaign = await rollout.drive()
    assert campaign.state is C.SUCCEEDED


async def test_a_submission_lost_between_its_intent_and_its_job_is_made_again(
    rollout: Rollout,
) -> None:
    # A driver killed after a tick committed its intents ("submitting ...") but before it
    # submitted the jobs: nothing will ever record a job id for those intents. Here the
    # first submission of each kind is lost that way.
    await rollout.create(concurrency=1, selector={"roles": ["leaf"], "labels": "rack=r1"})
    await rollout.start()
    driver = rollout.driver
    submit = driver._submit
    lost: list[str] = []

    async def crashing(campaign: Any, epoch: int, todo: list[Any]) -> None:
        kept = []
        for sub in todo:
            if sub.kind in lost:
                kept.append(sub)
            else:
                lost.append(sub.kind)
        await submit(campaign, epoch, kept)

    driver._submit = crashing  # type: ignore[method-assign]
    campaign = await rollout.drive()
    assert lost == ["test_run", "activate", "deactivate"]
    assert campaign.state is C.SUCCEEDED
    assert counts(await rollout.states()) == {"done": 2}


async def test_a_driver_stopped_gracefully_releases_its_campaign_to_the_next_at_once(
    rollout: Rollout,
) -> None:
    await rollout.create(concurrency=1, selector={"roles": ["leaf"], "labels": "rack=r1"})
    await rollout.start()
    stop = asyncio.Event()
    running = asyncio.create_task(rollout.driver.run_forever(stop))

    async def claimed() -> bool:
        return (await rollout.campaign()).lease_owner == "d1"

    for _ in range(500):
        if await claimed():
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 30)
    released = await rollout.campaign()
    assert (released.lease_owner, released.lease_expires_at) == (None, None)
    assert any(e.message == "released by d1: it is shutting down" for e in await rollout.events())

    other = rollout.new_driver("d2")  # the clock has not moved: d1's lease had an hour left
    await other.step_all()
    assert (await rollout.campaign()).lease_owner == "d2"
    rollout.driver = other
    assert (await rollout.drive()).state is C.SUCCEEDED


async def _one_awaiting_with_a_10_s_action(rollout: Rollout) -> str:
    """Rack r1's leaves one at a time, each holding for approval (expected 10 s); returns
    the first one waiting."""
    await rollout.create(
        selector={"roles": ["leaf"], "labels": "rack=r1"},
        action="await_approval",
        concurrency=1,
        expected_durations={"action_s": 10},
    )
    await rollout.start()
    return await _until_awaiting(rollout)


@SQLITE_ONLY
async def test_a_phase_past_twice_its_expected_duration_raises_one_warning(
    rollout: Rollout,
) -> None:
    waiting = await _one_awaiting_with_a_10_s_action(rollout)
    for _ in range(3):
        rollout.engine.clock.advance(seconds=15)
        await rollout.driver.step_all()
    warnings = [e.message for e in await rollout.events() if e.level.value == "warning"]
    hung = [m for m in warnings if "more than twice the expected 10 s" in m]
    assert len(hung) == 1 and hung[0].startswith(f"approval on {waiting} has taken ")


@SQLITE_ONLY
async def test_a_slow_device_expected_slow_by_its_pace_raises_no_early_warning(
    rollout: Rollout,
) -> None:
    waiting = await _one_awaiting_with_a_10_s_action(rollout)
    campaign = await rollout.campaign()
    async with rollout.engine.store.unit() as u:
        for d in await u.campaigns.devices(campaign.id):
            await u.campaigns.update_device(campaign.id, d.position, pace=3.0)
    rollout.engine.clock.advance(seconds=45)  # past twice 10 s, within twice 3 x 10 s
    await rollout.driver.step_all()
    assert not [e for e in await rollout.events() if "more than twice" in e.message]
    rollout.engine.clock.advance(seconds=30)
    await rollout.driver.step_all()
    hung = [e.message for e in await rollout.events() if "more than twice" in e.message]
    assert len(hung) == 1 and hung[0].startswith(f"approval on {waiting} has taken ")
    assert "expected 30 s (its pace is 3x from earlier campaigns)" in hung[0]


async def test_a_device_slow_in_earlier_campaigns_starts_first_in_the_next(
    rollout: Rollout,
) -> None:
    await rollout.create(name="first", concurrency=3)
    await rollout.start("first")
    assert (await rollout.drive("first")).state is C.SUCCEEDED
    first = await rollout.campaign("first")
    # The simulated devices all take alike; say leaf6 took six times as long as its peers.
    async with rollout.engine.store.unit() as u:
        for d in await u.campaigns.devices(first.id):
            assert d.started_at is not None
            took = timedelta(seconds=600 if d.name == "leaf6" else 100)
            await u.campaigns.update_device(first.id, d.position, finished_at=d.started_at + took)

    await rollout.create(name="second", concurrency=1)
    await rollout.start("second")
    paces = {d.name: d.pace for d in await rollout.devices("second")}
    assert paces == {**dict.fromkeys(LEAVES, 1.0), "leaf6": 6.0}
    assert any(
        "pace known from earlier campaigns for 6" in e.message
        for e in await rollout.events("second")
    )
    assert (await rollout.drive("second")).state is C.SUCCEEDED
    started = sorted(
        await rollout.devices("second"), key=lambda d: d.started_at or first.created_at
    )
    assert started[0].name == "leaf6"
    # Without a pace the plan's order holds: the first campaign did not start with leaf6.
    before = sorted(await rollout.devices("first"), key=lambda d: (d.started_at, d.position))
    assert before[0].name != "leaf6"


async def test_the_window_keeps_within_the_fabrics_role_budget(rollout: Rollout) -> None:
    """Three MLAG pairs would let three leaves out at once; a role budget of two holds the
    window to two, so no activation is refused at its reservation."""
    async with rollout.engine.store.unit() as u:
        fabric = await u.fabrics.row("dc1")
        await u.budgets.set_policy(
            fabric.id, maintenance_allowed=None, role_overrides={"leaf": Budget.parse("2")}
        )
    await rollout.create(concurrency=6)
    await rollout.start()
    campaign = await rollout.drive()

    assert campaign.state is C.SUCCEEDED, campaign.error
    assert set((await rollout.states()).values()) == {"done"}
    assert await rollout.max_out_at_once(LEAVES) == 2
