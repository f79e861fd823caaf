"""The shared SSH transport, as the frr driver uses it, against a real SSH server on loopback
(asyncssh's own server, running each command in a local shell where ``vtysh`` is a stand-in
script): key and password credentials, errors mapped to the driver's codes, and a driver
reading a router through it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from pitstop.domain.errors import DeviceUnreachable, DriverError
from pitstop.domain.inventory import Connection, Device, MaintenanceInfo
from pitstop.domain.lifecycle import DeviceStatus
from pitstop.drivers.frr import FrrDriverFactory
from pitstop.drivers.transports.ssh import SshTransport

SAMPLES = Path(__file__).parent / "frr_samples"
PASSWORD = "correct horse"

VTYSH = f"""#!/bin/sh
# A stand-in vtysh: answers like FRR 8.4 on a spine, or like a router with no daemons.
if [ -e "$HOME/down" ]; then echo 'Exiting: failed to connect to any daemons.' >&2; exit 1; fi
case "$*" in
  *"show version"*) echo 'FRRouting 8.4.4 (ssh-test) on Linux.';;
  *"show running-config"*) cat {SAMPLES / "spine_running_config.txt"};;
  *) echo "% Unknown command: $*"; exit 1;;
esac
"""


class Server(asyncssh.SSHServer):
    def __init__(self, keys: list[asyncssh.SSHKey]) -> None:
        self._keys = keys

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == PASSWORD

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return any(k.public_data == key.public_data for k in self._keys)


@dataclasses.dataclass
class SshRouter:
    port: int
    key_file: Path
    home: Path


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[SshRouter]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "vtysh").write_text(VTYSH)
    (bindir / "vtysh").chmod(0o755)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(client_key.export_private_key())
    key_file.chmod(0o600)

    async def handle(process: asyncssh.SSHServerProcess[Any]) -> None:
        env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path)}
        proc = await asyncio.create_subprocess_shell(
            str(process.command),
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate((await process.stdin.read()).encode())
        process.stdout.write(out.decode())
        process.stderr.write(err.decode())
        process.exit(proc.returncode or 0)

    server = await asyncssh.create_server(
        lambda: Server([client_key]),
        "127.0.0.1",
        0,
        server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
        process_factory=handle,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield SshRouter(port, key_file, tmp_path)
    finally:
        server.close()
        await server.wait_closed()


def transport(router: SshRouter, **kw: Any) -> SshTransport:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": router.port,
        "username": "pitstop",
        "credentials_ref": f"file:{router.key_file}",
        "known_hosts": "none",
    }
    options.update(kw)
    return SshTransport(**options)


async def test_a_command_runs_with_a_key_and_its_output_comes_back(router: SshRouter) -> None:
    t = transport(router)
    try:
        assert await t.run(["echo", "it's", "here"]) == "it's here\n"
        # One connection, reused.
        assert await t.run(["sh", "-c", "echo $((6 * 7))"]) == "42\n"
    finally:
        await t.close()
        await t.close()


async def test_input_reaches_stdin_and_without_it_stdin_is_empty(router: SshRouter) -> None:
    t = transport(router)
    try:
        assert await t.run(["sh", "-c", "wc -l"], input="router bgp 65000\n exit\n") == "2\n"
        assert await t.run(["cat"]) == ""  # does not wait for a stdin that never ends
    finally:
        await t.close()


async def test_a_password_from_the_environment_works(router: SshRouter) -> None:
    t = transport(router, credentials_ref="env:FRR_PW", env={"FRR_PW": PASSWORD})
    try:
        assert (await t.run(["vtysh", "-c", "show version"])).startswith("FRRouting 8.4.4")
    finally:
        await t.close()


async def test_a_failing_command_is_a_driver_error_with_its_message(router: SshRouter) -> None:
    t = transport(router)
    try:
        with pytest.raises(DriverError, match="no such thing"):
            await t.run(["sh", "-c", "echo no such thing >&2; exit 3"])
    finally:
        await t.close()


async def test_a_router_without_daemons_is_unreachable(router: SshRouter) -> None:
    (router.home / "down").touch()
    t = transport(router)
    try:
        with pytest.raises(DeviceUnreachable, match="failed to connect to any daemons"):
            await t.run(["vtysh", "-c", "show version"])
    finally:
        await t.close()


async def test_a_wrong_key_or_a_closed_port_is_unreachable(
    router: SshRouter, tmp_path: Path
) -> None:
    other = tmp_path / "other_key"
    other.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    with pytest.raises(DeviceUnreachable):
        await transport(router, credentials_ref=f"file:{other}").run(["true"])
    with pytest.raises(DeviceUnreachable):
        await transport(router, port=1).run(["true"])


async def test_the_driver_reads_a_router_over_ssh(router: SshRouter) -> None:
    now = datetime.now(UTC)
    device = Device(
        id=uuid.uuid4(), fabric_id=uuid.uuid4(), fabric="dc1", name="spine1", role="spine",
        driver="frr",
        connection=Connection(
            host="127.0.0.1", port=router.port, credentials_ref=f"file:{router.key_file}",
            options={"username": "pitstop", "known_hosts": "none"},
        ),
        labels={}, groups=(), status=DeviceStatus.ACTIVATED, status_reason=None,
        status_changed_by=None, status_changed_at=None, maintenance=MaintenanceInfo(),
        needs_attention=False, attention_reason=None, version=1, created_at=now, updated_at=now,
    )  # fmt: skip
    driver = FrrDriverFactory().open(device)
    try:
        facts = await driver.facts()
        assert facts.os_version == "FRRouting 8.4.4 (ssh-test) on Linux."
        assert facts.extra["asn"] == 65000
        assert facts.extra["where"] == f"ssh 127.0.0.1:{router.port}"
    finally:
        await driver.close()
