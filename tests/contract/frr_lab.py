"""The FRR harness of the driver contract: a real FRR spine of a small lab fabric
(``pitstop.lab``), built once per module, with UDP flows crossing it so that a drain has traffic
to move. It needs root and FRR; elsewhere it skips, except under ``CI=true``, where a missing
lab is an error.

The contract itself, its harness type and the harnesses that need no lab ship in the package
(``pitstop.drivers.testing``); ``test_driver_contract.py`` runs it over each kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import random
import string
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pitstop.domain.inventory import Connection
from pitstop.drivers.testing import DriverHarness, make_device

# --- frr: a real router in a lab ----------------------------------------------------------


@dataclass
class FrrLab:
    topology: Any
    flows: Any


@pytest.fixture(scope="module")
def frr_contract_lab() -> Iterator[FrrLab]:
    """Two spines, two leaves, and 32 flows at 500 pps from host1 to host2, for the contract
    module only: the rest of the suite should not run beside a busy lab."""
    from pitstop.lab.fabric import running
    from pitstop.lab.flows import UdpFlows
    from pitstop.lab.host import unavailable

    why = unavailable()
    if why:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the FRR lab must run in CI: {why}")
        pytest.skip(f"no FRR lab here: {why}")
    fabric = "c" + "".join(random.choices(string.ascii_lowercase, k=5))
    with running(fabric=fabric, spines=2, leaves=2) as topo:
        src, dst = topo.hosts[0], topo.hosts[1]
        flows = UdpFlows(
            src_ns=src.netns, src_addr=src.address, dst_ns=dst.netns, dst_addr=dst.address
        ).start()
        try:
            yield FrrLab(topo, flows)
        finally:
            flows.stop(settle_s=0)


_FRR_DRIFTS = itertools.count(1)


@contextlib.asynccontextmanager
async def frr_harness(lab: FrrLab) -> AsyncIterator[DriverHarness]:
    """spine1 of the lab, reached in its network namespace as the inventory describes it."""
    from pitstop.drivers.frr import FrrDriverFactory
    from pitstop.drivers.frr.transport import LocalTransport, vtysh
    from pitstop.lab.inventory import inventory

    spec = inventory(lab.topology)["fabrics"][0]["devices"][0]  # spine1
    factory = FrrDriverFactory()
    device = dataclasses.replace(
        make_device("spine1", role="spine", driver="frr"),
        connection=Connection(options=spec["connection"]["options"]),
    )
    options = device.connection.options

    async def drift() -> None:
        # A prefix-list nothing uses: a change by hand that moves no traffic. Numbered
        # across the module, so that one a failed test left behind cannot hide the next.
        n = next(_FRR_DRIFTS)
        await vtysh(
            LocalTransport(netns=options["netns"]),
            options["pathspace"],
            [
                "configure terminal",
                f"ip prefix-list psl-drift-{n} seq 5 permit 10.255.{n}.0/24",
            ],
        )

    harness = DriverHarness(
        kind="frr",
        driver=factory.open(device),
        advance=asyncio.sleep,
        drift=drift,
        settle_s=8.0,
        poll_s=0.5,
        open_unreachable=lambda: factory.open(
            dataclasses.replace(
                device,
                name="gone1",
                connection=Connection(
                    options={"netns": "psl-gone-netns", "pathspace": "psl-gone-netns"}
                ),
            )
        ),
    )
    try:
        yield harness
    finally:
        await factory.aclose()
