"""The simulated driver: believable in-process devices for the demo, the engine's tests and
the scale benchmarks, with faults that can be switched on per device.

This module owns the driver's behaviour: turning a call into a change of the device's state
(``simulated_state``) and an answer computed by the model (``simulated_model``). A diversion
adds one line to the configuration (``bgp graceful-shutdown`` or ``bgp max-med
administrative``) and removing it takes exactly that line out again; traffic falls linearly
to a residual under 1 pps over ``sim.convergence_s`` seconds of the injected clock, and comes
back the same way. Every answer is stamped with the injected clock, so tests move time instead
of sleeping; only the ``slow`` fault waits, through the injected ``sleep``.

Faults come from the ``sim.fault`` label (``bgp-peer-down+high-cpu``) and from
``SimulatedFleet.inject``; ``FAULTS`` in ``simulated_model`` lists them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitstop.domain.errors import DeviceUnreachable, DriverError
from pitstop.domain.inventory import Device
from pitstop.domain.metrics import (
    Alarm,
    BgpPeer,
    Capabilities,
    Facts,
    HealthSample,
    InterfaceCounters,
    TrafficSample,
)
from pitstop.domain.profile import BUILTIN_CHECKS, DriverProfile
from pitstop.drivers.base import Clock, ConfigRestore, DiversionResult, Restoration
from pitstop.drivers.simulated_model import (
    DIVERSION_LINES,
    ERRORS_PER_S,
    FAULTS,
    Profile,
    SimParams,
    diversion_in,
    traffic_level,
    transit_pps,
    with_diversion,
    without_diversion,
)
from pitstop.drivers.simulated_state import MAX_CALLS, SimulatedFleet, log_call

if TYPE_CHECKING:
    from pitstop.drivers.base import Driver, DriverFactory

__all__ = [
    "CAPABILITIES",
    "FAULTS",
    "SimulatedDriver",
    "SimulatedDriverFactory",
    "SimulatedFleet",
]

Sleep = Callable[[float], Awaitable[None]]
State = dict[str, Any]

# The simulator stands in for a router (in the demo and the tests), so it declares a
# router's checks and the frr driver's limits: a job times out on it as it would in production.
PROFILE = DriverProfile(checks=BUILTIN_CHECKS, step_timeouts={"config_check": 600})
CAPABILITIES = Capabilities(
    diversions=tuple(DIVERSION_LINES),
    measures_traffic=True,
    drained_signal=False,
    profile=PROFILE,
)
RESTORED_LEVEL = 0.9  # verify_restored wants 90 % of the usual traffic back


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class SimulatedDriver:
    """One simulated device. Cheap to open; all state lives in the factory's fleet."""

    def __init__(
        self, device: Device, fleet: SimulatedFleet, *, clock: Clock, sleep: Sleep
    ) -> None:
        self.device = device
        self.params = SimParams.from_labels(device.labels)
        self.profile = Profile.of(device)
        self._fleet = fleet
        self._clock = clock
        self._sleep = sleep
        self._closed = False

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    # --- plumbing -----------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    async def _enter(self) -> frozenset[str]:
        """What every call does first, like a real device would: fail when closed, take its
        time when slow, not answer when unreachable. Returns the faults in effect."""
        if self._closed:
            raise DriverError(f"{self.device.name}: the driver is closed")
        faults = self.params.faults | self._fleet.faults(self.device.id)
        if "slow" in faults:
            await self._sleep(self.params.latency_s)
        if "unreachable" in faults:
            raise DeviceUnreachable(
                f"{self.device.name}: no route to host (simulated)", device=self.device.name
            )
        return faults

    def _touch(self, state: State, now: datetime, faults: frozenset[str]) -> None:
        """Bring a state up to ``now``: first-use defaults, then the counters, which grow by
        the traffic (taken at the middle of the interval) and the error rate since last seen."""
        if state["config"] is None:
            state["config"] = self.profile.config()
            state["hostname"] = self.profile.hostname
        if state["born_at"] is None:
            state["born_at"] = now.isoformat()
        seen = _at(state["observed_at"])
        if seen is None:
            state["packets"] = self.profile.base_packets
        elif now > seen:
            dt = (now - seen).total_seconds()
            state["packets"] += self._pps(state, seen + (now - seen) / 2, faults) * dt
            if "interface-errors" in faults:
                state["errors"] += ERRORS_PER_S * dt
        if seen is None or now > seen:
            state["observed_at"] = now.isoformat()

    def _log(self, state: State, op: str, at: str, changed: bool, **more: Any) -> None:
        log_call(state, self._fleet.max_calls, op, at, changed, **more)

    def _level(self, state: State, now: datetime, faults: frozenset[str]) -> float:
        diverted = bool(state["diverted"])
        stuck = ("drain-stuck" if diverted else "undrain-fails") in faults
        return traffic_level(
            diverted=diverted,
            since=_at(state["diverted_at"] if diverted else state["restored_at"]),
            start=float(state["ramp_from"]),
            now=now,
            convergence_s=self.params.convergence_s,
            stuck=stuck,
        )

    def _pps(self, state: State, now: datetime, faults: frozenset[str]) -> float:
        return transit_pps(self.profile, self.params, self._level(state, now, faults), now)

    def _method(self, method: str | None) -> str:
        if method is None:
            return CAPABILITIES.diversions[0]
        if method not in DIVERSION_LINES:
            raise DriverError(
                f"{self.device.name}: unknown diversion method {method!r}; this driver "
                f"supports {', '.join(CAPABILITIES.diversions)}",
                method=method,
            )
        return method

    # --- reading --------------------------------------------------------------------------

    async def facts(self) -> Facts:
        await self._enter()
        return Facts(
            hostname=self.profile.hostname,
            vendor="pitstop-sim",
            model=f"sim-{self.profile.role}",
            os_version="FRRouting 9.1 (simulated)",
            serial=self.profile.serial,
            extra={"asn": self.profile.asn, "router_id": self.profile.router_id},
        )

    async def health(self) -> HealthSample:
        faults = await self._enter()
        now = self._now()

        def sample(state: State) -> HealthSample:
            self._touch(state, now, faults)
            self._log(state, "health", now.isoformat(), False)
            return self._health_sample(state, now, faults)

        return self._fleet.update(self.device.id, sample)

    def _health_sample(self, state: State, now: datetime, faults: frozenset[str]) -> HealthSample:
        p = self.profile
        born = _at(state["born_at"]) or now
        uptime = p.base_uptime_s + max(0.0, (now - born).total_seconds())
        share = len(p.routes) // len(p.peers)
        peers = [BgpPeer(peer.address, "Established", uptime, 1, 0, share, 2) for peer in p.peers]
        if "bgp-flapping" in faults:
            peers[0] = BgpPeer(p.peers[0].address, "Established", 37.0, 10, 9, share, 2)
        if "bgp-peer-down" in faults:
            peers[-1] = BgpPeer(p.peers[-1].address, "Idle", 0.0, 1, 1, 0, 0)
        interfaces: list[InterfaceCounters] = []
        n = len(p.interfaces)
        for i, name in enumerate(p.interfaces):
            interfaces.append(
                InterfaceCounters(
                    name,
                    oper_up=True,
                    rx_packets=int(state["packets"] * p.weights[i]),
                    tx_packets=int(state["packets"] * p.weights[(i + 1) % n]),
                    rx_errors=int(state["errors"]) if i == 0 else 0,
                    carrier_transitions=2,
                )
            )
        alarms = (Alarm("critical", "PSU2: power supply failed"),)
        cpu_idle = round(85 * p.wobble(now, 120.0, 0.03), 1)
        memory = round(40 * p.wobble(now, 900.0, 0.05), 1)
        return HealthSample(
            at=now,
            bgp_peers=tuple(peers),
            interfaces=tuple(interfaces),
            cpu_idle_pct=20.0 if "high-cpu" in faults else cpu_idle,
            memory_used_pct=92.0 if "high-memory" in faults else memory,
            alarms=alarms if "critical-alarm" in faults else (),
            daemons={"bgpd": "daemon-down" not in faults, "zebra": True},
            routes=p.routes,
            extra={"simulated": True, "faults": sorted(faults), "diverted": state["diverted"]},
        )

    async def backup_config(self) -> str:
        faults = await self._enter()
        now = self._now()

        def backup(state: State) -> str:
            self._touch(state, now, faults)
            self._log(state, "backup_config", now.isoformat(), False)
            return str(state["config"])

        return self._fleet.update(self.device.id, backup)

    async def restore_config(self, config: str) -> ConfigRestore:
        """Put ``config`` back. The simulated device keeps its diversion apart from the rest
        of the configuration, so it refuses a configuration that would add or remove one:
        that is what apply and remove are for."""
        faults = await self._enter()
        now = self._now()

        def restore(state: State) -> ConfigRestore | DriverError:
            self._touch(state, now, faults)
            current = str(state["config"])
            at = now.isoformat()
            if "restore-fails" in faults:
                self._log(state, "restore_config", at, False, error=DriverError.code)
                return DriverError(
                    f"{self.device.name}: commit failed (simulated restore-fails)",
                    device=self.device.name,
                )
            if current == config:
                self._log(state, "restore_config", at, False)
                return ConfigRestore(False, "the configuration already matches")
            method = state["method"] if state["diverted"] else None
            if diversion_in(config) != method:
                self._log(state, "restore_config", at, False, error=DriverError.code)
                return DriverError(
                    f"{self.device.name}: the configuration to restore "
                    + ("lacks" if method else "adds")
                    + " the diversion; apply or remove maintenance instead",
                    device=self.device.name,
                )
            changed = len(set(current.split("\n")) ^ set(config.split("\n")))
            state["config"] = config
            self._log(state, "restore_config", at, True)
            return ConfigRestore(True, f"restored the configuration ({changed} lines differed)")

        outcome = self._fleet.update(self.device.id, restore)
        if isinstance(outcome, DriverError):
            raise outcome
        return outcome

    async def traffic(self) -> TrafficSample:
        faults = await self._enter()
        now = self._now()

        def measure(state: State) -> TrafficSample:
            self._touch(state, now, faults)
            self._log(state, "traffic", now.isoformat(), False)
            return TrafficSample(at=now, transit_pps=self._pps(state, now, faults), drained=None)

        return self._fleet.update(self.device.id, measure)

    async def verify_restored(self) -> Restoration:
        faults = await self._enter()
        now = self._now()
        state = self._fleet.read(self.device.id)
        if state["diverted"]:
            return Restoration(False, f"still diverted ({state['method']})")
        level = self._level(state, now, faults)
        pps = transit_pps(self.profile, self.params, level, now)
        if "undrain-fails" in faults:
            return Restoration(
                False, f"traffic has not returned: {pps:.0f} pps; peers still avoid the device"
            )
        if level < RESTORED_LEVEL:
            return Restoration(False, f"traffic returning: {pps:.0f} pps, {level:.0%} of usual")
        return Restoration(True, f"carries {pps:.0f} pps, {level:.0%} of usual")

    # --- changing ---------------------------------------------------------------------------

    async def apply_maintenance(
        self, *, method: str | None = None, options: Mapping[str, Any] | None = None
    ) -> DiversionResult:
        return await self._switch("apply_maintenance", True, self._method(method))

    async def remove_maintenance(
        self, *, method: str | None = None, options: Mapping[str, Any] | None = None
    ) -> DiversionResult:
        return await self._switch("remove_maintenance", False, self._method(method))

    async def _switch(self, op: str, divert: bool, asked: str) -> DiversionResult:
        """Apply (``divert``) or remove the diversion: the state change and its call-log
        entry are one write, so the log never claims a change the device does not have."""
        faults = await self._enter()
        now = self._now()
        at = now.isoformat()
        refusal = "apply-fails" if divert else "remove-fails"

        def switch(state: State) -> DiversionResult | DriverError:
            self._touch(state, now, faults)
            # Removal takes out the diversion in place whatever method was asked: leaving a
            # device diverted because the caller named the other method would help nobody.
            method: str = state["method"] if state["diverted"] else asked
            if refusal in faults:
                self._log(state, op, at, False, method=method, error=DriverError.code)
                return DriverError(
                    f"{self.device.name}: commit failed, the configuration is locked by "
                    f"another session (simulated {refusal})",
                    device=self.device.name,
                )
            if bool(state["diverted"]) == divert:
                self._log(state, op, at, False, method=method)
                detail = f"already diverted since {state['diverted_at']}" if divert else ""
                return DiversionResult(False, method, detail or "not diverted")
            level = self._level(state, now, faults)
            if divert:
                config = with_diversion(state["config"], method)
                state.update(diverted=True, method=method, diverted_at=at)
            else:
                config = without_diversion(state["config"], method)
                state.update(diverted=False, method=None, restored_at=at)
            state.update(config=config, ramp_from=level)
            self._log(state, op, at, True, method=method)
            verb = "added" if divert else "removed"
            line = DIVERSION_LINES[method].strip()
            return DiversionResult(True, method, f"{verb} '{line}' under router bgp")

        outcome = self._fleet.update(self.device.id, switch)
        if isinstance(outcome, DriverError):
            raise outcome  # raised after the update, so the refused call stays in the log
        return outcome

    async def close(self) -> None:
        self._closed = True


class SimulatedDriverFactory:
    """The ``simulated`` driver kind: one fleet shared by every driver it opens."""

    name = "simulated"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        state_dir: Path | str | None = None,
        sleep: Sleep | None = None,
        max_calls: int = MAX_CALLS,
    ) -> None:
        self.clock: Clock = clock or _utcnow
        self.fleet = SimulatedFleet(state_dir=state_dir, max_calls=max_calls)
        self._sleep: Sleep = sleep or asyncio.sleep
        self._closed = False

    def open(self, device: Device) -> SimulatedDriver:
        if self._closed:
            raise DriverError("the simulated driver factory is closed")
        return SimulatedDriver(device, self.fleet, clock=self.clock, sleep=self._sleep)

    async def aclose(self) -> None:
        self._closed = True


if TYPE_CHECKING:
    # mypy proves here, once, that the simulator satisfies both protocols structurally.
    def _conforms(f: SimulatedDriverFactory, d: SimulatedDriver) -> tuple[DriverFactory, Driver]:
        return f, d
