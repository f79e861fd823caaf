"""What the lab asks of the machine: commands run as root, inside or outside a network
namespace, and the preflight that refuses to start without root, FRR or iproute2.

Synchronous on purpose: the lab is an operator's command that builds a fabric once and
waits for it; nothing else runs beside it that an event loop would have to serve.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

FRR_BIN = Path("/usr/lib/frr")
FRRINIT = FRR_BIN / "frrinit.sh"
FRR_DAEMONS = ("zebra", "bgpd", "staticd", "watchfrr")
FRR_USER = "frr"


class LabError(Exception):
    """The lab cannot be built or removed; the message says why and what to do."""

    code = "LAB_ERROR"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> str:
    """Run ``argv`` and return its stdout; ``LabError`` with its stderr when it fails."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]}: not installed", code="LAB_MISSING_TOOL") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)}: no answer after {timeout:g} s") from exc
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def in_ns(netns: str, argv: Sequence[str], **kw: float | bool) -> str:
    return run(["ip", "netns", "exec", netns, *argv], **kw)  # type: ignore[arg-type]


def namespaces() -> set[str]:
    """The network namespaces that exist now, by name."""
    out = run(["ip", "netns", "list"], check=False)
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def preflight() -> None:
    """Refuse clearly unless the lab can work here: root, iproute2 and FRR's daemons."""
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root: it creates network namespaces and starts FRR daemons "
            "(run it with sudo)",
            code="LAB_NEEDS_ROOT",
        )
    if shutil.which("ip") is None:
        raise LabError(
            "iproute2 is missing (the `ip` command); install it: apt-get install iproute2",
            code="LAB_MISSING_TOOL",
        )
    missing = [d for d in FRR_DAEMONS if not (FRR_BIN / d).exists()]
    if missing or shutil.which("vtysh") is None or not FRRINIT.exists():
        raise LabError(
            f"FRR is missing ({', '.join(missing) or 'vtysh'}); install it: apt-get install frr",
            code="LAB_MISSING_TOOL",
        )
    try:
        pwd.getpwnam(FRR_USER)
    except KeyError as exc:
        raise LabError(
            "the frr user does not exist; reinstall the frr package", code="LAB_MISSING_TOOL"
        ) from exc


def unavailable() -> str | None:
    """Why the lab cannot run here, or None: what tests print when they skip."""
    try:
        preflight()
    except LabError as exc:
        return exc.detail
    return None


def chown_frr(path: Path) -> None:
    user = pwd.getpwnam(FRR_USER)
    os.chown(path, user.pw_uid, user.pw_gid)


def ns_pids(netns: str) -> list[int]:
    """Processes running inside ``netns`` (what ``lab down`` may stop: nothing else)."""
    out = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in out.split() if p.isdigit()]
