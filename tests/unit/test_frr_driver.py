"""The ``frr`` driver against a fake router behind its one-method transport: what it reads,
what it configures, and the errors it raises. The same driver runs against real FRR routers
in the contract suite and in ``tests/lab``; here the edge cases that a lab cannot stage
cheaply (a refused command, a daemon restarted between two calls, a counter at a known rate).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pitstop.domain.errors import DeviceUnreachable, DriverError
from pitstop.domain.inventory import Connection, Device, MaintenanceInfo
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.drivers.base import Driver
from pitstop.drivers.frr import FrrDriver, FrrDriverFactory
from pitstop.drivers.frr.transport import LocalTransport

SAMPLES = Path(__file__).parent / "frr_samples"
START = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
NO: dict[str, Any] = {}


def device(options: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> Device:
    return Device(
        id=uuid.uuid4(), fabric_id=uuid.uuid4(), fabric="lab", name="spine1", role="spine",
        driver="frr", connection=Connection(options=options or {}), labels=labels or {},
        groups=(), status=DeviceStatus.ACTIVATED, status_reason=None, status_changed_by=None,
        status_changed_at=None, maintenance=MaintenanceInfo(), needs_attention=False,
        attention_reason=None, version=1, created_at=START, updated_at=START,
    )  # fmt: skip


class FakeRouter:
    """Answers the commands the driver sends, like FRR 8.4 on a spine would: a running
    config that ``configure terminal`` edits (graceful-shutdown and max-med lines), a
    forwarding counter that grows at ``pps`` while the fake time moves, a bgpd pid."""

    def __init__(self) -> None:
        self.config = (SAMPLES / "spine_running_config.txt").read_text()
        self.now = 0.0
        self.pps = 300.0
        self.forwarded = 1000.0
        self.bgpd_pid = "4242"
        self.bgpd_up = True
        self.refuse: str | None = None
        self.sent: list[list[str]] = []
        self.reloads: list[tuple[list[str], str | None]] = []  # (argv, stdin) of frr-reload
        self.reload_fails: str | None = None  # what a failing frr-reload prints
        # The running config after each frr-reload, while it is not the one given.
        self.reloaded: list[str] = []

    @property
    def where(self) -> str:
        return "fake"

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.forwarded += self.pps * seconds

    async def close(self) -> None:
        return None

    def _configure(self, commands: Sequence[str]) -> str:
        if self.refuse:
            return self.refuse
        for c in commands:
            if c in ("bgp graceful-shutdown", "bgp max-med administrative"):
                self.config = self.config.replace(" timers bgp 1 3\n", f" timers bgp 1 3\n {c}\n")
            elif c.startswith("no bgp "):
                self.config = self.config.replace(f" {c[3:]}\n", "")
        return ""

    def _reload(self, argv: Sequence[str], text: str | None) -> str:
        """frr-reload: the running config becomes the one on stdin (or ``reloaded[0]``)."""
        self.reloads.append((list(argv), text))
        if self.reload_fails:
            raise DriverError(f"fake: sh frr-reload: {self.reload_fails}", output=self.reload_fails)
        header = "Building configuration...\n\nCurrent configuration:\n"
        self.config = self.reloaded.pop(0) if self.reloaded else header + (text or "")
        return ""

    def drift(self, n: int = 1) -> str:
        """A change made by hand, out of band: a prefix-list added at the end."""
        line = f"ip prefix-list psl-drift-{n} seq 5 permit 10.255.{n}.0/24"
        self.config = self.config.replace("end\n", f"{line}\n!\nend\n")
        return line

    async def run(
        self, argv: Sequence[str], *, limit_s: float = 20.0, input: str | None = None
    ) -> str:
        self.sent.append(list(argv))
        if argv[:2] == ["sh", "-c"] and "frr-reload" in argv:
            return self._reload(argv, input)
        if argv[0] == "vtysh":
            commands = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
            first = commands[0]
            if first == "configure terminal":
                return self._configure(commands[1:])
            if first == "show running-config":
                return self.config
            if first == "show daemons":
                return " zebra bgpd watchfrr staticd" if self.bgpd_up else " zebra staticd"
            if first == "show bgp summary json":
                return (SAMPLES / "spine_bgp_summary.json").read_text()
            if first == "show version":
                return "FRRouting 8.4.4 (fake) on Linux.\n"
            if first in ("show ip route json", "show interface json"):
                return "{}"
        if argv[:2] == ["cat", "/var/run/frr/psl-lab-spine1/bgpd.pid"]:
            return self.bgpd_pid + "\n"
        if argv[0] == "sh":
            return f"Ip: Forwarding ForwDatagrams\nIp: 1 {int(self.forwarded)}\n"
        if argv[:2] == ["ip", "-j"]:
            return (SAMPLES / "spine_ip_link.json").read_text()
        if argv[0] == "cat":
            busy = int(self.now * 100)
            return (
                f"cpu  {busy} 0 0 {busy * 9 + 900} 0 0 0 0\nMemTotal: 100 kB\nMemAvailable: 60 kB\n"
            )
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def router() -> FakeRouter:
    return FakeRouter()


@pytest.fixture
def driver(router: FakeRouter) -> FrrDriver:
    return FrrDriver(
        device({"pathspace": "psl-lab-spine1"}),
        router,
        pathspace="psl-lab-spine1",
        clock=lambda: START,
        sleep=router.sleep,
        monotonic=lambda: router.now,
    )


def test_the_factory_builds_protocol_drivers_and_is_registered() -> None:
    from importlib.metadata import entry_points

    assert "frr" in {e.name for e in entry_points(group="pitstop.drivers")}
    d = FrrDriverFactory().open(device({"netns": "psl-x", "pathspace": "psl-x"}))
    assert isinstance(d, Driver)
    assert d.capabilities.diversions[0] == "graceful-shutdown"


def test_the_factory_refuses_host_and_netns_together() -> None:
    bad = dataclasses.replace(
        device({"netns": "psl-x"}), connection=Connection(host="r1", options={"netns": "psl-x"})
    )
    with pytest.raises(DriverError, match="exclude each other"):
        FrrDriverFactory().open(bad)


async def test_vtysh_answers_become_a_health_sample(driver: FrrDriver) -> None:
    sample = await driver.health()
    assert [p.peer for p in sample.bgp_peers] == ["10.200.1.1", "10.200.1.3"]
    assert sample.daemons["bgpd"] and sample.daemons["zebra"]
    assert [i.name for i in sample.interfaces] == ["to-leaf1", "to-leaf2"]
    assert sample.cpu_idle_pct == 90.0 and sample.memory_used_pct == 40.0
    assert sample.at == START


async def test_a_dead_bgpd_shows_in_daemons_and_peers(
    driver: FrrDriver, router: FakeRouter
) -> None:
    router.bgpd_up = False
    sample = await driver.health()
    assert sample.daemons["bgpd"] is False
    assert sample.bgp_peers == ()


async def test_transit_rate_comes_from_the_forwarding_counter(
    driver: FrrDriver, router: FakeRouter
) -> None:
    router.pps = 250.0
    assert (await driver.traffic()).transit_pps == pytest.approx(250.0)
    router.pps = 0.0
    assert (await driver.traffic()).transit_pps == 0.0


async def test_apply_and_remove_are_idempotent_and_restore_the_backup(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = await driver.backup_config()
    first = await driver.apply_maintenance(method=None, options=NO)
    second = await driver.apply_maintenance(method=None, options=NO)
    assert (first.changed, second.changed) == (True, False)
    assert " bgp graceful-shutdown\n" in router.config
    removed = await driver.remove_maintenance(method=None, options=NO)
    assert removed.changed and "equals the backup" in removed.detail
    assert (await driver.remove_maintenance(method=None, options=NO)).changed is False
    assert await driver.backup_config() == before


async def test_removal_also_takes_out_another_method_applied_in_the_same_job(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = router.config
    await driver.apply_maintenance(method="max-med", options=NO)
    await driver.remove_maintenance(method=None, options=NO)
    assert router.config == before


async def test_a_refused_command_is_a_driver_error(driver: FrrDriver, router: FakeRouter) -> None:
    router.refuse = "% Configuration is locked by other client"
    with pytest.raises(DriverError, match="configuration refused: % Configuration is locked"):
        await driver.apply_maintenance(method=None, options=NO)


async def test_an_unknown_method_changes_nothing(driver: FrrDriver, router: FakeRouter) -> None:
    with pytest.raises(DriverError, match="unknown diversion method 'isis-overload'"):
        await driver.apply_maintenance(method="isis-overload", options=NO)
    assert not any(c[:3] == ["vtysh", "-N", "psl-lab-spine1"] and "configure terminal" in c
                   for c in router.sent)  # fmt: skip


async def test_a_bgpd_restart_during_the_undrain_fails_the_verification(
    driver: FrrDriver, router: FakeRouter
) -> None:
    await driver.apply_maintenance(method=None, options=NO)
    await driver.remove_maintenance(method=None, options=NO)
    assert (await driver.verify_restored()).ok
    router.bgpd_pid = "5151"  # watchfrr brought up a new bgpd with its startup config
    with pytest.raises(DriverError, match=r"bgpd restarted during the undrain \(pid 4242 -> 5151"):
        await driver.verify_restored()


async def test_a_diverted_device_is_not_restored(driver: FrrDriver) -> None:
    await driver.apply_maintenance(method=None, options=NO)
    check = await driver.verify_restored()
    assert (check.ok, check.detail) == (False, "still diverted (graceful-shutdown)")


async def test_applying_waits_for_a_restarting_bgpd_then_gives_up(
    driver: FrrDriver, router: FakeRouter
) -> None:
    router.bgpd_up = False
    with pytest.raises(DriverError, match="bgpd is not running"):
        await driver.apply_maintenance(method=None, options=NO)
    assert router.now >= driver.daemon_wait_s


async def test_a_missing_namespace_is_unreachable() -> None:
    transport = LocalTransport(netns="psl-no-such-namespace")
    with pytest.raises(DeviceUnreachable):
        await transport.run(["true"])


async def test_the_local_transport_feeds_input_on_stdin() -> None:
    transport = LocalTransport()
    assert await transport.run(["wc", "-l"], input="a\nb\nc\n") == "3\n"
    assert await transport.run(["cat"]) == ""  # no input: an empty stdin, not this process's


def test_the_credentials_reference_is_resolved_without_leaking_it() -> None:
    from pitstop.drivers.transports.ssh import resolve_credentials

    assert resolve_credentials("env:PW", {"PW": "s3cret"})["password"] == "s3cret"
    with pytest.raises(DriverError) as err:
        resolve_credentials("env:MISSING", {})
    assert "MISSING" in str(err.value)
    with pytest.raises(DriverError, match="use env:VAR or file:/path"):
        resolve_credentials("vault:x", {})
    assert json.dumps(resolve_credentials(None, {})) == "{}"


def test_only_a_missing_router_is_unreachable_not_a_missing_file() -> None:
    from pitstop.drivers.frr.transport import classify

    netns = ["ip", "netns", "exec", "psl-x"]
    with pytest.raises(DeviceUnreachable):
        classify("netns psl-x", netns, 1, "", 'Cannot open network namespace "psl-x": No such file')
    with pytest.raises(DeviceUnreachable):
        classify("r1", ["vtysh"], 1, "", "Exiting: failed to connect to any daemons.")
    with pytest.raises(DriverError) as err:
        classify("netns psl-x", [*netns, "cat", "/x.pid"], 1, "", "cat: /x.pid: No such file")
    assert not isinstance(err.value, DeviceUnreachable)
    assert err.value.extra["output"] == "cat: /x.pid: No such file"  # for the caller's message
    classify("r1", ["true"], 0, "", "")  # success raises nothing
