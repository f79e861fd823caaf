"""The ``pitstop`` command line."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from pitstop import __version__
from pitstop.cli import (
    actions,
    admin,
    campaigns,
    deletion,
    fleetmap,
    inventory,
    jobs,
    policy,
    server,
)
from pitstop.cli.client import ApiError
from pitstop.cli.common import closing_clients, err


class _Root(TyperGroup):
    """Turns a server error into its code on stderr and exit status 1, for every command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            with closing_clients():
                return super().invoke(ctx)
        except ApiError as exc:
            report(exc)
            raise typer.Exit(1) from exc


app = typer.Typer(
    cls=_Root,
    name="pitstop",
    help="Take infrastructure devices out of service safely, and bring them back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(inventory.fabric_app, name="fabric")
app.add_typer(inventory.device_app, name="device")
inventory.device_app.command("delete")(deletion.device_delete)
inventory.fabric_app.command("delete")(deletion.fabric_delete)
inventory.fabric_app.command("group-delete")(deletion.group_delete)
app.add_typer(admin.audit_app, name="audit")
app.add_typer(admin.token_app, name="token")
app.add_typer(server.db_app, name="db")
app.add_typer(jobs.maintenance_app, name="maintenance")
app.add_typer(jobs.job_app, name="job")
app.command()(jobs.healthcheck)
app.command()(server.worker)
app.command()(server.serve)
app.command()(server.demo)
app.command()(admin.login)
app.command()(admin.whoami)
# Fleet: policy and budgets.
inventory.fabric_app.add_typer(policy.policy_app, name="policy")
inventory.fabric_app.command("budgets")(policy.budgets)
# Fleet: the epoch-versioned map.
app.add_typer(fleetmap.epoch_app, name="epoch")
app.command("map")(fleetmap.show_map)
app.add_typer(campaigns.campaign_app, name="campaign")
app.add_typer(actions.action_app, name="action")

# The FRR lab.
from pitstop.cli import lab as _lab  # noqa: E402

app.add_typer(_lab.lab_app, name="lab")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def report(exc: ApiError) -> None:
    """Print a server error once: the code and detail first, then only what the detail does not
    already say (each bad field, the statuses allowed, a campaign's reasons)."""
    head = exc.detail
    lines: list[str] = []
    for e in exc.body.get("errors", []) or []:
        where = f"row {e['row']}, " if e.get("row") is not None else ""
        lines.append(f"{where}{e.get('field')}: {e.get('message')}")
    if len(lines) == 1 and head in lines[0]:
        # The detail of a single bad field is that field's message, or a shorter form of it.
        head, lines = lines[0], []
    allowed = exc.body.get("allowed")
    if allowed is not None and not (allowed and ", ".join(allowed) in head):
        lines.append(f"allowed: {', '.join(allowed) or 'none'}")
    lines += [str(r) for r in exc.body.get("reasons", []) or []]  # CAMPAIGN_INVALID
    err.print(f"{exc.code}: {head}", markup=False)
    for line in lines:
        if line not in head:
            err.print(f"  {line}", markup=False)


def main() -> None:
    app()
