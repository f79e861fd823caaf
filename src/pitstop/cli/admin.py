"""``pitstop audit ...``, ``pitstop token ...``, ``pitstop login`` and ``pitstop whoami``."""

from __future__ import annotations

from typing import Annotated

import typer

from pitstop.cli import config
from pitstop.cli.client import ApiError, Client
from pitstop.cli.common import OutputOpt, client, err, out, since_param
from pitstop.cli.output import Format, emit

audit_app = typer.Typer(help="The audit log of every change.", invoke_without_command=True)
token_app = typer.Typer(help="API tokens (admin).", no_args_is_help=True)

AUDIT_COLUMNS = [
    ("SEQ", lambda e: e["seq"]),
    ("AT", lambda e: e["at"][:19].replace("T", " ")),
    ("ACTOR", lambda e: e["actor"]),
    ("VIA", lambda e: e["via"]),
    ("ACTION", lambda e: e["action"]),
    ("DEVICE", lambda e: f"{e['fabric']}/{e['device']}" if e["device"] else e["fabric"]),
    (
        "CHANGE",
        lambda e: f"{e['from_status'] or '-'} -> {e['to_status']}" if e["to_status"] else "",
    ),
    ("REASON", lambda e: e["reason"]),
    ("TICKET", lambda e: e["ticket"]),
]
# Left out, in this order, when the table would not fit the terminal (``-o json`` has them).
AUDIT_OPTIONAL = ("VIA", "TICKET", "ACTOR")


@audit_app.callback()
def audit(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option(help="Device name or id")] = None,
    actor: Annotated[str | None, typer.Option(help="Token name that made the change")] = None,
    action: Annotated[str | None, typer.Option(help="device.status, token.create, ...")] = None,
    fabric: Annotated[str | None, typer.Option("--fabric", "-f")] = None,
    since: Annotated[str | None, typer.Option(help="A time, or a duration back: 2h, 7d")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows")] = 100,
    output: OutputOpt = Format.TABLE,
) -> None:
    """List the audit log, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    rows = list(
        client().paged(
            "/api/v1/audit",
            limit=limit,
            device=device,
            actor=actor,
            action=action,
            fabric=fabric,
            since=since_param(since),
        )
    )
    emit(out, output, rows, columns=AUDIT_COLUMNS, optional=AUDIT_OPTIONAL)


@audit_app.command("verify")
def audit_verify(output: OutputOpt = Format.TABLE) -> None:
    """Check the hash chain: any edited or deleted row is reported, and the exit status is 1."""
    result = client().get("/api/v1/audit/verify")
    if output is not Format.TABLE:
        emit(out, output, result)
    elif result["ok"]:
        out.print(f"Audit chain intact: {result['checked']} rows verified.")
    else:
        for p in result["problems"]:
            out.print(f"row {p['seq']}: {p['problem']}", markup=False)
    if not result["ok"]:
        err.print(f"AUDIT_TAMPERED: {len(result['problems'])} problems in the audit chain")
        raise typer.Exit(1)


TOKEN_COLUMNS = [
    ("NAME", lambda t: t["name"]),
    ("ROLE", lambda t: t["role"]),
    ("FABRICS", lambda t: t["fabrics"] or "all"),
    ("PREFIX", lambda t: t["prefix"]),
    ("EXPIRES", lambda t: t["expires_at"]),
    ("LAST USED", lambda t: t["last_used_at"]),
    ("REVOKED", lambda t: t["revoked_at"]),
]


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="A name to recognise the token by")],
    role: Annotated[str, typer.Option(help="admin, operator or viewer")],
    fabric: Annotated[
        list[str] | None, typer.Option("--fabric", "-f", help="Limit changes to this fabric")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime: 30d, 12h, 2w")] = None,
    output: OutputOpt = Format.TABLE,
) -> None:
    """Create a token. It is printed once and cannot be shown again."""
    data = client().post(
        "/api/v1/tokens",
        {"name": name, "role": role, "fabrics": fabric or [], "expires_in": expires},
    )
    if output is Format.TABLE:
        out.print(data["token"])
        err.print(
            f"Token {data['name']!r} ({data['role']}) created. Store it now: it is shown once."
        )
    else:
        emit(out, output, data)


@token_app.command("list")
def token_list(output: OutputOpt = Format.TABLE) -> None:
    """List tokens (never their secrets)."""
    emit(out, output, client().get("/api/v1/tokens"), columns=TOKEN_COLUMNS)


@token_app.command("revoke")
def token_revoke(name: str, output: OutputOpt = Format.TABLE) -> None:
    """Revoke a token by name or id."""
    data = client().request("DELETE", f"/api/v1/tokens/{name}")
    if output is Format.TABLE:
        out.print(f"Token {data['name']!r} revoked.")
    else:
        emit(out, output, data)


def login(
    url: Annotated[str | None, typer.Option(help="Server URL")] = None,
    token: Annotated[
        str | None, typer.Option(help="API token (prompted for, hidden, when not given)")
    ] = None,
) -> None:
    """Check a token against the server and remember both for later commands."""
    url = (url or config.load().url).rstrip("/")
    token = token or typer.prompt("Token", hide_input=True)
    c = Client(config.ClientConfig(url=url, token=token))
    try:
        me = c.get("/api/v1/whoami")
    except ApiError:
        raise
    finally:
        c.close()
    path = config.save(url, token)
    out.print(f"Logged in to {url} as {me['name']} ({me['role']}). Saved to {path}.")


def whoami(output: OutputOpt = Format.TABLE) -> None:
    """Who the current token belongs to."""
    emit(out, output, client().get("/api/v1/whoami"))
