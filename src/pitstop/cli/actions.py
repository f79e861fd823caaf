"""``pitstop action list|show|create|update|delete``: the named actions campaigns may run.

Defining an action is an admin's act: it decides which program the server runs, as its own
user, for each device of a campaign that names it (ADR 0013). An argv is given either as one
string, split like a shell would split it (``--command "upgrade-os {host} --reboot"``, split
here, never run through a shell), or as a list in a YAML or JSON file (``--file``).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from pitstop.cli.common import OutputOpt, client, out
from pitstop.cli.output import Format, details, emit

action_app = typer.Typer(
    help="Named actions: the programs campaigns may run (admins define them).",
    no_args_is_help=True,
)

COLUMNS = [
    ("NAME", lambda a: a["name"]),
    ("COMMAND", lambda a: shlex.join(a["command"])),
    ("TIMEOUT", lambda a: f"{a['timeout_s']:g} s"),
    ("FABRICS", lambda a: ", ".join(a["fabrics"]) or "all"),
    ("DESCRIPTION", lambda a: a["description"]),
]
CommandOpt = Annotated[
    str | None,
    typer.Option(help="The argv as one string, e.g. 'upgrade-os {host} --rack={labels[rack]}'"),
]
UndoOpt = Annotated[str | None, typer.Option(help="The argv run on rollback, one string")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Seconds before it is killed")]
FabricsOpt = Annotated[
    list[str] | None,
    typer.Option("--fabric", "-f", help="A fabric it may run on (repeatable; none: every one)"),
]
DescriptionOpt = Annotated[str | None, typer.Option(help="What it does, for operators")]


def _argv(text: str, hint: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}", param_hint=hint) from exc


def _file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--file") from exc
    if not isinstance(loaded, dict):
        raise typer.BadParameter(f"{path}: an action is a mapping", param_hint="--file")
    return loaded


def _body(
    command: str | None,
    undo: str | None,
    timeout: float | None,
    fabric: list[str] | None,
    description: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if command is not None:
        body["command"] = _argv(command, "--command")
    if undo is not None:
        body["undo"] = _argv(undo, "--undo")
    if timeout is not None:
        body["timeout_s"] = timeout
    if fabric:
        body["fabrics"] = fabric
    if description is not None:
        body["description"] = description
    return body


def _show(action: dict[str, Any], output: Format) -> None:
    if output is not Format.TABLE:
        emit(out, output, action)
        return
    details(
        out,
        {
            "name": action["name"],
            "command": shlex.join(action["command"]),
            "undo": shlex.join(action["undo"]) or "-",
            "timeout": f"{action['timeout_s']:g} s",
            "fabrics": ", ".join(action["fabrics"]) or "all",
            "description": action["description"] or "-",
            "created": f"{action['created_at']} by {action['created_by']}",
            "updated": f"{action['updated_at']} by {action['updated_by']}",
        },
    )


@action_app.command("list")
def action_list(output: OutputOpt = Format.TABLE) -> None:
    """List the named actions."""
    emit(out, output, client().get("/api/v1/actions")["items"], columns=COLUMNS)


@action_app.command("show")
def action_show(name: str, output: OutputOpt = Format.TABLE) -> None:
    """Show one named action."""
    _show(client().get(f"/api/v1/actions/{name}"), output)


@action_app.command("create")
def action_create(
    name: Annotated[str | None, typer.Argument(help="Its name (or the file's name field)")] = None,
    command: CommandOpt = None,
    undo: UndoOpt = None,
    timeout: TimeoutOpt = None,
    fabric: FabricsOpt = None,
    description: DescriptionOpt = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="YAML or JSON: name, command, undo, ...")
    ] = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Define an action (admins). Flags override what the file says."""
    body = _file(file) if file else {}
    body.update(_body(command, undo, timeout, fabric, description))
    if name is not None:
        body["name"] = name
    if "name" not in body or "command" not in body:
        raise typer.BadParameter("give a NAME and --command, or a --file that has both")
    _show(client().post("/api/v1/actions", body), output)


@action_app.command("update")
def action_update(
    name: str,
    command: CommandOpt = None,
    undo: UndoOpt = None,
    timeout: TimeoutOpt = None,
    fabric: FabricsOpt = None,
    all_fabrics: Annotated[bool, typer.Option(help="Allow it on every fabric")] = False,
    description: DescriptionOpt = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Change an action (admins). Campaigns already started keep what they started with."""
    body = _body(command, undo, timeout, fabric, description)
    if all_fabrics:
        body["fabrics"] = []
    if not body:
        raise typer.BadParameter("nothing to change")
    _show(client().request("PATCH", f"/api/v1/actions/{name}", json=body), output)


@action_app.command("delete")
def action_delete(name: str, output: OutputOpt = Format.TABLE) -> None:
    """Delete an action (admins). Campaigns not yet started that name it cannot start."""
    data = client().request("DELETE", f"/api/v1/actions/{name}")
    if output is Format.TABLE:
        out.print(f"Action {data['name']!r} deleted.")
    else:
        emit(out, output, data)
