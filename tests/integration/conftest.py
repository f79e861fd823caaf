"""Storage integration helpers: empty databases for migration tests, actors, and a small
inventory builder that goes through the real repositories."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pitstop.domain.inventory import Budget, Connection, Fabric
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.domain.roles import Actor, Role, Via
from pitstop.storage.devices import DeviceSpec
from pitstop.storage.store import Store

# Test modules cannot import a conftest reliably (there are two), so what they share comes
# as fixtures.
ADMIN = Actor("alice-admin", Role.ADMIN)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def blank_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (never migrated), on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
        return
    clones: Any = request.getfixturevalue("pg_clones")
    server: Any = request.getfixturevalue("pg_server")
    name = clones.blank()
    try:
        yield server.url(name)
    finally:
        clones.give_back(name)


def spec(
    name: str,
    *,
    role: str = "leaf",
    labels: dict[str, str] | None = None,
    groups: tuple[str, ...] = (),
    status: DeviceStatus = DeviceStatus.ACTIVATED,
) -> DeviceSpec:
    return DeviceSpec(
        name=name,
        role=role,
        driver="noop",
        connection=Connection(host=f"{name}.example.net", port=22, credentials_ref="env:PW"),
        labels=dict(labels or {}),
        groups=groups,
        status=status,
    )


@dataclass
class Inventory:
    """Creates fabrics, groups and devices through the repositories, one unit each."""

    store: Store

    async def fabric(self, name: str, **labels: str) -> Fabric:
        async with self.store.unit() as u:
            return await u.fabrics.create(name=name, description=f"{name} fabric", labels=labels)

    async def group(self, fabric: Fabric, name: str, budget: str = "1") -> uuid.UUID:
        async with self.store.unit() as u:
            g = await u.fabrics.create_group(
                fabric.id, name=name, max_unavailable=Budget.parse(budget), description=""
            )
            return g.id

    async def device(
        self, fabric: Fabric, name: str, *, actor: Actor = ADMIN, **kwargs: object
    ) -> uuid.UUID:
        s = spec(name, **kwargs)  # type: ignore[arg-type]
        async with self.store.unit() as u:
            group_ids = await u.fabrics.group_names(fabric.id)
            return await u.devices.create(
                fabric_id=fabric.id,
                fabric=fabric.name,
                spec=s,
                group_ids=group_ids,
                actor=actor,
                via=Via.API,
            )


@pytest.fixture
def inventory(store: Store) -> Inventory:
    return Inventory(store)


@pytest.fixture
def make_inventory() -> type[Inventory]:
    """``Inventory`` itself, for tests that build their own stores."""
    return Inventory
