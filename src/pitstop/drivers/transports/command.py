"""The command transport: one method, ``run``, that executes a command on a device's host
(with ``input`` on its stdin, or none) and returns its output.

Any driver whose device is driven by commands (a router's vtysh, a load balancer's admin
socket, a host's systemctl) may use it; it belongs to no driver. ``LocalTransport`` runs on
this machine, inside a network namespace (``ip netns exec``) when the device names one;
``SshTransport`` (in ``ssh``) runs the same commands over SSH. Keeping the interface to one
method, as httpx does, lets unit tests answer with a fake device and lets a real one be
swapped in without touching the driver.

Failures are mapped here, once: a namespace or host that is not there, or output that says
the device's software is not running (``unreachable`` markers), is ``DeviceUnreachable``; a
command that ran and failed is ``DriverError``; no answer in time is ``DriverTimeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

from pitstop.domain.errors import DeviceUnreachable, DriverError, DriverTimeout

DEFAULT_TIMEOUT_S = 20.0

# What a command prints when the device is not there at all (as opposed to refusing). A
# driver adds its own software's words with ``unreachable=``; vtysh's is a default because a
# router with no routing daemon cannot be told apart from one that is switched off.
UNREACHABLE_MARKERS: tuple[str, ...] = (
    "failed to connect to any daemons",  # vtysh: no daemon of that pathspace is running
    "cannot open network namespace",  # ip netns exec: the namespace does not exist
)


class Transport(Protocol):
    """Runs commands on one device's host."""

    @property
    def where(self) -> str:
        """Where the commands run, for messages: ``netns psl-lab-spine1``, ``ssh r1:22``."""
        ...

    async def run(
        self, argv: Sequence[str], *, limit_s: float = DEFAULT_TIMEOUT_S, input: str | None = None
    ) -> str:
        """stdout of ``argv``, fed ``input`` on stdin (an empty stdin when None); raises the
        driver errors described in the module docstring."""
        ...

    async def close(self) -> None: ...


def classify(
    where: str,
    argv: Sequence[str],
    code: int,
    out: str,
    err: str,
    *,
    unreachable: Sequence[str] = UNREACHABLE_MARKERS,
) -> None:
    """Raise the right driver error for a command that exited with ``code``. The error's
    ``output`` extra is what the command printed, for a caller that words its own message."""
    if code == 0:
        return
    text = (err.strip() or out.strip())[-400:]
    command = " ".join(a for a in argv if a != "-c")[:160]
    if any(marker in text.lower() for marker in unreachable):
        raise DeviceUnreachable(f"{where}: {text or 'unreachable'}", where=where)
    raise DriverError(
        f"{where}: {command}: {text or f'exit status {code}'}", where=where, output=text
    )


class LocalTransport:
    """Commands on this machine, inside ``netns`` when given."""

    def __init__(
        self, *, netns: str | None = None, unreachable: Sequence[str] = UNREACHABLE_MARKERS
    ) -> None:
        self.netns = netns
        self._unreachable = tuple(unreachable)

    @property
    def where(self) -> str:
        return f"netns {self.netns}" if self.netns else "localhost"

    async def run(
        self, argv: Sequence[str], *, limit_s: float = DEFAULT_TIMEOUT_S, input: str | None = None
    ) -> str:
        full = ["ip", "netns", "exec", self.netns, *argv] if self.netns else list(argv)
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                stdin=asyncio.subprocess.DEVNULL if input is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise DeviceUnreachable(f"{self.where}: {full[0]} is not installed") from exc
        try:
            data = None if input is None else input.encode()
            out, err = await asyncio.wait_for(proc.communicate(data), limit_s)
        except TimeoutError as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise DriverTimeout(
                f"{self.where}: {' '.join(argv)[:120]}: no answer after {limit_s:g} s"
            ) from exc
        except BaseException:
            # Cancelled (the step's own limit, a worker stopping): the command must not go on
            # changing the router after its caller gave up on it.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        stdout = out.decode(errors="replace")
        classify(
            self.where,
            full,
            proc.returncode or 0,
            stdout,
            err.decode(errors="replace"),
            unreachable=self._unreachable,
        )
        return stdout

    async def close(self) -> None:
        return None
