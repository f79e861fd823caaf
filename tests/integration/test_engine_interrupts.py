"""A running step can be stopped: a cancel interrupts it and the job rolls back; a graceful
shutdown interrupts it without undoing anything and releases the lease, so the next worker
resumes the job at once; and a polling step's time limit counts from its first start, so a
takeover never gives a drain its timeout again."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from engine_support import ALICE, Engine, WorkerDied, build_engine, step, steps

from pitstop.domain.jobs import JobStatus, Level, StepStatus
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Via
from pitstop.engine.runner import EngineConfig, Worker
from pitstop.engine.service import JobService
from pitstop.storage.store import Store

# Real-time bound on every wait here: a hung engine fails the test instead of the run.
BOUND_S = 30


@pytest.fixture
async def engine(store: Store, clock: Any) -> Engine:
    return await build_engine(store, clock)


async def _eventually(predicate: Any, what: str) -> None:
    for _ in range(int(BOUND_S / 0.02)):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _live_worker(engine: Engine, *, lease_ttl_s: float = 30, name: str = "live") -> Worker:
    """A worker on the fake clock whose sleeps also take a little real time, so that a drain
    polls on and on while the test acts."""

    async def sleep(seconds: float) -> None:
        engine.clock.advance(seconds=seconds)
        await asyncio.sleep(0.01)

    return Worker(
        store=engine.store,
        drivers=engine.registry,
        clock=engine.clock,
        sleep=sleep,
        config=EngineConfig(lease_ttl_s=lease_ttl_s),
        name=name,
    )


# Cancel -------------------------------------------------------------------------------------


@pytest.mark.parametrize("same_process", [True, False], ids=["same-process", "other-process"])
async def test_cancel_interrupts_a_drain_that_never_converges_and_rolls_back(
    engine: Engine, same_process: bool
) -> None:
    await engine.inject("leaf2", "drain-stuck")
    job = await engine.submit("leaf2", params={"drain": {"timeout_s": 3600}})
    # Another process's cancel wakes nothing here: only the heartbeat (every 0.2 s) sees it.
    worker = _live_worker(engine, lease_ttl_s=30 if same_process else 0.6)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_forever(stop))
    try:

        async def draining() -> bool:
            return len(await engine.calls("leaf2", "traffic")) >= 3

        await _eventually(draining, "the drain to be measured")
        other = Store(engine.store.db, clock=engine.clock)
        service = engine.service if same_process else JobService(other)
        await service.cancel(job.id, actor=ALICE, via=Via.API)

        async def ended() -> bool:
            return (await engine.job(job.id)).status.finished

        await _eventually(ended, "the cancelled job to end")
    finally:
        stop.set()
        await asyncio.wait_for(running, BOUND_S)

    job = await engine.job(job.id)
    assert (job.status, job.error) == (JobStatus.CANCELLED, "cancelled")
    assert job.result["failed_step"] == "verify_drain"
    assert steps(job) == {
        "validate": "succeeded",
        "health": "succeeded",
        "snapshot": "succeeded",
        "mark_draining": "rolled_back",
        "divert": "rolled_back",
        "verify_drain": "cancelled",
        "mark_maintenance": "pending",
    }
    assert (await engine.device("leaf2")).status is DeviceStatus.ACTIVATED
    assert not await engine.diverted("leaf2")
    changes = [(c["op"], c["changed"]) for c in await engine.calls("leaf2") if c["changed"]]
    assert changes == [("apply_maintenance", True), ("remove_maintenance", True)]
    warned = [e.message for e in await engine.events(job.id) if e.level is Level.WARNING]
    assert "cancel requested: verify_drain was interrupted" in warned
    assert any(m.startswith("rolled back") for m in warned)
    assert await engine.lock_holder("leaf2") is None


# Graceful shutdown --------------------------------------------------------------------------


def _stall_at(n: int, reached: asyncio.Event) -> Any:
    """A traffic hook that lets ``n - 1`` samples through and holds the ``n``-th for ever."""
    seen = 0

    async def hook(call: Any) -> Any:
        nonlocal seen
        seen += 1
        if seen == n:
            reached.set()
            await asyncio.Event().wait()
        return await call()

    return hook


async def _shut_down_during_the_drain(engine: Engine, device: str, *, sample: int) -> None:
    """Run the queued job on a worker that is stopped gracefully while it takes drain sample
    ``sample``; the fake clock does not move, so no lease could have expired."""
    reached = asyncio.Event()
    first = engine.hooked_worker("first", traffic=_stall_at(sample, reached))
    stop = asyncio.Event()
    running = asyncio.create_task(first.run_forever(stop))
    await asyncio.wait_for(reached.wait(), BOUND_S)
    stop.set()
    await asyncio.wait_for(running, BOUND_S)


async def test_a_graceful_shutdown_releases_the_lease_and_the_next_worker_resumes_at_once(
    engine: Engine,
) -> None:
    job = await engine.submit("leaf1")
    await _shut_down_during_the_drain(engine, "leaf1", sample=2)

    held = await engine.job(job.id)
    assert held.status is JobStatus.RUNNING
    assert (held.lease_owner, held.lease_expires_at) == (None, None)
    assert step(held, "verify_drain").status is StepStatus.RUNNING  # not undone
    assert (await engine.device("leaf1")).status is DeviceStatus.DRAINING
    assert await engine.diverted("leaf1")
    warned = [e.message for e in await engine.events(job.id) if e.level is Level.WARNING]
    assert any("shutting down (verify_drain was interrupted)" in m for m in warned), warned

    # Within the TTL of the first worker's lease (30 s, and the clock has not moved).
    second = engine.make_worker(name="second")
    assert await asyncio.wait_for(second.run_once(), BOUND_S) is True
    job = await engine.job(job.id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.lease_epoch == 2
    runs = {s.name: s.runs for s in job.steps}
    assert (runs["divert"], runs["verify_drain"]) == (1, 2)
    assert (await engine.device("leaf1")).status is DeviceStatus.MAINTENANCE
    applied = await engine.calls("leaf1", "apply_maintenance")
    assert [c["changed"] for c in applied].count(True) == 1
    assert [(a.from_status, a.to_status) for a in await engine.audit("leaf1")] == [
        ("activated", "draining"),
        ("draining", "maintenance"),
    ]


# A step's deadline across a takeover --------------------------------------------------------

DRAIN = {"drain": {"timeout_s": 10, "poll_interval_s": 1}}


async def test_a_drain_resumed_after_a_shutdown_keeps_its_first_deadline(engine: Engine) -> None:
    """Ten (fake) seconds in all: five samples on the first worker (0..4 s), then the second
    worker samples from 5 s and gives up at 10 s, not at 15 s."""
    await engine.inject("leaf1", "drain-stuck")
    job = await engine.submit("leaf1", params=DRAIN)
    await _shut_down_during_the_drain(engine, "leaf1", sample=6)
    assert len(await engine.calls("leaf1", "traffic")) == 5
    started = step(await engine.job(job.id), "verify_drain").started_at
    assert started is not None

    assert await engine.run() == 1
    job = await engine.job(job.id)
    assert job.status is JobStatus.FAILED
    drain = step(job, "verify_drain")
    assert drain.runs == 2
    assert drain.started_at == started  # the first start, kept
    assert "after 10.0 s" in (drain.error or ""), drain.error
    # One sample a second from 0 to 10 s, five of them on the first worker: the timeout was
    # given once, not once per worker.
    measured = [
        e.at
        for e in await engine.events(job.id)
        if e.step == "verify_drain" and e.message.startswith("transit ")
    ]
    assert len(measured) == 11
    assert (min(measured), max(measured)) == (started, started + timedelta(seconds=10))
    assert (await engine.device("leaf1")).status is DeviceStatus.ACTIVATED
    assert not await engine.diverted("leaf1")


async def test_a_drain_taken_over_after_a_crash_past_its_deadline_fails_at_once(
    engine: Engine,
) -> None:
    await engine.inject("leaf1", "drain-stuck")
    job = await engine.submit("leaf1", params=DRAIN)
    seen = 0

    async def die_at_the_sixth_sample(call: Any) -> Any:
        nonlocal seen
        seen += 1
        if seen == 6:
            raise WorkerDied
        return await call()

    with pytest.raises(WorkerDied):
        await engine.run(engine.hooked_worker("dies", traffic=die_at_the_sixth_sample))
    engine.clock.advance(seconds=31)  # the dead worker's lease (30 s) expires

    assert await engine.run() == 1
    job = await engine.job(job.id)
    assert job.status is JobStatus.FAILED
    # The second worker measured once, found the drain 36 s old, and did not wait again.
    measured = [
        e
        for e in await engine.events(job.id)
        if e.step == "verify_drain" and e.message.startswith("transit ")
    ]
    assert len(measured) == 5 + 1
    assert "after 36.0 s" in (step(job, "verify_drain").error or "")
    assert (await engine.device("leaf1")).status is DeviceStatus.ACTIVATED
    assert not await engine.diverted("leaf1")
