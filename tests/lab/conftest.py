"""Fixtures of the lab tests: a real FRR fabric in network namespaces per module, UDP flows
across it, and the real engine (SQLite store, ``Worker``, ``JobService``) driving its routers
with the ``frr`` driver on the real clock.

The lab needs root and FRR. Without them the tests skip, except under ``CI=true``, where a
missing lab is an error: CI must prove the fabric claims, not skip them.
"""

from __future__ import annotations

import random
import string
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import yaml
from lab_support import Lab, LabEngine, require_lab, utcnow

from pitstop.api.import_files import parse_file
from pitstop.api.importing import run_import
from pitstop.api.startup import SYSTEM
from pitstop.domain.roles import Via
from pitstop.engine.service import JobService
from pitstop.lab import fabric as lab_fabric
from pitstop.lab.flows import UdpFlows
from pitstop.lab.inventory import inventory
from pitstop.storage.database import Database
from pitstop.storage.store import Store


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab/" in str(item.path):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """2 spines, 2 leaves, a host on each, and 32 flows at 500 pps host1 -> host2."""
    require_lab()
    name = "t" + "".join(random.choices(string.ascii_lowercase, k=5))
    with lab_fabric.running(fabric=name, spines=2, leaves=2) as topo:
        src, dst = topo.hosts[0], topo.hosts[1]
        flows = UdpFlows(
            src_ns=src.netns, src_addr=src.address, dst_ns=dst.netns, dst_addr=dst.address
        ).start()
        try:
            yield Lab(topo, flows)
        finally:
            flows.stop(settle_s=0)


@pytest.fixture
async def engine(
    lab: Lab, fresh_sqlite_url: Callable[[], str], tmp_path: Path
) -> AsyncIterator[LabEngine]:
    """A fresh store holding the lab's routers (imported as ``lab up`` registers them)."""
    db = Database.from_url(fresh_sqlite_url())
    store = Store(db, clock=utcnow)
    doc = yaml.safe_dump(inventory(lab.topology), sort_keys=False)
    async with store.unit() as u:
        parsed = parse_file(doc, fmt="yaml", fabric=None, max_rows=1000)
        await run_import(u, parsed, dry_run=False, actor=SYSTEM, via=Via.API)
    try:
        yield LabEngine(store, JobService(store), lab.topology.fabric)
    finally:
        await db.close()
