"""The ``frr`` driver: FRRouting routers, through vtysh's JSON output, locally (network
namespace and pathspace) or over SSH.

How each promise of the driver contract is kept on a real router:

* **Health** is ``show bgp summary json`` (peer state, uptime, established/dropped counts,
  prefixes received and sent), ``ip -j -s link`` (oper state and kernel counters, which the
  engine turns into rates), ``show daemons`` and ``/proc/stat`` + ``/proc/meminfo`` of the
  host (CPU idle between two readings, memory in use).
* **Transit traffic** is the kernel's ``ForwDatagrams`` counter (``/proc/net/snmp``, plus
  IPv6's) read twice ``frr.traffic_window_s`` apart: it counts only packets routed *through*
  the device, never the BGP sessions, pings or ARP addressed to it, so no subtraction of
  control-plane packets is needed and none can be forgotten.
* **Diversion** is configuration (``diversion``): the running config is backed up before
  the change, removal issues the inverse commands, and the result is compared with the backup.
* **Undrain** is verified on the device (no diversion left, every session Established) and,
  when ``connection.options.peers`` names the BGP peers, on each peer: the device's paths are
  valid, carry no GRACEFUL_SHUTDOWN and are not de-preferred (local-preference, AS-path
  length), without asking that they be best again.
* **Restoring a configuration** (``restore_config``, the optional ``ConfigRestorer``) runs
  FRR's ``frr-reload.py`` (``restore``) with the configuration on stdin, then reads the
  running config back: it must equal the one asked for, byte for byte.
* **A bgpd that restarts during an undrain** (its pid changed since the diversion was
  removed) fails the verification: the restarted daemon loaded its startup file, not the
  configuration pitstop verified, so the engine puts the diversion back instead of declaring
  the device restored.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pitstop.domain.errors import DriverError, DriverTimeout
from pitstop.domain.inventory import Device
from pitstop.domain.metrics import Capabilities, Facts, HealthSample, TrafficSample
from pitstop.domain.profile import BUILTIN_CHECKS, DriverProfile
from pitstop.drivers.base import Clock, ConfigRestore, DiversionResult, Restoration
from pitstop.drivers.frr import diversion, parsing, restore
from pitstop.drivers.frr.transport import Transport, vtysh

if TYPE_CHECKING:
    from pitstop.drivers.base import ConfigRestorer, Driver

Sleep = Callable[[float], Awaitable[None]]

# A router: every built-in check applies. Checking the configuration may run frr-reload twice
# (up to 120 s each), wait for bgpd to come back, and read around them.
PROFILE = DriverProfile(checks=BUILTIN_CHECKS, step_timeouts={"config_check": 600})
DEFAULT_WINDOW_S = 1.0
DAEMON_WAIT_S = 20.0
EXPECTED_DAEMONS = ("zebra", "bgpd")
MAX_PREFIXES_CHECKED = 64


@dataclass(frozen=True, slots=True)
class PeerView:
    """A BGP peer the driver may read, to see the device's paths as the peer does."""

    name: str
    transport: Transport
    pathspace: str | None


class FrrDriver:
    """One FRR router. Holds the transport and what it learned during this job: the backup
    taken before the diversion and the bgpd pid after its removal."""

    def __init__(
        self,
        device: Device,
        transport: Transport,
        *,
        pathspace: str | None,
        peers: Sequence[PeerView] = (),
        clock: Clock,
        sleep: Sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.transport = transport
        self.pathspace = pathspace
        self.peers = tuple(peers)
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic  # the traffic window's clock; tests move it with sleep
        labels = device.labels
        self.window_s = float(labels.get("frr.traffic_window_s", DEFAULT_WINDOW_S))
        self.daemon_wait_s = float(labels.get("frr.daemon_wait_s", DAEMON_WAIT_S))
        self.prepend = int(labels.get("frr.prepend_count", diversion.DEFAULT_PREPEND))
        self.rundir = device.connection.options.get(
            "rundir", f"/var/run/frr/{pathspace}" if pathspace else "/var/run/frr"
        )
        self.frr_reload = device.connection.options.get("frr_reload", restore.DEFAULT_FRR_RELOAD)
        self._caps = Capabilities(
            diversions=diversion.methods_for(labels), measures_traffic=True, profile=PROFILE
        )
        self._backup: str | None = None
        self._applied: set[str] = set()
        self._bgpd_pid: str | None = None
        self._cpu: parsing.CpuTimes | None = None
        self._closed = False

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    # --- plumbing -------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    def _check_open(self) -> None:
        if self._closed:
            raise DriverError(f"{self.device.name}: the driver is closed")

    async def _vtysh(self, *commands: str) -> str:
        self._check_open()
        return await vtysh(self.transport, self.pathspace, commands)

    async def _json(self, command: str) -> Any:
        return parsing.loads(await self._vtysh(command), command)

    async def _config(self) -> str:
        return await self._vtysh("show running-config")

    async def _daemons(self) -> set[str]:
        return set((await self._vtysh("show daemons")).split())

    async def _bgpd_pid_now(self) -> str | None:
        try:
            return (await self.transport.run(["cat", f"{self.rundir}/bgpd.pid"])).strip() or None
        except DriverError:
            return None  # no pid file where we look: restarts cannot be detected here

    async def _wait_for_bgpd(self) -> str:
        """The running config once bgpd runs with its ``router bgp`` loaded. A bgpd that
        watchfrr is restarting comes back within seconds, and gets its startup config a
        moment later: changing the configuration before then would fail for no lasting
        reason, or (worse) find no ``router bgp`` to divert."""
        deadline = self._monotonic() + self.daemon_wait_s
        while True:
            running = "bgpd" in await self._daemons()
            config = await self._config() if running else ""
            if running and parsing.router_bgp_asn(config) is not None:
                return config
            if self._monotonic() >= deadline:
                what = "has no 'router bgp'" if running else "is not running"
                raise DriverError(
                    f"{self.device.name}: bgpd {what} ({self.transport.where}) after "
                    f"{self.daemon_wait_s:g} s",
                    device=self.device.name,
                )
            await self._sleep(0.5)

    def _method(self, method: str | None) -> str:
        chosen = method or diversion.DEFAULT
        if chosen not in self._caps.diversions:
            raise DriverError(
                f"{self.device.name}: unknown diversion method {chosen!r}; this device "
                f"supports {', '.join(self._caps.diversions)}",
                method=chosen,
            )
        return chosen

    # --- reading --------------------------------------------------------------------------

    async def facts(self) -> Facts:
        version = (await self._vtysh("show version")).strip().splitlines()
        config = await self._config()
        hostname = next(
            (ln.split(None, 1)[1] for ln in config.splitlines() if ln.startswith("hostname ")),
            self.device.name,
        )
        return Facts(
            hostname=hostname,
            vendor="FRRouting",
            model="frr",
            os_version=version[0] if version else "",
            extra={
                "asn": parsing.router_bgp_asn(config),
                "where": self.transport.where,
                "pathspace": self.pathspace,
            },
        )

    async def _cpu_reading(self) -> tuple[float | None, float | None]:
        text = await self.transport.run(["cat", "/proc/stat", "/proc/meminfo"])
        now = parsing.cpu_times(text)
        if self._cpu is None:
            await self._sleep(0.2)
            self._cpu, now = now, parsing.cpu_times(await self.transport.run(["cat", "/proc/stat"]))
        idle = parsing.cpu_idle_pct(self._cpu, now)
        self._cpu = now
        return idle, parsing.memory_used_pct(text)

    async def health(self) -> HealthSample:
        daemons = await self._daemons()
        if "bgpd" in daemons:
            summary = await self._json("show bgp summary json")
            peers = parsing.bgp_peers(summary)
        else:
            peers = ()
        links = parsing.loads(
            await self.transport.run(["ip", "-j", "-s", "link", "show"]), "ip -j -s link show"
        )
        routes = parsing.loads(await self._vtysh("show ip route json"), "show ip route json")
        config = await self._config()
        cpu_idle, memory = await self._cpu_reading()
        expected = {*EXPECTED_DAEMONS, *daemons}
        return HealthSample(
            at=self._now(),
            bgp_peers=peers,
            interfaces=parsing.interface_counters(links),
            cpu_idle_pct=cpu_idle,
            memory_used_pct=memory,
            daemons={d: d in daemons for d in sorted(expected)},
            routes=tuple(sorted(routes)),
            extra={
                "diverted": [m for m in diversion.METHODS if diversion.present(config, m)],
                "where": self.transport.where,
            },
        )

    async def backup_config(self) -> str:
        return await self._config()

    async def _forwarded(self) -> int:
        text = await self.transport.run(
            ["sh", "-c", "cat /proc/net/snmp; cat /proc/net/snmp6 2>/dev/null || true"]
        )
        return parsing.forwarded_datagrams(text)

    async def traffic(self) -> TrafficSample:
        self._check_open()
        first, t0 = await self._forwarded(), self._monotonic()
        await self._sleep(self.window_s)
        second, t1 = await self._forwarded(), self._monotonic()
        pps = max(0, second - first) / max(t1 - t0, 1e-3)
        return TrafficSample(at=self._now(), transit_pps=pps, drained=None)

    # --- changing -------------------------------------------------------------------------

    async def _configure(self, commands: Sequence[str]) -> None:
        output = await self._vtysh("configure terminal", *commands)
        problem = parsing.vtysh_problem(output)
        if problem:
            raise DriverError(f"{self.device.name}: configuration refused: {problem}")

    async def apply_maintenance(
        self, *, method: str | None = None, options: Mapping[str, Any] | None = None
    ) -> DiversionResult:
        chosen = self._method(method)
        self._check_open()
        if chosen in diversion.BGP_METHODS:
            config = await self._wait_for_bgpd()
        else:
            config = await self._config()
        plan = diversion.apply_plan(config, chosen, device=self.device.name, prepend=self.prepend)
        if plan.present:
            return DiversionResult(False, chosen, plan.detail)
        if not any(diversion.present(config, m) for m in diversion.METHODS):
            self._backup = config  # the state removal must return to
        await self._configure(plan.commands)
        self._applied.add(chosen)
        self._bgpd_pid = None
        return DiversionResult(True, chosen, plan.detail)

    async def remove_maintenance(
        self, *, method: str | None = None, options: Mapping[str, Any] | None = None
    ) -> DiversionResult:
        chosen = self._method(method)
        config = await self._config()
        # The asked method, and any other this driver applied in this job: an undrain that
        # left a diversion behind because the caller named another method would help nobody.
        targets = [chosen, *sorted(self._applied - {chosen})]
        plans = [diversion.remove_plan(config, m, device=self.device.name) for m in targets]
        todo = [p for p in plans if p.present]
        if not todo:
            self._bgpd_pid = await self._bgpd_pid_now()
            return DiversionResult(False, chosen, "not diverted")
        if any(p.method in diversion.BGP_METHODS for p in todo):
            await self._wait_for_bgpd()
        for p in todo:
            await self._configure(p.commands)
        self._applied.clear()
        self._bgpd_pid = await self._bgpd_pid_now()
        detail = "; ".join(p.detail for p in todo)
        if self._backup is not None:
            after = await self._config()
            if after != self._backup:
                changed = len(set(after.splitlines()) ^ set(self._backup.splitlines()))
                detail += f"; the config differs from the backup in {changed} lines"
            else:
                detail += "; the config equals the backup"
        return DiversionResult(True, todo[0].method, detail)

    async def restore_config(self, config: str) -> ConfigRestore:
        """Make the running config equal ``config`` with frr-reload, in a second pass when
        the first left a difference another pass can remove; ``DriverError`` when frr-reload
        fails or the running config still differs. A diversion in ``config`` stays in place
        (and one it lacks is gone afterwards), so the backup taken before the diversion
        remains the state ``remove_maintenance`` returns to."""
        if not restore.config_body(config).strip():
            raise DriverError(f"{self.device.name}: no configuration to restore")
        if parsing.router_bgp_asn(config) is not None:
            current = await self._wait_for_bgpd()
        else:
            current = await self._config()
        if restore.comparable(current) == restore.comparable(config):
            return ConfigRestore(False, "the running configuration already matches")
        passes = 0
        while True:
            passes += 1
            await self._reload(config)
            after = await self._config()
            if restore.comparable(after) == restore.comparable(config):
                break
            if passes == restore.MAX_PASSES or restore.only_order_differs(config, after):
                raise DriverError(
                    f"{self.device.name}: after frr-reload the running configuration still "
                    f"differs from the one to restore: {restore.difference(config, after)}",
                    device=self.device.name,
                )
        self._track_diversion(after)
        n = restore.changed_lines(current, config)
        passes_note = "" if passes == 1 else f" in {passes} passes"
        return ConfigRestore(
            True,
            f"restored the configuration with frr-reload{passes_note} "
            f"({n} line{'' if n == 1 else 's'} differed)",
        )

    async def _reload(self, config: str) -> None:
        self._check_open()
        try:
            await self.transport.run(
                restore.reload_argv(self.frr_reload, self.pathspace),
                input=restore.config_body(config),
                limit_s=restore.RELOAD_TIMEOUT_S,
            )
        except DriverTimeout as exc:
            raise DriverTimeout(
                f"{self.device.name}: frr-reload ({self.transport.where}) gave no answer after "
                f"{restore.RELOAD_TIMEOUT_S:g} s; the configuration may be partly restored",
                device=self.device.name,
            ) from exc
        except DriverError as exc:
            why = restore.failure(str(exc.extra.get("output") or exc.detail))
            raise DriverError(
                f"{self.device.name}: frr-reload ({self.frr_reload}, {self.transport.where}) "
                f"did not apply the configuration: {why}",
                device=self.device.name,
            ) from exc

    def _track_diversion(self, config: str) -> None:
        """After a restore: forget the diversions it took out. Without any left, the device
        is not diverted and the backup has served its purpose."""
        self._applied = {m for m in self._applied if diversion.present(config, m)}
        if not any(diversion.present(config, m) for m in diversion.METHODS):
            self._backup = None

    # --- verifying ------------------------------------------------------------------------

    async def verify_restored(self) -> Restoration:
        self._check_open()
        if self._bgpd_pid is not None:
            pid = await self._bgpd_pid_now()
            if pid != self._bgpd_pid:
                raise DriverError(
                    f"{self.device.name}: bgpd restarted during the undrain (pid "
                    f"{self._bgpd_pid} -> {pid or 'none'}); it runs its startup config, not "
                    "the one pitstop restored and verified",
                    device=self.device.name,
                )
        daemons = await self._daemons()
        if "bgpd" not in daemons:
            return Restoration(False, "bgpd is not running")
        config = await self._config()
        left = [m for m in diversion.METHODS if diversion.present(config, m)]
        if left:
            return Restoration(False, f"still diverted ({', '.join(left)})")
        peers = parsing.bgp_peers(await self._json("show bgp summary json"))
        if not peers:
            return Restoration(False, "no BGP peers")
        down = [p.peer for p in peers if not p.up]
        if down:
            return Restoration(False, f"BGP peers not established: {', '.join(down)}")
        if not self.peers:
            sent = sum(p.prefixes_sent for p in peers)
            return Restoration(
                True,
                f"{len(peers)} peers established, {sent} prefixes sent, no diversion left "
                "(no peer view configured)",
            )
        own = parsing.interface_addresses(await self._json("show interface json"))
        problems: list[str] = []
        paths = 0
        for peer in self.peers:
            found, problem = await self._peer_view(peer, own)
            paths += found
            if problem:
                problems.append(f"{peer.name}: {problem}")
        if problems:
            return Restoration(False, "; ".join(problems[:4]))
        return Restoration(
            True,
            f"{paths} paths on {len(self.peers)} peers valid and not de-preferred",
        )

    async def _peer_view(self, peer: PeerView, own: set[str]) -> tuple[int, str | None]:
        """How many of the device's paths ``peer`` holds, and the first problem with one."""
        table = parsing.loads(
            await vtysh(peer.transport, peer.pathspace, ["show bgp ipv4 unicast json"]),
            "show bgp ipv4 unicast json",
        )
        prefixes = parsing.prefixes_from(table, own)[:MAX_PREFIXES_CHECKED]
        if not prefixes:
            return 0, "holds no path from the device"
        commands = [f"show bgp ipv4 unicast {p} json" for p in prefixes]
        details = parsing.loads_many(
            await vtysh(peer.transport, peer.pathspace, commands), "show bgp ipv4 unicast <p>"
        )
        for prefix, detail in zip(prefixes, details, strict=False):
            why = parsing.depreference(parsing.prefix_paths(detail), own)
            if why:
                return len(prefixes), f"{prefix}: {why}"
        return len(prefixes), None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for t in (self.transport, *(p.transport for p in self.peers)):
            with contextlib.suppress(Exception):  # closing a dead device never raises
                await t.close()


__all__ = ["FrrDriver", "PeerView"]

if TYPE_CHECKING:

    def _conforms(d: FrrDriver) -> Driver:
        return d

    def _restores(d: FrrDriver) -> ConfigRestorer:
        return d
