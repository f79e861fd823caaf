"""The ``frr`` driver kind: turning a device's ``connection`` into a transport and an
``FrrDriver``, and refusing a connection that cannot work before anything runs.

``connection.host`` set means SSH (``ssh``); otherwise the router runs on this machine, in
``options.netns`` (``ip netns exec``) and ``options.pathspace`` (``vtysh -N``) when given.
``options.peers`` lists the BGP peers the driver reads to verify an undrain: namespaces (also
used as pathspaces) locally, host names over SSH with the same credentials.
``options.frr_reload`` is where ``frr-reload.py`` is on the router's host, for restoring a
configuration (``/usr/lib/frr/frr-reload.py``, Debian's ``frr-pythontools``, by default).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pitstop.domain.errors import DriverError
from pitstop.domain.inventory import Device
from pitstop.drivers.base import Clock
from pitstop.drivers.frr import diversion
from pitstop.drivers.frr.driver import DEFAULT_WINDOW_S, FrrDriver, PeerView, Sleep
from pitstop.drivers.frr.transport import LocalTransport, Transport

if TYPE_CHECKING:
    from pitstop.drivers.base import DriverFactory


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FrrDriverFactory:
    """The ``frr`` driver kind; its drivers share nothing but the clock and the sleep."""

    name = "frr"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        monotonic: Callable[[], float] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.clock: Clock = clock or _utcnow
        self._sleep: Sleep = sleep or asyncio.sleep
        self._monotonic = monotonic or time.monotonic
        self._env = env
        self._closed = False

    def _transport(self, device: Device, host: str | None, netns: str | None) -> Transport:
        if host is None:
            return LocalTransport(netns=netns)
        from pitstop.drivers.transports.ssh import SshTransport  # asyncssh only when SSH is used

        opts = device.connection.options
        return SshTransport(
            host=host,
            port=device.connection.port or 22,
            username=opts.get("username", "pitstop"),
            credentials_ref=device.connection.credentials_ref,
            known_hosts=opts.get("known_hosts"),
            sudo=opts.get("sudo", "false").lower() in ("1", "true", "yes"),
            env=self._env,
        )

    def open(self, device: Device) -> FrrDriver:
        if self._closed:
            raise DriverError("the frr driver factory is closed")
        conn = device.connection
        opts = conn.options
        host = conn.host
        netns = opts.get("netns") or None
        pathspace = opts.get("pathspace") or None
        if host and netns:
            raise DriverError(
                f"{device.name}: connection.host and options.netns exclude each other "
                "(SSH reaches a remote router; netns one on this machine)",
                device=device.name,
            )
        for key, value in (("netns", netns), ("pathspace", pathspace)):
            if value and ("/" in value or value.startswith(".")):
                raise DriverError(f"{device.name}: options.{key} {value!r} is not a name")
        frr_reload = opts.get("frr_reload")
        if frr_reload is not None and not frr_reload.startswith("/"):
            raise DriverError(
                f"{device.name}: options.frr_reload {frr_reload!r} is not an absolute path"
            )
        try:
            diversion.methods_for(device.labels)
            float(device.labels.get("frr.traffic_window_s", DEFAULT_WINDOW_S))
            int(device.labels.get("frr.prepend_count", diversion.DEFAULT_PREPEND))
        except ValueError as exc:
            raise DriverError(f"{device.name}: bad frr.* label: {exc}") from exc
        peers = []
        for name in (p.strip() for p in opts.get("peers", "").split(",")):
            if not name:
                continue
            if host:
                peers.append(PeerView(name, self._transport(device, name, None), None))
            else:
                peers.append(PeerView(name, LocalTransport(netns=name), name))
        return FrrDriver(
            device,
            self._transport(device, host, netns),
            pathspace=pathspace,
            peers=peers,
            clock=self.clock,
            sleep=self._sleep,
            monotonic=self._monotonic,
        )

    async def aclose(self) -> None:
        self._closed = True


if TYPE_CHECKING:

    def _conforms(f: FrrDriverFactory) -> DriverFactory:
        return f
