"""The campaign repository on SQLite and PostgreSQL: devices in plan order, the log, guarded
state changes, and the driver's lease (one holder; a stale epoch writes nothing)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from pitstop.domain.campaign_records import CampaignDevice
from pitstop.domain.campaigns import CampaignState, DeviceState
from pitstop.domain.errors import Conflict
from pitstop.domain.inventory import Connection
from pitstop.domain.jobs import Level
from pitstop.domain.roles import Actor, Role, Via
from pitstop.storage.campaigns import CampaignLeaseLost
from pitstop.storage.devices import DeviceSpec
from pitstop.storage.store import Store

C = CampaignState
TTL = timedelta(seconds=30)
ADMIN = Actor("root", Role.ADMIN)


async def _campaign(store: Store) -> tuple[uuid.UUID, uuid.UUID]:
    async with store.unit() as u:
        fabric = await u.fabrics.create(name="f1", description="", labels={})
        device_id = await u.devices.create(
            fabric_id=fabric.id,
            fabric=fabric.name,
            spec=DeviceSpec("leaf1", "leaf", "simulated", Connection(), {}, ()),
            group_ids={},
            actor=ADMIN,
            via=Via.API,
        )
        campaign = await u.campaigns.create(
            name="roll", fabric_id=fabric.id, spec={"name": "roll"}, created_by="alice"
        )
        return campaign.id, device_id


async def test_devices_events_and_guarded_states(store: Store) -> None:
    campaign_id, device_id = await _campaign(store)
    async with store.unit() as u:
        await u.campaigns.add_devices(
            campaign_id,
            [
                CampaignDevice(
                    0, device_id, "leaf1", "leaf", ("g",), (), 0, True, DeviceState.PENDING
                )
            ],
        )
        await u.campaigns.update_device(campaign_id, 0, state=DeviceState.ENTERING, step="x")
        await u.campaigns.add_event(campaign_id, level=Level.INFO, message="one", device="leaf1")
        await u.campaigns.add_event(campaign_id, level=Level.ERROR, message="two")
    async with store.unit() as u:
        (d,) = await u.campaigns.devices(campaign_id)
        assert (d.state, d.step, d.groups, d.canary) == (DeviceState.ENTERING, "x", ("g",), True)
        events = await u.campaigns.events(campaign_id)
        assert [e.message for e in events] == ["one", "two"]
        assert [e.message for e in await u.campaigns.events(campaign_id, after=events[0].id)] == [
            "two"
        ]
        assert not await u.campaigns.set_state(campaign_id, expected={C.RUNNING}, state=C.PAUSED)
        assert await u.campaigns.set_state(campaign_id, expected={C.CREATED}, state=C.RUNNING)
        assert (await u.campaigns.get("roll")).state is C.RUNNING
    with pytest.raises(Conflict):
        async with store.unit() as u:
            fabric_id = (await u.campaigns.get("roll")).fabric_id
            await u.campaigns.create(name="roll", fabric_id=fabric_id, spec={}, created_by="b")


async def test_one_driver_holds_the_lease_and_a_stale_one_writes_nothing(
    store: Store, clock: Any
) -> None:
    campaign_id, _ = await _campaign(store)
    async with store.unit() as u:
        assert await u.campaigns.claim(worker="a", lease_ttl=TTL) == []  # nothing to drive yet
        await u.campaigns.set_state(campaign_id, expected={C.CREATED}, state=C.RUNNING)
    async with store.unit() as u:
        assert await u.campaigns.claim(worker="a", lease_ttl=TTL) == [(campaign_id, 1)]
    async with store.unit() as u:
        assert await u.campaigns.claim(worker="b", lease_ttl=TTL) == []
        await u.campaigns.fence(campaign_id, epoch=1, lease_ttl=TTL)
    clock.advance(seconds=31)  # a's lease runs out
    async with store.unit() as u:
        assert await u.campaigns.claim(worker="b", lease_ttl=TTL) == [(campaign_id, 2)]
    with pytest.raises(CampaignLeaseLost):
        async with store.unit() as u:
            await u.campaigns.fence(campaign_id, epoch=1, lease_ttl=TTL)
            await u.campaigns.add_event(campaign_id, level=Level.INFO, message="from a zombie")
    async with store.unit() as u:
        assert await u.campaigns.events(campaign_id) == []
        assert (await u.campaigns.get(str(campaign_id))).lease_owner == "b"


async def test_past_runs_come_from_finished_campaigns_newest_first_without_soak(
    store: Store, clock: Any
) -> None:
    """What the paces are learned from: finished campaigns of the fabric, newest first, each
    device's entering-to-done time less the soak; not approval campaigns (a person's time),
    not one still running, not the campaign asking."""
    current, device_id = await _campaign(store)

    async def past(name: str, state: C, spec: dict[str, Any], took: float) -> uuid.UUID:
        clock.advance(seconds=60)
        async with store.unit() as u:
            fabric_id = (await u.campaigns.get("roll")).fabric_id
            c = await u.campaigns.create(name=name, fabric_id=fabric_id, spec=spec, created_by="a")
            await u.campaigns.add_devices(
                c.id,
                [
                    CampaignDevice(
                        0, device_id, "leaf1", "leaf", (), (), 0, False, DeviceState.DONE
                    ),
                    CampaignDevice(
                        1, device_id, "leaf2", "leaf", (), (), 0, False, DeviceState.FAILED
                    ),
                ],
            )
            start = clock()
            end = start + timedelta(seconds=took)
            for position in (0, 1):
                await u.campaigns.update_device(c.id, position, started_at=start, finished_at=end)
            await u.campaigns.set_state(c.id, expected={C.CREATED}, state=state, started=True)
            return c.id

    older = await past("older", C.SUCCEEDED, {"soak_s": 10}, 110.0)
    await past("asked", C.SUCCEEDED, {"action": {"type": "await_approval"}}, 999.0)
    await past("running", C.RUNNING, {}, 999.0)
    newer = await past("newer", C.FAILED, {"action": {"type": "command"}}, 40.0)
    async with store.unit() as u:
        fabric_id = (await u.campaigns.get("roll")).fabric_id
        await u.campaigns.set_state(current, expected={C.CREATED}, state=C.SUCCEEDED)
        got = await u.campaigns.past_runs(fabric_id, other_than=current)
        assert [(r.campaign, r.device, r.duration_s) for r in got] == [
            (str(newer), "leaf1", 40.0),
            (str(older), "leaf1", 100.0),
        ]
        assert len(await u.campaigns.past_runs(fabric_id, other_than=current, campaigns=1)) == 1
        assert await u.campaigns.past_runs(fabric_id, other_than=newer, campaigns=0) == []
