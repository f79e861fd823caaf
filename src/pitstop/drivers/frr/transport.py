"""How the ``frr`` driver reaches a router: one method, ``run``, that executes a command on
the router's host (with ``input`` on its stdin, or none) and returns its output, plus
``vtysh`` built on it.

``LocalTransport`` runs on this machine, in the device's network namespace (``ip netns exec``)
and FRR pathspace (``vtysh -N``) when the device names them; ``SshTransport`` (in ``ssh``) runs
the same commands over SSH. Keeping the interface to one method, as httpx does, lets the unit
tests answer with a fake router and lets a real one be swapped in without touching the driver.

Failures are mapped here, once: a namespace or host that is not there, or a vtysh that reaches
no daemon, is ``DeviceUnreachable``; a command that ran and failed is ``DriverError``; no
answer in time is ``DriverTimeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

from pitstop.domain.errors import DeviceUnreachable, DriverError, DriverTimeout

DEFAULT_TIMEOUT_S = 20.0

# What vtysh and ip print when the router is not there at all (as opposed to refusing).
_UNREACHABLE = (
    "failed to connect to any daemons",  # vtysh: no daemon of that pathspace is running
    "cannot open network namespace",  # ip netns exec: the namespace does not exist
)


class Transport(Protocol):
    """Runs commands on one router's host."""

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


def vtysh_argv(pathspace: str | None, commands: Sequence[str]) -> list[str]:
    argv = ["vtysh"]
    if pathspace:
        argv += ["-N", pathspace]
    for c in commands:
        argv += ["-c", c]
    return argv


async def vtysh(
    transport: Transport,
    pathspace: str | None,
    commands: Sequence[str],
    *,
    limit_s: float = DEFAULT_TIMEOUT_S,
) -> str:
    return await transport.run(vtysh_argv(pathspace, commands), limit_s=limit_s)


def classify(where: str, argv: Sequence[str], code: int, out: str, err: str) -> None:
    """Raise the right driver error for a command that exited with ``code``. The error's
    ``output`` extra is what the command printed, for a caller that words its own message."""
    if code == 0:
        return
    text = (err.strip() or out.strip())[-400:]
    command = " ".join(a for a in argv if a != "-c")[:160]
    if any(marker in text.lower() for marker in _UNREACHABLE):
        raise DeviceUnreachable(f"{where}: {text or 'unreachable'}", where=where)
    raise DriverError(
        f"{where}: {command}: {text or f'exit status {code}'}", where=where, output=text
    )


class LocalTransport:
    """Commands on this machine, inside ``netns`` when given."""

    def __init__(self, *, netns: str | None = None) -> None:
        self.netns = netns

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
        classify(self.where, full, proc.returncode or 0, stdout, err.decode(errors="replace"))
        return stdout

    async def close(self) -> None:
        return None
