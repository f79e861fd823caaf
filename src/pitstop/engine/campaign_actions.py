"""The per-device action of a campaign, run by the engine between entering and exiting
maintenance: an argv template formatted with the device's variables and run as a subprocess
(never through a shell, so a device name or label can never become shell syntax), with a
timeout, its output captured for the campaign's log.

Variables: ``{name}``, ``{fabric}``, ``{role}``, ``{host}``, ``{port}``, ``{campaign}`` and
``{labels[KEY]}``. An unknown variable fails the device before anything runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pitstop.domain.inventory import Device

OUTPUT_LIMIT = 16_000  # characters of output kept in the log; the tail matters most


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    exit_code: int | None
    output: str
    detail: str


def variables(device: Device, *, campaign: str) -> dict[str, Any]:
    return {
        "name": device.name,
        "fabric": device.fabric,
        "role": device.role,
        "host": device.connection.host or device.name,
        "port": device.connection.port or "",
        "campaign": campaign,
        "labels": dict(device.labels),
    }


def render(template: Sequence[str], values: Mapping[str, Any]) -> list[str]:
    """The argv; ``ValueError`` naming the bad element when a variable is unknown."""
    argv: list[str] = []
    for i, part in enumerate(template):
        try:
            argv.append(part.format_map(values))
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ValueError(f"argument {i} {part!r}: unknown or bad variable {exc}") from exc
    return argv


async def run_command(argv: Sequence[str], *, timeout_s: float) -> ActionResult:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        return ActionResult(False, None, "", f"cannot run {argv[0]!r}: {exc.strerror or exc}")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")[-OUTPUT_LIMIT:]
        return ActionResult(False, None, text, f"timed out after {timeout_s:g} s (killed)")
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")[-OUTPUT_LIMIT:]
    code = proc.returncode
    if code == 0:
        return ActionResult(True, 0, text, "exited 0")
    return ActionResult(False, code, text, f"exited {code}")
