"""The one status change (``Store.writes.change_status``): the order of its checks, the locks
it takes and what it records, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from status_support import set_status

from pitstop.domain.errors import BudgetExceeded, Conflict, Forbidden, TransitionNotAllowed
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.domain.standing import Standing
from pitstop.storage.store import Store

S = DeviceStatus
VIEWER = Actor("vera", Role.VIEWER)
OPS = Actor("olga", Role.OPERATOR)
ENGINE = Actor("engine", Role.ENGINE)


class Judged(Exception):
    """What the test's judge raises: the change asked it."""


def refuse(standing: Standing) -> None:
    raise Judged(standing.device)


async def _status_rows(store: Store, dev: uuid.UUID) -> list[Any]:
    async with store.unit() as u:
        return list((await u.audit.query(device_id=dev, action="device.status")).items)


async def test_the_table_and_the_role_are_checked_before_a_judge_is_asked(
    store: Store, inventory: Any
) -> None:
    f = await inventory.fabric("dc")
    dev = await inventory.device(f, "leaf1")
    with pytest.raises(Forbidden) as refused:
        await set_status(store, dev, target=S.DRAINING, actor=VIEWER, via=Via.API, judge=refuse)
    assert refused.value.extra["allowed"] == []
    with pytest.raises(TransitionNotAllowed) as refused_too:
        await set_status(store, dev, target=S.MAINTENANCE, actor=OPS, via=Via.API, judge=refuse)
    assert refused_too.value.extra["allowed"] == ["draining"]
    # The version the caller read comes before the judge and the budget too.
    with pytest.raises(Conflict):
        await set_status(
            store, dev, target=S.DRAINING, actor=OPS, via=Via.API, judge=refuse, expected_version=7
        )
    with pytest.raises(Judged):
        await set_status(store, dev, target=S.DRAINING, actor=OPS, via=Via.API, judge=refuse)
    assert await _status_rows(store, dev) == []


async def test_a_full_budget_is_judged_after_the_table(store: Store, inventory: Any) -> None:
    f = await inventory.fabric("dc")
    await inventory.group(f, "pair", "1")
    a = await inventory.device(f, "a", groups=("pair",))
    b = await inventory.device(f, "b", groups=("pair",))
    await set_status(store, a, target=S.DRAINING, actor=OPS, via=Via.API)
    # b cannot go to maintenance from activated: the refusal says what it may do instead,
    # not that the pair is full.
    with pytest.raises(TransitionNotAllowed) as refused:
        await set_status(store, b, target=S.MAINTENANCE, actor=OPS, via=Via.API)
    assert refused.value.extra["allowed"] == ["draining"]
    with pytest.raises(BudgetExceeded):
        await set_status(store, b, target=S.DRAINING, actor=OPS, via=Via.API)


async def test_changes_by_hand_say_so_and_a_jobs_do_not(store: Store, inventory: Any) -> None:
    f = await inventory.fabric("dc")
    await inventory.group(f, "rack", "1")
    dev = await inventory.device(f, "leaf1", groups=("rack",))
    await set_status(store, dev, target=S.DRAINING, actor=OPS, via=Via.WEB)
    await set_status(store, dev, target=S.ERROR, actor=ENGINE, via=Via.ENGINE, reason="psu")
    rows = await _status_rows(store, dev)  # newest first
    assert [(r.via, r.to_status) for r in rows] == [("engine", "error"), ("web", "draining")]
    assert rows[0].details == {}
    assert rows[1].details["manual"] is True
    assert rows[1].details["reserved"] == ["rack"]


async def test_events_and_a_job_end_need_a_fence(store: Store, inventory: Any) -> None:
    from pitstop.domain.jobs import JobStatus
    from pitstop.storage.journal import JobEnd

    f = await inventory.fabric("dc")
    dev = await inventory.device(f, "leaf1")
    with pytest.raises(ValueError, match="fence"):
        await set_status(
            store,
            dev,
            target=S.ERROR,
            actor=ENGINE,
            via=Via.ENGINE,
            finish=JobEnd(JobStatus.FAILED, {}),
        )
    assert await _status_rows(store, dev) == []


@pytest.mark.postgres
@pytest.mark.parametrize("target", [S.ERROR, S.DRAINING])
async def test_a_move_out_of_service_waits_for_the_fabrics_lock(
    pg_database: str, clock: Any, make_inventory: Any, target: DeviceStatus
) -> None:
    """Error too: a device going to error takes a slot, so a reservation made beside it
    must be serialised with it on the fabric's row."""
    from pitstop.storage.database import Database

    db = Database.from_url(pg_database)
    store = Store(db, clock=clock)
    dsn = pg_database.replace("postgresql+asyncpg", "postgresql")
    holder = await asyncpg.connect(dsn)
    observer = await asyncpg.connect(dsn)
    try:
        inventory = make_inventory(store)
        f = await inventory.fabric("dc")
        dev = await inventory.device(f, "leaf1")
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM fabrics WHERE id = $1 FOR NO KEY UPDATE", f.id)
        change = asyncio.create_task(
            set_status(store, dev, target=target, actor=ENGINE, via=Via.ENGINE)
        )
        # The change's backend waits on a row lock while the fabric is held.
        waiting = 0
        for _ in range(200):
            # Outside the holder's transaction, whose view of the activity would stay put.
            waiting = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%FROM fabrics%'"
            )
            if waiting or change.done():
                break
            await asyncio.sleep(0.02)
        assert not change.done()
        assert waiting == 1
        await tx.rollback()
        moved = await asyncio.wait_for(change, 10)
        assert moved.status is target
    finally:
        await holder.close()
        await observer.close()
        await db.close()
