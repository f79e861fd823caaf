"""``pitstop lab up`` and ``pitstop lab down``: a real FRR spine-leaf fabric in network
namespaces on this machine, registered in pitstop.

``up`` builds the fabric (``pitstop.lab.fabric``), then registers its routers through the API,
as ``device import`` would, so that ``pitstop maintenance enter spine1 --fabric lab`` works at
once. Devices already registered from an earlier run are kept (with their history) and only
missing ones are added. When the server cannot be reached the lab stays up: the error is
printed with its code, and the inventory is left in a file to import later. ``--no-register``
prints the inventory instead of sending it.

``down`` removes what ``up`` created on the machine and nothing else. It leaves the devices
registered in pitstop: their jobs and audit trail are records, not lab state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from pitstop.cli.client import ApiError
from pitstop.cli.common import OutputOpt, client, err, out
from pitstop.cli.output import Format, emit
from pitstop.lab import fabric as lab_fabric
from pitstop.lab.host import LabError
from pitstop.lab.inventory import inventory

lab_app = typer.Typer(
    help="A real FRR spine-leaf lab in network namespaces (needs root, frr, iproute2).",
    no_args_is_help=True,
)

LabFabricOpt = Annotated[
    str, typer.Option("--fabric", "-f", help="Lab (and pitstop fabric) name, 1-6 characters")
]


def _fail(exc: LabError) -> typer.Exit:
    err.print(f"{exc.code}: {exc.detail}", markup=False)
    return typer.Exit(1)


def _missing(doc: dict[str, Any], fabric: str) -> dict[str, Any]:
    """``doc`` without the groups and devices the server already has."""
    c = client()
    try:
        c.get(f"/api/v1/fabrics/{fabric}")
    except ApiError as exc:
        if exc.code == "NOT_FOUND":
            return doc
        raise
    groups = {g["name"] for g in c.get(f"/api/v1/fabrics/{fabric}/groups")}
    devices = {d["name"] for d in c.paged("/api/v1/devices", fabric=fabric)}
    spec = dict(doc["fabrics"][0])
    spec["groups"] = [g for g in spec["groups"] if g["name"] not in groups]
    spec["devices"] = [d for d in spec["devices"] if d["name"] not in devices]
    return {"fabrics": [spec]}


def _register(doc: dict[str, Any], fabric: str) -> dict[str, Any]:
    todo = _missing(doc, fabric)
    spec = todo["fabrics"][0]
    if not spec["devices"] and not spec["groups"]:
        return {"registered": [], "already_registered": True}
    result = client().post(
        "/api/v1/inventory/import",
        content=yaml.safe_dump(todo, sort_keys=False).encode(),
        headers={"Content-Type": "application/yaml"},
        params={"format": "yaml", "dry_run": "false"},
    )
    return {"registered": result.get("devices_created", []), "already_registered": False}


@lab_app.command("up")
def up(
    spines: Annotated[int, typer.Option(help="Number of spines")] = 2,
    leaves: Annotated[int, typer.Option(help="Number of leaves")] = 4,
    hosts_per_leaf: Annotated[int, typer.Option(help="Hosts on each leaf")] = 1,
    fabric: LabFabricOpt = "lab",
    register: Annotated[
        bool, typer.Option(help="Register the routers in pitstop (else print the inventory)")
    ] = True,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Build the lab and register its routers as devices of driver frr."""
    say = (lambda m: None) if output is not Format.TABLE else (lambda m: err.print(m))
    try:
        state = lab_fabric.up(
            fabric=fabric, spines=spines, leaves=leaves, hosts_per_leaf=hosts_per_leaf, say=say
        )
    except LabError as exc:
        raise _fail(exc) from exc
    topo = state.topology()
    doc = inventory(topo)
    summary: dict[str, Any] = {
        "fabric": fabric,
        "routers": [
            {"name": r.name, "role": r.role, "asn": r.asn, "netns": r.netns} for r in topo.routers
        ],
        "hosts": [{"name": h.name, "address": h.address, "leaf": h.leaf} for h in topo.hosts],
        "state_file": str(lab_fabric.state_path(fabric)),
    }
    if not register:
        if output is Format.TABLE:
            out.out(yaml.safe_dump(doc, sort_keys=False).rstrip())
        else:
            emit(out, output, {**summary, "inventory": doc})
        return
    saved = Path(lab_fabric.STATE_DIR) / f"{fabric}-inventory.yaml"
    saved.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        summary.update(_register(doc, fabric))
    except ApiError as exc:
        err.print(f"{exc.code}: {exc.detail}", markup=False)
        err.print(
            f"the lab is up but not registered; import it later with: "
            f"pitstop device import {saved}",
            markup=False,
        )
        raise typer.Exit(1) from exc
    if output is not Format.TABLE:
        emit(out, output, summary)
        return
    out.print(
        f"Lab {fabric!r} is up: {len(topo.spines)} spines, {len(topo.leaves)} leaves, "
        f"{len(topo.hosts)} hosts; BGP converged with ECMP over every spine."
    )
    if summary["already_registered"]:
        out.print(f"Its devices were already registered in fabric {fabric!r}.")
    else:
        out.print(f"Registered {len(summary['registered'])} devices in fabric {fabric!r}.")
    out.print(f"Try: pitstop maintenance enter spine1 --fabric {fabric} --reason test")


@lab_app.command("down")
def down(fabric: LabFabricOpt = "lab", output: OutputOpt = Format.TABLE) -> None:
    """Remove everything the lab created on this machine (and only that)."""
    say = (lambda m: None) if output is not Format.TABLE else (lambda m: err.print(m))
    try:
        state = lab_fabric.down(fabric=fabric, say=say)
    except LabError as exc:
        raise _fail(exc) from exc
    (Path(lab_fabric.STATE_DIR) / f"{fabric}-inventory.yaml").unlink(missing_ok=True)
    result = {"fabric": fabric, "namespaces": state.namespaces, "directories": state.directories}
    if output is not Format.TABLE:
        emit(out, output, result)
        return
    out.print(
        f"Lab {fabric!r} removed: {len(state.pathspaces)} FRR instances, "
        f"{len(state.namespaces)} namespaces. Its devices stay registered in pitstop."
    )
