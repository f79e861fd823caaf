"""Redundancy budgets and fabric policy in storage, on SQLite and PostgreSQL: a device leaving
service takes a slot in every group and capped role it belongs to, in the transaction of its
status change, and concurrent attempts never take a pool past its budget."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from status_support import set_status

from pitstop.domain.errors import BudgetExceeded, MaintenanceDisallowed
from pitstop.domain.inventory import Budget
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.storage.store import Store

OPS = Actor("olga", Role.OPERATOR)
ADMIN = Actor("ada", Role.ADMIN)
S = DeviceStatus


async def _move(store: Store, dev: uuid.UUID, *path: DeviceStatus, **kw: Any) -> None:
    for target in path:
        await set_status(store, dev, target=target, actor=OPS, via=Via.API, **kw)


async def _status(store: Store, dev: uuid.UUID) -> DeviceStatus:
    async with store.unit() as u:
        return (await u.devices.get(dev)).status


async def test_a_full_group_refuses_naming_the_group_and_its_holders(
    store: Store, inventory: Any
) -> None:
    f = await inventory.fabric("dc")
    await inventory.group(f, "rack1", "2")
    ids = [await inventory.device(f, f"n{i}", groups=("rack1",)) for i in range(4)]
    await _move(store, ids[0], S.DRAINING, S.MAINTENANCE)
    await _move(store, ids[1], S.DRAINING)

    with pytest.raises(BudgetExceeded) as refused:
        await _move(store, ids[2], S.DRAINING)

    err = refused.value
    assert err.code == "BUDGET_EXCEEDED"
    assert err.extra["group"] == "rack1"
    assert err.extra["holders"] == ["n0", "n1"]
    assert err.extra["slots"] == 2
    assert "n0 (maintenance), n1 (draining)" in err.detail
    assert await _status(store, ids[2]) is S.ACTIVATED
    # A slot comes free when its holder is back in service.
    await _move(store, ids[0], S.UNDRAINING, S.ACTIVATED)
    await _move(store, ids[2], S.DRAINING)
    assert await _status(store, ids[2]) is S.DRAINING


async def test_every_group_of_the_device_must_have_room(store: Store, inventory: Any) -> None:
    f = await inventory.fabric("dc")
    await inventory.group(f, "rack", "50%")
    await inventory.group(f, "pair", "1")
    a = await inventory.device(f, "a", groups=("pair", "rack"))
    b = await inventory.device(f, "b", groups=("pair", "rack"))
    await inventory.device(f, "c", groups=("rack",))
    await inventory.device(f, "d", groups=("rack",))
    await _move(store, a, S.DRAINING)

    # rack (50% of 4 = 2) has room, pair (1) does not.
    with pytest.raises(BudgetExceeded) as refused:
        await _move(store, b, S.DRAINING)
    assert refused.value.extra["group"] == "pair"
    assert refused.value.extra["holders"] == ["a"]
    assert [p["name"] for p in refused.value.extra["full"]] == ["pair"]


async def test_the_role_default_allows_at_most_half_the_spines(
    store: Store, inventory: Any
) -> None:
    f = await inventory.fabric("dc")
    spines = [await inventory.device(f, f"spine{i}", role="spine") for i in range(4)]
    await _move(store, spines[0], S.DRAINING)
    await _move(store, spines[1], S.DRAINING)
    with pytest.raises(BudgetExceeded) as refused:
        await _move(store, spines[2], S.DRAINING)
    assert refused.value.extra["group"] == "role:spine"
    assert refused.value.extra["kind"] == "role"
    assert refused.value.extra["holders"] == ["spine0", "spine1"]
    assert "role spine (max_unavailable 50% of 4 = 2)" in refused.value.detail

    # A fabric may lift or tighten the default; the change is not retroactive.
    async with store.unit() as u:
        await u.budgets.set_policy(
            f.id, maintenance_allowed=None, role_overrides={"spine": Budget(1)}
        )
    assert await _status(store, spines[1]) is S.DRAINING
    with pytest.raises(BudgetExceeded):
        await _move(store, spines[2], S.DRAINING)
    async with store.unit() as u:
        await u.budgets.set_policy(
            f.id, maintenance_allowed=None, role_overrides={"spine": Budget(100, percent=True)}
        )
    await _move(store, spines[2], S.DRAINING)
    assert await _status(store, spines[2]) is S.DRAINING


async def test_error_is_never_refused_but_counts_against_the_budget(
    store: Store, inventory: Any
) -> None:
    f = await inventory.fabric("dc")
    await inventory.group(f, "pair", "1")
    a = await inventory.device(f, "a", groups=("pair",))
    b = await inventory.device(f, "b", groups=("pair",))
    await _move(store, a, S.DRAINING)
    await set_status(store, b, target=S.ERROR, actor=ADMIN, via=Via.API, reason="psu")
    assert await _status(store, b) is S.ERROR
    await _move(store, a, S.ACTIVATED)
    with pytest.raises(BudgetExceeded) as refused:
        await _move(store, a, S.DRAINING)
    assert refused.value.extra["holders"] == ["b"]


async def test_a_disallowing_policy_refuses_new_activations_only(
    store: Store, inventory: Any
) -> None:
    f = await inventory.fabric("dc")
    a = await inventory.device(f, "a")
    b = await inventory.device(f, "b")
    await _move(store, a, S.DRAINING, S.MAINTENANCE)
    async with store.unit() as u:
        policy = await u.budgets.set_policy(f.id, maintenance_allowed=False, role_overrides=None)
    assert policy.maintenance_allowed is False

    with pytest.raises(MaintenanceDisallowed) as refused:
        await _move(store, b, S.DRAINING)
    assert refused.value.code == "MAINTENANCE_DISALLOWED"
    assert await _status(store, b) is S.ACTIVATED
    # Not retroactive: a is still in maintenance and may come back.
    assert await _status(store, a) is S.MAINTENANCE
    await _move(store, a, S.UNDRAINING, S.ACTIVATED)

    # Forced, with its reason in the audit row of the status change.
    await _move(store, b, S.DRAINING, forced="emergency optics swap")
    async with store.unit() as u:
        (row,) = (await u.audit.query(device="b", action="device.status")).items
    assert row.details["forced"] == "emergency optics swap"
    assert row.to_status == "draining"


async def test_the_audit_row_names_the_pools_reserved(store: Store, inventory: Any) -> None:
    f = await inventory.fabric("dc")
    await inventory.group(f, "rack", "1")
    a = await inventory.device(f, "spine1", role="spine", groups=("rack",))
    await _move(store, a, S.DRAINING)
    async with store.unit() as u:
        (row,) = (await u.audit.query(device="spine1", action="device.status")).items
        pools = {p.name: p.describe() for p in await u.budgets.fabric_pools(f.id)}
    assert row.details["reserved"] == ["rack", "role:spine"]
    assert pools["rack"]["holders"] == [{"device": "spine1", "status": "draining"}]
    assert pools["role:spine"]["free"] == 0


async def test_concurrent_activations_never_exceed_a_budget(store: Store, inventory: Any) -> None:
    """Twenty devices race to leave a group that allows three; on PostgreSQL these are
    twenty transactions on separate connections."""
    f = await inventory.fabric("dc")
    await inventory.group(f, "rack", "3")
    ids = [await inventory.device(f, f"n{i:02d}", groups=("rack",)) for i in range(20)]

    async def attempt(dev: uuid.UUID) -> str:
        try:
            await _move(store, dev, S.DRAINING)
        except BudgetExceeded:
            return "refused"
        return "drained"

    results = await asyncio.gather(*(attempt(d) for d in ids))
    assert sorted(results).count("drained") == 3
    assert sorted(results).count("refused") == 17
    statuses = [await _status(store, d) for d in ids]
    assert statuses.count(S.DRAINING) == 3
