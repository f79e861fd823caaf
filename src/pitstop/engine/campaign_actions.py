"""The per-device action of a campaign, run by the engine between entering and exiting
maintenance: the argv of the campaign's named action (``domain.named_actions``), its
placeholders filled from the device's fields, run as a subprocess of the server or worker
process, as that process's user. Never through a shell, so a device name or label can never
become shell syntax; with a timeout, and its output captured for the campaign's log.

The program gets a minimal environment (``PASSED_ENV``), not the server's: the server's holds
secrets (``PITSTOP_TOKEN``, the database URL with its password) that a program run for a
device has no need of. It runs in the server's working directory, with stdin from /dev/null.
Placeholders: ``{name}``, ``{fabric}``, ``{role}``, ``{host}``, ``{port}``, ``{campaign}``
and ``{labels[KEY]}`` (``domain.argv_templates``); a label the device lacks fails that
device before anything runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pitstop.domain.argv_templates import DeviceFields
from pitstop.domain.argv_templates import render as render
from pitstop.domain.inventory import Device

OUTPUT_LIMIT = 16_000  # characters of output kept in the log; the tail matters most
# What a program run for a device inherits from the server's environment; nothing else.
PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    exit_code: int | None
    output: str
    detail: str


def device_fields(device: Device, *, campaign: str) -> DeviceFields:
    return DeviceFields(
        name=device.name,
        fabric=device.fabric,
        role=device.role,
        host=device.connection.host or device.name,
        port=str(device.connection.port or ""),
        campaign=campaign,
        labels={str(k): str(v) for k, v in device.labels.items()},
    )


def command_environment(source: Mapping[str, str]) -> dict[str, str]:
    env = {k: source[k] for k in PASSED_ENV if k in source}
    env.setdefault("PATH", os.defpath)
    return env


async def run_command(
    argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str] | None = None
) -> ActionResult:
    """Run ``argv``; ``env`` defaults to ``command_environment`` of the server's."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env) if env is not None else command_environment(os.environ),
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
