"""The simulated driver: every fault's visible effect, the traffic curve, the counters, the
configuration round trip, the call log, and state that outlives the process in a state_dir.

Time is a manual clock moved by the tests; the ``slow`` fault waits through an injected sleep
that records instead of sleeping, except in one test that checks the real default (30 ms).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop.domain.errors import DeviceUnreachable, DriverError, ValidationFailed
from pitstop.drivers.simulated import SimulatedDriver, SimulatedDriverFactory
from pitstop.drivers.simulated_model import FAULTS, parse_faults
from pitstop.drivers.simulated_state import MAX_CALLS, SimulatedFleet
from pitstop.drivers.testing import START, ManualClock, make_device

NO: dict[str, Any] = {}


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def factory(clock: ManualClock, sleep: RecordingSleep) -> SimulatedDriverFactory:
    return SimulatedDriverFactory(clock=clock, sleep=sleep)


def open_device(factory: SimulatedDriverFactory, **labels: str) -> SimulatedDriver:
    return factory.open(make_device(labels={k.replace("_", ".", 1): v for k, v in labels.items()}))


# --- a healthy device -----------------------------------------------------------------------------


async def test_a_healthy_device_looks_healthy(factory: SimulatedDriverFactory) -> None:
    driver = factory.open(make_device("leaf3"))
    sample = await driver.health()
    assert sample.at == START
    assert 2 <= len(sample.bgp_peers) <= 4
    assert all(p.state == "Established" and p.dropped == 0 for p in sample.bgp_peers)
    assert all(p.peer.startswith("10.") for p in sample.bgp_peers)
    assert 2 <= len(sample.interfaces) <= 4
    assert all(i.oper_up and i.rx_errors == 0 for i in sample.interfaces)
    assert sample.cpu_idle_pct is not None and 80 <= sample.cpu_idle_pct <= 90
    assert sample.memory_used_pct is not None and 35 <= sample.memory_used_pct <= 45
    assert sample.alarms == ()
    assert dict(sample.daemons) == {"bgpd": True, "zebra": True}
    assert sample.routes is not None and len(sample.routes) == 20
    assert all(r.endswith("/24") for r in sample.routes)
    facts = await driver.facts()
    assert (facts.hostname, facts.vendor) == ("leaf3", "pitstop-sim")
    assert facts.os_version


async def test_devices_are_deterministic_and_distinct(clock: ManualClock) -> None:
    device = make_device("spine1", role="spine")
    one = SimulatedDriverFactory(clock=clock).open(device)
    other = SimulatedDriverFactory(clock=clock).open(device)
    assert await one.backup_config() == await other.backup_config()
    a, b = await one.health(), await other.health()
    assert a.routes == b.routes
    assert [p.peer for p in a.bgp_peers] == [p.peer for p in b.bgp_peers]
    leaf = SimulatedDriverFactory(clock=clock).open(make_device("leaf7"))
    assert (await leaf.health()).routes != a.routes
    assert await leaf.backup_config() != await one.backup_config()


async def test_routes_do_not_change_with_time_or_diversion(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory)
    before = (await driver.health()).routes
    await driver.apply_maintenance(method=None, options=NO)
    clock.advance(60)
    assert (await driver.health()).routes == before


async def test_the_config_is_believable(factory: SimulatedDriverFactory) -> None:
    config = await factory.open(make_device("border2", role="border")).backup_config()
    assert "hostname border2\n" in config
    assert "\nrouter bgp 653" in config
    assert config.count(" remote-as ") >= 2
    assert "graceful-shutdown" not in config
    assert config.endswith("end\n")


# --- diversions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "line"),
    [(None, " bgp graceful-shutdown"), ("max-med", " bgp max-med administrative")],
)
async def test_a_diversion_adds_one_line_and_removal_takes_it_out(
    factory: SimulatedDriverFactory, method: str | None, line: str
) -> None:
    driver = open_device(factory)
    before = await driver.backup_config()
    result = await driver.apply_maintenance(method=method, options=NO)
    during = await driver.backup_config()
    assert result.changed and result.method == (method or "graceful-shutdown")
    assert during.splitlines().count(line) == 1
    assert len(during.splitlines()) == len(before.splitlines()) + 1
    removed = await driver.remove_maintenance(method=method, options=NO)
    assert removed.changed and removed.method == result.method
    assert await driver.backup_config() == before


async def test_applying_again_keeps_the_first_diversion_time(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory)
    await driver.apply_maintenance(method=None, options=NO)
    first = factory.fleet.state(driver.device.id)["diverted_at"]
    clock.advance(30)
    again = await driver.apply_maintenance(method="max-med", options=NO)
    assert (again.changed, again.method) == (False, "graceful-shutdown")
    assert factory.fleet.state(driver.device.id)["diverted_at"] == first == START.isoformat()


async def test_removal_takes_out_the_method_in_place(factory: SimulatedDriverFactory) -> None:
    driver = open_device(factory)
    before = await driver.backup_config()
    await driver.apply_maintenance(method="max-med", options=NO)
    removed = await driver.remove_maintenance(method="graceful-shutdown", options=NO)
    assert (removed.changed, removed.method) == (True, "max-med")
    assert await driver.backup_config() == before


async def test_an_unknown_method_is_refused_before_the_device_is_touched(
    factory: SimulatedDriverFactory,
) -> None:
    driver = open_device(factory)
    with pytest.raises(DriverError, match="unknown diversion method 'blackhole'"):
        await driver.apply_maintenance(method="blackhole", options=NO)
    assert factory.fleet.calls(driver.device.id) == []


# --- traffic and counters -------------------------------------------------------------------------


async def test_the_drain_and_return_curves(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory, sim_pps="1000", sim_convergence_s="10")

    async def pps() -> float:
        return (await driver.traffic()).transit_pps

    assert await pps() == pytest.approx(1000, rel=0.025)
    await driver.apply_maintenance(method=None, options=NO)
    assert await pps() == pytest.approx(1000, rel=0.025)  # at 0: nothing has moved yet
    clock.advance(5)
    assert await pps() == pytest.approx(500, rel=0.03)  # half-way
    clock.advance(2.5)
    assert await pps() == pytest.approx(250, rel=0.03)
    clock.advance(2.5)
    drained = await pps()
    assert 0 < drained <= 1  # full convergence: a residual under 1 pps
    clock.advance(100)
    assert 0 < await pps() <= 1
    await driver.remove_maintenance(method=None, options=NO)
    assert await pps() <= 1
    clock.advance(5)
    assert await pps() == pytest.approx(500, rel=0.03)
    clock.advance(5)
    assert await pps() == pytest.approx(1000, rel=0.025)
    assert (await driver.traffic()).drained is None


async def test_removal_mid_drain_climbs_back_from_where_traffic_was(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory, sim_pps="1000", sim_convergence_s="10")
    await driver.apply_maintenance(method=None, options=NO)
    clock.advance(3)  # down to about 70 %
    await driver.remove_maintenance(method=None, options=NO)
    assert (await driver.traffic()).transit_pps == pytest.approx(700, rel=0.03)
    clock.advance(3)  # back to full: it only had 30 % to climb
    assert (await driver.traffic()).transit_pps == pytest.approx(1000, rel=0.025)


async def test_packet_counters_grow_with_traffic(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory, sim_pps="2000")

    async def rx() -> int:
        return sum(i.rx_packets for i in (await driver.health()).interfaces)

    first = await rx()
    clock.advance(10)
    assert await rx() - first == pytest.approx(20000, rel=0.03)
    await driver.apply_maintenance(method=None, options=NO)
    clock.advance(100)
    before_idle = await rx()
    clock.advance(10)
    assert await rx() - before_idle < 20  # drained: only the residual flows


async def test_counters_never_run_backwards(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory, sim_fault="interface-errors")
    clock.advance(10)
    later = await driver.health()
    clock.advance(-5)  # another process's clock, slightly behind
    earlier = await driver.health()
    for a, b in zip(later.interfaces, earlier.interfaces, strict=True):
        assert b.rx_packets >= a.rx_packets and b.rx_errors >= a.rx_errors


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["label", "inject"])
@pytest.mark.parametrize(
    "fault",
    [
        "bgp-peer-down",
        "bgp-flapping",
        "high-cpu",
        "high-memory",
        "critical-alarm",
        "daemon-down",
        "interface-errors",
    ],
)
async def test_health_faults_show_in_the_sample(
    factory: SimulatedDriverFactory, clock: ManualClock, fault: str, source: str
) -> None:
    if source == "label":
        driver = open_device(factory, sim_fault=fault)
    else:
        driver = open_device(factory)
        factory.fleet.inject(driver.device.id, fault)
    first = await driver.health()
    clock.advance(10)
    s = await driver.health()
    down = [p for p in s.bgp_peers if not p.up]
    effects = {
        "bgp-peer-down": len(down) == 1 and down[0].state == "Idle",
        "bgp-flapping": max(p.dropped for p in s.bgp_peers) == 9 and not down,
        "high-cpu": s.cpu_idle_pct == 20.0,
        "high-memory": s.memory_used_pct == 92.0,
        "critical-alarm": [a.severity for a in s.alarms] == ["critical"],
        "daemon-down": s.daemons["bgpd"] is False and s.daemons["zebra"] is True,
        "interface-errors": s.interfaces[0].rx_errors - first.interfaces[0].rx_errors == 500,
    }
    assert effects.pop(fault), f"{fault} has no visible effect: {s}"
    assert not any(effects.values()), f"{fault} changed more than its own reading"
    assert fault in s.extra["faults"]


async def test_clear_turns_injected_faults_off(factory: SimulatedDriverFactory) -> None:
    driver = open_device(factory)
    device_id = driver.device.id
    factory.fleet.inject(device_id, "high-cpu")
    factory.fleet.inject(str(device_id), "critical-alarm")
    assert factory.fleet.faults(device_id) == {"high-cpu", "critical-alarm"}
    factory.fleet.clear(device_id, "high-cpu")
    sample = await driver.health()
    assert sample.cpu_idle_pct != 20.0 and sample.alarms
    factory.fleet.clear(device_id)
    assert not (await driver.health()).alarms
    assert factory.fleet.faults(device_id) == frozenset()


def test_fault_labels_accept_every_separator() -> None:
    assert parse_faults("bgp-peer-down+high-cpu") == {"bgp-peer-down", "high-cpu"}
    assert parse_faults("slow,unreachable;drain-stuck.high-memory") == {
        "slow",
        "unreachable",
        "drain-stuck",
        "high-memory",
    }
    assert parse_faults("") == frozenset()


def test_unknown_faults_are_refused_loudly(factory: SimulatedDriverFactory) -> None:
    with pytest.raises(DriverError, match="hihg-cpu"):
        open_device(factory, sim_fault="hihg-cpu")
    with pytest.raises(ValidationFailed):
        factory.fleet.inject(uuid.uuid4(), "hihg-cpu")
    with pytest.raises(ValidationFailed):
        factory.fleet.calls("../../etc/passwd")
    assert set(FAULTS) >= {"apply-fails", "remove-fails", "slow", "unreachable"}


@pytest.mark.parametrize("label", ["sim.pps", "sim.convergence_s", "sim.latency_ms"])
def test_bad_numbers_in_labels_are_driver_errors(
    factory: SimulatedDriverFactory, label: str
) -> None:
    with pytest.raises(DriverError, match=label):
        factory.open(make_device(labels={label: "fast"}))
    with pytest.raises(DriverError, match=label):
        factory.open(make_device(labels={label: "-1"}))


async def test_drain_stuck_keeps_traffic_flowing(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory, sim_fault="drain-stuck")
    await driver.apply_maintenance(method=None, options=NO)
    clock.advance(60)
    assert (await driver.traffic()).transit_pps == pytest.approx(20000, rel=0.025)


async def test_undrain_fails_keeps_the_device_dark(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory)
    await driver.apply_maintenance(method=None, options=NO)
    clock.advance(10)
    factory.fleet.inject(driver.device.id, "undrain-fails")
    assert (await driver.remove_maintenance(method=None, options=NO)).changed
    clock.advance(60)
    restoration = await driver.verify_restored()
    assert restoration.ok is False and "not returned" in restoration.detail
    assert (await driver.traffic()).transit_pps <= 1
    factory.fleet.clear(driver.device.id, "undrain-fails")
    assert (await driver.verify_restored()).ok


async def test_verify_restored_waits_for_the_traffic(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory)
    assert (await driver.verify_restored()).ok
    await driver.apply_maintenance(method=None, options=NO)
    clock.advance(3)
    assert "still diverted" in (await driver.verify_restored()).detail
    await driver.remove_maintenance(method=None, options=NO)
    clock.advance(1.5)
    assert (await driver.verify_restored()).ok is False
    clock.advance(1.5)
    assert (await driver.verify_restored()).ok


async def test_unreachable_refuses_every_call_and_logs_none(
    factory: SimulatedDriverFactory,
) -> None:
    driver = open_device(factory, sim_fault="unreachable")
    calls = [
        driver.facts(),
        driver.health(),
        driver.backup_config(),
        driver.apply_maintenance(method=None, options=NO),
        driver.remove_maintenance(method=None, options=NO),
        driver.traffic(),
        driver.verify_restored(),
    ]
    for call in calls:
        with pytest.raises(DeviceUnreachable):
            await call
    await driver.close()
    assert factory.fleet.calls(driver.device.id) == []  # the device never saw them


async def test_slow_waits_before_every_call(
    factory: SimulatedDriverFactory, sleep: RecordingSleep
) -> None:
    driver = open_device(factory, sim_fault="slow", sim_latency_ms="50")
    await driver.health()
    await driver.apply_maintenance(method=None, options=NO)
    assert sleep.calls == [0.05, 0.05]
    default = open_device(factory, sim_fault="slow")
    await default.traffic()
    assert sleep.calls[-1] == 0.2
    await open_device(factory).health()  # a device without the fault answers at once
    assert sleep.calls == [0.05, 0.05, 0.2]


async def test_slow_really_sleeps_by_default(clock: ManualClock) -> None:
    driver = SimulatedDriverFactory(clock=clock).open(
        make_device(labels={"sim.fault": "slow", "sim.latency_ms": "30"})
    )
    started = time.monotonic()
    await driver.facts()
    assert time.monotonic() - started >= 0.03
    with pytest.raises(TimeoutError):  # the engine's timeouts can interrupt it
        await asyncio.wait_for(driver.facts(), timeout=0.005)


@pytest.mark.parametrize("op", ["apply_maintenance", "remove_maintenance"])
async def test_refused_changes_leave_the_device_alone_but_are_logged(
    factory: SimulatedDriverFactory, op: str
) -> None:
    driver = open_device(factory)
    await driver.backup_config()
    if op == "remove_maintenance":
        await driver.apply_maintenance(method=None, options=NO)
    before = factory.fleet.state(driver.device.id)
    factory.fleet.inject(
        driver.device.id, "apply-fails" if op.startswith("apply") else "remove-fails"
    )
    with pytest.raises(DriverError, match="commit failed") as raised:
        await getattr(driver, op)(method=None, options=NO)
    assert raised.value.code == "DRIVER_ERROR"
    after = factory.fleet.state(driver.device.id)
    assert (after["diverted"], after["config"]) == (before["diverted"], before["config"])
    last = after["calls"][-1]
    assert (last["op"], last["changed"], last["error"]) == (op, False, "DRIVER_ERROR")


# --- the call log and the lifecycle ---------------------------------------------------------------


async def test_the_call_log_records_what_the_device_saw(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory)
    await driver.facts()  # reads that change nothing on a device are not logged
    await driver.health()
    await driver.backup_config()
    await driver.apply_maintenance(method=None, options=NO)
    clock.advance(1)
    await driver.apply_maintenance(method=None, options=NO)
    await driver.traffic()
    await driver.verify_restored()
    await driver.remove_maintenance(method=None, options=NO)
    calls = factory.fleet.calls(driver.device.id)
    assert [(c["op"], c["changed"]) for c in calls] == [
        ("health", False),
        ("backup_config", False),
        ("apply_maintenance", True),
        ("apply_maintenance", False),
        ("traffic", False),
        ("remove_maintenance", True),
    ]
    assert calls[2]["method"] == "graceful-shutdown"
    assert calls[2]["at"] == START.isoformat()
    assert calls[3]["at"] == (START + timedelta(seconds=1)).isoformat()


async def test_the_call_log_keeps_the_last_thousand(
    factory: SimulatedDriverFactory, clock: ManualClock
) -> None:
    driver = open_device(factory)
    for _ in range(MAX_CALLS + 5):
        await driver.traffic()
        clock.advance(1)
    calls = factory.fleet.calls(driver.device.id)
    assert len(calls) == MAX_CALLS == 1000
    assert calls[0]["at"] == (START + timedelta(seconds=5)).isoformat()


async def test_a_closed_driver_or_factory_refuses(factory: SimulatedDriverFactory) -> None:
    driver = open_device(factory)
    await driver.close()
    with pytest.raises(DriverError, match="closed"):
        await driver.health()
    await factory.aclose()
    with pytest.raises(DriverError, match="closed"):
        open_device(factory)


async def test_separate_in_memory_fleets_are_separate_worlds(clock: ManualClock) -> None:
    device = make_device()
    one, two = SimulatedDriverFactory(clock=clock), SimulatedDriverFactory(clock=clock)
    await one.open(device).apply_maintenance(method=None, options=NO)
    assert one.fleet.state(device.id)["diverted"] is True
    assert two.fleet.state(device.id)["diverted"] is False
    assert two.fleet.calls(device.id) == []


# --- state that outlives the process --------------------------------------------------------------


async def test_state_dir_is_shared_between_fleets(tmp_path: Path, clock: ManualClock) -> None:
    device = make_device()
    first = SimulatedDriverFactory(clock=clock, state_dir=tmp_path)
    config = await first.open(device).backup_config()
    await first.open(device).apply_maintenance(method=None, options=NO)
    first.fleet.inject(device.id, "high-cpu")

    # A second fleet on the same directory: what a restarted server (or a test process
    # checking on it) sees.
    second = SimulatedFleet(state_dir=tmp_path)
    state = second.state(device.id)
    assert state["diverted"] is True and state["method"] == "graceful-shutdown"
    assert [(c["op"], c["changed"]) for c in second.calls(device.id)] == [
        ("backup_config", False),
        ("apply_maintenance", True),
    ]
    assert second.faults(device.id) == {"high-cpu"}
    assert second.devices() == [str(device.id)]

    restarted = SimulatedDriverFactory(clock=clock, state_dir=tmp_path).open(device)
    assert (await restarted.apply_maintenance(method=None, options=NO)).changed is False
    assert (await restarted.health()).cpu_idle_pct == 20.0
    await restarted.remove_maintenance(method=None, options=NO)
    assert await restarted.backup_config() == config
    applied = [c for c in first.fleet.calls(device.id) if c["op"] == "apply_maintenance"]
    assert [c["changed"] for c in applied] == [True, False]

    names = sorted(p.name for p in tmp_path.iterdir())  # noqa: ASYNC240 (a test's tmp dir)
    assert names == [f"{device.id}.json", f"{device.id}.lock"]  # no temporary file left
    assert json.loads((tmp_path / f"{device.id}.json").read_text())["diverted"] is False


def test_a_failing_change_writes_nothing(tmp_path: Path) -> None:
    fleet = SimulatedFleet(state_dir=tmp_path)
    device_id = uuid.uuid4()
    fleet.inject(device_id, "slow")
    before = (tmp_path / f"{device_id}.json").read_text()

    def half_done(state: dict[str, Any]) -> None:
        state["diverted"] = True
        raise RuntimeError("crashed half-way")

    for store in (fleet, SimulatedFleet()):
        store.inject(device_id, "slow")
        with pytest.raises(RuntimeError):
            store.update(device_id, half_done)
        assert store.state(device_id)["diverted"] is False
    assert (tmp_path / f"{device_id}.json").read_text() == before


def test_a_corrupt_state_file_is_a_driver_error(tmp_path: Path) -> None:
    device_id = uuid.uuid4()
    (tmp_path / f"{device_id}.json").write_text("{not json")
    with pytest.raises(DriverError, match="not valid JSON"):
        SimulatedFleet(state_dir=tmp_path).state(device_id)


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    # Separate fleets in separate threads open the lock file separately, so they contend on
    # the flock exactly as two processes would.
    device_id = uuid.uuid4()
    rounds, writers = 25, 4

    def bump(state: dict[str, Any]) -> None:
        state["bumps"] = state.get("bumps", 0) + 1

    def work() -> None:
        fleet = SimulatedFleet(state_dir=tmp_path)
        for _ in range(rounds):
            fleet.update(device_id, bump)

    threads = [threading.Thread(target=work) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert SimulatedFleet(state_dir=tmp_path).state(device_id)["bumps"] == rounds * writers


CHILD = """
import asyncio, os, signal, sys, uuid
from datetime import UTC, datetime
from pitstop.domain.inventory import Connection, Device, MaintenanceInfo
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.drivers.simulated import SimulatedDriverFactory

now = datetime(2030, 1, 2, tzinfo=UTC)
device = Device(uuid.UUID(sys.argv[2]), uuid.uuid4(), "dc1", "leaf1", "leaf", "simulated",
                Connection(), {}, (), DeviceStatus.ACTIVATED, None, None, None,
                MaintenanceInfo(), False, None, 1, now, now)
driver = SimulatedDriverFactory(state_dir=sys.argv[1]).open(device)
asyncio.run(driver.apply_maintenance(method=None, options={}))
os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_the_state_survives_a_sigkilled_process(tmp_path: Path) -> None:
    device_id = uuid.uuid4()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(tmp_path), str(device_id)
    )
    assert await child.wait() == -signal.SIGKILL
    fleet = SimulatedFleet(state_dir=tmp_path)
    assert fleet.state(device_id)["diverted"] is True
    assert [(c["op"], c["changed"]) for c in fleet.calls(device_id)] == [
        ("apply_maintenance", True)
    ]
