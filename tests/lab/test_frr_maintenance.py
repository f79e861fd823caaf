"""Maintenance of a real FRR spine through the real engine, in a network-namespace lab with
UDP flows crossing it: health checks see BGP as it is, a drain moves measured traffic, a drain
that cannot converge rolls back, a bgpd killed during the undrain never ends in a device
called activated, and a configuration put back with frr-reload keeps the drain.

One lab per module (see ``conftest.py``); every test leaves the fabric as it found it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lab_support import HookedFrrFactory, Lab, LabEngine, vtysh

from pitstop.domain.jobs import Job, JobStatus, JobType
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.drivers.frr import FrrDriver, FrrDriverFactory
from pitstop.lab.fabric import wait_converged

SPINE = "spine1"


def step(job: Job, name: str) -> Any:
    found = [s for s in job.steps if s.name == name]
    assert found, f"no step {name!r} in {[s.name for s in job.steps]}"
    return found[0]


def forwarded(lab: Lab, router: str) -> int:
    snmp = os.popen(f"ip netns exec {lab.ns(router)} cat /proc/net/snmp").read().splitlines()
    head, values = snmp[0].split(), snmp[1].split()
    return int(values[head.index("ForwDatagrams")])


def transit_pps(lab: Lab, router: str, window: float = 1.0) -> float:
    a = forwarded(lab, router)
    time.sleep(window)
    return (forwarded(lab, router) - a) / window


def shares(lab: Lab, routers: tuple[str, ...], window: float = 2.0) -> dict[str, float]:
    """Each router's transit over one window, as a share of what the host sent in it: on a
    loaded machine the sender slows down, and a fixed packet rate would misjudge the split."""
    sent0, before = lab.flows.sent(), {r: forwarded(lab, r) for r in routers}
    time.sleep(window)
    sent = max(1, lab.flows.sent() - sent0)
    return {r: (forwarded(lab, r) - before[r]) / sent for r in routers}


def spine_paths(lab: Lab, leaf: str, prefix: str, spine: str = SPINE) -> list[dict[str, Any]]:
    """The leaf's paths for ``prefix`` learned from ``spine``."""
    spine_addr = next(n.address for n in lab.topology.router(leaf).neighbors if n.name == spine)
    detail = json.loads(vtysh(lab.ns(leaf), f"show bgp ipv4 unicast {prefix} json"))
    return [p for p in detail["paths"] if p["peer"]["peerId"] == spine_addr]


def gshut_on_leaves(lab: Lab) -> list[bool]:
    """For each leaf, whether the spine's path to the other leaf's host carries GSHUT."""
    out = []
    for leaf, other in (("leaf1", "leaf2"), ("leaf2", "leaf1")):
        prefix = lab.topology.router(other).networks[1]
        paths = spine_paths(lab, leaf, prefix)
        assert paths, f"{leaf} has no path from {SPINE} for {prefix}"
        out.append(all("graceful-shutdown" in p.get("community", {}).get("string", "")
                       for p in paths))  # fmt: skip
    return out


def wait_until(check: Callable[[], bool], within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return check()


async def test_a_neighbor_shut_on_a_peer_fails_the_health_check_naming_it(
    lab: Lab, engine: LabEngine
) -> None:
    leaf1 = lab.topology.router("leaf1")
    spine_addr = next(n.address for n in leaf1.neighbors if n.name == SPINE)
    leaf1_addr = next(n.address for n in lab.topology.router(SPINE).neighbors if n.name == "leaf1")
    healthy = await engine.run_job(SPINE, JobType.HEALTHCHECK)
    assert healthy.status is JobStatus.SUCCEEDED, healthy.error

    vtysh(leaf1.pathspace, "configure terminal", f"router bgp {leaf1.asn}",
          f"neighbor {spine_addr} shutdown")  # fmt: skip
    try:
        job = await engine.run_job(SPINE, JobType.HEALTHCHECK)
    finally:
        vtysh(leaf1.pathspace, "configure terminal", f"router bgp {leaf1.asn}",
              f"no neighbor {spine_addr} shutdown")  # fmt: skip
    assert job.status is JobStatus.FAILED
    checks = {c["check"]: c for c in step(job, "health").output["checks"]}
    assert checks["bgp_down_peers"]["status"] == "fail"
    assert leaf1_addr in checks["bgp_down_peers"]["message"]
    assert "bgp_down_peers" in (job.error or "")
    await asyncio.to_thread(wait_converged, lab.topology)


async def test_activate_moves_traffic_off_the_spine_and_deactivate_brings_it_back(
    lab: Lab, engine: LabEngine
) -> None:
    before = await asyncio.to_thread(transit_pps, lab, SPINE)
    assert before > 100, f"{SPINE} must carry part of the 500 pps first, carries {before:.0f}"
    assert gshut_on_leaves(lab) == [False, False]

    job = await engine.run_job(SPINE, JobType.ACTIVATE)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert (await engine.device(SPINE)).status is DeviceStatus.MAINTENANCE
    drain = step(job, "verify_drain").output
    assert drain["residual_pps"] <= 10 and drain["seconds"] >= 0
    # Measured independently of the driver: the spine forwards (almost) nothing, its twin
    # carries the whole load, and both leaves see the spine's routes with GSHUT.
    split = await asyncio.to_thread(shares, lab, (SPINE, "spine2"))
    assert split[SPINE] <= 0.02 and split["spine2"] >= 0.9, split
    assert gshut_on_leaves(lab) == [True, True]
    assert "bgp graceful-shutdown" in vtysh(lab.ns(SPINE), "show running-config")

    back = await engine.run_job(SPINE, JobType.DEACTIVATE)
    assert back.status is JobStatus.SUCCEEDED, back.error
    assert (await engine.device(SPINE)).status is DeviceStatus.ACTIVATED
    assert gshut_on_leaves(lab) == [False, False]
    summary = json.loads(vtysh(lab.ns(SPINE), "show bgp summary json"))
    assert {p["state"] for p in summary["ipv4Unicast"]["peers"].values()} == {"Established"}
    compare = step(back, "compare").output
    assert compare["compared"] and compare["clean"], compare
    assert compare["config_changed"] is False
    assert await asyncio.to_thread(wait_until, lambda: transit_pps(lab, SPINE) > 100)


async def test_a_drain_that_never_converges_fails_and_rolls_back(
    lab: Lab, engine: LabEngine
) -> None:
    leaf1 = lab.topology.router("leaf1")
    spine_addr = next(n.address for n in leaf1.neighbors if n.name == SPINE)
    # leaf1 strips every community from spine1's routes, GSHUT included: it keeps sending
    # half of its flows through spine1 however long pitstop waits.
    vtysh(leaf1.pathspace, "configure terminal",
          "route-map PSL-IGNORE-GSHUT permit 10", "set community none", "exit",
          f"router bgp {leaf1.asn}", "address-family ipv4 unicast",
          f"neighbor {spine_addr} route-map PSL-IGNORE-GSHUT in")  # fmt: skip
    vtysh(leaf1.pathspace, f"clear bgp ipv4 unicast {spine_addr} soft in")
    config_before = vtysh(lab.ns(SPINE), "show running-config")
    sent, received = lab.flows.sent(), lab.flows.received()
    try:
        job = await engine.run_job(SPINE, JobType.ACTIVATE, params={"drain": {"timeout_s": 5}})
    finally:
        vtysh(leaf1.pathspace, "configure terminal", f"router bgp {leaf1.asn}",
              "address-family ipv4 unicast",
              f"no neighbor {spine_addr} route-map PSL-IGNORE-GSHUT in", "exit", "exit",
              "no route-map PSL-IGNORE-GSHUT")  # fmt: skip
    assert job.status is JobStatus.FAILED
    assert "drain did not converge" in (job.error or "")
    assert step(job, "verify_drain").output["residual_pps"] > 10
    assert "rolled back" in str(job.result)
    assert (await engine.device(SPINE)).status is DeviceStatus.ACTIVATED
    assert vtysh(lab.ns(SPINE), "show running-config") == config_before
    # Traffic intact: the flows kept arriving through the failed drain and its rollback,
    # and the spine carries its share again.
    assert lab.flows.received() - received >= 0.99 * (lab.flows.sent() - sent)
    assert await asyncio.to_thread(wait_until, lambda: transit_pps(lab, SPINE) > 100)


async def test_a_bgpd_killed_during_the_undrain_leaves_the_device_in_maintenance(
    lab: Lab, engine: LabEngine
) -> None:
    entered = await engine.run_job(SPINE, JobType.ACTIVATE)
    assert entered.status is JobStatus.SUCCEEDED, entered.error
    pidfile = f"/var/run/frr/{lab.ns(SPINE)}/bgpd.pid"
    killed: list[int] = []

    async def kill_bgpd_after(driver: FrrDriver, call: Callable[[], Awaitable[Any]]) -> Any:
        result = await call()
        pid = int((await asyncio.to_thread(Path(pidfile).read_text)).strip())
        os.kill(pid, signal.SIGKILL)  # the spine's own bgpd, inside the lab's namespace
        killed.append(pid)
        return result

    job = await engine.run_job(
        SPINE,
        JobType.DEACTIVATE,
        factory=HookedFrrFactory({"remove_maintenance": kill_bgpd_after}),
    )
    assert killed, "the hook never ran"
    assert job.status is JobStatus.FAILED
    assert "bgpd restarted during the undrain" in (job.error or "")
    device = await engine.device(SPINE)
    assert device.status is DeviceStatus.MAINTENANCE, (device.status, job.result)
    # watchfrr restarted bgpd from its startup file; the rollback put the diversion back.
    assert "bgp graceful-shutdown" in vtysh(lab.ns(SPINE), "show running-config")
    await asyncio.to_thread(wait_converged, lab.topology, ecmp=False)

    back = await engine.run_job(SPINE, JobType.DEACTIVATE)
    assert back.status is JobStatus.SUCCEEDED, back.error
    assert gshut_on_leaves(lab) == [False, False]


async def test_as_path_prepend_moves_traffic_and_restores_exactly(lab: Lab) -> None:
    # Driver-level, no engine: the leaves prefer the other spine's shorter AS path. (FRR
    # 8.4's max-med administrative did not change the MED the leaves saw in this lab, so
    # it is not claimed here; see docs/drivers/frr.md.)
    method = "as-path-prepend"
    driver = FrrDriverFactory().open(lab.device(SPINE))
    before = await driver.backup_config()
    try:
        assert (await driver.apply_maintenance(method=method, options={})).changed
        assert await asyncio.to_thread(wait_until, lambda: transit_pps(lab, SPINE) <= 10)
        assert (await driver.traffic()).transit_pps <= 10
    finally:
        await driver.remove_maintenance(method=method, options={})
    assert await driver.backup_config() == before
    assert await asyncio.to_thread(wait_until, lambda: transit_pps(lab, SPINE) > 100)
    restored = await driver.verify_restored()
    assert restored.ok, restored.detail
    await driver.close()


async def test_restoring_the_diverted_config_keeps_the_drain_and_saves_nothing(lab: Lab) -> None:
    # A change by hand during maintenance that weakens the diversion itself (one prepend
    # instead of three) and adds a prefix-list; restoring the config taken right after the
    # diversion undoes both with frr-reload, and the startup config is never written.
    method = "as-path-prepend"
    startup = Path("/etc/frr") / lab.ns(SPINE) / "frr.conf"
    saved = startup.read_bytes()
    driver = FrrDriverFactory().open(lab.device(SPINE))
    before = await driver.backup_config()
    try:
        assert (await driver.apply_maintenance(method=method, options={})).changed
        diverted = await driver.backup_config()
        vtysh(lab.ns(SPINE), "configure terminal", "route-map PSL-MAINT-PREPEND permit 10",
              "set as-path prepend 65000", "exit",
              "ip prefix-list psl-by-hand seq 5 permit 10.254.0.0/24")  # fmt: skip
        assert await driver.backup_config() != diverted
        restored = await driver.restore_config(diverted)
        assert restored.changed, restored.detail
        assert await driver.backup_config() == diverted
        assert await asyncio.to_thread(wait_until, lambda: transit_pps(lab, SPINE) <= 10)
    finally:
        await driver.remove_maintenance(method=method, options={})
    assert await driver.backup_config() == before
    assert startup.read_bytes() == saved
    assert await asyncio.to_thread(wait_until, lambda: transit_pps(lab, SPINE) > 100)
    await driver.close()
