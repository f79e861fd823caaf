"""Status changes in tests, the way the API makes them: the device read in a unit, then the
one status change (``Store.writes.change_status``), in a transaction of its own."""

from __future__ import annotations

import uuid
from typing import Any

from pitstop.domain.inventory import Device
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Via
from pitstop.storage.store import Store


async def set_status(
    store: Store,
    device_id: uuid.UUID,
    *,
    target: DeviceStatus,
    actor: Actor,
    via: Via,
    **kwargs: Any,
) -> Device:
    async with store.unit() as u:
        device = await u.devices.get(device_id)
    return await store.writes.change_status(
        device=device, target=target, actor=actor, via=via, **kwargs
    )
