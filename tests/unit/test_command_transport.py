"""The shared command transport maps a device that is not there to ``DeviceUnreachable`` by
the words of the device's own software, which each driver may supply."""

from __future__ import annotations

import pytest

from pitstop.domain.errors import DeviceUnreachable, DriverError
from pitstop.drivers.transports.command import UNREACHABLE_MARKERS, LocalTransport, classify

GONE = "echo 'haproxy: no stats socket at /run/haproxy.sock' >&2; exit 1"


async def test_a_driver_names_the_words_that_mean_its_device_is_not_there() -> None:
    transport = LocalTransport(unreachable=("no stats socket",))
    with pytest.raises(DeviceUnreachable, match="no stats socket"):
        await transport.run(["sh", "-c", GONE])


async def test_without_those_words_the_same_failure_is_a_driver_error() -> None:
    with pytest.raises(DriverError):
        await LocalTransport().run(["sh", "-c", GONE])


def test_the_default_markers_keep_vtysh_and_missing_namespaces_unreachable() -> None:
    assert "failed to connect to any daemons" in UNREACHABLE_MARKERS
    with pytest.raises(DeviceUnreachable):
        classify("netns x", ["ip"], 1, "", 'Cannot open network namespace "x"')
