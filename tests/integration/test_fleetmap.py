"""Fleet-map epochs and the maintenance watchdog, on SQLite and PostgreSQL, on fake time:
the map changes only at a tick, replicas never double-tick, and an overrun is flagged once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from status_support import set_status

from pitstop.domain.fleetmap import MapState
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.engine.epochs import EpochTicker
from pitstop.engine.watchdog import Watchdog
from pitstop.storage.devices import DeviceFilter
from pitstop.storage.store import Store

OPS = Actor("olga", Role.OPERATOR)
S = DeviceStatus
M = MapState


async def _move(store: Store, dev: uuid.UUID, *path: DeviceStatus, **kw: Any) -> None:
    for target in path:
        await set_status(store, dev, target=target, actor=OPS, via=Via.API, **kw)


async def _tick(store: Store, fabric_id: uuid.UUID, **kw: Any) -> Any:
    async with store.unit() as u:
        return await u.epochs.tick(fabric_id, by="test", **kw)


async def test_the_map_changes_at_the_next_epoch_not_at_once(
    store: Store, inventory: Any, clock: Any
) -> None:
    f = await inventory.fabric("dc")
    a = await inventory.device(f, "a")
    await inventory.device(f, "b")
    await inventory.device(f, "p", status=S.PENDING)
    async with store.unit() as u:
        assert await u.epochs.latest(f.id) is None

    first = await _tick(store, f.id)
    assert first.epoch == 1
    assert dict(first.members) == {"a": M.ONLINE, "b": M.ONLINE, "p": M.OFFLINE}

    await _move(store, a, S.DRAINING)
    async with store.unit() as u:
        still = await u.epochs.latest(f.id)
    assert still.epoch == 1 and still.members["a"] is M.ONLINE

    clock.advance(seconds=30)
    second = await _tick(store, f.id)
    assert second.epoch == 2
    assert second.members["a"] is M.MAINTENANCE
    assert second.published_at == clock.now
    assert second.etag != first.etag
    async with store.unit() as u:
        old = await u.epochs.at(f.id, 1)
    assert old is not None and old.members["a"] is M.ONLINE


async def test_every_status_has_its_map_state(store: Store, inventory: Any) -> None:
    f = await inventory.fabric("dc")
    paths = {
        "act": (),
        "drn": (S.DRAINING,),
        "mnt": (S.DRAINING, S.MAINTENANCE),
        "und": (S.DRAINING, S.MAINTENANCE, S.UNDRAINING),
    }
    for name, path in paths.items():
        await _move(store, await inventory.device(f, name), *path)
    err = await inventory.device(f, "err")
    await set_status(store, err, target=S.ERROR, actor=Actor("ada", Role.ADMIN), via=Via.API)
    m = await _tick(store, f.id)
    assert dict(m.members) == {
        "act": M.ONLINE,
        "drn": M.MAINTENANCE,
        "err": M.OFFLINE,
        "mnt": M.MAINTENANCE,
        "und": M.MAINTENANCE,
    }
    assert m.counts() == {"ONLINE": 1, "OFFLINE": 1, "MAINTENANCE": 3}


async def test_replicas_ticking_at_once_publish_one_epoch_per_interval(
    store: Store, inventory: Any, clock: Any
) -> None:
    f = await inventory.fabric("dc")
    await inventory.device(f, "a")
    tickers = [EpochTicker(store=store, interval_s=30) for _ in range(5)]

    published = await asyncio.gather(*(t.run_once() for t in tickers))
    assert sorted(len(p) for p in published) == [0, 0, 0, 0, 1]
    clock.advance(seconds=29)
    assert [await t.run_once() for t in tickers] == [[]] * 5
    clock.advance(seconds=1)
    published = await asyncio.gather(*(t.run_once() for t in tickers))
    assert [m.epoch for p in published for m in p] == [2]


async def test_concurrent_manual_ticks_each_get_their_own_epoch(
    store: Store, inventory: Any
) -> None:
    f = await inventory.fabric("dc")
    await inventory.device(f, "a")
    made = await asyncio.gather(*(_tick(store, f.id) for _ in range(8)))
    assert sorted(m.epoch for m in made) == list(range(1, 9))


async def test_old_epochs_are_pruned(store: Store, inventory: Any) -> None:
    f = await inventory.fabric("dc")
    for _ in range(5):
        await _tick(store, f.id, keep=3)
    async with store.unit() as u:
        assert await u.epochs.oldest_kept(f.id) == 3
        assert await u.epochs.at(f.id, 2) is None
        latest = await u.epochs.latest(f.id)
    assert latest.epoch == 5


async def test_the_ticker_loop_runs_on_injected_sleep(
    store: Store, inventory: Any, clock: Any
) -> None:
    f = await inventory.fabric("dc")
    stop = asyncio.Event()
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds=seconds)
        if len(sleeps) >= 12:
            stop.set()

    await EpochTicker(store=store, interval_s=20, sleep=fake_sleep).run_forever(stop)
    async with store.unit() as u:
        latest = await u.epochs.latest(f.id)
    # 12 wake-ups 5 s apart span 60 s: the ticks at 0, 20 and 40 s.
    assert sleeps == [5.0] * 12
    assert latest.epoch == 3


# The watchdog ---------------------------------------------------------------------------------


async def test_an_overrun_is_flagged_once_and_clears_when_back(
    store: Store, inventory: Any, clock: Any
) -> None:
    f = await inventory.fabric("dc")
    a = await inventory.device(f, "a")
    b = await inventory.device(f, "b")
    end = clock.now + timedelta(hours=1)
    await _move(store, a, S.DRAINING, expected_end=end)
    await _move(store, a, S.MAINTENANCE)
    await _move(store, b, S.DRAINING)  # no expected end: never overdue
    dogs = [Watchdog(store=store, interval_s=30) for _ in range(3)]

    clock.advance(minutes=59)
    assert [await d.run_once() for d in dogs] == [[], [], []]

    clock.advance(minutes=2)
    found = await asyncio.gather(*(d.run_once() for d in dogs))
    flagged = [o for batch in found for o in batch]
    assert [(o.device, o.status) for o in flagged] == [("a", S.MAINTENANCE)]
    assert flagged[0].overdue_s == 60
    async with store.unit() as u:
        dev = await u.devices.get(a)
        listed = await u.devices.page(DeviceFilter(fabric_id=f.id, needs_attention=True))
        events = (await u.audit.query(action="device.overrun")).items
    assert dev.needs_attention is True
    assert dev.attention_reason == f"maintenance overran its expected end ({end.isoformat()})"
    assert [d.name for d in listed.items] == ["a"]
    assert [(e.device, e.details["overdue_s"]) for e in events] == [("a", 60.0)]

    clock.advance(hours=1)
    assert await dogs[0].run_once() == []  # flagged already: no second event

    await _move(store, a, S.UNDRAINING, S.ACTIVATED)
    async with store.unit() as u:
        back = await u.devices.get(a)
    assert (back.needs_attention, back.attention_reason) == (False, None)


async def test_the_watchdog_loop_runs_on_injected_sleep(
    store: Store, inventory: Any, clock: Any
) -> None:
    a = await inventory.device(await inventory.fabric("dc"), "a")
    await _move(store, a, S.DRAINING, expected_end=clock.now + timedelta(seconds=90))
    stop = asyncio.Event()
    passes: list[bool] = []

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)
        async with store.unit() as u:
            passes.append((await u.devices.get(a)).needs_attention)
        if len(passes) == 5:
            stop.set()

    await Watchdog(store=store, interval_s=30, sleep=fake_sleep).run_forever(stop)
    # Read after the passes at 0, 30, 60, 90 s (due at 90 s, so not yet past it) and 120 s.
    assert passes == [False, False, False, False, True]
