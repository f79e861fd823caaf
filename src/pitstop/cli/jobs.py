"""``pitstop maintenance enter|exit``, ``pitstop healthcheck`` and ``pitstop job ...``.

``--follow`` streams the job's server-sent events: a progress bar with the current step, and
every log line as it happens. The exit status is 1 when the job does not succeed, and each
failed check is shown with what was observed against its threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from pitstop.cli.client import ApiError, Client
from pitstop.cli.common import FabricOpt, OutputOpt, client, err, out
from pitstop.cli.output import Format, emit
from pitstop.domain.parameters import merge, set_path

maintenance_app = typer.Typer(
    help="Take a device out of service and bring it back.", no_args_is_help=True
)
job_app = typer.Typer(help="Jobs: list, show, follow logs, cancel, retry.", no_args_is_help=True)

LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}
JOB_STYLE = {"succeeded": "bold green", "failed": "bold red", "cancelled": "yellow"}


def _value(text: str) -> Any:
    """``--set`` values are YAML scalars: 50, 0.5, true, null, or text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _parameters(sets: list[str] | None, params_file: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if params_file is not None:
        loaded = yaml.safe_load(params_file.read_text()) or {}
        if not isinstance(loaded, dict):
            raise typer.BadParameter("the file must hold a mapping", param_hint="--params-file")
        params = loaded
    for item in sets or []:
        if "=" not in item:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        key, _, raw = item.partition("=")
        set_path(params, key.strip(), _value(raw.strip()))
    return params


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="An advanced parameter: checks.cpu_idle.min_pct=50 (repeatable)"),
]
ParamsFileOpt = Annotated[
    Path | None, typer.Option(help="advanced_parameters from a YAML or JSON file", exists=True)
]
FollowOpt = Annotated[
    bool, typer.Option("--follow/--no-follow", "-F", help="Show progress and logs")
]


def _submit(body: dict[str, Any], *, follow: bool, output: Format) -> None:
    c = client()
    job = c.post("/api/v1/jobs", body)
    if not follow:
        if output is Format.TABLE:
            out.print(f"Job {job['id']} queued: {job['type']} on {job['device']}")
        else:
            emit(out, output, job)
        return
    final = follow_job(c, job["id"], quiet=output is not Format.TABLE)
    if output is not Format.TABLE:
        emit(out, output, final)
    _exit_for(final)


@maintenance_app.command("enter")
def maintenance_enter(
    device: str,
    reason: Annotated[str, typer.Option(help="Why the device leaves service")],
    ticket: Annotated[str | None, typer.Option(help="Change ticket")] = None,
    expected_end: Annotated[
        str | None, typer.Option(help="When it should be back (ISO time); watched for")
    ] = None,
    test_run: Annotated[
        bool, typer.Option("--test-run", help="Checks only; change nothing")
    ] = False,
    set_: SetOpt = None,
    params_file: ParamsFileOpt = None,
    fabric: FabricOpt = None,
    follow: FollowOpt = True,
    output: OutputOpt = Format.TABLE,
    force: Annotated[
        bool,
        typer.Option(help="Admins: go ahead though the fabric disallows maintenance"),
    ] = False,
    force_reason: Annotated[
        str | None, typer.Option(help="Why it is forced (required with --force; audited)")
    ] = None,
) -> None:
    """Check, divert traffic away, verify the drain, and put the device in maintenance."""
    body: dict[str, Any] = {
        "type": "maintenance.activate",
        "device": device,
        "fabric": fabric,
        "mode": "test_run" if test_run else "activate",
        "advanced_parameters": _parameters(set_, params_file),
        "reason": reason,
        "ticket": ticket,
        "expected_end": expected_end,
    }
    if force or force_reason:
        body.update(force=force, force_reason=force_reason)
    _submit(body, follow=follow, output=output)


@maintenance_app.command("exit")
def maintenance_exit(
    device: str,
    set_: SetOpt = None,
    params_file: ParamsFileOpt = None,
    fabric: FabricOpt = None,
    follow: FollowOpt = True,
    output: OutputOpt = Format.TABLE,
    revert_config: Annotated[
        bool,
        typer.Option(
            "--revert-config",
            help="First put back the configuration the diversion left, undoing what was "
            "changed in maintenance (undrain.revert_config)",
        ),
    ] = False,
) -> None:
    """Remove the diversion, verify traffic returns, check health, compare with the snapshot.
    A configuration changed in maintenance is reported first; --revert-config puts it back."""
    params = _parameters(set_, params_file)
    if revert_config:
        params = merge(params, {"undrain": {"revert_config": True}})
    body = {
        "type": "maintenance.deactivate",
        "device": device,
        "fabric": fabric,
        "advanced_parameters": params,
    }
    _submit(body, follow=follow, output=output)


def healthcheck(
    device: str,
    set_: SetOpt = None,
    fabric: FabricOpt = None,
    follow: FollowOpt = True,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Run the health checks on a device now."""
    body = {
        "type": "healthcheck",
        "device": device,
        "fabric": fabric,
        "advanced_parameters": _parameters(set_, None),
    }
    _submit(body, follow=follow, output=output)


def follow_job(c: Client, job_id: str, *, quiet: bool = False) -> dict[str, Any]:
    """Stream a job's events until it ends; returns the finished job."""
    final: dict[str, Any] | None = None
    last_id: str | None = None
    progress = Progress(
        TextColumn("[bold]{task.fields[step]}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )
    with progress:
        task = progress.add_task("job", total=100, step="queued")
        while final is None:
            try:
                for event, data, event_id in c.stream(f"/api/v1/jobs/{job_id}/events", last_id):
                    last_id = event_id or last_id
                    if event == "log" and not quiet:
                        _print_log(progress, json.loads(data))
                    elif event == "job":
                        state = json.loads(data)
                        progress.update(
                            task,
                            completed=state["progress"],
                            step=state["current_step"] or state["status"],
                        )
                    elif event == "end":
                        final = json.loads(data)
                        break
            except (httpx.RemoteProtocolError, httpx.ReadError):
                continue  # the stream broke: resume after the last event seen
    if not quiet:
        _print_outcome(final)
    return final


def _print_log(progress: Progress, e: dict[str, Any]) -> None:
    at = e["at"][11:19]
    step = f"{e['step']}: " if e["step"] else ""
    progress.console.print(
        Text(f"{at} {step}{e['message']}", style=LEVEL_STYLE.get(e["level"], "")),
        soft_wrap=True,
    )


def _print_outcome(job: dict[str, Any]) -> None:
    """The job's verdict is its result, so it goes to stdout; the live log went to stderr."""
    status = job["status"]
    out.print(Text(f"{job['type']} on {job['device']}: {status}", style=JOB_STYLE.get(status, "")))
    checks = job.get("result", {}).get("checks", [])
    failed = [c for c in checks if c["status"] in ("fail", "warn")]
    for c in failed:
        out.print(
            Text(
                f"  {c['status'].upper():4} {c['check']}: {c['message']} "
                f"(observed {c.get('observed')}, threshold {c.get('threshold')})",
                style="red" if c["status"] == "fail" else "yellow",
            ),
            soft_wrap=True,
        )
    if job.get("error"):
        out.print(f"  {job['error']}", markup=False, soft_wrap=True)
    if job.get("result", {}).get("undo"):
        out.print(f"  {job['result']['undo']}", markup=False, soft_wrap=True)


def _exit_for(job: dict[str, Any]) -> None:
    if job["status"] != "succeeded":
        raise typer.Exit(1)


JOB_COLUMNS = [
    ("ID", lambda j: j["id"][:8]),
    ("TYPE", lambda j: j["type"] + (" (test run)" if j["mode"] == "test_run" else "")),
    ("DEVICE", lambda j: f"{j['fabric']}/{j['device']}"),
    ("STATUS", lambda j: Text(j["status"], style=JOB_STYLE.get(j["status"], ""))),
    ("PROGRESS", lambda j: f"{j['progress']}%"),
    ("STEP", lambda j: j["current_step"]),
    ("BY", lambda j: j["created_by"]),
    ("CREATED", lambda j: j["created_at"][:19].replace("T", " ")),
    ("ERROR", lambda j: j["error"]),
]


@job_app.command("list")
def job_list(
    device: Annotated[str | None, typer.Option(help="Device name or id")] = None,
    fabric: FabricOpt = None,
    status: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, failed, cancelled")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 50,
    output: OutputOpt = Format.TABLE,
) -> None:
    """List jobs, newest first."""
    jobs = list(
        client().paged("/api/v1/jobs", limit=limit, device=device, fabric=fabric, status=status)
    )
    emit(out, output, jobs, columns=JOB_COLUMNS)


def _full_id(c: Client, ref: str) -> str:
    """Accept the 8-character prefix ``job list`` shows."""
    if len(ref) >= 32:
        return ref
    matches: list[str] = [
        j["id"] for j in c.paged("/api/v1/jobs", limit=500) if j["id"].startswith(ref)
    ]
    if len(matches) != 1:
        raise ApiError(
            "NOT_FOUND" if not matches else "AMBIGUOUS_REFERENCE",
            f"{len(matches)} recent jobs start with {ref!r}; give more of the id",
        )
    return str(matches[0])


@job_app.command("show")
def job_show(job: str, output: OutputOpt = Format.TABLE) -> None:
    """Show a job with its steps and result."""
    c = client()
    data = c.get(f"/api/v1/jobs/{_full_id(c, job)}", outputs="true")
    if output is not Format.TABLE:
        emit(out, output, data)
        return
    emit(out, output, [data], columns=JOB_COLUMNS)
    emit(
        out,
        output,
        data["steps"],
        title="Steps",
        columns=[
            ("#", lambda s: s["idx"]),
            ("STEP", lambda s: s["name"]),
            ("STATUS", lambda s: s["status"]),
            (
                "DURATION",
                lambda s: f"{s['duration_s']:.1f} s" if s["duration_s"] is not None else "",
            ),
            ("EXPECTED", lambda s: f"{s['expected_s']:g} s"),
            ("RUNS", lambda s: s["runs"]),
            ("ERROR", lambda s: s["error"]),
        ],
    )
    effective = data.get("effective_parameters")
    if effective:
        overridden = set(_flat(data.get("advanced_parameters") or {}))
        emit(
            out,
            output,
            [
                {"path": path, "value": value, "overridden": path in overridden}
                for path, value in _flat(effective).items()
                if path != "schema_version"
            ],
            title="Parameters it runs with (resolved when submitted; * overridden)",
            columns=[
                ("PARAMETER", lambda p: f"{p['path']}{' *' if p['overridden'] else ''}"),
                ("VALUE", lambda p: json.dumps(p["value"])),
            ],
        )
    _print_outcome(data)


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"drain": {"timeout_s": 60}}`` as ``{"drain.timeout_s": 60}``."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


@job_app.command("logs")
def job_logs(
    job: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until it ends")
    ] = False,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Print a job's log lines; with -f, follow them live."""
    c = client()
    job_id = _full_id(c, job)
    if follow:
        final = follow_job(c, job_id, quiet=output is not Format.TABLE)
        if output is not Format.TABLE:
            emit(out, output, final)
        _exit_for(final)
        return
    events = c.get(f"/api/v1/jobs/{job_id}/events", follow="false")
    if output is not Format.TABLE:
        emit(out, output, events)
        return
    for e in events:
        step = f"{e['step']}: " if e["step"] else ""
        out.print(
            Text(
                f"{e['at'][:19].replace('T', ' ')} {step}{e['message']}",
                style=LEVEL_STYLE.get(e["level"], ""),
            ),
            soft_wrap=True,
        )


@job_app.command("cancel")
def job_cancel(job: str, output: OutputOpt = Format.TABLE) -> None:
    """Cancel: interrupt the running step and roll back a diversion already applied."""
    c = client()
    data = c.post(f"/api/v1/jobs/{_full_id(c, job)}/cancel")
    if output is Format.TABLE:
        out.print(f"Cancellation requested for job {data['id']} ({data['status']}).")
    else:
        emit(out, output, data)


@job_app.command("retry")
def job_retry(job: str, follow: FollowOpt = False, output: OutputOpt = Format.TABLE) -> None:
    """Queue a failed job again from its failed step."""
    c = client()
    data = c.post(f"/api/v1/jobs/{_full_id(c, job)}/retry")
    if follow:
        final = follow_job(c, data["id"], quiet=output is not Format.TABLE)
        if output is not Format.TABLE:
            emit(out, output, final)
        _exit_for(final)
    elif output is Format.TABLE:
        out.print(f"Job {data['id']} queued again (attempt {data['attempt']}).")
    else:
        emit(out, output, data)
