"""The repositories against real databases: every test runs on SQLite and on PostgreSQL.

Each test gets its own freshly migrated database (see ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from status_support import set_status

from pitstop.domain.audit import AuditEntry
from pitstop.domain.errors import (
    AmbiguousReference,
    Conflict,
    Forbidden,
    NotFound,
    TransitionNotAllowed,
    Unauthenticated,
    ValidationFailed,
)
from pitstop.domain.inventory import Budget, Connection, Device
from pitstop.domain.lifecycle import DeviceStatus as S
from pitstop.domain.roles import Actor, Role, Via
from pitstop.domain.selectors import matches, parse_selector
from pitstop.domain.tokens import looks_like_token
from pitstop.storage import transitions
from pitstop.storage.devices import DeviceFilter
from pitstop.storage.store import Store
from pitstop.storage.tokens import new_token

ADMIN = Actor("alice-admin", Role.ADMIN)
OPERATOR = Actor("oscar-operator", Role.OPERATOR)
VIEWER = Actor("vera-viewer", Role.VIEWER)
ENGINE = Actor("engine", Role.ENGINE)


# Helpers ------------------------------------------------------------------------------------


async def sql(store: Store, statement: str, **params: Any) -> list[Any]:
    """Raw SQL in its own committed transaction; returns the rows (if any)."""
    async with store.db.transaction() as s:
        result = await s.execute(text(statement), params)
        return list(result.all()) if statement.lstrip().upper().startswith("SELECT") else []


async def count(store: Store, table: str, where: str = "", **params: Any) -> int:
    rows = await sql(store, f"SELECT count(*) FROM {table} {where}", **params)
    return int(rows[0][0])


async def get(store: Store, device_id: uuid.UUID) -> Device:
    async with store.unit() as u:
        return await u.devices.get(device_id)


async def status_rows(store: Store, device_id: uuid.UUID) -> list[AuditEntry]:
    """The ``device.status`` audit rows of a device, oldest first."""
    async with store.unit() as u:
        page = await u.audit.query(device_id=device_id, action="device.status", limit=1000)
    return list(reversed(page.items))


async def change(
    store: Store, device_id: uuid.UUID, target: S, actor: Actor = OPERATOR, **kwargs: Any
) -> Device:
    via = Via.ENGINE if actor.role is Role.ENGINE else Via.API
    return await set_status(store, device_id, target=target, actor=actor, via=via, **kwargs)


async def make_token(
    store: Store, name: str, role: Role = Role.VIEWER, **kwargs: Any
) -> tuple[Any, str]:
    kwargs.setdefault("fabrics", ())
    kwargs.setdefault("expires_at", None)
    async with store.unit() as u:
        return await u.tokens.create(name=name, role=role, actor=ADMIN, via=Via.CLI, **kwargs)


async def verify_clean(store: Store) -> int:
    async with store.unit() as u:
        checked, problems = await u.audit.verify()
    assert problems == []
    return checked


async def snapshot(store: Store, device_id: uuid.UUID) -> tuple[Any, ...]:
    d = await get(store, device_id)
    audit_rows = await count(store, "audit_log")
    return (d.status, d.version, d.updated_at, d.status_reason, d.maintenance, audit_rows)


# Fabrics ------------------------------------------------------------------------------------


async def test_fabric_create_get_list_update_delete(store: Store, clock: Any) -> None:
    async with store.unit() as u:
        created = await u.fabrics.create(name="dc2", description="second", labels={"site": "b"})
        await u.fabrics.create(name="dc1", description="first", labels={})
    assert created.name == "dc2"
    assert created.labels == {"site": "b"}
    assert created.created_at == created.updated_at == clock()

    async with store.unit() as u:
        by_name = await u.fabrics.get("dc2")
        by_id = await u.fabrics.get(str(created.id))
        listed = await u.fabrics.all()
    assert by_name == by_id == created
    assert [f.name for f in listed] == ["dc1", "dc2"]

    later = clock.advance(minutes=5)
    async with store.unit() as u:
        updated = await u.fabrics.update("dc2", description="renamed", labels={"site": "c"})
        untouched = await u.fabrics.update(str(created.id), description=None, labels=None)
    assert (updated.description, updated.labels, updated.updated_at) == (
        "renamed",
        {"site": "c"},
        later,
    )
    assert (untouched.description, untouched.labels) == ("renamed", {"site": "c"})
    async with store.unit() as u:
        assert await u.fabrics.get("dc2") == untouched
        assert (await u.fabrics.get("dc2")).created_at == created.created_at

    async with store.unit() as u:
        deleted = await u.fabrics.delete("dc2")
    assert deleted.id == created.id
    async with store.unit() as u:
        assert [f.name for f in await u.fabrics.all()] == ["dc1"]
        with pytest.raises(NotFound):
            await u.fabrics.get("dc2")


async def test_fabric_duplicate_name_is_a_conflict(store: Store) -> None:
    async with store.unit() as u:
        await u.fabrics.create(name="dc1", description="", labels={})
    with pytest.raises(Conflict) as exc:
        async with store.unit() as u:
            await u.fabrics.create(name="dc1", description="again", labels={})
    assert exc.value.code == "CONFLICT"
    assert "dc1" in exc.value.detail
    async with store.unit() as u:
        fabrics = await u.fabrics.all()
    assert [(f.name, f.description) for f in fabrics] == [("dc1", "")]


async def test_fabric_with_devices_cannot_be_deleted(store: Store, inventory: Any) -> None:
    dc1 = await inventory.fabric("dc1")
    await inventory.device(dc1, "leaf1")
    with pytest.raises(Conflict) as exc:
        async with store.unit() as u:
            await u.fabrics.delete("dc1")
    assert exc.value.code == "CONFLICT"
    assert exc.value.extra["devices"] == 1
    async with store.unit() as u:
        assert (await u.fabrics.get("dc1")).id == dc1.id


async def test_unknown_fabric_is_not_found(store: Store) -> None:
    missing = str(uuid.uuid4())
    async with store.unit() as u:
        for ref in ("nope", missing):
            with pytest.raises(NotFound) as exc:
                await u.fabrics.get(ref)
            assert exc.value.code == "NOT_FOUND"
            with pytest.raises(NotFound):
                await u.fabrics.update(ref, description="x", labels=None)
            with pytest.raises(NotFound):
                await u.fabrics.delete(ref)


# Groups -------------------------------------------------------------------------------------


async def test_groups_create_list_counts_update_delete(store: Store, inventory: Any) -> None:
    dc1 = await inventory.fabric("dc1")
    dc2 = await inventory.fabric("dc2")
    async with store.unit() as u:
        spines = await u.fabrics.create_group(
            dc1.id, name="spines", max_unavailable=Budget.parse("1"), description="spine pair"
        )
        await u.fabrics.create_group(
            dc1.id, name="leaves", max_unavailable=Budget.parse("25%"), description=""
        )
        await u.fabrics.create_group(
            dc1.id, name="empty", max_unavailable=Budget(0), description=""
        )
        # The same group name in another fabric is a different group.
        await u.fabrics.create_group(
            dc2.id, name="spines", max_unavailable=Budget(2), description=""
        )
    assert spines.max_unavailable == Budget(1)
    await inventory.device(dc1, "spine1", groups=("spines",))
    await inventory.device(dc1, "spine2", groups=("spines",))
    await inventory.device(dc1, "leaf1", groups=("leaves", "spines"))
    await inventory.device(dc2, "spine1", groups=("spines",))

    async with store.unit() as u:
        listed = await u.fabrics.groups(dc1.id)
        other = await u.fabrics.groups(dc2.id)
    assert [(g.name, str(g.max_unavailable), n) for g, n in listed] == [
        ("empty", "0", 0),
        ("leaves", "25%", 1),
        ("spines", "1", 3),
    ]
    assert [(g.name, n) for g, n in other] == [("spines", 1)]

    async with store.unit() as u:
        updated = await u.fabrics.update_group(
            dc1.id, "spines", max_unavailable=Budget.parse("50%"), description=None
        )
        by_id = await u.fabrics.group_row(dc1.id, str(spines.id))
    assert updated.max_unavailable == Budget(50, percent=True)
    assert updated.description == "spine pair"
    assert by_id.max_unavailable == "50%"

    async with store.unit() as u:
        await u.fabrics.delete_group(dc1.id, "spines")
    async with store.unit() as u:
        assert [g.name for g, _ in await u.fabrics.groups(dc1.id)] == ["empty", "leaves"]
        assert [g.name for g, _ in await u.fabrics.groups(dc2.id)] == ["spines"]
        leaf1 = await u.devices.get(await u.devices.resolve("leaf1"))
        with pytest.raises(NotFound):
            await u.fabrics.group_row(dc1.id, "spines")
    # Deleting a group drops its memberships, not its members.
    assert leaf1.groups == ("leaves",)
    assert await count(store, "devices") == 4


async def test_duplicate_group_is_a_conflict(store: Store, inventory: Any) -> None:
    dc1 = await inventory.fabric("dc1")
    await inventory.group(dc1, "spines")
    with pytest.raises(Conflict) as exc:
        await inventory.group(dc1, "spines", budget="3")
    assert exc.value.code == "CONFLICT"
    async with store.unit() as u:
        assert [(str(g.max_unavailable), n) for g, n in await u.fabrics.groups(dc1.id)] == [
            ("1", 0)
        ]
        with pytest.raises(NotFound):
            await u.fabrics.update_group(dc1.id, "nope", max_unavailable=None, description="x")
        with pytest.raises(NotFound):
            await u.fabrics.delete_group(dc1.id, "nope")


# Devices: create, get, resolve ----------------------------------------------------------------


async def test_device_create_and_get(store: Store, inventory: Any, clock: Any) -> None:
    dc1 = await inventory.fabric("dc1")
    await inventory.group(dc1, "spines")
    await inventory.group(dc1, "leaves")
    dev_id = await inventory.device(
        dc1,
        "leaf1",
        labels={"rack": "r1", "env": "prod"},
        groups=("spines", "leaves"),
    )
    device = await get(store, dev_id)
    assert device.id == dev_id
    assert (device.fabric, device.fabric_id, device.name) == ("dc1", dc1.id, "leaf1")
    assert (device.role, device.driver) == ("leaf", "noop")
    assert device.connection == Connection("leaf1.example.net", 22, "env:PW", {})
    assert device.labels == {"rack": "r1", "env": "prod"}
    assert device.groups == ("leaves", "spines")  # by name
    assert device.status is S.ACTIVATED
    assert device.version == 1
    assert device.needs_attention is False
    assert device.status_changed_by == ADMIN.name
    assert device.status_changed_at == device.created_at == device.updated_at == clock()

    async with store.unit() as u:
        page = await u.audit.query(device_id=dev_id)
    [entry] = page.items
    assert (entry.action, entry.actor, entry.via, entry.fabric, entry.device) == (
        "device.create",
        ADMIN.name,
        "api",
        "dc1",
        "leaf1",
    )
    assert entry.to_status == "activated"
    assert entry.details["groups"] == ["spines", "leaves"]

    pending = await get(store, await inventory.device(dc1, "leaf2", status=S.PENDING))
    assert pending.status is S.PENDING
    with pytest.raises(Conflict):
        await inventory.device(dc1, "leaf3", status=S.MAINTENANCE)
    with pytest.raises(NotFound):
        await get(store, uuid.uuid4())


async def test_device_resolve_by_name_and_uuid(store: Store, inventory: Any) -> None:
    dc1 = await inventory.fabric("dc1")
    dev_id = await inventory.device(dc1, "leaf1")
    async with store.unit() as u:
        assert await u.devices.resolve("leaf1") == dev_id
        assert await u.devices.resolve(str(dev_id)) == dev_id
        assert await u.devices.resolve("leaf1", fabric_id=dc1.id) == dev_id
        for ref in ("leaf9", str(uuid.uuid4())):
            with pytest.raises(NotFound) as exc:
                await u.devices.resolve(ref)
            assert exc.value.code == "NOT_FOUND"


async def test_same_device_name_in_two_fabrics_needs_the_fabric(
    store: Store, inventory: Any
) -> None:
    dc2 = await inventory.fabric("dc2")
    dc1 = await inventory.fabric("dc1")
    in_dc1 = await inventory.device(dc1, "leaf1")
    in_dc2 = await inventory.device(dc2, "leaf1")
    assert in_dc1 != in_dc2
    async with store.unit() as u:
        with pytest.raises(AmbiguousReference) as exc:
            await u.devices.resolve("leaf1")
        assert exc.value.code == "AMBIGUOUS_REFERENCE"
        assert exc.value.extra["fabrics"] == ["dc1", "dc2"]
        assert await u.devices.resolve("leaf1", fabric_id=dc1.id) == in_dc1
        assert await u.devices.resolve("leaf1", fabric_id=dc2.id) == in_dc2
        # A UUID is never ambiguous.
        assert await u.devices.resolve(str(in_dc2)) == in_dc2


async def test_same_device_name_twice_in_one_fabric_is_refused(
    store: Store, inventory: Any
) -> None:
    dc1 = await inventory.fabric("dc1")
    await inventory.device(dc1, "leaf1")
    # Whatever the error, the unique constraint holds and nothing is half written.
    with pytest.raises((Conflict, IntegrityError)):
        await inventory.device(dc1, "leaf1")
    assert await count(store, "devices") == 1
    assert await count(store, "audit_log") == 1


async def test_duplicate_device_name_is_a_conflict(store: Store, inventory: Any) -> None:
    dc1 = await inventory.fabric("dc1")
    await inventory.device(dc1, "leaf1")
    with pytest.raises(Conflict):
        await inventory.device(dc1, "leaf1")


# Devices: listing -----------------------------------------------------------------------------


@pytest.fixture
async def fleet(store: Store, inventory: Any) -> dict[str, Any]:
    """Two fabrics with a handful of devices; ``leaf1`` exists in both."""
    dc1 = await inventory.fabric("dc1")
    dc2 = await inventory.fabric("dc2")
    await inventory.group(dc1, "g1")
    await inventory.group(dc1, "g2")
    await inventory.group(dc2, "g1")
    ids = {
        ("dc1", "leaf1"): await inventory.device(
            dc1, "leaf1", labels={"rack": "r1", "env": "prod"}, groups=("g1",)
        ),
        ("dc1", "leaf2"): await inventory.device(
            dc1, "leaf2", labels={"rack": "r2", "env": "prod"}, groups=("g1", "g2")
        ),
        ("dc1", "spine1"): await inventory.device(
            dc1, "spine1", role="spine", labels={"rack": "r1"}, groups=("g2",)
        ),
        ("dc1", "border_1"): await inventory.device(
            dc1, "border_1", role="border", labels={"env": "lab"}, status=S.PENDING
        ),
        ("dc2", "leaf1"): await inventory.device(
            dc2, "leaf1", labels={"rack": "r9", "env": "prod"}, groups=("g1",)
        ),
        ("dc2", "edge-a"): await inventory.device(dc2, "edge-a", role="edge", labels={}),
    }
    return {"dc1": dc1, "dc2": dc2, "ids": ids}


async def names(store: Store, flt: DeviceFilter) -> list[tuple[str, str]]:
    async with store.unit() as u:
        page = await u.devices.page(flt, limit=100)
    assert page.next_cursor is None
    return [(d.fabric, d.name) for d in page.items]


async def test_page_filters(store: Store, fleet: dict[str, Any]) -> None:
    dc1, dc2 = fleet["dc1"], fleet["dc2"]
    everything = await names(store, DeviceFilter())
    assert sorted(everything) == sorted(fleet["ids"])
    assert [n for _, n in everything] == sorted(n for _, n in everything)

    assert await names(store, DeviceFilter(fabric_id=dc2.id)) == [
        ("dc2", "edge-a"),
        ("dc2", "leaf1"),
    ]
    assert await names(store, DeviceFilter(statuses=(S.PENDING,))) == [("dc1", "border_1")]
    assert len(await names(store, DeviceFilter(statuses=(S.PENDING, S.ACTIVATED)))) == 6
    assert await names(store, DeviceFilter(statuses=(S.MAINTENANCE,))) == []
    assert await names(store, DeviceFilter(role="spine")) == [("dc1", "spine1")]
    assert await names(store, DeviceFilter(fabric_id=dc1.id, name="leaf1")) == [("dc1", "leaf1")]
    # Group names are per fabric; without a fabric, a name matches in every fabric.
    assert await names(store, DeviceFilter(fabric_id=dc1.id, group="g1")) == [
        ("dc1", "leaf1"),
        ("dc1", "leaf2"),
    ]
    assert sorted(await names(store, DeviceFilter(group="g1"))) == [
        ("dc1", "leaf1"),
        ("dc1", "leaf2"),
        ("dc2", "leaf1"),
    ]
    assert await names(store, DeviceFilter(group="g2")) == [("dc1", "leaf2"), ("dc1", "spine1")]
    assert await names(store, DeviceFilter(group="nope")) == []
    # Search is a substring match on the name; LIKE wildcards are taken literally.
    assert await names(store, DeviceFilter(fabric_id=dc1.id, search="eaf")) == [
        ("dc1", "leaf1"),
        ("dc1", "leaf2"),
    ]
    assert await names(store, DeviceFilter(search="LEAF2")) == [("dc1", "leaf2")]
    assert await names(store, DeviceFilter(search="r_1")) == [("dc1", "border_1")]
    assert await names(store, DeviceFilter(search="%")) == []
    assert await names(store, DeviceFilter(search="_")) == [("dc1", "border_1")]
    # Combined filters are ANDed.
    assert await names(
        store, DeviceFilter(fabric_id=dc1.id, role="leaf", group="g2", statuses=(S.ACTIVATED,))
    ) == [("dc1", "leaf2")]


async def test_page_needs_attention_filter(store: Store, fleet: dict[str, Any]) -> None:
    await change(store, fleet["ids"][("dc1", "spine1")], S.ERROR, ENGINE, reason="lost")
    assert await names(store, DeviceFilter(needs_attention=True)) == [("dc1", "spine1")]
    assert len(await names(store, DeviceFilter(needs_attention=False))) == 5


SELECTORS: list[tuple[str, set[tuple[str, str]] | None]] = [
    ("rack=r1", {("dc1", "leaf1"), ("dc1", "spine1")}),
    ("rack==r1", {("dc1", "leaf1"), ("dc1", "spine1")}),
    # != also matches devices without the key, as in Kubernetes.
    ("rack!=r1", {("dc1", "leaf2"), ("dc1", "border_1"), ("dc2", "leaf1"), ("dc2", "edge-a")}),
    ("env", {("dc1", "leaf1"), ("dc1", "leaf2"), ("dc1", "border_1"), ("dc2", "leaf1")}),
    ("!env", {("dc1", "spine1"), ("dc2", "edge-a")}),
    ("env=prod,rack!=r2", {("dc1", "leaf1"), ("dc2", "leaf1")}),
    ("rack,!env", {("dc1", "spine1")}),
    ("env=lab,rack", set()),
    ("rack=R1", set()),  # values are case-sensitive
    ("nokey", set()),
    ("!nokey", None),  # everything
    ("", None),
]


async def test_page_label_selectors(store: Store, fleet: dict[str, Any]) -> None:
    async with store.unit() as u:
        everything = (await u.devices.page(DeviceFilter(), limit=100)).items
    for selector, wanted in SELECTORS:
        expected = set(fleet["ids"]) if wanted is None else wanted
        terms = parse_selector(selector)
        # The SQL agrees with the literal expectation and with the domain's own matcher.
        in_python = {(d.fabric, d.name) for d in everything if matches(terms, d.labels)}
        assert in_python == expected, selector
        got = await names(store, DeviceFilter(fabric_id=None, selector=tuple(terms)))
        assert set(got) == expected, selector
    in_dc2 = await names(
        store, DeviceFilter(fabric_id=fleet["dc2"].id, selector=tuple(parse_selector("env")))
    )
    assert in_dc2 == [("dc2", "leaf1")]


async def test_page_cursor_walks_every_device_once_in_name_order(
    store: Store, fleet: dict[str, Any], inventory: Any
) -> None:
    for i in range(5):
        await inventory.device(fleet["dc2"], f"leaf1{i}")
    # A third leaf1, so that a page boundary falls between devices with the same name.
    await inventory.device(await inventory.fabric("dc3"), "leaf1")
    seen: list[Device] = []
    cursor: str | None = None
    pages = 0
    async with store.unit() as u:
        while True:
            page = await u.devices.page(DeviceFilter(), limit=2, cursor=cursor)
            pages += 1
            assert len(page.items) <= 2
            seen.extend(page.items)
            if page.next_cursor is None:
                break
            assert len(page.items) == 2
            cursor = page.next_cursor
            assert pages < 20, "pagination does not terminate"
    total = len(fleet["ids"]) + 6
    assert len(seen) == total
    assert len({d.id for d in seen}) == total
    assert pages == (total + 1) // 2
    # The names here sort the same in every collation, so Python's order is the database's.
    assert [d.name for d in seen] == sorted(d.name for d in seen)
    async with store.unit() as u:
        unpaged = (await u.devices.page(DeviceFilter(), limit=100)).items
    assert [d.id for d in seen] == [d.id for d in unpaged]
    # Ties on the name (leaf1 is in three fabrics) are broken by id, across pages too.
    assert [d.name for d in seen[2:5]] == ["leaf1"] * 3
    tied = [d.id for d in seen if d.name == "leaf1"]
    assert tied == sorted(tied)
    assert sorted(d.fabric for d in seen if d.name == "leaf1") == ["dc1", "dc2", "dc3"]

    # A filter and a cursor together.
    walked: list[str] = []
    cursor = None
    async with store.unit() as u:
        while True:
            page = await u.devices.page(DeviceFilter(search="leaf"), limit=2, cursor=cursor)
            walked += [d.name for d in page.items]
            if (cursor := page.next_cursor) is None:
                break
    assert walked == sorted(d.name for d in seen if "leaf" in d.name)


async def test_page_rejects_a_bad_cursor(store: Store, fleet: dict[str, Any]) -> None:
    async with store.unit() as u:
        with pytest.raises(ValidationFailed):
            await u.devices.page(DeviceFilter(), limit=2, cursor="not-a-cursor")
        with pytest.raises(ValidationFailed):
            await u.devices.page(DeviceFilter(), limit=2, cursor="WzFd")  # [1]: wrong size


# Devices: status changes ---------------------------------------------------------------------


@pytest.fixture
async def leaf(inventory: Any) -> uuid.UUID:
    dc1 = await inventory.fabric("dc1")
    return await inventory.device(dc1, "leaf1", labels={"rack": "r1"})  # type: ignore[no-any-return]


async def test_status_round_trip_through_maintenance(
    store: Store, leaf: uuid.UUID, clock: Any
) -> None:
    end = clock() + timedelta(hours=4)

    t1 = clock.advance(minutes=1)
    d = await change(
        store, leaf, S.DRAINING, reason="optics swap", ticket="CHG-1", expected_end=end
    )
    assert (d.status, d.version) == (S.DRAINING, 2)
    assert (d.status_changed_by, d.status_reason, d.status_changed_at) == (
        OPERATOR.name,
        "optics swap",
        t1,
    )
    assert d.maintenance.reason == "optics swap"
    assert d.maintenance.ticket == "CHG-1"
    assert d.maintenance.requested_by == OPERATOR.name
    assert d.maintenance.entered_at is None
    assert d.maintenance.expected_end == end
    assert d.updated_at == t1

    t2 = clock.advance(minutes=1)
    d = await change(store, leaf, S.MAINTENANCE, reason="drained", expected_version=2)
    assert (d.status, d.version, d.status_reason) == (S.MAINTENANCE, 3, "drained")
    assert d.maintenance.entered_at == t2
    assert (d.maintenance.reason, d.maintenance.ticket) == ("optics swap", "CHG-1")

    clock.advance(minutes=1)
    d = await change(store, leaf, S.UNDRAINING, reason="done")
    assert (d.status, d.version) == (S.UNDRAINING, 4)
    assert d.maintenance.entered_at == t2  # still in its maintenance window
    assert d.maintenance.requested_by == OPERATOR.name

    t4 = clock.advance(minutes=1)
    d = await change(store, leaf, S.ACTIVATED, reason="back")
    assert (d.status, d.version, d.status_changed_at) == (S.ACTIVATED, 5, t4)
    assert d.maintenance == type(d.maintenance)()  # every field cleared
    assert d.needs_attention is False
    assert d.labels == {"rack": "r1"}  # a status change leaves the inventory alone

    rows = await status_rows(store, leaf)
    assert [(r.from_status, r.to_status) for r in rows] == [
        ("activated", "draining"),
        ("draining", "maintenance"),
        ("maintenance", "undraining"),
        ("undraining", "activated"),
    ]
    assert [r.reason for r in rows] == ["optics swap", "drained", "done", "back"]
    assert [r.ticket for r in rows] == ["CHG-1", None, None, None]
    for r in rows:
        assert (r.actor, r.via, r.fabric, r.device, r.device_id) == (
            OPERATOR.name,
            "api",
            "dc1",
            "leaf1",
            leaf,
        )
        assert r.details["manual"] is True
    assert [r.at for r in rows] == [t1, t2, t2 + timedelta(minutes=1), t4]
    assert await verify_clean(store) == 5  # the create and the four changes


async def test_engine_changes_are_not_marked_manual(store: Store, leaf: uuid.UUID) -> None:
    job = uuid.uuid4()
    await change(store, leaf, S.DRAINING, ENGINE, reason="job", job_id=job)
    [row] = await status_rows(store, leaf)
    assert (row.actor, row.via, row.job_id, row.details) == ("engine", "engine", job, {})


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        (OPERATOR, S.MAINTENANCE, ["draining"]),
        (OPERATOR, S.UNDRAINING, ["draining"]),
        (OPERATOR, S.ACTIVATED, ["draining"]),
        (OPERATOR, S.PENDING, ["draining"]),
        (ADMIN, S.PENDING, ["draining", "error", "decommissioned"]),
        (ENGINE, S.MAINTENANCE, ["draining", "error"]),
    ],
)
async def test_illegal_transition_changes_nothing(
    store: Store, leaf: uuid.UUID, actor: Actor, target: S, allowed: list[str]
) -> None:
    before = await snapshot(store, leaf)
    with pytest.raises(TransitionNotAllowed) as exc:
        await change(store, leaf, target, actor, reason="nope")
    assert exc.value.code == "TRANSITION_NOT_ALLOWED"
    assert sorted(exc.value.allowed) == sorted(allowed)
    assert exc.value.extra["current"] == "activated"
    assert exc.value.extra["requested"] == target.value
    assert await snapshot(store, leaf) == before
    assert await status_rows(store, leaf) == []


async def test_viewer_may_not_change_status(store: Store, leaf: uuid.UUID) -> None:
    before = await snapshot(store, leaf)
    with pytest.raises(Forbidden) as exc:
        await change(store, leaf, S.DRAINING, VIEWER)
    assert exc.value.code == "FORBIDDEN"
    assert exc.value.extra["allowed"] == []
    assert await snapshot(store, leaf) == before
    assert await status_rows(store, leaf) == []


async def test_stale_expected_version_is_a_conflict(store: Store, leaf: uuid.UUID) -> None:
    await change(store, leaf, S.DRAINING, expected_version=1)
    before = await snapshot(store, leaf)
    with pytest.raises(Conflict) as exc:
        await change(store, leaf, S.MAINTENANCE, expected_version=1)
    assert exc.value.code == "CONFLICT"
    assert (exc.value.extra["current_version"], exc.value.extra["expected_version"]) == (2, 1)
    assert await snapshot(store, leaf) == before
    assert len(await status_rows(store, leaf)) == 1
    d = await change(store, leaf, S.MAINTENANCE, expected_version=2)
    assert (d.status, d.version) == (S.MAINTENANCE, 3)


async def test_operator_scoped_to_other_fabrics_is_forbidden(store: Store, leaf: uuid.UUID) -> None:
    elsewhere = Actor("dc9-ops", Role.OPERATOR, fabrics=frozenset({"dc9"}))
    before = await snapshot(store, leaf)
    with pytest.raises(Forbidden):
        await change(store, leaf, S.DRAINING, elsewhere)
    assert await snapshot(store, leaf) == before
    assert await status_rows(store, leaf) == []

    here = Actor("dc1-ops", Role.OPERATOR, fabrics=frozenset({"dc1", "dc9"}))
    d = await change(store, leaf, S.DRAINING, here)
    assert (d.status, d.status_changed_by) == (S.DRAINING, "dc1-ops")


async def test_error_needs_attention_until_an_admin_recovers(store: Store, leaf: uuid.UUID) -> None:
    await change(store, leaf, S.DRAINING)
    d = await change(store, leaf, S.ERROR, ENGINE, reason="drain timed out")
    assert (d.status, d.needs_attention, d.attention_reason) == (S.ERROR, True, "drain timed out")
    assert d.version == 3

    before = await snapshot(store, leaf)
    for actor, target in [
        (OPERATOR, S.ACTIVATED),
        (ENGINE, S.ACTIVATED),
        (OPERATOR, S.MAINTENANCE),
    ]:
        with pytest.raises(Forbidden):
            await change(store, leaf, target, actor)
    with pytest.raises(TransitionNotAllowed):
        await change(store, leaf, S.DRAINING, ADMIN)
    assert await snapshot(store, leaf) == before

    d = await change(store, leaf, S.ACTIVATED, ADMIN, reason="checked by hand")
    assert (d.status, d.needs_attention, d.attention_reason) == (S.ACTIVATED, False, None)
    assert d.version == 4
    rows = await status_rows(store, leaf)
    assert [(r.from_status, r.to_status, r.actor) for r in rows] == [
        ("activated", "draining", OPERATOR.name),
        ("draining", "error", "engine"),
        ("error", "activated", ADMIN.name),
    ]


async def test_attention_reason_can_differ_from_the_status_reason(
    store: Store, leaf: uuid.UUID
) -> None:
    d = await change(store, leaf, S.ERROR, ADMIN, reason="unreachable", attention_reason="ssh down")
    assert (d.status_reason, d.attention_reason, d.needs_attention) == (
        "unreachable",
        "ssh down",
        True,
    )
    d = await change(store, leaf, S.MAINTENANCE, ADMIN)
    assert (d.needs_attention, d.attention_reason) == (False, None)
    assert d.maintenance.entered_at is not None


async def test_change_status_of_unknown_device(store: Store, leaf: uuid.UUID) -> None:
    with pytest.raises(NotFound):
        await change(store, uuid.uuid4(), S.DRAINING)


async def test_a_time_with_an_offset_is_stored_as_the_same_instant(
    store: Store, leaf: uuid.UUID, clock: Any
) -> None:
    """``expected_end`` and token expiry arrive from API bodies with any UTC offset. (SQLite
    keeps no offset: stored naively, +02:00 would read back two hours late.)"""
    plus2 = timezone(timedelta(hours=2))
    end = (clock() + timedelta(hours=4)).astimezone(plus2)
    await change(store, leaf, S.DRAINING, expected_end=end)
    assert (await get(store, leaf)).maintenance.expected_end == end

    _, secret = await make_token(
        store, "t", expires_at=(clock() + timedelta(hours=1)).astimezone(plus2)
    )
    clock.advance(minutes=90)
    with pytest.raises(Unauthenticated, match="expired"):
        async with store.unit() as u:
            await u.tokens.authenticate(secret)


async def test_audit_since_with_an_offset_means_the_same_instant(
    store: Store, leaf: uuid.UUID, clock: Any
) -> None:
    """``GET /audit?since=...`` passes whatever offset the caller wrote."""
    start = clock.advance(hours=1)
    await change(store, leaf, S.DRAINING)
    async with store.unit() as u:
        in_utc = await u.audit.query(since=start)
        east = await u.audit.query(since=start.astimezone(timezone(timedelta(hours=2))))
        west = await u.audit.query(since=start.astimezone(timezone(timedelta(hours=-5))))
    assert [e.seq for e in in_utc.items] == [2]
    assert [e.seq for e in east.items] == [2]
    assert [e.seq for e in west.items] == [2]


# Devices: update and delete ------------------------------------------------------------------


async def test_update_replaces_labels_and_groups(store: Store, inventory: Any, clock: Any) -> None:
    dc1 = await inventory.fabric("dc1")
    await inventory.group(dc1, "g1")
    await inventory.group(dc1, "g2")
    dev_id = await inventory.device(
        dc1, "leaf1", labels={"rack": "r1", "env": "prod"}, groups=("g1",)
    )
    later = clock.advance(hours=1)
    async with store.unit() as u:
        before = await u.devices.get(dev_id)  # loaded in the same unit on purpose
        d = await u.devices.update(
            dev_id,
            changes={"labels": {"rack": "r2", "os": "sonic"}, "groups": ["g2"], "role": "spine"},
            group_ids=await u.fabrics.group_names(dc1.id),
            expected_version=1,
            actor=OPERATOR,
            via=Via.CLI,
        )
    assert before.labels == {"rack": "r1", "env": "prod"}
    assert d.labels == {"rack": "r2", "os": "sonic"}
    assert d.groups == ("g2",)
    assert (d.role, d.version, d.updated_at) == ("spine", 2, later)
    assert d.status is S.ACTIVATED
    assert await get(store, dev_id) == d
    assert await count(store, "device_labels") == 2

    async with store.unit() as u:
        d = await u.devices.update(
            dev_id,
            changes={"connection": Connection("10.0.0.1", 830, None, {"proto": "netconf"})},
            group_ids=None,
            expected_version=None,
            actor=ADMIN,
            via=Via.API,
        )
        page = await u.audit.query(device_id=dev_id, action="device.update")
    assert d.connection == Connection("10.0.0.1", 830, None, {"proto": "netconf"})
    assert (d.labels, d.groups, d.version) == ({"rack": "r2", "os": "sonic"}, ("g2",), 3)
    assert [(e.actor, e.via, e.details["fields"]) for e in page.items] == [
        (ADMIN.name, "api", ["connection"]),
        (OPERATOR.name, "cli", ["groups", "labels", "role"]),
    ]


async def test_update_with_a_stale_version_or_outside_scope_changes_nothing(
    store: Store, leaf: uuid.UUID
) -> None:
    before = await snapshot(store, leaf)
    for actor, version, error in [
        (OPERATOR, 7, Conflict),
        (Actor("dc9-ops", Role.OPERATOR, fabrics=frozenset({"dc9"})), None, Forbidden),
    ]:
        with pytest.raises(error):
            async with store.unit() as u:
                await u.devices.update(
                    leaf,
                    changes={"labels": {}},
                    group_ids=None,
                    expected_version=version,
                    actor=actor,
                    via=Via.API,
                )
    assert await snapshot(store, leaf) == before
    assert (await get(store, leaf)).labels == {"rack": "r1"}


async def test_delete_only_pending_or_decommissioned(store: Store, inventory: Any) -> None:
    dc1 = await inventory.fabric("dc1")
    active = await inventory.device(dc1, "leaf1", labels={"rack": "r1"})
    pending = await inventory.device(dc1, "leaf2", status=S.PENDING)

    for target in (None, S.DRAINING, S.MAINTENANCE, S.ERROR):
        if target is not None:
            await change(store, active, target, ADMIN)
        with pytest.raises(Conflict):
            async with store.unit() as u:
                await u.devices.delete(active, actor=ADMIN, via=Via.API)
        assert (await get(store, active)).status is (target or S.ACTIVATED)

    async with store.unit() as u:
        removed = await u.devices.delete(pending, actor=ADMIN, via=Via.API)
    assert removed.name == "leaf2"
    with pytest.raises(NotFound):
        await get(store, pending)

    await change(store, active, S.DECOMMISSIONED, ADMIN)
    async with store.unit() as u:
        await u.devices.delete(active, actor=ADMIN, via=Via.API)
        deletes = await u.audit.query(action="device.delete")
    with pytest.raises(NotFound):
        await get(store, active)
    assert [(e.device, e.from_status) for e in deletes.items] == [
        ("leaf1", "decommissioned"),
        ("leaf2", "pending"),
    ]
    assert await count(store, "devices") == 0
    assert await count(store, "device_labels") == 0
    # The fabric can go now that it is empty.
    async with store.unit() as u:
        await u.fabrics.delete("dc1")
    await verify_clean(store)


# Tokens -------------------------------------------------------------------------------------


async def test_token_secret_is_shown_once_and_only_its_hash_is_stored(
    store: Store, clock: Any
) -> None:
    info, secret = await make_token(store, "ci", Role.OPERATOR, fabrics=("dc1",))
    assert secret.startswith("pst_")
    assert looks_like_token(secret)
    assert (info.name, info.role, info.fabrics, info.created_by) == (
        "ci",
        Role.OPERATOR,
        ("dc1",),
        ADMIN.name,
    )
    assert info.prefix == secret[:12]
    assert info.created_at == clock()
    assert info.last_used_at is None

    [row] = await sql(store, "SELECT * FROM tokens")
    stored = dict(row._mapping)
    assert stored["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    for column, value in stored.items():
        assert secret not in str(value), column
        assert secret[12:] not in str(value), column
    for audit_row in await sql(store, "SELECT * FROM audit_log"):
        assert secret[12:] not in " ".join(map(str, audit_row))


async def test_token_authenticate_and_last_used(store: Store, clock: Any) -> None:
    _, secret = await make_token(store, "ops", Role.OPERATOR, fabrics=("dc1", "dc2"))
    used = clock.advance(minutes=3)
    async with store.unit() as u:
        actor = await u.tokens.authenticate(secret)
    assert actor == Actor("ops", Role.OPERATOR, frozenset({"dc1", "dc2"}))
    async with store.unit() as u:
        [info] = await u.tokens.all()
    assert info.last_used_at == used


async def test_token_unknown_revoked_or_expired_is_unauthenticated(
    store: Store, clock: Any
) -> None:
    _, short = await make_token(store, "short", expires_at=clock() + timedelta(hours=1))
    _, doomed = await make_token(store, "doomed", Role.ADMIN)

    for bad in (new_token(), "not-a-token", "pst_short", ""):
        with pytest.raises(Unauthenticated) as exc:
            async with store.unit() as u:
                await u.tokens.authenticate(bad)
        assert exc.value.code == "UNAUTHENTICATED"

    clock.advance(minutes=59)
    async with store.unit() as u:
        assert (await u.tokens.authenticate(short)).role is Role.VIEWER
    clock.advance(minutes=1)
    with pytest.raises(Unauthenticated, match="expired"):
        async with store.unit() as u:
            await u.tokens.authenticate(short)

    async with store.unit() as u:
        assert (await u.tokens.authenticate(doomed)).role is Role.ADMIN
    revoked_at = clock.advance(seconds=1)
    async with store.unit() as u:
        info = await u.tokens.revoke("doomed", actor=ADMIN, via=Via.API)
    assert info.revoked_at == revoked_at
    with pytest.raises(Unauthenticated, match="revoked"):
        async with store.unit() as u:
            await u.tokens.authenticate(doomed)

    async with store.unit() as u:
        page = await u.audit.query(action="token.revoke")
    [entry] = page.items
    assert (entry.actor, entry.via, entry.details["token"]) == (ADMIN.name, "api", "doomed")

    # Revoking again (by id this time) is a no-op: no second audit row, same timestamp.
    clock.advance(hours=1)
    async with store.unit() as u:
        again = await u.tokens.revoke(str(info.id), actor=ADMIN, via=Via.API)
        assert len((await u.audit.query(action="token.revoke")).items) == 1
        with pytest.raises(NotFound):
            await u.tokens.revoke("nope", actor=ADMIN, via=Via.API)
    assert again.revoked_at == revoked_at


async def test_duplicate_token_name_is_a_conflict(store: Store) -> None:
    async with store.unit() as u:
        assert not await u.tokens.any()
    await make_token(store, "ci")
    with pytest.raises(Conflict) as exc:
        await make_token(store, "ci", Role.ADMIN)
    assert exc.value.code == "CONFLICT"
    async with store.unit() as u:
        assert await u.tokens.any()
        assert [(t.name, t.role) for t in await u.tokens.all()] == [("ci", Role.VIEWER)]
    assert await count(store, "audit_log") == 1


async def test_concurrent_creates_of_one_token_name_give_one_token(
    store: Store, request: pytest.FixtureRequest
) -> None:
    """Two admins creating the same token name at once: one wins, the other gets CONFLICT."""
    results = await asyncio.gather(
        *(make_token(store, "same") for _ in range(8)), return_exceptions=True
    )
    assert [type(r).__name__ for r in results if isinstance(r, BaseException)] == ["Conflict"] * 7
    async with store.unit() as u:
        assert [t.name for t in await u.tokens.all()] == ["same"]


# Audit --------------------------------------------------------------------------------------


async def test_audit_query_filters_newest_first_with_cursor(
    store: Store, inventory: Any, clock: Any
) -> None:
    dc1 = await inventory.fabric("dc1")
    a = await inventory.device(dc1, "a")  # seq 1
    b = await inventory.device(dc1, "b")  # seq 2
    start = clock.advance(hours=1)
    await change(store, a, S.DRAINING)  # seq 3
    await change(store, b, S.DRAINING)  # seq 4
    clock.advance(hours=1)
    await change(store, a, S.MAINTENANCE, ENGINE)  # seq 5
    await change(store, a, S.UNDRAINING)  # seq 6

    async with store.unit() as u:
        by_device = await u.audit.query(device_id=a)
        by_actor = await u.audit.query(actor=OPERATOR.name)
        since = await u.audit.query(since=start)
        later = await u.audit.query(since=start + timedelta(minutes=30))
        by_name = await u.audit.query(device="b", fabric="dc1")
        none = await u.audit.query(fabric="dc9")
    assert [e.seq for e in by_device.items] == [6, 5, 3, 1]
    assert [e.seq for e in by_actor.items] == [6, 4, 3]
    assert [e.seq for e in since.items] == [6, 5, 4, 3]
    assert [e.seq for e in later.items] == [6, 5]
    assert [e.seq for e in by_name.items] == [4, 2]
    assert none.items == []
    assert by_device.next_cursor is None

    walked: list[int] = []
    cursor: str | None = None
    async with store.unit() as u:
        while True:
            page = await u.audit.query(limit=2, cursor=cursor)
            walked += [e.seq for e in page.items]
            if (cursor := page.next_cursor) is None:
                break
        filtered = await u.audit.query(device_id=a, limit=3)
        rest = await u.audit.query(device_id=a, limit=3, cursor=filtered.next_cursor)
    assert walked == [6, 5, 4, 3, 2, 1]
    assert [e.seq for e in filtered.items] == [6, 5, 3]
    assert [e.seq for e in rest.items] == [1]
    assert rest.next_cursor is None


async def test_audit_chain_verifies_and_detects_an_edit(store: Store, leaf: uuid.UUID) -> None:
    await change(store, leaf, S.DRAINING, reason="first")
    await change(store, leaf, S.MAINTENANCE, reason="second")
    await change(store, leaf, S.UNDRAINING, reason="third")
    assert await verify_clean(store) == 4

    await sql(store, "UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3")
    async with store.unit() as u:
        checked, problems = await u.audit.verify()
    assert checked == 4
    assert [p.seq for p in problems] == [3]
    assert "edited" in problems[0].problem


async def test_audit_chain_detects_a_deleted_last_row(store: Store, leaf: uuid.UUID) -> None:
    await change(store, leaf, S.DRAINING)
    await change(store, leaf, S.MAINTENANCE)
    assert await verify_clean(store) == 3

    await sql(store, "DELETE FROM audit_log WHERE seq = 3")
    assert await sql(store, "SELECT seq FROM audit_head") == [(3,)]
    async with store.unit() as u:
        checked, problems = await u.audit.verify()
    assert checked == 2
    assert [p.seq for p in problems] == [3]
    assert "missing" in problems[0].problem


async def test_audit_chain_detects_a_deleted_middle_row(store: Store, leaf: uuid.UUID) -> None:
    await change(store, leaf, S.DRAINING)
    await change(store, leaf, S.MAINTENANCE)
    await sql(store, "DELETE FROM audit_log WHERE seq = 2")
    async with store.unit() as u:
        _, problems = await u.audit.verify()
    assert problems
    assert {p.seq for p in problems} == {3}
    assert any("missing" in p.problem for p in problems)


async def test_audit_rows_roll_back_with_their_change(
    store: Store, leaf: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status change that fails after its device row was written (here: hashing its audit
    entry) leaves neither the change nor an audit row."""
    before = await snapshot(store, leaf)

    def broken(entry: AuditEntry) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(transitions, "entry_hash", broken)
    with pytest.raises(RuntimeError, match="boom"):
        await change(store, leaf, S.DRAINING)
    monkeypatch.undo()
    assert await snapshot(store, leaf) == before
    await verify_clean(store)


# Concurrency --------------------------------------------------------------------------------


async def test_concurrent_changes_to_one_device_apply_once(store: Store, leaf: uuid.UUID) -> None:
    async def attempt(i: int) -> Device:
        actor = Actor(f"op-{i}", Role.OPERATOR)
        return await set_status(
            store, leaf, target=S.DRAINING, actor=actor, via=Via.API, reason=f"try {i}"
        )

    results = await asyncio.gather(*(attempt(i) for i in range(20)), return_exceptions=True)
    won = [r for r in results if isinstance(r, Device)]
    lost = [r for r in results if not isinstance(r, Device)]
    unexpected = [r for r in lost if not isinstance(r, TransitionNotAllowed | Conflict)]
    assert unexpected == []
    assert len(won) == 1
    assert len(lost) == 19

    d = await get(store, leaf)
    assert (d.status, d.version, d.status_changed_by) == (S.DRAINING, 2, won[0].status_changed_by)
    [row] = await status_rows(store, leaf)
    assert (row.actor, row.reason) == (won[0].status_changed_by, won[0].status_reason)
    assert await verify_clean(store) == 2


async def test_concurrent_changes_to_different_devices_all_apply(
    store: Store, inventory: Any
) -> None:
    dc1 = await inventory.fabric("dc1")
    ids = [await inventory.device(dc1, f"leaf{i:02}") for i in range(20)]

    results = await asyncio.gather(
        *(change(store, dev, S.DRAINING, reason=f"batch {i}") for i, dev in enumerate(ids)),
        return_exceptions=True,
    )
    assert [r for r in results if not isinstance(r, Device)] == []
    assert all(r.status is S.DRAINING and r.version == 2 for r in results)  # type: ignore[union-attr]

    rows = await sql(store, "SELECT seq, device_id, action FROM audit_log ORDER BY seq")
    assert [r[0] for r in rows] == list(range(1, 41))
    status_changes = [r for r in rows if r[2] == "device.status"]
    assert len(status_changes) == 20
    assert await sql(store, "SELECT seq FROM audit_head") == [(40,)]
    assert await verify_clean(store) == 40
    for dev in ids:
        assert len(await status_rows(store, dev)) == 1


async def test_concurrent_first_audit_rows_on_an_empty_database(store: Store) -> None:
    """The very first appends race to create the chain head; none may fail."""

    async def create(i: int) -> str:
        info, _ = await make_token(store, f"t{i}")
        return str(info.name)

    results = await asyncio.gather(*(create(i) for i in range(10)), return_exceptions=True)
    assert [r for r in results if not isinstance(r, str)] == []
    assert await verify_clean(store) == 10
