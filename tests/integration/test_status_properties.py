"""Status changes against the lifecycle table, through the one status change pitstop has
(``Store.writes.change_status``), which the API, the CLI, the web and the engine all use.

Whatever is asked, by whoever, with whatever version, the device only ever moves along the
lifecycle table below (written out here from the specification, not imported from pitstop),
every move leaves exactly one matching audit row, and a refused request changes nothing.

A hypothesis test plays random request sequences (a fresh database per example) and an
exhaustive test tries every (status, role, target) once, both on both databases.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st
from status_support import set_status

from pitstop.domain.errors import Conflict, Forbidden, PitstopError, TransitionNotAllowed
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.storage.database import Database
from pitstop.storage.store import Store

PENDING = DeviceStatus.PENDING
ACTIVATED = DeviceStatus.ACTIVATED
DRAINING = DeviceStatus.DRAINING
MAINTENANCE = DeviceStatus.MAINTENANCE
UNDRAINING = DeviceStatus.UNDRAINING
ERROR = DeviceStatus.ERROR
DECOMMISSIONED = DeviceStatus.DECOMMISSIONED

VIEWER, OPERATOR, ADMIN, ENGINE = Role.VIEWER, Role.OPERATOR, Role.ADMIN, Role.ENGINE
OPS = frozenset({OPERATOR, ADMIN, ENGINE})
ENGINE_OR_ADMIN = frozenset({ADMIN, ENGINE})
ADMIN_ONLY = frozenset({ADMIN})

# (from, to) -> who may make the move. Everything not listed is not a transition at all.
EXPECTED: dict[tuple[DeviceStatus, DeviceStatus], frozenset[Role]] = {
    (PENDING, ACTIVATED): ADMIN_ONLY,
    # The maintenance path, by hand or by the engine.
    (ACTIVATED, DRAINING): OPS,
    (DRAINING, MAINTENANCE): OPS,
    (DRAINING, ACTIVATED): OPS,
    (MAINTENANCE, UNDRAINING): OPS,
    (UNDRAINING, ACTIVATED): OPS,
    (UNDRAINING, MAINTENANCE): OPS,
    # Anything still alive (not decommissioned, not already in error) can fail.
    (PENDING, ERROR): ENGINE_OR_ADMIN,
    (ACTIVATED, ERROR): ENGINE_OR_ADMIN,
    (DRAINING, ERROR): ENGINE_OR_ADMIN,
    (MAINTENANCE, ERROR): ENGINE_OR_ADMIN,
    (UNDRAINING, ERROR): ENGINE_OR_ADMIN,
    # Recovery after an admin has looked at the device.
    (ERROR, ACTIVATED): ADMIN_ONLY,
    (ERROR, MAINTENANCE): ADMIN_ONLY,
    # Retirement.
    (ACTIVATED, DECOMMISSIONED): ADMIN_ONLY,
    (MAINTENANCE, DECOMMISSIONED): ADMIN_ONLY,
    (ERROR, DECOMMISSIONED): ADMIN_ONLY,
}

ACTORS = {
    VIEWER: Actor("vera", VIEWER),
    OPERATOR: Actor("oscar", OPERATOR),
    ADMIN: Actor("alice", ADMIN),
    ENGINE: Actor("engine", ENGINE),
}


@dataclass(frozen=True)
class Request:
    role: Role
    target: DeviceStatus
    version: str  # "none" (no check), "current" or "stale"


def requests(current: DeviceStatus) -> st.SearchStrategy[Request]:
    """Any role, any target status, any version. Half of the targets are drawn from those the
    table has after ``current`` (for any role), so that walks get past the first refusals."""
    onward = sorted(to for (frm, to) in EXPECTED if frm is current)
    anything = st.sampled_from(list(DeviceStatus))
    return st.builds(
        Request,
        role=st.sampled_from([VIEWER, OPERATOR, ADMIN, ENGINE]),
        target=st.one_of(anything, st.sampled_from(onward)) if onward else anything,
        version=st.sampled_from(["none", "current", "stale"]),
    )


def predicted(current: DeviceStatus, req: Request) -> type[PitstopError] | None:
    """The refusal the specification calls for (checked in this order), or None to succeed."""
    roles = EXPECTED.get((current, req.target))
    if roles is None:
        return TransitionNotAllowed
    if req.role not in roles:
        return Forbidden
    if req.version == "stale":
        return Conflict
    return None


@dataclass
class Outcome:
    index: int
    request: Request
    before: tuple[DeviceStatus, int]
    error: type[PitstopError] | None
    after: tuple[DeviceStatus, int] | None = None


async def play(
    url: str,
    clock: Any,
    start: DeviceStatus,
    length: int,
    next_request: Callable[[DeviceStatus], Request],
    make_inventory: Any,
) -> tuple[list[Outcome], list[Any], tuple[DeviceStatus, int], int, list[Any]]:
    db = Database.from_url(url)
    try:
        store = Store(db, clock=clock)
        inventory = make_inventory(store)
        fabric = await inventory.fabric("dc1")
        dev_id: uuid.UUID = await inventory.device(fabric, "leaf1", status=start)

        outcomes: list[Outcome] = []
        for i in range(length):
            clock.advance(seconds=1)
            outcome: Outcome | None = None
            try:
                # A unit reads, then the change asks, as an API request does; a refusal
                # rolls the change back.
                async with store.unit() as u:
                    before = await u.devices.get(dev_id)
                req = next_request(before.status)
                outcome = Outcome(i, req, (before.status, before.version), None)
                expected_version = {
                    "none": None,
                    "current": before.version,
                    "stale": before.version - 1 - i % 2,  # behind by one or two
                }[req.version]
                after = await store.writes.change_status(
                    device=before,
                    target=req.target,
                    actor=ACTORS[req.role],
                    via=Via.ENGINE if req.role is ENGINE else Via.API,
                    reason=f"request {i}",
                    expected_version=expected_version,
                )
                outcome.after = (after.status, after.version)
            except PitstopError as exc:
                assert outcome is not None, exc
                outcome.error = type(exc)
            outcomes.append(outcome)

        async with store.unit() as u:
            final = await u.devices.get(dev_id)
            rows = (await u.audit.query(device_id=dev_id, action="device.status", limit=100)).items
            all_rows = (await u.audit.query(limit=1000)).items
            checked, problems = await u.audit.verify()
        assert checked == len(all_rows)
        return outcomes, list(reversed(rows)), (final.status, final.version), checked, problems
    finally:
        await db.close()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def fresh_database_url(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Call it for another fresh migrated database of the backend under test."""
    if request.param == "sqlite":
        yield request.getfixturevalue("fresh_sqlite_url")
        return
    server, clones = request.getfixturevalue("pg_server"), request.getfixturevalue("pg_clones")
    taken: list[str] = []

    def fresh() -> str:
        taken.append(clones.take())
        return str(server.url(taken[-1]))

    try:
        yield fresh
    finally:
        for name in taken:
            clones.give_back(name)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(
    start=st.sampled_from([PENDING, ACTIVATED]),
    length=st.integers(min_value=0, max_value=15),
    data=st.data(),
)
def test_random_status_requests_follow_the_table(
    fresh_database_url: Callable[[], str],
    clock: Any,
    make_inventory: Any,
    start: DeviceStatus,
    length: int,
    data: st.DataObject,
) -> None:
    def next_request(current: DeviceStatus) -> Request:
        return data.draw(requests(current))

    outcomes, rows, final, checked, problems = asyncio.run(
        play(fresh_database_url(), clock, start, length, next_request, make_inventory)
    )

    status, version = start, 1
    applied: list[tuple[Outcome, DeviceStatus, DeviceStatus]] = []
    for o in outcomes:
        # A refused request left nothing behind: the next read sees the model's state.
        assert o.before == (status, version), o
        assert o.error is predicted(status, o.request), o
        if o.error is None:
            assert (status, o.request.target) in EXPECTED, o
            assert o.request.role in EXPECTED[(status, o.request.target)], o
            assert o.after == (o.request.target, version + 1), o
            applied.append((o, status, o.request.target))
            status, version = o.request.target, version + 1
        else:
            assert o.after is None
    assert final == (status, version)
    target(float(len(applied)), label="changes applied")  # steer towards longer walks

    assert len(rows) == len(applied)
    for row, (o, frm, to) in zip(rows, applied, strict=True):
        assert (row.from_status, row.to_status) == (frm.value, to.value)
        assert row.actor == ACTORS[o.request.role].name
        assert row.via == ("engine" if o.request.role is ENGINE else "api")
        assert row.reason == f"request {o.index}"
    assert checked == 1 + len(applied)  # device.create plus one row per applied change
    assert problems == []


# How to bring a new (activated) device to each status, as (role, target) steps.
ROUTES: dict[DeviceStatus, list[tuple[Role, DeviceStatus]]] = {
    PENDING: [],
    ACTIVATED: [],
    DRAINING: [(OPERATOR, DRAINING)],
    MAINTENANCE: [(OPERATOR, DRAINING), (OPERATOR, MAINTENANCE)],
    UNDRAINING: [(OPERATOR, DRAINING), (OPERATOR, MAINTENANCE), (OPERATOR, UNDRAINING)],
    ERROR: [(ENGINE, ERROR)],
    DECOMMISSIONED: [(ADMIN, DECOMMISSIONED)],
}


async def test_every_request_from_every_status(store: Store, make_inventory: Any) -> None:
    """Exhaustively, on both databases: every role asking for every status from every status
    gets what the table says. A refused request changes nothing and writes no audit row, so
    the next one starts from the same place; a granted one moves the device (and its version)
    by one, and the next request from that status gets a fresh device brought there."""
    inventory = make_inventory(store)
    fabric = await inventory.fabric("dc1")
    made = 0
    audit_rows = 0

    async def brought_to(status: DeviceStatus) -> uuid.UUID:
        nonlocal made, audit_rows
        made += 1
        start = PENDING if status is PENDING else ACTIVATED
        dev = await inventory.device(fabric, f"dev-{status.value}-{made}", status=start)
        for role, step in ROUTES[status]:
            await set_status(store, dev, target=step, actor=ACTORS[role], via=Via.API)
        audit_rows += 1 + len(ROUTES[status])  # its create and its route
        return dev

    devices = {status: await brought_to(status) for status in ROUTES}
    mismatches = []
    for current in DeviceStatus:
        for role in ACTORS:
            for wanted in DeviceStatus:
                dev = devices[current]
                async with store.unit() as u:
                    version = (await u.devices.get(dev)).version
                req = Request(role, wanted, "current")
                got: type[PitstopError] | None = None
                try:
                    d = await set_status(
                        store,
                        dev,
                        target=wanted,
                        actor=ACTORS[role],
                        via=Via.API,
                        expected_version=version,
                    )
                except PitstopError as exc:
                    got = type(exc)
                else:
                    assert (d.status, d.version) == (wanted, version + 1)
                    audit_rows += 1
                    devices[current] = await brought_to(current)
                if got is not predicted(current, req):
                    mismatches.append((current.value, wanted.value, role.value, got))
    assert mismatches == []

    async with store.unit() as u:
        checked, problems = await u.audit.verify()
        for status, dev in devices.items():
            d = await u.devices.get(dev)
            assert (d.status, d.version) == (status, 1 + len(ROUTES[status]))
    assert (checked, problems) == (audit_rows, [])
