"""The SSH command transport, shared by every driver that reaches its device over SSH, and
the only module of pitstop that imports asyncssh.

The device's ``connection`` gives ``host``, ``port`` (22) and ``credentials_ref``; its
``options`` give ``username`` (default ``pitstop``), ``known_hosts`` (a file; ``none`` turns
host-key checking off, for labs only) and ``sudo`` (``true`` runs every command through
``sudo -n``, e.g. for FRR's vtysh, which needs the ``frrvty`` group or root). The credentials
reference is resolved here, at the first connection, and never stored anywhere else:

* ``env:VAR`` — the variable holds a password, or a private key when it starts with
  ``-----BEGIN``;
* ``file:/path`` — the file is a private key (OpenSSH or PEM).

One connection is opened lazily and reused for every command; a dropped connection is
reopened once before the call fails as ``DeviceUnreachable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from pitstop.domain.errors import DeviceUnreachable, DriverError, DriverTimeout
from pitstop.drivers.transports.command import DEFAULT_TIMEOUT_S, UNREACHABLE_MARKERS, classify


def resolve_credentials(ref: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    """asyncssh keyword arguments for a credentials reference; ``DriverError`` naming the
    reference (never the secret) when it cannot be used."""
    if not ref:
        return {}  # the agent or the user's default keys
    kind, _, target = ref.partition(":")
    if kind == "env":
        value = env.get(target)
        if not value:
            raise DriverError(f"credentials {ref}: the variable {target} is not set")
        if value.lstrip().startswith("-----BEGIN"):
            return {"client_keys": [asyncssh.import_private_key(value)], "password": None}
        return {"password": value, "client_keys": None}
    if kind == "file":
        path = Path(target)
        if not path.is_file():
            raise DriverError(f"credentials {ref}: no such file")
        try:
            return {"client_keys": [asyncssh.read_private_key(str(path))], "password": None}
        except (OSError, asyncssh.KeyImportError) as exc:
            raise DriverError(f"credentials {ref}: not a private key ({exc})") from exc
    raise DriverError(f"credentials {ref}: use env:VAR or file:/path")


class SshTransport:
    """Commands on a remote host over one reused SSH connection."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 22,
        username: str = "pitstop",
        credentials_ref: str | None = None,
        known_hosts: str | None = None,
        sudo: bool = False,
        env: Mapping[str, str] | None = None,
        unreachable: Sequence[str] = UNREACHABLE_MARKERS,
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._ref = credentials_ref
        self._known_hosts = known_hosts
        self._sudo = sudo
        self._env = env if env is not None else os.environ
        self._unreachable = tuple(unreachable)
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return f"ssh {self.host}:{self.port}"

    async def _connect(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None:
                return self._conn
            options: dict[str, Any] = resolve_credentials(self._ref, self._env)
            if self._known_hosts == "none":
                options["known_hosts"] = None
            elif self._known_hosts:
                options["known_hosts"] = self._known_hosts
            try:
                self._conn = await asyncio.wait_for(
                    asyncssh.connect(self.host, port=self.port, username=self.username, **options),
                    DEFAULT_TIMEOUT_S,
                )
            except TimeoutError as exc:
                raise DeviceUnreachable(f"{self.where}: connection timed out") from exc
            except (OSError, asyncssh.Error) as exc:
                raise DeviceUnreachable(f"{self.where}: {exc}") from exc
            return self._conn

    async def run(
        self, argv: Sequence[str], *, limit_s: float = DEFAULT_TIMEOUT_S, input: str | None = None
    ) -> str:
        command = shlex.join(["sudo", "-n", *argv] if self._sudo else list(argv))
        # asyncssh sends ``input`` and then EOF; without input, stdin is closed at once, as
        # the local transport's is, so that nothing waits for a stdin that never ends.
        stdin: dict[str, Any] = {"input": input} if input else {"stdin": asyncssh.DEVNULL}
        # A command that reads stdin changes the router (a restore): it is never sent twice,
        # since after a dropped connection the first may still be running.
        attempts = (1, 2) if input is None else (2,)
        for attempt in attempts:
            conn = await self._connect()
            try:
                result = await asyncio.wait_for(conn.run(command, check=False, **stdin), limit_s)
            except TimeoutError as exc:
                raise DriverTimeout(f"{self.where}: {command[:120]}: no answer") from exc
            except (OSError, asyncssh.Error) as exc:
                self._conn = None
                if attempt == 2:
                    raise DeviceUnreachable(f"{self.where}: {exc}") from exc
                continue
            out, err = str(result.stdout or ""), str(result.stderr or "")
            code = result.exit_status or 0
            classify(self.where, list(argv), code, out, err, unreachable=self._unreachable)
            return out
        raise DeviceUnreachable(f"{self.where}: connection lost")  # not reached

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                await asyncio.wait_for(conn.wait_closed(), 5)
