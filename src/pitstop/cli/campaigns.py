"""``pitstop campaign plan|create|list|start|show|log|pause|resume|abort|rollback|approve``.

A definition is a YAML (or JSON) file; the CLI reads it and sends it to the server, which
validates it completely. ``show --watch`` (and ``start --watch``) follow a running campaign
with a Rich progress bar and its log until it settles, pauses or waits for an approval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from pitstop.cli.client import Client
from pitstop.cli.common import OutputOpt, client, err, out
from pitstop.cli.output import Format, emit

campaign_app = typer.Typer(
    help="Rolling maintenance across many devices: plan, run, watch, roll back.",
    no_args_is_help=True,
)

FileArg = Annotated[Path, typer.Argument(help="Campaign definition (YAML or JSON)", exists=True)]
WatchOpt = Annotated[bool, typer.Option("--watch", "-w", help="Follow progress and the log")]
SETTLED = {"validation_failed", "failed", "aborted", "succeeded", "rolled_back"}
STATE_STYLE = {
    "done": "bold green",
    "rolled_back": "green",
    "failed": "bold red",
    "skipped": "dim",
    "awaiting_approval": "bold magenta",
    "entering": "yellow",
    "exiting": "cyan",
    "action": "blue",
}
LEVEL_STYLE = {"info": "", "warning": "yellow", "error": "bold red"}


def _definition(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path}: not YAML: {exc}", param_hint="FILE") from exc
    if not isinstance(loaded, dict):
        raise typer.BadParameter(f"{path}: a campaign is a mapping", param_hint="FILE")
    return loaded


def _state(value: str) -> Text:
    return Text(f" {value} ", style=STATE_STYLE.get(value, ""))


def print_plan(plan: dict[str, Any]) -> None:
    lb = plan["lower_bound"]
    out.print(
        f"{plan['devices']} devices in {plan['wave_count']} waves; lower bound {lb['value']} "
        f"(groups {lb['groups']}"
        + (f" from {lb['tightest_group']}" if lb["tightest_group"] else "")
        + f", chain {lb['chain']}, concurrency {lb['concurrency']}, role layers "
        f"{lb['role_layers']})"
    )
    if plan["canary"]:
        out.print(f"Canary, alone first: {', '.join(plan['canary'])}")
    for i, wave in enumerate(plan["waves"], 1):
        out.print(f"  wave {i:>3}: {', '.join(wave)}", markup=False)
    for item in plan.get("excluded", []):
        err.print(f"excluded {item['device']}: {item['reason']}", style="yellow", markup=False)
    for warning in plan.get("warnings", []):
        err.print(f"warning: {warning}", style="yellow", markup=False)


@campaign_app.command("plan")
def plan(file: FileArg, output: OutputOpt = Format.TABLE) -> None:
    """Plan a definition against the fleet as it is now (offline validation; stores nothing)."""
    result = client().post("/api/v1/campaigns/plan", _definition(file))
    if output is Format.TABLE:
        print_plan(result)
    else:
        emit(out, output, result)


@campaign_app.command("create")
def create(file: FileArg, output: OutputOpt = Format.TABLE) -> None:
    """Store a campaign (refused when it cannot be planned). It starts with `start`."""
    campaign = client().post("/api/v1/campaigns", _definition(file))
    if output is Format.TABLE:
        out.print(
            f"Campaign {campaign['name']} created; start it with: "
            f"pitstop campaign start {campaign['name']}",
            markup=False,
        )
    else:
        emit(out, output, campaign)


@campaign_app.command("list")
def list_(output: OutputOpt = Format.TABLE) -> None:
    """Every campaign and its state."""
    items = client().get("/api/v1/campaigns")["items"]
    emit(
        out,
        output,
        items,
        columns=[
            ("NAME", lambda c: c["name"]),
            ("FABRIC", lambda c: c["fabric"]),
            ("STATE", lambda c: _state(c["state"])),
            ("STARTED", lambda c: (c["started_at"] or "")[:19]),
            ("ERROR", lambda c: c["error"]),
        ],
    )


def _table(campaign: dict[str, Any]) -> None:
    p = campaign["progress"]
    eta = f", ETA {p['eta_s']:.0f} s" if p["eta_s"] else ""
    out.print(
        f"Campaign {campaign['name']} ({campaign['fabric']}): ",
        _state(campaign["state"]),
        f"  {p['percent']}% - {p['done']} done, {p['in_flight']} under way, {p['pending']} "
        f"pending, {p['failed']} failed, {p['skipped']} skipped{eta}",
    )
    if campaign["error"]:
        out.print(campaign["error"], style="bold red", markup=False)
    emit(
        out,
        Format.TABLE,
        campaign["devices"],
        columns=[
            ("NAME", lambda d: d["device"] + (" (canary)" if d["canary"] else "")),
            ("WAVE", lambda d: d["wave"] + 1),
            ("STATE", lambda d: _state(d["state"])),
            ("STEP", lambda d: d["step"]),
            ("START", lambda d: (d["started_at"] or "")[11:19]),
            ("DURATION", lambda d: f"{d['duration_s']:.1f} s" if d["duration_s"] else None),
            ("PACE", lambda d: f"{d['pace']:.2f}x" if d.get("pace") else None),
            ("RESULT", lambda d: d["error"] or d["result"]),
        ],
    )


@campaign_app.command("show")
def show(name: str, watch: WatchOpt = False, output: OutputOpt = Format.TABLE) -> None:
    """The per-device status table (state, step, start, duration, result), progress and ETA."""
    c = client()
    if watch:
        campaign = follow(c, name, quiet=output is not Format.TABLE)
    else:
        campaign = c.get(f"/api/v1/campaigns/{name}")
    if output is Format.TABLE:
        _table(campaign)
    else:
        emit(out, output, campaign)
    if campaign["state"] in {"validation_failed", "failed"}:
        raise typer.Exit(1)


@campaign_app.command("log")
def log(name: str, output: OutputOpt = Format.TABLE) -> None:
    """The campaign's log: its decisions and each command's output."""
    items = client().get(f"/api/v1/campaigns/{name}/events", limit=1000)["items"]
    if output is not Format.TABLE:
        emit(out, output, items)
        return
    for e in items:
        _print_event(e)


def _print_event(e: dict[str, Any]) -> None:
    who = f"{e['device']}: " if e["device"] else ""
    out.print(
        f"{e['at'][11:19]} {who}{e['message']}", style=LEVEL_STYLE.get(e["level"], ""), markup=False
    )
    output = (e.get("data") or {}).get("output")
    if output:
        out.print(Text(output.rstrip(), style="dim"))


def follow(c: Client, name: str, *, quiet: bool = False, poll_s: float = 1.0) -> dict[str, Any]:
    """Poll until the campaign settles, pauses or awaits an approval; returns it."""
    last = 0
    progress = Progress(
        TextColumn("[bold]{task.fields[state]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )
    with progress:
        task = progress.add_task("campaign", total=100, state="", detail="")
        while True:
            campaign: dict[str, Any] = c.get(f"/api/v1/campaigns/{name}")
            for e in c.get(f"/api/v1/campaigns/{name}/events", after=last)["items"]:
                last = e["id"]
                if not quiet:
                    progress.console.print(
                        f"{e['at'][11:19]} {e['device'] + ': ' if e['device'] else ''}"
                        f"{e['message']}",
                        style=LEVEL_STYLE.get(e["level"], ""),
                        markup=False,
                    )
            p = campaign["progress"]
            eta = f"ETA {p['eta_s']:.0f} s" if p["eta_s"] else ""
            progress.update(task, completed=p["percent"], state=campaign["state"], detail=eta)
            waiting = any(
                d["state"] == "awaiting_approval" and not d["approved_by"]
                for d in campaign["devices"]
            )
            if campaign["state"] in SETTLED | {"paused", "created"} or waiting:
                return campaign
            time.sleep(poll_s)


def _control(verb: str, name: str, watch: bool, output: Format) -> None:
    c = client()
    campaign = c.post(f"/api/v1/campaigns/{name}/{verb}")
    if watch:
        campaign = follow(c, name, quiet=output is not Format.TABLE)
    if output is Format.TABLE:
        _table(campaign)
    else:
        emit(out, output, campaign)


@campaign_app.command("start")
def start(name: str, watch: WatchOpt = False, output: OutputOpt = Format.TABLE) -> None:
    """Resolve the selector, plan, test-run every device, then roll."""
    _control("start", name, watch, output)


@campaign_app.command("pause")
def pause(name: str, output: OutputOpt = Format.TABLE) -> None:
    """Start nothing new; devices under way finish."""
    _control("pause", name, False, output)


@campaign_app.command("resume")
def resume(name: str, watch: WatchOpt = False, output: OutputOpt = Format.TABLE) -> None:
    """Carry on after a pause."""
    _control("resume", name, watch, output)


@campaign_app.command("abort")
def abort(name: str, watch: WatchOpt = False, output: OutputOpt = Format.TABLE) -> None:
    """Stop: cancel activations under way, bring held devices back, skip the rest."""
    _control("abort", name, watch, output)


@campaign_app.command("rollback")
def rollback(name: str, watch: WatchOpt = False, output: OutputOpt = Format.TABLE) -> None:
    """Bring every device still in maintenance back, the last one in first."""
    _control("rollback", name, watch, output)


@campaign_app.command("approve")
def approve(name: str, device: str, output: OutputOpt = Format.TABLE) -> None:
    """Confirm an await_approval device: it leaves maintenance next."""
    result = client().post(f"/api/v1/campaigns/{name}/devices/{device}/approve")
    if output is Format.TABLE:
        out.print(f"{device} approved; it leaves maintenance next", markup=False)
    else:
        emit(out, output, result)
