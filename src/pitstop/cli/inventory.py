"""``pitstop fabric ...`` and ``pitstop device ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from pitstop.cli.common import FabricOpt, OutputOpt, client, out
from pitstop.cli.output import Format, badge, details, emit

fabric_app = typer.Typer(help="Fabrics and their redundancy groups.", no_args_is_help=True)
device_app = typer.Typer(
    help="Devices: list, show, import, set status, delete.", no_args_is_help=True
)

STATUSES = "pending, activated, draining, maintenance, undraining, error, decommissioned"


@fabric_app.command("list")
def fabric_list(output: OutputOpt = Format.TABLE) -> None:
    """List fabrics."""
    with_client = client()
    data = with_client.get("/api/v1/fabrics")
    emit(
        out,
        output,
        data,
        columns=[
            ("NAME", lambda f: f["name"]),
            ("DESCRIPTION", lambda f: f["description"]),
            ("LABELS", lambda f: f["labels"]),
        ],
    )


@fabric_app.command("show")
def fabric_show(name: str, output: OutputOpt = Format.TABLE) -> None:
    """Show a fabric and its redundancy groups."""
    c = client()
    fabric = c.get(f"/api/v1/fabrics/{name}")
    groups = c.get(f"/api/v1/fabrics/{name}/groups")
    if output is not Format.TABLE:
        emit(out, output, {**fabric, "groups": groups})
        return
    details(out, {k: fabric[k] for k in ("name", "id", "description", "labels", "created_at")})
    emit(
        out,
        output,
        groups,
        title="Redundancy groups",
        columns=[
            ("GROUP", lambda g: g["name"]),
            ("MAX UNAVAILABLE", lambda g: g["max_unavailable"]),
            ("MEMBERS", lambda g: g["members"]),
            ("DESCRIPTION", lambda g: g["description"]),
        ],
    )


@fabric_app.command("create")
def fabric_create(
    name: str,
    description: Annotated[str, typer.Option(help="Free text")] = "",
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="k=v, repeatable")
    ] = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Create a fabric."""
    data = client().post(
        "/api/v1/fabrics",
        {"name": name, "description": description, "labels": _labels(label or [])},
    )
    emit(out, output, data)


@fabric_app.command("group-create")
def group_create(
    fabric: str,
    name: str,
    max_unavailable: Annotated[str, typer.Option(help="A count (1) or a share (25%)")],
    description: str = "",
    output: OutputOpt = Format.TABLE,
) -> None:
    """Create a redundancy group in a fabric."""
    data = client().post(
        f"/api/v1/fabrics/{fabric}/groups",
        {"name": name, "max_unavailable": max_unavailable, "description": description},
    )
    emit(out, output, data)


def _labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"{pair!r} is not k=v", param_hint="--label")
        k, _, v = pair.partition("=")
        labels[k] = v
    return labels


DEVICE_COLUMNS = [
    ("NAME", lambda d: d["name"]),
    ("FABRIC", lambda d: d["fabric"]),
    ("ROLE", lambda d: d["role"]),
    ("STATUS", lambda d: badge(d["status"])),
    # The reason for the status, else why the device is out of service at all.
    ("REASON", lambda d: d["status_reason"] or d["maintenance"]["reason"]),
    ("SET BY", lambda d: d["status_changed_by"]),
    ("GROUPS", lambda d: d["groups"]),
    (
        "ATTN",
        lambda d: (
            Text("! " + (d["attention_reason"] or "yes"), style="bold red")
            if d["needs_attention"]
            else ""
        ),
    ),
]


# Left out, in this order, when the table would not fit the terminal (``device show`` has them).
DEVICE_OPTIONAL = ("SET BY", "GROUPS", "ROLE", "FABRIC", "REASON")


@device_app.command("list")
def device_list(
    fabric: FabricOpt = None,
    status: Annotated[
        str | None, typer.Option(help=f"One or more, comma-separated: {STATUSES}")
    ] = None,
    role: Annotated[str | None, typer.Option(help="spine, leaf, storage, ...")] = None,
    group: Annotated[str | None, typer.Option(help="Redundancy group name")] = None,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="k=v,k2!=v,k3,!k4")
    ] = None,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Part of the name")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many")] = None,
    output: OutputOpt = Format.TABLE,
    needs_attention: Annotated[
        bool, typer.Option("--needs-attention", help="Only devices flagged (error, overrun)")
    ] = False,
) -> None:
    """List devices with their status badges."""
    items = list(
        client().paged(
            "/api/v1/devices",
            limit=limit,
            fabric=fabric,
            status=status,
            role=role,
            group=group,
            selector=selector,
            q=search,
            needs_attention="true" if needs_attention else None,
        )
    )
    emit(out, output, items, columns=DEVICE_COLUMNS, optional=DEVICE_OPTIONAL)


def _device_view(d: dict[str, Any]) -> dict[str, Any]:
    m = d["maintenance"]
    view: dict[str, Any] = {
        "name": d["name"],
        "fabric": d["fabric"],
        "id": d["id"],
        "role": d["role"],
        "status": badge(d["status"]),
        "status reason": d["status_reason"],
        "status set by": d["status_changed_by"],
        "status set at": d["status_changed_at"],
        "groups": d["groups"],
        "labels": d["labels"],
        "driver": d["driver"],
        "host": d["connection"]["host"],
        "needs attention": d["attention_reason"] if d["needs_attention"] else False,
        "version": d["version"],
        "may move to": d["allowed_transitions"],
    }
    if m["requested_by"] or m["entered_at"]:
        view.update(
            {
                "maintenance reason": m["reason"],
                "ticket": m["ticket"],
                "requested by": m["requested_by"],
                "entered at": m["entered_at"],
                "expected end": m["expected_end"],
            }
        )
    return view


@device_app.command("show")
def device_show(name: str, fabric: FabricOpt = None, output: OutputOpt = Format.TABLE) -> None:
    """Show one device: its status, who set it and why."""
    d = client().get(f"/api/v1/devices/{name}", fabric=fabric)
    if output is Format.TABLE:
        details(out, _device_view(d))
    else:
        emit(out, output, d)


@device_app.command("set-status")
def device_set_status(
    name: str,
    status: Annotated[str, typer.Option(help=STATUSES)],
    reason: Annotated[
        str | None, typer.Option(help="Why; shown in device views and the audit")
    ] = None,
    ticket: Annotated[str | None, typer.Option(help="Change or incident ticket")] = None,
    version: Annotated[int | None, typer.Option(help="Refuse unless the device is at it")] = None,
    fabric: FabricOpt = None,
    output: OutputOpt = Format.TABLE,
    force: Annotated[
        bool,
        typer.Option(help="Admins: go ahead though the fabric disallows maintenance"),
    ] = False,
    force_reason: Annotated[
        str | None, typer.Option(help="Why it is forced (required with --force; audited)")
    ] = None,
) -> None:
    """Set a device's status by hand. Nothing is sent to the device; the audit records that."""
    c = client()
    body: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "ticket": ticket,
        "version": version,
    }
    if force or force_reason:
        body.update(force=force, force_reason=force_reason)
    d = c.post(
        f"/api/v1/devices/{name}/status",
        body,
        params={"fabric": fabric} if fabric else None,
    )
    if output is Format.TABLE:
        out.print(
            Text.assemble(f"{d['name']} is now ", badge(d["status"]), f" (version {d['version']})")
        )
    else:
        emit(out, output, d)


@device_app.command("import")
def device_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fabric: FabricOpt = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="yaml or csv (default: from the file name)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate only; write nothing")] = False,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Import devices from YAML or CSV. All or nothing: any bad row and nothing is written."""
    kind = fmt or ("csv" if file.suffix.lower() == ".csv" else "yaml")
    params: dict[str, Any] = {"format": kind, "dry_run": str(dry_run).lower()}
    if fabric:
        params["fabric"] = fabric
    result = client().post(
        "/api/v1/inventory/import",
        content=file.read_bytes(),
        params=params,
        headers={"Content-Type": "text/csv" if kind == "csv" else "application/yaml"},
    )
    if output is not Format.TABLE:
        emit(out, output, result)
        return
    verb = "Would create" if result["dry_run"] else "Created"
    out.print(
        f"{verb} {len(result['fabrics_created'])} fabrics, {len(result['groups_created'])} "
        f"groups and {len(result['devices_created'])} devices."
    )
