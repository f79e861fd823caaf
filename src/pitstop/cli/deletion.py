"""``pitstop device delete``, ``pitstop fabric delete`` and ``pitstop fabric group-delete``.

A delete cannot be undone, so each asks first. Without a terminal to ask on (a script, a pipe)
nothing is deleted unless ``--yes`` says so: a prompt that nobody can answer must not be read
as consent, nor hang the script. The server still decides what may go: a device only when
pending or decommissioned, a fabric only when it has no devices, and only an admin.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pitstop.cli.client import ApiError
from pitstop.cli.common import FabricOpt, client, out

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking")]


def can_ask() -> bool:
    """Whether someone at a terminal can answer the question."""
    return sys.stdin.isatty()


def confirm(what: str, *, yes: bool) -> None:
    """Go on only with ``--yes`` or a "y" typed at the terminal; refuse otherwise."""
    if yes:
        return
    if not can_ask():
        raise ApiError(
            "CONFIRMATION_REQUIRED",
            f"not deleting {what}: there is no terminal to confirm on; pass --yes to delete it",
        )
    # The question goes to stderr, so stdout holds only the result.
    if not typer.confirm(f"Delete {what}? This cannot be undone.", default=False, err=True):
        raise ApiError("ABORTED", f"{what} was not deleted")


def device_delete(name: str, fabric: FabricOpt = None, yes: YesOpt = False) -> None:
    """Delete a device (it must be pending or decommissioned; its audit rows stay)."""
    c = client()
    # Resolve first: the question names the device that would go, and a typo fails before it.
    d = c.get(f"/api/v1/devices/{name}", fabric=fabric)
    confirm(f"device {d['name']} in fabric {d['fabric']}", yes=yes)
    c.request("DELETE", f"/api/v1/devices/{d['id']}")
    out.print(f"Deleted device {d['name']} from fabric {d['fabric']}.", markup=False)


def fabric_delete(name: str, yes: YesOpt = False) -> None:
    """Delete a fabric with its redundancy groups (it must have no devices left)."""
    c = client()
    f = c.get(f"/api/v1/fabrics/{name}")
    confirm(f"fabric {f['name']}", yes=yes)
    c.request("DELETE", f"/api/v1/fabrics/{f['id']}")
    out.print(f"Deleted fabric {f['name']}.", markup=False)


def group_delete(fabric: str, name: str, yes: YesOpt = False) -> None:
    """Delete a redundancy group from a fabric (its devices stay, outside the group)."""
    c = client()
    g = c.get(f"/api/v1/fabrics/{fabric}/groups/{name}")
    confirm(f"group {g['name']} in fabric {fabric}", yes=yes)
    c.request("DELETE", f"/api/v1/fabrics/{fabric}/groups/{g['name']}")
    out.print(f"Deleted group {g['name']} from fabric {fabric}.", markup=False)
