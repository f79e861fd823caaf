"""``pitstop fabric policy show|set`` and ``pitstop fabric budgets``: whether maintenance may
start in a fabric, its role budgets, and who holds each budget's slots right now."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pitstop.cli.common import OutputOpt, client, out
from pitstop.cli.output import Format, details, emit

policy_app = typer.Typer(
    help="Fabric policy: maintenance allowed, role budgets.", no_args_is_help=True
)


def _show(policy: dict[str, Any], output: Format) -> None:
    if output is not Format.TABLE:
        emit(out, output, policy)
        return
    details(
        out,
        {
            "fabric": policy["fabric"],
            "maintenance allowed": policy["maintenance_allowed"],
            "role budgets": policy["role_budgets"] or "-",
            "overrides": policy["role_overrides"] or "-",
        },
    )


@policy_app.command("show")
def policy_show(fabric: str, output: OutputOpt = Format.TABLE) -> None:
    """Show a fabric's policy."""
    _show(client().get(f"/api/v1/fabrics/{fabric}/policy"), output)


def _role_budgets(items: list[str]) -> dict[str, str]:
    out_: dict[str, str] = {}
    for item in items:
        role, sep, budget = item.partition("=")
        if not sep or not role.strip():
            raise typer.BadParameter(f"{item!r} is not role=budget", param_hint="--role-budget")
        out_[role.strip()] = budget.strip()
    return out_


@policy_app.command("set")
def policy_set(
    fabric: str,
    reason: Annotated[str, typer.Option(help="Why; recorded in the audit")],
    maintenance_allowed: Annotated[
        bool | None,
        typer.Option(
            "--maintenance-allowed/--maintenance-disallowed",
            help="Disallowing refuses new activations; devices out of service stay out",
        ),
    ] = None,
    role_budget: Annotated[
        list[str] | None,
        typer.Option(help="role=max_unavailable, e.g. spine=50% (repeatable; replaces all)"),
    ] = None,
    reset_role_budgets: Annotated[
        bool, typer.Option(help="Drop every override: the built-in defaults apply")
    ] = False,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Change a fabric's policy (admins)."""
    body: dict[str, Any] = {"reason": reason}
    if maintenance_allowed is not None:
        body["maintenance_allowed"] = maintenance_allowed
    if reset_role_budgets:
        body["role_budgets"] = {}
    elif role_budget:
        body["role_budgets"] = _role_budgets(role_budget)
    if len(body) == 1:
        raise typer.BadParameter(
            "nothing to change: give --maintenance-allowed/--maintenance-disallowed, "
            "--role-budget or --reset-role-budgets"
        )
    _show(client().request("PATCH", f"/api/v1/fabrics/{fabric}/policy", json=body), output)


def budgets(fabric: str, output: OutputOpt = Format.TABLE) -> None:
    """Every group and capped role of a fabric: its budget and who holds its slots."""
    data = client().get(f"/api/v1/fabrics/{fabric}/budgets")
    emit(
        out,
        output,
        data,
        columns=[
            ("NAME", lambda p: p["name"]),
            ("MAX UNAVAILABLE", lambda p: p["max_unavailable"]),
            ("MEMBERS", lambda p: p["members"]),
            ("ALLOWED", lambda p: p["allowed"]),
            ("FREE", lambda p: p["free"]),
            ("HELD BY", lambda p: [f"{h['device']} ({h['status']})" for h in p["holders"]]),
        ],
    )
