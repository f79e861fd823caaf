"""vtysh over a command transport: how the ``frr`` driver talks to a router.

The transports themselves (local, in a network namespace, or over SSH) are shared by every
driver and live in ``pitstop.drivers.transports``; this module only builds vtysh's argv.
"""

from __future__ import annotations

from collections.abc import Sequence

from pitstop.drivers.transports.command import (
    DEFAULT_TIMEOUT_S,
    LocalTransport,
    Transport,
    classify,
)

__all__ = ["DEFAULT_TIMEOUT_S", "LocalTransport", "Transport", "classify", "vtysh", "vtysh_argv"]


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
